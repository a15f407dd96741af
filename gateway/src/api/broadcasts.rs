//! `POST /v1/broadcasts`: one message to every member of a segment, each
//! planned as its own customer send; `GET /v1/broadcasts` lists them,
//! `GET /v1/broadcasts/{id}` shows one's progress, `.../refusals` the
//! members it sent nothing to, `.../cancel` stops it. What a broadcast is
//! and each member's send are [`crate::campaigns::broadcasts`]; the fan-out
//! itself is [`crate::campaigns::fanout`].

use super::body::{parse_json, read_body};
use super::messages::timestamp;
use super::{ApiError, AppState, Caller, segments};
pub use crate::campaigns::broadcasts::BroadcastRequest;
use crate::store::campaigns::BroadcastRecord;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Broadcasts or refusals listed per page unless `limit` says otherwise,
/// and at most.
const PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

#[utoipa::path(post, path = "/v1/broadcasts", tag = "campaigns",
    request_body = BroadcastRequest,
    responses((status = 202, description = "`{\"id\", \"status\"}`: stored; members are planned in the background", body = Object),
              (status = 404, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Option<Extension<Caller>>,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let bytes = read_body(&state, body).await?;
    let request: BroadcastRequest = parse_json(&bytes)?;
    let (id, status) = start(&state, request, caller_name(caller)).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "status": status})),
    ))
}

/// Check and store a broadcast `caller` asks for (the API's and the
/// console's); its id and status (`scheduled` or `planning`).
pub async fn start(
    state: &AppState,
    mut request: BroadcastRequest,
    caller: String,
) -> Result<(String, &'static str), ApiError> {
    if request.created_by.is_some() {
        return Err(ApiError::invalid(
            "invalid_broadcast",
            "created_by",
            "created_by is set by the gateway from the request's API key",
        ));
    }
    request.created_by = Some(caller);
    let now = state.clock.now();
    // The segment must exist now; its members are read as the fan-out goes.
    segments::require(state, &request.segment).await?;
    let start_at = request.check(&state.send, state.broadcast_rate, now)?;
    let id = format!("bc_{}", uuid::Uuid::now_v7().simple());
    let status = if start_at > now {
        "scheduled"
    } else {
        "planning"
    };
    state
        .store
        .insert_broadcast(BroadcastRecord {
            id: id.clone(),
            definition: serde_json::to_string(&request).map_err(ApiError::internal)?,
            status: "scheduled".into(),
            cursor: String::new(),
            planned: 0,
            start_at,
            created_at: now,
            updated_at: now,
        })
        .await?;
    Ok((id, status))
}

#[utoipa::path(get, path = "/v1/broadcasts/{id}", tag = "campaigns",
    params(("id" = String, Path)),
    responses((status = 200, description = "Status (`scheduled`, `planning`, `planned`, `cancelled`), members `planned`, their `messages` by status, the members `refused` (no message), and `reasons`: suppressed, failed and refused by code", body = Object),
              (status = 404, body = super::error::ErrorBody)))]
pub async fn get(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(view(&state, &id).await?))
}

#[utoipa::path(post, path = "/v1/broadcasts/{id}/cancel", tag = "campaigns",
    params(("id" = String, Path)),
    responses((status = 200, description = "No further member is planned, and members' messages not yet sent are cancelled; the broadcast as `GET` shows it", body = Object),
              (status = 404, body = super::error::ErrorBody)))]
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    caller: Option<Extension<Caller>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(cancel_as(&state, &id, &caller_name(caller)).await?))
}

/// Cancel for the key named `caller`: only the key that started a
/// broadcast may (the API's and the console's rule). The broadcast after.
pub async fn cancel_as(state: &AppState, id: &str, caller: &str) -> Result<Value, ApiError> {
    let broadcast = record(state, id).await?;
    let created_by = serde_json::from_str::<BroadcastRequest>(&broadcast.definition)
        .ok()
        .and_then(|r| r.created_by);
    if created_by.as_ref().is_some_and(|by| by != caller) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_yours",
            "only the API key that started a broadcast may cancel it",
        ));
    }
    state.store.cancel_broadcast(id, state.clock.now()).await?;
    view(state, id).await
}

fn caller_name(caller: Option<Extension<Caller>>) -> String {
    caller.map_or_else(|| "default".to_owned(), |Extension(c)| c.0)
}

/// The broadcast's stored record, or a `404` that says so.
async fn record(state: &AppState, id: &str) -> Result<BroadcastRecord, ApiError> {
    state
        .store
        .broadcast(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no broadcast {id:?}")))
}

/// A broadcast as listed: what it sends to whom, when, and how far it got.
pub fn summary(broadcast: &BroadcastRecord) -> Value {
    let request: Value = serde_json::from_str(&broadcast.definition).unwrap_or_default();
    json!({
        "id": broadcast.id,
        "status": broadcast.status,
        "segment": request["segment"],
        "category": request["category"],
        "send_at": timestamp(broadcast.start_at),
        "created_at": timestamp(broadcast.created_at),
        "updated_at": timestamp(broadcast.updated_at),
        "planned": broadcast.planned,
    })
}

/// [`summary`] with its members' messages by status and its refusals.
pub async fn view(state: &AppState, id: &str) -> Result<Value, ApiError> {
    let broadcast = record(state, id).await?;
    let counts = state
        .store
        .campaign_progress(&format!("broadcast:{id}"))
        .await?;
    let mut messages: BTreeMap<String, i64> = BTreeMap::new();
    let mut reasons: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    let mut refused = 0;
    for c in counts {
        // A refused member has no message: counted beside them, not among them.
        if c.status == "refused" {
            refused += c.count;
        } else {
            *messages.entry(c.status.clone()).or_default() += c.count;
        }
        if let Some(reason) = c.reason {
            *reasons
                .entry(c.status)
                .or_default()
                .entry(reason)
                .or_default() += c.count;
        }
    }
    let mut view = summary(&broadcast);
    view["messages"] = json!(messages);
    view["refused"] = json!(refused);
    view["reasons"] = json!(reasons);
    Ok(view)
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    /// The `next` of the previous page.
    before: Option<String>,
    limit: Option<String>,
}

#[utoipa::path(get, path = "/v1/broadcasts", tag = "campaigns",
    params(("status" = Option<String>, Query, description = "Only `scheduled`, `planning`, `planned` or `cancelled` ones"),
           ("before" = Option<String>, Query, description = "The `next` of the previous page"),
           ("limit" = Option<usize>, Query, description = "At most this many (default 100, at most 1000)")),
    responses((status = 200, description = "`{\"broadcasts\": [{\"id\", \"status\", \"segment\", \"category\", \"send_at\", \"created_at\", \"updated_at\", \"planned\"}], \"next\"}`, newest first; `GET /v1/broadcasts/{id}` has a broadcast's counts", body = Object),
              (status = 422, body = super::error::ErrorBody)))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    const STATUSES: [&str; 4] = ["scheduled", "planning", "planned", "cancelled"];
    if let Some(status) = &query.status
        && !STATUSES.contains(&status.as_str())
    {
        return Err(ApiError::invalid(
            "invalid_status",
            "status",
            format!("{status:?} is not one of {}", STATUSES.join(", ")),
        ));
    }
    let limit = page_limit(query.limit.as_deref())?;
    let page = state
        .store
        .list_broadcasts(query.status, query.before, limit)
        .await?;
    let next = next_page(&page, limit, |b| &b.id);
    let broadcasts: Vec<Value> = page.iter().map(summary).collect();
    Ok(Json(json!({"broadcasts": broadcasts, "next": next})))
}

/// `limit` as a page size: `PAGE` unless given, 1 to `MAX_PAGE`.
fn page_limit(limit: Option<&str>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(PAGE),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    "invalid_limit",
                    "limit",
                    format!("a whole number from 1 to {MAX_PAGE}"),
                )
            }),
    }
}

/// The cursor of the page after `page`: its last item's key, when full.
fn next_page<T>(page: &[T], limit: usize, key: impl Fn(&T) -> &String) -> Option<String> {
    match page.last() {
        Some(last) if page.len() == limit => Some(key(last).clone()),
        _ => None,
    }
}

#[derive(Debug, Deserialize)]
pub struct RefusalsQuery {
    /// The last customer id of the previous page.
    after: Option<String>,
    limit: Option<String>,
}

#[utoipa::path(get, path = "/v1/broadcasts/{id}/refusals", tag = "campaigns",
    params(("id" = String, Path),
           ("after" = Option<String>, Query, description = "The `next` of the previous page"),
           ("limit" = Option<usize>, Query, description = "At most this many (default 100, at most 1000)")),
    responses((status = 200, description = "`{\"refusals\": [{\"customer_id\", \"code\", \"message\", \"refused_at\"}], \"next\"}`: the members the broadcast could not send to and why, in customer-id order; `next` is null on the last page", body = Object),
              (status = 404, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub async fn refusals(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(query): Query<RefusalsQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = page_limit(query.limit.as_deref())?;
    record(&state, &id).await?;
    let page = state
        .store
        .refusals(
            &format!("broadcast:{id}"),
            query.after.as_deref().unwrap_or(""),
            limit,
        )
        .await?;
    let next = next_page(&page, limit, |r| &r.customer_id);
    let refusals: Vec<Value> = page
        .into_iter()
        .map(|r| {
            json!({
                "customer_id": r.customer_id,
                "code": r.code,
                "message": r.message,
                "refused_at": timestamp(r.refused_at),
            })
        })
        .collect();
    Ok(Json(json!({"refusals": refusals, "next": next})))
}
