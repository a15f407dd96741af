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

/// One run's history: each step, when and why.
pub async fn run(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let session = match operator(&state, &headers).await {
        Ok(session) => session,
        Err(to_sign_in) => return to_sign_in,
    };
    let found = match state.store.run(&id).await {
        Ok(found) => found,
        Err(e) => {
            return axum::response::IntoResponse::into_response(crate::api::ApiError::from(e));
        }
    };
    let Some(run) = found else {
        return super::not_found(&session, "Journey run");
    };
    let view = match crate::api::journeys::run_view(&run) {
        Ok(view) => view,
        Err(e) => return axum::response::IntoResponse::into_response(e),
    };
    let mut html = format!(
        "<dl><dt>Journey</dt><dd>{} (version {})</dd><dt>Customer</dt>\
         <dd><a href=\"{}\">{}</a></dd><dt>Status</dt><dd>{}</dd></dl>\
         <table><thead><tr><th>At</th><th>Step</th><th>What</th><th>Why</th></tr></thead><tbody>",
        escape(&run.journey),
        escape(&run.version),
        escape(&super::customer_path(&run.customer_id)),
        escape(&run.customer_id),
        escape(&run.status),
    );
    html += &history_rows(&view["history"]);
    html += "</tbody></table>";
    layout(&session, &format!("Journey run {id}"), &html)
}

/// What a run would do: the steps it takes, when and why (nothing is
/// stored or sent), for a timeline typed as `event duration` lines.
pub async fn simulate(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    axum::extract::Path(name): axum::extract::Path<String>,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let session = match operator(&state, &headers).await {
        Ok(session) => session,
        Err(to_sign_in) => return to_sign_in,
    };
    let timeline: Vec<serde_json::Value> = query
        .get("timeline")
        .map(String::as_str)
        .unwrap_or("")
        .lines()
        .filter_map(|line| {
            let (name, after) = line.trim().split_once(char::is_whitespace)?;
            Some(serde_json::json!({"name": name, "after": after.trim()}))
        })
        .collect();
    let request = serde_json::from_value(serde_json::json!({"timeline": timeline}));
    let simulated = match request {
        Ok(request) => crate::api::journeys::simulated(&state, &name, request),
        Err(e) => Err(crate::api::ApiError::invalid(
            "invalid_timeline",
            "timeline",
            e.to_string(),
        )),
    };
    let html = match simulated {
        Err(e) => format!("<p role=alert>{}</p>", escape(&e.message)),
        Ok(run) => {
            let mut html = format!(
                "<p>The run ends <strong id=outcome>{}</strong>.</p><table><thead><tr><th>At</th>\
                 <th>Step</th><th>What</th><th>Why</th></tr></thead><tbody>",
                escape(run["status"].as_str().unwrap_or("?"))
            );
            html += &history_rows(&run["history"]);
            html + "</tbody></table><p><a href=\"/console/journeys\">Journeys</a></p>"
        }
    };
    layout(&session, &format!("Simulating {name}"), &html)
}

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
        html += &format!(
            "</ol><form class=search method=get action=\"/console/journeys/{name}/simulate\">\
             <label>What the customer does after the trigger (e.g. <code>purchase 2d</code>, \
             one per line)<textarea name=timeline></textarea></label>\
             <button type=submit>Simulate</button></form></section>",
            name = escape(&journey.name)
        );
    }
    layout(&session, "Journeys", &html)
}

/// A run's history (its view's `history`, stored or simulated) as table rows.
fn history_rows(history: &serde_json::Value) -> String {
    let mut rows = String::new();
    for record in history.as_array().into_iter().flatten() {
        let text = |key: &str| escape(record[key].as_str().unwrap_or(""));
        rows += &format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            text("at"),
            text("step"),
            text("what"),
            text("why")
        );
    }
    rows
}
