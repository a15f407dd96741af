//! Connectors and health in the console: each connector with its plugin,
//! and its last attempts on this node (success rate, latency p50/p99,
//! errors by code); what the running configuration holds; what
//! `crossgate check` says of the file on disk (what a reload would take, or
//! every error it would refuse with); and, for an admin, the reload that
//! `SIGHUP` and `POST /v1/admin/reload` do.

use super::layout;
use super::session::{admin_form, operator};
use crate::api::AppState;
use crate::api::page::escape;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use std::sync::Arc;

#[derive(serde::Deserialize)]
pub struct Asked {
    /// `file`: check the configuration file as it is on disk now.
    check: Option<String>,
}

pub async fn connectors(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(asked): Query<Asked>,
) -> Response {
    let session = match operator(&state, &headers).await {
        Ok(session) => session,
        Err(to_sign_in) => return to_sign_in,
    };
    let outcome = match asked.check.as_deref() {
        Some("file") => Some(Outcome::Checked(state.live.check().await)),
        _ => None,
    };
    layout(
        &session,
        "Connectors and health",
        &page(&state, &session, outcome),
    )
}

/// What the operator asked for and what came of it.
enum Outcome {
    Checked(Result<String, String>),
    Reloaded(Result<String, String>),
}

fn page(
    state: &AppState,
    session: &crate::store::sessions::ConsoleSession,
    outcome: Option<Outcome>,
) -> String {
    let routing = state.live.current();
    let health = state.metrics.connector_health();
    let mut html = String::new();
    match outcome {
        Some(Outcome::Reloaded(Ok(done))) => {
            html += &format!("<p role=status>{}</p>", escape(&done))
        }
        Some(Outcome::Reloaded(Err(report))) => {
            html += &format!(
                "<p role=alert>Not reloaded; the running configuration stays:</p><pre>{}</pre>",
                escape(&report)
            )
        }
        Some(Outcome::Checked(Ok(summary))) => {
            html += &format!(
                "<p role=status>crossgate check: {}. A reload would take it.</p>",
                escape(&summary)
            )
        }
        Some(Outcome::Checked(Err(report))) => {
            html += &format!(
                "<p role=alert>crossgate check: the file on disk would not load; \
                 a reload would refuse it and keep the running configuration:</p><pre>{}</pre>",
                escape(&report)
            )
        }
        None => {}
    }
    html += &format!(
        "<p>Running: {} connectors, {} templates, {} journeys, {} categories.</p>\
         <form method=get action=\"/console/connectors\">\
         <input type=hidden name=check value=file>\
         <button type=submit>Check the file on disk</button></form>",
        routing.connector_channels.len(),
        routing.templates.len(),
        routing.journeys.len(),
        routing.policy.categories.len(),
    );
    html += "<table><caption>Each connector's last attempts on this node (up to 1000)</caption>\
             <thead><tr><th>Connector</th><th>Channel</th><th>Plugin</th><th>Attempts</th>\
             <th>Sent</th><th>p50</th><th>p99</th><th>Errors by code</th><th>Circuit (every node)</th>\
             </tr></thead><tbody>";
    let circuits = state.health.snapshot();
    let plugins: std::collections::HashMap<&str, &crate::plugins::PluginInfo> =
        routing.plugins.connectors().collect();
    let mut names: Vec<&String> = routing.connector_channels.keys().collect();
    names.sort();
    let feed = routing
        .policy
        .connectors
        .iter()
        .filter(|c| c.channel.is_feed())
        .map(|c| &c.name);
    for name in names.into_iter().chain(feed) {
        let plugin = plugins.get(name.as_str()).map_or_else(
            || "the gateway's own".to_owned(),
            |p| format!("{} {} (contract {})", p.name, p.version, p.contract_version),
        );
        let channel = routing
            .policy
            .connectors
            .iter()
            .find(|c| &c.name == name)
            .map_or_else(String::new, |c| c.channel.to_string());
        let recent = health.iter().find(|h| &h.connector == name);
        let (attempts, sent, p50, p99, errors) = match recent {
            Some(h) => (
                h.attempts.to_string(),
                format!("{:.1}%", h.success_rate * 100.0),
                format!("{:.1} ms", h.p50_ms),
                format!("{:.1} ms", h.p99_ms),
                h.errors
                    .iter()
                    .map(|(code, n)| format!("{code} ({n})"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            None => (
                "0".into(),
                "—".into(),
                "—".into(),
                "—".into(),
                String::new(),
            ),
        };
        let circuit = circuits.get(name.as_str()).map_or_else(
            || "closed".to_owned(),
            |c| {
                let state = c.state.as_str().replace('_', " ");
                if c.reason.is_empty() {
                    state
                } else {
                    format!("{state}: {}", c.reason)
                }
            },
        );
        html += &format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{attempts}</td><td>{sent}</td><td>{p50}</td>\
             <td>{p99}</td><td>{}</td><td>{}</td></tr>",
            escape(name),
            escape(&channel),
            escape(&plugin),
            escape(&errors),
            escape(&circuit),
        );
    }
    html += "</tbody></table>";
    if session.admin {
        html += &format!(
            "<form method=post action=\"/console/reload\">\
             <input type=hidden name=csrf value=\"{}\">\
             <button type=submit>Reload the configuration</button></form>",
            escape(&session.csrf)
        );
    }
    html
}

pub async fn reload(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (session, _) = match admin_form(&state, &headers, body).await {
        Ok(posted) => posted,
        Err(refused) => return refused,
    };
    let reloaded = state.live.reload().await.map(|reloaded| {
        let mut said = format!("Reloaded; connectors: {}.", reloaded.connectors.join(", "));
        if !reloaded.restart_needed.is_empty() {
            said += &format!(
                " Changes to {} take effect at a restart.",
                reloaded.restart_needed.join(", ")
            );
        }
        said
    });
    layout(
        &session,
        "Connectors and health",
        &page(&state, &session, Some(Outcome::Reloaded(reloaded))),
    )
}
