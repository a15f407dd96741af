//! Broadcasts and the channel report in the console: each broadcast's
//! progress (members planned, their messages by status, the refused and
//! why), cancel for the admin session of the key that started it; the
//! report per channel, region and campaign, with its CSV.

use super::layout;
use super::session::{admin_form, operator};
use crate::api::AppState;
use crate::api::page::escape;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

pub async fn broadcasts(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let session = match operator(&state, &headers).await {
        Ok(session) => session,
        Err(to_sign_in) => return to_sign_in,
    };
    let segment = query
        .get("segment")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let page = match state.store.list_broadcasts(None, None, 50).await {
        Ok(page) => page,
        Err(e) => return crate::api::ApiError::from(e).into_response(),
    };
    let mut html = String::new();
    if session.admin {
        html += &new_broadcast(&state, &session, segment.as_deref()).await;
    }
    if page.is_empty() {
        html += "<p>No broadcasts yet.</p>";
    } else {
        html += "<table><thead><tr><th>Broadcast</th><th>Status</th><th>Segment</th>\
                 <th>Members planned</th></tr></thead><tbody>";
        for b in &page {
            let summary = crate::api::broadcasts::summary(b);
            html += &format!(
                "<tr><td><a href=\"/console/broadcasts/{id}\">{id}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&b.status),
                escape(summary["segment"].as_str().unwrap_or("")),
                b.planned,
                id = escape(&b.id),
            );
        }
        html += "</tbody></table>";
    }
    layout(&session, "Broadcasts", &html)
}

/// The form that starts a broadcast, with the segment's count when one
/// was previewed.
async fn new_broadcast(
    state: &AppState,
    session: &crate::store::sessions::ConsoleSession,
    segment: Option<&str>,
) -> String {
    let mut html = String::from("<h2>New broadcast</h2>");
    html += &format!(
        "<form class=search method=get action=\"/console/broadcasts\">\
         <label>Segment<input name=segment value=\"{}\" required></label>\
         <button type=submit>Count its members</button></form>",
        escape(segment.unwrap_or(""))
    );
    let Some(segment) = segment else {
        return html;
    };
    let counted: Result<_, crate::api::ApiError> = async {
        let query = crate::api::segments::query(state, segment, state.clock.now()).await?;
        Ok(state.store.segment_count(query).await?)
    }
    .await;
    match counted {
        Err(e) => html += &format!("<p role=alert>{}</p>", escape(&e.message)),
        Ok(count) => {
            html += &format!(
                "<p id=count>{count} members in {}.</p>\
                 <form method=post action=\"/console/broadcasts/create\">\
                 <input type=hidden name=csrf value=\"{}\">\
                 <input type=hidden name=segment value=\"{}\">\
                 <label>Category<input name=category required></label>\
                 <label>Text<textarea name=text required></textarea></label>\
                 <label>Members a second<input name=rate_per_second type=number min=1 value=50></label>\
                 <button type=submit>Start the broadcast</button></form>",
                escape(segment),
                escape(&session.csrf),
                escape(segment),
            );
        }
    }
    html
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (session, fields) = match admin_form(&state, &headers, body).await {
        Ok(posted) => posted,
        Err(refused) => return refused,
    };
    let fields: HashMap<String, String> = fields.into_iter().collect();
    let field = |name: &str| fields.get(name).cloned().unwrap_or_default();
    let rate = match field("rate_per_second").trim().parse::<u32>() {
        Ok(rate) => rate,
        Err(_) => return super::unprocessable(&session, "members a second is a whole number"),
    };
    // The same request the API takes, so it is checked the same way.
    let request = serde_json::json!({
        "segment": field("segment"),
        "category": field("category"),
        "content": {"text": field("text")},
        "rate_per_second": rate,
    });
    let request = match serde_json::from_value(request) {
        Ok(request) => request,
        Err(e) => return super::unprocessable(&session, &e.to_string()),
    };
    match crate::api::broadcasts::start(&state, request, session.key_name.clone()).await {
        Ok((id, _)) => Redirect::to(&format!("/console/broadcasts/{id}")).into_response(),
        Err(e) => super::unprocessable(&session, &e.message),
    }
}

pub async fn broadcast(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let session = match operator(&state, &headers).await {
        Ok(session) => session,
        Err(to_sign_in) => return to_sign_in,
    };
    let view = match crate::api::broadcasts::view(&state, &id).await {
        Ok(view) => view,
        Err(e) => return e.into_response(),
    };
    let status = view["status"].as_str().unwrap_or("?");
    let mut html = format!(
        "<dl><dt>Status</dt><dd id=status>{}</dd><dt>Segment</dt><dd>{}</dd>\
         <dt>Members planned</dt><dd id=planned>{}</dd><dt>Members refused</dt><dd>{}</dd></dl>",
        escape(status),
        escape(view["segment"].as_str().unwrap_or("")),
        view["planned"],
        view["refused"],
    );
    html += "<h2>Their messages</h2><table><thead><tr><th>Status</th><th>Messages</th></tr></thead><tbody>";
    for (name, count) in view["messages"].as_object().into_iter().flatten() {
        html += &format!("<tr><td>{}</td><td>{count}</td></tr>", escape(name));
    }
    html += "</tbody></table>";
    if let Some(reasons) = view["reasons"].as_object().filter(|r| !r.is_empty()) {
        html += "<h2>Why not</h2><ul>";
        for (status, by_reason) in reasons {
            for (reason, count) in by_reason.as_object().into_iter().flatten() {
                html += &format!("<li>{}: {} ({count})</li>", escape(status), escape(reason));
            }
        }
        html += "</ul>";
    }
    let open = matches!(status, "scheduled" | "planning");
    if session.admin && open {
        html += &format!(
            "<form method=post action=\"/console/broadcasts/{}/cancel\">\
             <input type=hidden name=csrf value=\"{}\"><button type=submit>Cancel the broadcast</button></form>",
            escape(&id),
            escape(&session.csrf)
        );
    }
    layout(&session, &format!("Broadcast {id}"), &html)
}

pub async fn cancel(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let (session, _) = match admin_form(&state, &headers, body).await {
        Ok(posted) => posted,
        Err(refused) => return refused,
    };
    match crate::api::broadcasts::cancel_as(&state, &id, &session.key_name).await {
        Ok(_) => Redirect::to(&format!("/console/broadcasts/{id}")).into_response(),
        Err(e) => super::unprocessable(&session, &e.message),
    }
}

/// The periods the report page offers, in days; the first is its default.
/// A week keeps the page quick on the embedded store (its query reads every
/// message of the period).
const PERIODS: [i64; 3] = [7, 30, 90];

fn period_days(query: &HashMap<String, String>) -> i64 {
    query
        .get("days")
        .and_then(|d| d.parse().ok())
        .filter(|d| PERIODS.contains(d))
        .unwrap_or(PERIODS[0])
}

/// The period's start, as the report takes it.
fn period_from(state: &AppState, days: i64) -> String {
    let from = state.clock.now().saturating_sub(days * 86_400_000);
    crate::api::messages::timestamp(from)
}

pub async fn report(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let session = match operator(&state, &headers).await {
        Ok(session) => session,
        Err(to_sign_in) => return to_sign_in,
    };
    let group_by = query
        .get("group_by")
        .filter(|g| !g.trim().is_empty())
        .cloned()
        .unwrap_or_else(|| "channel".to_owned());
    let days = period_days(&query);
    let from = period_from(&state, days);
    let report = crate::api::reports::report(&state, Some(&from), None, &group_by)
        .await
        .map(|r| r.json());
    let options: String = PERIODS
        .iter()
        .map(|d| {
            format!(
                "<option value={d}{}>the last {d} days</option>",
                if *d == days { " selected" } else { "" }
            )
        })
        .collect();
    let mut html = format!(
        "<form class=search method=get action=\"/console/reports\">\
         <label>Group by<input name=group_by value=\"{}\"></label>\
         <label>Period<select name=days>{options}</select></label>\
         <button type=submit>Show</button></form>\
         <p><a id=csv href=\"/console/reports.csv?group_by={}&amp;days={days}\">Download CSV</a></p>",
        escape(&group_by),
        escape(&form_urlencoded::byte_serialize(group_by.as_bytes()).collect::<String>()),
    );
    match report {
        Err(e) => html += &format!("<p role=alert>{}</p>", escape(&e.message)),
        Ok(json) => {
            let rows: Vec<Value> = json["rows"].as_array().cloned().unwrap_or_default();
            let columns: Vec<String> = rows
                .first()
                .and_then(Value::as_object)
                .map(|r| r.keys().cloned().collect())
                .unwrap_or_default();
            if rows.is_empty() {
                html += &format!("<p>Nothing sent in the last {days} days.</p>");
            } else {
                html += &format!("<table><caption>The last {days} days</caption><thead><tr>");
                for c in &columns {
                    html += &format!("<th>{}</th>", escape(&c.replace('_', " ")));
                }
                html += "</tr></thead><tbody>";
                for r in &rows {
                    html += "<tr>";
                    for c in &columns {
                        let cell = match &r[c] {
                            Value::Null => String::new(),
                            Value::String(s) => s.clone(),
                            Value::Number(n) => n
                                .as_f64()
                                .filter(|f| f.fract() != 0.0)
                                .map_or_else(|| n.to_string(), |f| format!("{f:.4}")),
                            other => other.to_string(),
                        };
                        html += &format!("<td>{}</td>", escape(&cell));
                    }
                    html += "</tr>";
                }
                html += "</tbody></table>";
                let label = |r: &Value| {
                    let keys: Vec<String> = columns
                        .iter()
                        .take_while(|c| !matches!(c.as_str(), "sent"))
                        .filter_map(|c| r[c].as_str().map(str::to_owned))
                        .collect();
                    if keys.is_empty() {
                        "(none)".to_owned()
                    } else {
                        keys.join(" / ")
                    }
                };
                for (figure, title) in [
                    ("sent", "Messages sent"),
                    ("cost", "Cost"),
                    ("revenue", "Revenue"),
                ] {
                    let values: Vec<(String, f64)> = rows
                        .iter()
                        .map(|r| (label(r), r[figure].as_f64().unwrap_or(0.0)))
                        .collect();
                    html += &bars(title, &values);
                }
            }
        }
    }
    layout(&session, "Reports", &html)
}

/// A horizontal bar chart drawn by the server (SVG, no script), with its
/// figures as text for screen readers and for the eye.
fn bars(title: &str, values: &[(String, f64)]) -> String {
    const ROW: f64 = 22.0;
    const LABEL: f64 = 160.0;
    const WIDTH: f64 = 360.0;
    let max = values.iter().map(|(_, v)| *v).fold(0.0, f64::max);
    let height = ROW * values.len() as f64 + 8.0;
    let mut svg = format!(
        "<figure><figcaption>{title}</figcaption><svg role=img aria-label=\"{title}\" \
         width=\"{}\" height=\"{height}\" viewBox=\"0 0 {} {height}\">",
        LABEL + WIDTH + 90.0,
        LABEL + WIDTH + 90.0,
        title = escape(title),
    );
    for (i, (label, value)) in values.iter().enumerate() {
        let y = ROW * i as f64 + 4.0;
        let width = if max > 0.0 { WIDTH * value / max } else { 0.0 };
        let shown = if value.fract() == 0.0 {
            format!("{value:.0}")
        } else {
            format!("{value:.4}")
        };
        svg += &format!(
            "<text x=\"0\" y=\"{}\" font-size=\"12\">{}</text>\
             <rect x=\"{LABEL}\" y=\"{y}\" width=\"{width:.1}\" height=\"16\" fill=\"#2c5fd4\"/>\
             <text x=\"{:.1}\" y=\"{}\" font-size=\"12\">{shown}</text>",
            y + 12.0,
            escape(label),
            LABEL + width + 6.0,
            y + 12.0,
        );
    }
    svg + "</svg></figure>"
}

pub async fn report_csv(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Err(to_sign_in) = operator(&state, &headers).await {
        return to_sign_in;
    }
    let group_by = query.get("group_by").map_or("channel", String::as_str);
    let from = period_from(&state, period_days(&query));
    match crate::api::reports::report(&state, Some(&from), None, group_by).await {
        Ok(report) => {
            let mut csv = report.csv().unwrap_or_else(IntoResponse::into_response);
            csv.headers_mut().insert(
                axum::http::header::CONTENT_DISPOSITION,
                axum::http::HeaderValue::from_static("attachment; filename=\"channels.csv\""),
            );
            csv
        }
        Err(e) => e.into_response(),
    }
}
