//! Messages in the console: the search (the API's, as a form) and one
//! message's timeline: its plan with every channel's decision and reason,
//! each attempt, and what its provider reported.

use super::layout;
use super::session::operator;
use crate::api::AppState;
use crate::api::messages::timestamp;
use crate::api::page::escape;
use crate::api::search::{SearchQuery, query_of};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// The filters as the form has them: empty fields are no filter.
const FIELDS: [(&str, &str); 6] = [
    ("customer_id", "Customer id"),
    ("address", "Address"),
    ("status", "Status"),
    ("channel", "Channel"),
    ("category", "Category"),
    ("campaign", "Campaign"),
];

pub async fn search(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(form): Query<HashMap<String, String>>,
) -> Response {
    let session = match operator(&state, &headers).await {
        Ok(session) => session,
        Err(to_sign_in) => return to_sign_in,
    };
    let given = |name: &str| {
        form.get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let mut html = String::from("<form class=search method=get action=\"/console/messages\">");
    for (name, label) in FIELDS {
        html += &format!(
            "<label>{label}<input name={name} value=\"{}\"></label>",
            escape(&given(name).unwrap_or_default())
        );
    }
    html += "<button type=submit>Search</button></form>";
    let query = SearchQuery {
        customer_id: given("customer_id"),
        address: given("address"),
        channel: given("channel"),
        status: given("status"),
        category: given("category"),
        campaign: given("campaign"),
        from: given("from"),
        to: given("to"),
        limit: Some(50),
        after: given("after"),
    };
    let found: Result<_, crate::api::ApiError> = async {
        Ok(state
            .store
            .search_messages(query_of(&state, query)?)
            .await?)
    }
    .await;
    match found {
        Err(e) => html += &format!("<p role=alert>{}</p>", escape(&e.message)),
        Ok(found) if found.is_empty() => html += "<p>No messages in the last week match.</p>",
        Ok(found) => {
            html += "<table><caption>Newest first</caption><thead><tr><th>Created</th><th>Message</th>\
                     <th>Customer</th><th>Channel</th><th>Status</th><th>Reason</th></tr></thead><tbody>";
            for m in &found {
                html += &format!(
                    "<tr><td>{}</td><td><a href=\"/console/messages/{id}\">{id}</a></td><td>{}</td>\
                     <td>{}</td><td>{}</td><td class=reason>{}</td></tr>",
                    timestamp(m.created_at),
                    escape(m.customer_id.as_deref().unwrap_or("")),
                    m.delivered_channel.unwrap_or(m.channel),
                    m.status.as_str(),
                    escape(m.status_reason.as_deref().unwrap_or("")),
                    id = escape(&m.id),
                );
            }
            html += "</tbody></table>";
            if let Some(after) = crate::api::cursor::next(&found, 50, |m| (m.created_at, &m.id)) {
                let mut next: Vec<(String, String)> = FIELDS
                    .iter()
                    .filter_map(|(name, _)| given(name).map(|v| (name.to_string(), v)))
                    .collect();
                next.push(("after".into(), after));
                let link: String = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(next)
                    .finish();
                html += &format!(
                    "<p><a href=\"/console/messages?{}\">Older</a></p>",
                    escape(&link)
                );
            }
        }
    }
    layout(&session, "Messages", &html)
}

pub async fn timeline(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let session = match operator(&state, &headers).await {
        Ok(session) => session,
        Err(to_sign_in) => return to_sign_in,
    };
    let message = match state.store.message(&id).await {
        Ok(Some(message)) => message,
        Ok(None) => return super::not_found(&session, "Message"),
        Err(e) => {
            return axum::response::IntoResponse::into_response(crate::api::ApiError::from(e));
        }
    };
    let cell = |v: Option<&str>| escape(v.unwrap_or("—"));
    let customer = message.customer_id.as_deref().map_or_else(
        || "—".to_owned(),
        |c| {
            format!(
                "<a href=\"{}\">{}</a>",
                escape(&super::customer_path(c)),
                escape(c)
            )
        },
    );
    // What sent it: a link to the broadcast, or to the journeys.
    let campaign = match message.campaign.as_deref() {
        Some(c) => match c.split_once(':') {
            Some(("broadcast", id)) => format!(
                "<a href=\"/console/broadcasts/{}\">{}</a>",
                escape(id),
                escape(c)
            ),
            Some(("journey", _)) => format!("<a href=\"/console/journeys\">{}</a>", escape(c)),
            _ => escape(c),
        },
        None => "the platform".to_owned(),
    };
    let mut html = format!(
        "<dl><dt>Sent by</dt><dd>{campaign}</dd>\
         <dt>Status</dt><dd>{} <span class=reason>{}</span></dd><dt>Customer</dt><dd>{}</dd>\
         <dt>Recipient</dt><dd>{}</dd><dt>Category</dt><dd>{}</dd><dt>Created</dt><dd>{}</dd>\
         <dt>Delivered by</dt><dd>{}</dd></dl>",
        message.status.as_str(),
        cell(message.status_reason.as_deref()),
        customer,
        escape(&message.recipient),
        cell(message.category.as_deref()),
        timestamp(message.created_at),
        cell(message.delivered_by.as_deref()),
    );
    let plan: Option<Value> = message
        .plan
        .as_deref()
        .and_then(|p| serde_json::from_str(p).ok());
    if let Some(plan) = plan {
        html += &format!(
            "<h2>Plan</h2><p>Region {} (from {}), order from {}, strategy {}.</p>",
            escape(plan["region"].as_str().unwrap_or("?")),
            escape(plan["region_source"].as_str().unwrap_or("?")),
            escape(plan["order_source"].as_str().unwrap_or("?")),
            escape(plan["strategy"].as_str().unwrap_or("?")),
        );
        html += "<table><thead><tr><th>Channel</th><th>Decision</th><th>Connectors</th><th>Cost</th>\
                 <th>Escalates after</th></tr></thead><tbody>";
        for channel in plan["channels"].as_array().into_iter().flatten() {
            let decision = channel["decision"].as_str().unwrap_or("?");
            html += &format!(
                "<tr><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(channel["channel"].as_str().unwrap_or("?")),
                if decision == "chosen" {
                    "chosen"
                } else {
                    "reason"
                },
                escape(&decision.replace('_', " ")),
                escape(
                    &channel["connectors"]
                        .as_array()
                        .map(|c| c
                            .iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(", "))
                        .unwrap_or_default()
                ),
                channel["cost"]
                    .as_f64()
                    .map(|c| format!("{c:.4}"))
                    .unwrap_or_default(),
                escape(channel["escalate_after"].as_str().unwrap_or("")),
            );
        }
        html += "</tbody></table>";
        if let Some(suppressed) = plan.get("suppressed") {
            html += &format!(
                "<p>Not sent: {}</p>",
                escape(suppressed["detail"].as_str().unwrap_or(""))
            );
        }
    }
    html += "<h2>Attempts</h2>";
    if message.attempts.is_empty() {
        html += "<p>None yet.</p>";
    } else {
        html += "<table><thead><tr><th>#</th><th>Channel</th><th>Connector</th><th>Outcome</th>\
                 <th>Provider id or error</th><th>Node</th><th>Started</th><th>Took</th></tr></thead><tbody>";
        for a in &message.attempts {
            let detail = match (&a.provider_message_id, &a.error_code) {
                (Some(id), _) => id.clone(),
                (None, Some(code)) => {
                    format!("{code}: {}", a.error_message.as_deref().unwrap_or(""))
                }
                (None, None) => String::new(),
            };
            html += &format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} ms</td></tr>",
                a.number,
                a.channel,
                escape(&a.connector),
                a.outcome.as_str(),
                escape(&detail),
                escape(a.node.as_deref().unwrap_or("")),
                timestamp(a.started_at),
                a.finished_at - a.started_at,
            );
        }
        html += "</tbody></table>";
    }
    if !message.events.is_empty() {
        html += "<h2>Provider reports</h2><table><thead><tr><th>At</th><th>State</th><th>Detail</th></tr></thead><tbody>";
        for e in &message.events {
            html += &format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                timestamp(e.at),
                escape(&e.state),
                escape(
                    &[e.code.as_deref(), e.description.as_deref()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(": ")
                ),
            );
        }
        html += "</tbody></table>";
    }
    match state.store.callbacks_of(&message.id).await {
        Ok(callbacks) if !callbacks.is_empty() => {
            html += "<h2>Status callbacks</h2><table><thead><tr><th>Due</th><th>Status it said</th>\
                     <th>To</th><th>State</th><th>Tries</th></tr></thead><tbody>";
            for c in callbacks {
                let said: Value = serde_json::from_str(&c.payload).unwrap_or_default();
                html += &format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    timestamp(c.due_at),
                    escape(said["status"].as_str().unwrap_or("")),
                    escape(&c.url),
                    escape(&c.state),
                    c.attempts,
                );
            }
            html += "</tbody></table>";
        }
        Ok(_) => {}
        Err(e) => html += &format!("<p role=alert>{}</p>", escape(&e.to_string())),
    }
    layout(&session, &format!("Message {}", message.id), &html)
}
