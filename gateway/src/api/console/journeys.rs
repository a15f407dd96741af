//! Journeys in the console: each configured journey (its trigger, goal and
//! steps as configured), its runs by status and the share that converted.
//! A run's history is on its customer's page and `GET /v1/journey-runs/{id}`.

use super::layout;
use super::session::operator;
use crate::api::AppState;
use crate::api::page::escape;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use std::sync::Arc;

/// A step as configured, without the settings it leaves unset.
fn without_empties(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, without_empties(v)))
                .filter(|(_, v)| !v.is_null() && v.as_object().is_none_or(|o| !o.is_empty()))
                .collect(),
        ),
        other => other,
    }
}

pub async fn journeys(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let session = match operator(&state, &headers).await {
        Ok(session) => session,
        Err(to_sign_in) => return to_sign_in,
    };
    let routing = state.live.current();
    let mut html = String::new();
    if routing.journeys.is_empty() {
        html += "<p>No journeys are configured.</p>";
    }
    for journey in routing.journeys.all() {
        let config = &journey.config;
        html += &format!(
            "<section><h2>{}</h2><p>Starts on <code>{}</code>{}; version {}.</p>",
            escape(&journey.name),
            escape(&config.trigger),
            config
                .goal
                .as_ref()
                .map(|g| format!(", converts on <code>{}</code>", escape(g)))
                .unwrap_or_default(),
            escape(&journey.version),
        );
        match state.store.run_counts(&journey.name).await {
            Ok(counts) if counts.is_empty() => html += "<p>No runs yet.</p>",
            Ok(counts) => {
                let total: u64 = counts.iter().map(|(_, n)| n).sum();
                let converted = counts
                    .iter()
                    .find(|(s, _)| s == "converted")
                    .map_or(0, |(_, n)| *n);
                html += "<table><caption>Runs by status</caption><tbody>";
                for (status, n) in &counts {
                    html += &format!("<tr><th>{}</th><td>{n}</td></tr>", escape(status));
                }
                html += &format!(
                    "</tbody></table><p>Converted: {:.1}% of {total}.</p>",
                    converted as f64 * 100.0 / total.max(1) as f64
                );
            }
            Err(e) => html += &format!("<p role=alert>{}</p>", escape(&e.to_string())),
        }
        html += "<ol>";
        for step in &config.steps {
            let kind = serde_json::to_value(&step.kind)
                .map(|v| without_empties(v).to_string())
                .unwrap_or_default();
            html += &format!(
                "<li><strong>{}</strong> <code>{}</code></li>",
                escape(&step.id),
                escape(&kind)
            );
        }
        html += "</ol></section>";
    }
    layout(&session, "Journeys", &html)
}
