//! `GET /v1/messages`: find messages by customer, address, channel,
//! status, category or campaign within a time range, newest first, a page
//! at a time. Always bounded: a page of at most [`MAX_LIMIT`], and a range
//! of at most [`MAX_RANGE_MS`] unless a customer or an address narrows it
//! (then up to what `[retention]` keeps), so no request reads the table.

use super::messages::timestamp;
use super::{ApiError, AppState};
use crate::message::{Channel, MessageStatus};
use crate::store::search::{MessageQuery, MessageSummary};
use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 200;
/// 31 days: a month of the whole table at most.
const MAX_RANGE_MS: i64 = 31 * 86_400_000;
/// The range when the request gives no `from`: the last week.
const DEFAULT_RANGE_MS: i64 = 7 * 86_400_000;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// The platform's customer id.
    pub customer_id: Option<String>,
    /// A recipient as the message holds it: an E.164 number or an email address.
    pub address: Option<String>,
    /// Planned for, or delivered on, this channel.
    pub channel: Option<String>,
    pub status: Option<String>,
    pub category: Option<String>,
    /// `broadcast:<id>` or `journey:<name>`.
    pub campaign: Option<String>,
    /// RFC 3339; default `to` less 7 days.
    pub from: Option<String>,
    /// RFC 3339, exclusive; default now.
    pub to: Option<String>,
    /// 1-200, default 50.
    pub limit: Option<usize>,
    /// `next_cursor` of the page before.
    pub after: Option<String>,
}

fn time(field: &str, text: &str) -> Result<i64, ApiError> {
    text.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| ApiError::invalid("invalid_time", field, format!("not an RFC 3339 time: {e}")))
}

#[utoipa::path(get, path = "/v1/messages", tag = "messages", params(SearchQuery),
    responses((status = 200, description = "`{\"messages\": [...], \"next_cursor\"}`, newest first", body = Object),
              (status = 400, description = "A parameter that is not one", body = super::error::ErrorBody),
              (status = 422, description = "A filter that is not one, or a range too long", body = super::error::ErrorBody)))]
pub async fn messages(
    State(state): State<Arc<AppState>>,
    query: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_query",
            e.body_text(),
        )
    })?;
    let query = query_of(&state, query)?;
    let limit = query.limit;
    let found = state.store.search_messages(query).await?;
    let next_cursor = super::cursor::next(&found, limit, |m| (m.created_at, &m.id));
    Ok(Json(json!({
        "messages": found.iter().map(view).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
    })))
}

/// The store's query for a search, checked and bounded: the API's and the
/// console's.
pub fn query_of(state: &AppState, query: SearchQuery) -> Result<MessageQuery, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(
            "invalid_limit",
            "limit",
            format!("limit is 1-{MAX_LIMIT}"),
        ));
    }
    let to = match &query.to {
        Some(text) => time("to", text)?,
        None => state.clock.now().saturating_add(1),
    };
    let from = match &query.from {
        Some(text) => time("from", text)?,
        None => to.saturating_sub(DEFAULT_RANGE_MS),
    };
    let narrowed = query.customer_id.is_some() || query.address.is_some();
    let longest = if narrowed {
        state.send.retention.messages
    } else {
        MAX_RANGE_MS
    };
    if from >= to {
        return Err(ApiError::invalid(
            "invalid_range",
            "from",
            "from must be before to",
        ));
    }
    if to - from > longest {
        return Err(ApiError::invalid(
            "invalid_range",
            "from",
            format!(
                "a range is at most {} ({} with customer_id or address)",
                crate::routing::policy::humane(MAX_RANGE_MS),
                crate::routing::policy::humane(state.send.retention.messages)
            ),
        ));
    }
    if let Some(id) = &query.customer_id {
        super::customers::check_id(id).map_err(|e| e.field("customer_id"))?;
    }
    let channel = query
        .channel
        .as_deref()
        .map(str::parse::<Channel>)
        .transpose()
        .map_err(|e| ApiError::invalid("unknown_channel", "channel", e))?;
    let status = query
        .status
        .as_deref()
        .map(str::parse::<MessageStatus>)
        .transpose()
        .map_err(|e| ApiError::invalid("unknown_status", "status", e))?;
    let before = query
        .after
        .as_deref()
        .map(|c| super::cursor::decode(c, "after"))
        .transpose()?;
    Ok(MessageQuery {
        customer_id: query.customer_id,
        recipient: query.address,
        channel,
        status,
        category: query.category,
        campaign: query.campaign,
        from,
        to,
        before,
        limit,
    })
}

fn view(m: &MessageSummary) -> Value {
    json!({
        "id": m.id,
        "status": m.status,
        "status_reason": m.status_reason,
        "channel": m.delivered_channel.unwrap_or(m.channel),
        "recipient": m.recipient,
        "customer_id": m.customer_id,
        "category": m.category,
        "campaign": m.campaign,
        "delivered_by": m.delivered_by,
        "created_at": timestamp(m.created_at),
        "updated_at": timestamp(m.updated_at),
    })
}
