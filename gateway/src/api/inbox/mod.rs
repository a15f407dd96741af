//! The customer's own feed over HTTP, for their device: `/v1/inbox/*`.
//! Authenticated by a feed token (never an API key), so each request reads
//! and marks one customer's feed; called from web pages only of
//! `[inbox] allowed_origins` (CORS), or from apps that are not browsers.

use super::messages::timestamp;
use super::{ApiError, AppState};
use crate::feed::tokens::TokenRefused;
use crate::feed::{Marking, mark, mark_all_read};
use crate::store::feed::{FeedFilter, FeedItem, FeedQuery, Mark};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Items per page when the request names no limit, and the most it may.
const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;

/// The customer a request's feed token names.
mod cors;
pub(super) mod stream;

pub use cors::cors;
pub use stream::stream;

fn customer(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<String, ApiError> {
    let tokens = state
        .feed_tokens
        .as_ref()
        .ok_or_else(|| ApiError::not_found("the feed is off: [inbox] secret is not set"))?;
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let token = bearer.or(query).ok_or(TokenRefused::Missing);
    token
        .and_then(|t| tokens.verify(t.trim(), state.clock.now()))
        .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", e.to_string()))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenQuery {
    token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    token: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
    status: Option<String>,
}

/// An item as the device gets it.
pub(super) fn view(item: &FeedItem) -> Value {
    let status = if item.archived_at.is_some() {
        "archived"
    } else if item.read_at.is_some() {
        "read"
    } else if item.seen_at.is_some() {
        "seen"
    } else {
        "unseen"
    };
    let at = |ms: Option<i64>| ms.map(timestamp);
    json!({
        "id": item.id,
        "channel": item.channel,
        "status": status,
        "title": item.title,
        "body": item.body,
        "action_url": item.action_url,
        "image_url": item.image_url,
        "category": item.category,
        "data": item.data,
        "created_at": timestamp(item.created_at),
        "expires_at": at(item.expires_at),
        "seen_at": at(item.seen_at),
        "read_at": at(item.read_at),
        "archived_at": at(item.archived_at),
    })
}

#[utoipa::path(get, path = "/v1/inbox/items", tag = "inbox", security(("feed_token" = [])),
    params(("cursor" = Option<String>, Query, description = "next_cursor of the page before"),
           ("limit" = Option<usize>, Query, description = "1-100, default 20"),
           ("status" = Option<String>, Query, description = "active (default), unseen, unread, archived, all"),
           ("token" = Option<String>, Query, description = "The feed token, when not in Authorization")),
    responses((status = 200, description = "The customer's items, newest first, and the next page's cursor", body = Object),
              (status = 401, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub async fn items(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let customer_id = customer(&state, &headers, query.token.as_deref())?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(
            "invalid_limit",
            "limit",
            format!("limit is 1-{MAX_LIMIT}"),
        ));
    }
    let filter: FeedFilter = match &query.status {
        Some(status) => status
            .parse()
            .map_err(|e: String| ApiError::invalid("invalid_status", "status", e))?,
        None => FeedFilter::default(),
    };
    let before = query
        .cursor
        .as_deref()
        .map(|c| super::cursor::decode(c, "cursor"))
        .transpose()?;
    let now = state.clock.now();
    // Opening the feed keeps the customer reachable on it.
    state.store.feed_opened(&customer_id, now).await?;
    let items = state
        .store
        .feed_items(FeedQuery {
            customer_id,
            filter,
            before,
            limit,
            now,
        })
        .await?;
    let next_cursor = super::cursor::next(&items, limit, |item| (item.created_at, &item.id));
    Ok(Json(json!({
        "items": items.iter().map(view).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
    })))
}

#[utoipa::path(get, path = "/v1/inbox/counts", tag = "inbox", security(("feed_token" = [])),
    responses((status = 200, description = "`{\"unseen\": n, \"unread\": n}` over items not archived", body = Object),
              (status = 401, body = super::error::ErrorBody)))]
pub async fn counts(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Result<Json<Value>, ApiError> {
    let customer_id = customer(&state, &headers, query.token.as_deref())?;
    let counts = state
        .store
        .feed_counts(&customer_id, state.clock.now())
        .await?;
    Ok(Json(json!(counts)))
}

#[utoipa::path(post, path = "/v1/inbox/items/{id}/{action}", tag = "inbox", security(("feed_token" = [])),
    params(("id" = String, Path, description = "The item's id (its message's)"),
           ("action" = String, Path, description = "seen, read or archive")),
    responses((status = 200, description = "The item as it is now", body = Object),
              (status = 401, body = super::error::ErrorBody),
              (status = 404, description = "The customer has no such item", body = super::error::ErrorBody)))]
pub async fn act(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Query(query): Query<TokenQuery>,
) -> Result<Json<Value>, ApiError> {
    let customer_id = customer(&state, &headers, query.token.as_deref())?;
    let action: Mark = action.parse().map_err(ApiError::not_found)?;
    let marking = Marking {
        store: &*state.store,
        metrics: &state.metrics,
        now: state.clock.now(),
    };
    let item = mark(&marking, &customer_id, &id, action)
        .await?
        .ok_or_else(|| ApiError::not_found("no such item in this feed"))?;
    Ok(Json(view(&item)))
}

#[utoipa::path(post, path = "/v1/inbox/read-all", tag = "inbox", security(("feed_token" = [])),
    responses((status = 200, description = "`{\"read\": n}`: items newly read", body = Object),
              (status = 401, body = super::error::ErrorBody)))]
pub async fn read_all(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Result<Json<Value>, ApiError> {
    let customer_id = customer(&state, &headers, query.token.as_deref())?;
    let marking = Marking {
        store: &*state.store,
        metrics: &state.metrics,
        now: state.clock.now(),
    };
    let read = mark_all_read(&marking, &customer_id).await?;
    Ok(Json(json!({ "read": read })))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub customer_id: String,
    /// `"1h"`; at most `[inbox] max_token_age` (its value when omitted).
    #[serde(default)]
    pub valid_for: Option<String>,
}

#[utoipa::path(post, path = "/v1/inbox/tokens", tag = "inbox",
    request_body = TokenRequest,
    responses((status = 201, description = "`{\"token\", \"expires_at\"}` for the customer's device", body = Object),
              (status = 404, description = "The feed is off", body = super::error::ErrorBody),
              (status = 422, body = super::error::ErrorBody)))]
pub async fn token(
    State(state): State<Arc<AppState>>,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tokens = state
        .feed_tokens
        .as_ref()
        .ok_or_else(|| ApiError::not_found("the feed is off: [inbox] secret is not set"))?;
    let request: TokenRequest =
        super::body::parse_json(&super::body::read_body(&state, body).await?)?;
    super::customers::check_id(&request.customer_id)?;
    let valid_for = match &request.valid_for {
        Some(text) => crate::routing::policy::parse_duration(text)
            .map_err(|e| ApiError::invalid("invalid_duration", "valid_for", e))?,
        None => tokens.max_age(),
    };
    if valid_for > tokens.max_age() {
        return Err(ApiError::invalid(
            "invalid_duration",
            "valid_for",
            "longer than [inbox] max_token_age",
        ));
    }
    let expires_at = state.clock.now().saturating_add(valid_for);
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "token": tokens.issue(&request.customer_id, expires_at),
            "expires_at": timestamp(expires_at),
        })),
    ))
}

/// The web component, built into the binary: what a page embeds is what
/// this gateway speaks.
const SCRIPT: &str = include_str!("../../../sdk/inbox.js");

#[utoipa::path(get, path = "/sdk/inbox.js", tag = "inbox", security(()),
    responses((status = 200, description = "The `<crossgate-inbox>` web component", content_type = "text/javascript", body = String)))]
pub async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
            // A script any page may load, also as a module.
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        SCRIPT,
    )
        .into_response()
}
