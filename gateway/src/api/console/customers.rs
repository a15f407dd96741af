//! A customer in the console: their profile, consent on every channel
//! they have in every category (with where and when it was given), their
//! addresses' suppressions, and, for an admin session, the form that
//! changes consent (recorded with the operator's key as its source).

use super::layout;
use super::session::{admin_form, operator};
use crate::api::AppState;
use crate::api::page::escape;
use crate::customer::{Consent, ConsentStatus};
use crate::message::Channel;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashMap;
use std::sync::Arc;

pub async fn find(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let session = match operator(&state, &headers).await {
        Ok(session) => session,
        Err(to_sign_in) => return to_sign_in,
    };
    if let Some(id) = query.get("id").map(|i| i.trim()).filter(|i| !i.is_empty()) {
        return Redirect::to(&super::customer_path(id)).into_response();
    }
    layout(
        &session,
        "Customers",
        "<form class=search method=get action=\"/console/customers\">\
         <label>Customer id<input name=id required></label><button type=submit>Open</button></form>",
    )
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let session = match operator(&state, &headers).await {
        Ok(session) => session,
        Err(to_sign_in) => return to_sign_in,
    };
    let record = match state.store.customer(&id).await {
        Ok(Some(record)) => record,
        Ok(None) => return super::not_found(&session, "Customer"),
        Err(e) => return crate::api::ApiError::from(e).into_response(),
    };
    let profile = &record.profile;
    let routing = state.live.current();
    let feed = state.feed_tokens.is_some();
    let channels = crate::preferences::channels(profile, feed);
    let a = &profile.addresses;
    let mut html = format!(
        "<p><a href=\"/console/messages?customer_id={q}\">Their messages</a></p>\
         <dl><dt>Email</dt><dd>{}</dd><dt>Phone</dt><dd>{}</dd><dt>WhatsApp</dt><dd>{}</dd>\
         <dt>Push devices</dt><dd>{}</dd><dt>Region, country</dt><dd>{} {}</dd>\
         <dt>Locale, time zone</dt><dd>{} {}</dd></dl>",
        escape(a.email.as_deref().unwrap_or("—")),
        escape(a.phone.as_deref().unwrap_or("—")),
        escape(a.whatsapp.as_deref().unwrap_or("—")),
        a.push.len(),
        escape(profile.region.as_deref().unwrap_or("—")),
        escape(profile.country.as_deref().unwrap_or("")),
        escape(profile.locale.as_deref().unwrap_or("—")),
        escape(profile.timezone.as_deref().unwrap_or("")),
        q = escape(&form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()),
    );
    html += "<h2>Consent</h2>";
    if session.admin {
        html += &format!(
            "<form method=post action=\"{}/consent\">\
             <input type=hidden name=csrf value=\"{}\">",
            escape(&super::customer_path(&id)),
            escape(&session.csrf)
        );
    }
    html += "<table><thead><tr><th>Category</th>";
    for channel in &channels {
        html += &format!("<th>{channel}</th>");
    }
    html += "</tr></thead><tbody>";
    for (category, config) in &routing.policy.categories {
        html += &format!(
            "<tr><th>{} <span class=reason>({})</span></th>",
            escape(category),
            match config.consent {
                crate::routing::policy::ConsentMode::OptIn => "opt-in",
                crate::routing::policy::ConsentMode::OptOut => "opt-out",
            }
        );
        for channel in &channels {
            let given = profile.consent.get(channel).and_then(|c| c.get(category));
            let said = given.map_or("—".to_owned(), |c| {
                format!(
                    "{} <span class=reason>{} {}</span>",
                    match c.status {
                        ConsentStatus::OptedIn => "opted in",
                        ConsentStatus::OptedOut => "opted out",
                    },
                    escape(c.source.as_deref().unwrap_or("")),
                    c.at.strftime("%Y-%m-%d %H:%M")
                )
            });
            html += &format!("<td>{said}");
            if session.admin {
                let name = escape(&format!("c.{channel}.{category}"));
                html += &format!(
                    "<label>Change {channel} {cat}<select name=\"{name}\">\
                     <option value=\"\">keep</option><option value=opted_in>opt in</option>\
                     <option value=opted_out>opt out</option></select></label>",
                    cat = escape(category),
                );
            }
            html += "</td>";
        }
        html += "</tr>";
    }
    html += "</tbody></table>";
    if session.admin {
        html += "<button type=submit>Change consent</button></form>";
    }
    match state.store.customer_runs_page(&id, 20, None).await {
        Ok(runs) if !runs.is_empty() => {
            html += "<h2>Journey runs</h2><table><thead><tr><th>Journey</th><th>Status</th>\
                     <th>Started</th><th>Updated</th></tr></thead><tbody>";
            for run in runs {
                html += &format!(
                    "<tr><td><a href=\"/console/journey-runs/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(&run.id),
                    escape(&run.journey),
                    escape(&run.status),
                    crate::api::messages::timestamp(run.started_at),
                    crate::api::messages::timestamp(run.updated_at),
                );
            }
            html += "</tbody></table>";
        }
        Ok(_) => {}
        Err(e) => html += &format!("<p role=alert>{}</p>", escape(&e.to_string())),
    }
    if feed {
        let items = state
            .store
            .feed_items(crate::store::feed::FeedQuery {
                customer_id: id.clone(),
                filter: crate::store::feed::FeedFilter::All,
                before: None,
                limit: 20,
                now: state.clock.now(),
            })
            .await;
        match items {
            Ok(items) if !items.is_empty() => {
                html += "<h2>Inbox</h2><table><thead><tr><th>Item</th><th>Title</th><th>Seen</th>\
                         <th>Read</th><th>Archived</th></tr></thead><tbody>";
                let at =
                    |t: Option<i64>| t.map(crate::api::messages::timestamp).unwrap_or_default();
                for item in items {
                    html += &format!(
                        "<tr><td><a href=\"/console/messages/{id}\">{id}</a></td><td>{}</td>\
                         <td>{}</td><td>{}</td><td>{}</td></tr>",
                        escape(item.title.as_deref().unwrap_or(&item.body)),
                        at(item.seen_at),
                        at(item.read_at),
                        at(item.archived_at),
                        id = escape(&item.id),
                    );
                }
                html += "</tbody></table>";
            }
            Ok(_) => {}
            Err(e) => html += &format!("<p role=alert>{}</p>", escape(&e.to_string())),
        }
    }
    let keys = a.keys();
    match state.store.suppressions(keys.clone()).await {
        Ok(entries) => {
            html += "<h2>Addresses</h2><table><thead><tr><th>Channel</th><th>Address</th>\
                     <th>Suppressed</th><th></th></tr></thead><tbody>";
            for (channel, address) in &keys {
                let entry = entries
                    .iter()
                    .find(|s| s.channel == *channel && s.address == *address);
                let (said, action, verb) = match entry {
                    Some(s) => (
                        format!("{} ({})", s.reason.as_str(), escape(&s.source)),
                        "lift",
                        "Lift the suppression",
                    ),
                    None => ("—".to_owned(), "add", "Suppress"),
                };
                html += &format!(
                    "<tr><td>{channel}</td><td>{}</td><td>{said}</td><td>",
                    escape(address)
                );
                if session.admin {
                    html += &format!(
                        "<form method=post action=\"{}/suppression\">\
                         <input type=hidden name=csrf value=\"{}\">\
                         <input type=hidden name=channel value=\"{channel}\">\
                         <input type=hidden name=address value=\"{}\">\
                         <input type=hidden name=action value={action}>\
                         <button type=submit>{verb}</button></form>",
                        escape(&super::customer_path(&id)),
                        escape(&session.csrf),
                        escape(address),
                    );
                }
                html += "</td></tr>";
            }
            html += "</tbody></table>";
        }
        Err(e) => html += &format!("<p role=alert>{}</p>", escape(&e.to_string())),
    }
    if session.admin {
        html += &format!(
            "<h2>Erase</h2><form method=post action=\"{path}/erase\">\
             <input type=hidden name=csrf value=\"{}\">\
             <label>Type the customer id to erase their profile and the addresses and \
             content of their messages<input name=confirm autocomplete=off required></label>\
             <button type=submit>Erase this customer</button></form>",
            escape(&session.csrf),
            path = escape(&super::customer_path(&id)),
        );
    }
    layout(&session, &format!("Customer {id}"), &html)
}

pub async fn suppression(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let (session, fields) = match admin_form(&state, &headers, body).await {
        Ok(posted) => posted,
        Err(refused) => return refused,
    };
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let Ok(channel) = field("channel").parse::<Channel>() else {
        return super::unprocessable(&session, "not a channel");
    };
    let Ok(address) = crate::customer::address_key(channel, &field("address")) else {
        return super::unprocessable(&session, "not an address of that channel");
    };
    let done = match field("action").as_str() {
        "add" => state
            .store
            .put_suppression(crate::customer::Suppression {
                channel,
                address,
                reason: crate::customer::SuppressionReason::Manual,
                source: format!("console:{}", session.key_name),
                note: None,
                created_at: state.clock.now(),
            })
            .await
            .map(|_| ()),
        "lift" => state
            .store
            .delete_suppression(channel, &address, None)
            .await
            .map(|_| ()),
        _ => return super::unprocessable(&session, "add or lift"),
    };
    match done {
        Ok(()) => Redirect::to(&super::customer_path(&id)).into_response(),
        Err(e) => crate::api::ApiError::from(e).into_response(),
    }
}

pub async fn erase(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let (session, fields) = match admin_form(&state, &headers, body).await {
        Ok(posted) => posted,
        Err(refused) => return refused,
    };
    let confirmed = fields.iter().any(|(k, v)| k == "confirm" && v.trim() == id);
    if !confirmed {
        return super::unprocessable(&session, "not erased: type the customer id to confirm");
    }
    match state.store.delete_customer(&id, state.clock.now()).await {
        Ok(true) => {
            tracing::info!(customer_id = %id, by = %session.key_name, "customer erased from the console");
            layout(
                &session,
                "Customer erased",
                &format!("<p role=status>{} is erased.</p>", escape(&id)),
            )
        }
        Ok(false) => super::unprocessable(&session, "no such customer"),
        Err(e) => crate::api::ApiError::from(e).into_response(),
    }
}

pub async fn change_consent(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let (session, fields) = match admin_form(&state, &headers, body).await {
        Ok(posted) => posted,
        Err(refused) => return refused,
    };
    let now = state.clock.now();
    let Ok(at) = jiff::Timestamp::from_millisecond(now) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let categories = state.live.current().policy.categories.clone();
    let mut changes = Vec::new();
    for (name, value) in &fields {
        let Some(cell) = name.strip_prefix("c.") else {
            continue;
        };
        let status = match value.as_str() {
            "" => continue,
            "opted_in" => ConsentStatus::OptedIn,
            "opted_out" => ConsentStatus::OptedOut,
            _ => return super::unprocessable(&session, "not a consent"),
        };
        let Some((channel, category)) = cell.split_once('.') else {
            return super::unprocessable(&session, "not a channel and category");
        };
        let Ok(channel) = channel.parse::<Channel>() else {
            return super::unprocessable(&session, "not a channel");
        };
        if !categories.contains_key(category) {
            return super::unprocessable(&session, "not a configured category");
        }
        changes.push((
            channel,
            category.to_owned(),
            Consent {
                status,
                at,
                source: Some(format!("console:{}", session.key_name)),
            },
        ));
    }
    if !changes.is_empty() {
        match state.store.update_consent(&id, changes, now).await {
            Ok(Some(_)) => {}
            Ok(None) => return super::unprocessable(&session, "no such customer"),
            Err(e) => return crate::api::ApiError::from(e).into_response(),
        }
    }
    Redirect::to(&super::customer_path(&id)).into_response()
}
