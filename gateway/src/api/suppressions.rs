//! `GET/PUT/DELETE /v1/suppressions/{channel}/{address}`: the suppression
//! list, for support staff ("why does this number get nothing?").

use super::body::{parse_json, read_body};
use super::messages::timestamp;
use super::{ApiError, AppState};
use crate::customer::{Suppression, SuppressionReason, address_key};
use crate::message::Channel;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// The most a staff note may say.
const MAX_NOTE_CHARS: usize = 1024;

/// `PUT` body, all optional: `{"reason": "manual", "note": "asked by phone"}`.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutSuppression {
    #[serde(default)]
    reason: Option<SuppressionReason>,
    #[serde(default)]
    note: Option<String>,
}

fn target(channel: &str, address: &str) -> Result<(Channel, String), ApiError> {
    let channel: Channel = channel
        .parse()
        .map_err(|e: String| ApiError::invalid("unknown_channel", "channel", e))?;
    let key = address_key(channel, address)
        .map_err(|e| ApiError::invalid("invalid_address", "address", e))?;
    Ok((channel, key))
}

fn view(s: &Suppression) -> Value {
    json!({
        "channel": s.channel,
        "address": s.address,
        "reason": s.reason,
        "source": s.source,
        "note": s.note,
        "created_at": timestamp(s.created_at),
    })
}

#[utoipa::path(get, path = "/v1/suppressions/{channel}/{address}", tag = "suppressions",
    params(("channel" = Channel, Path), ("address" = String, Path)),
    responses((status = 200, description = "The entry: channel, address, reason, source, note, created_at", body = Object),
              (status = 404, body = super::error::ErrorBody)))]
pub async fn get(
    State(state): State<Arc<AppState>>,
    Path((channel, address)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (channel, key) = target(&channel, &address)?;
    let found = state
        .store
        .suppressions(vec![(channel, key.clone())])
        .await
        .map_err(ApiError::from)?;
    let entry = found
        .first()
        .ok_or_else(|| ApiError::not_found(format!("{key} is not suppressed on {channel}")))?;
    Ok(Json(view(entry)))
}

#[utoipa::path(put, path = "/v1/suppressions/{channel}/{address}", tag = "suppressions",
    params(("channel" = Channel, Path), ("address" = String, Path)),
    request_body(content = PutSuppression, description = "Optional"),
    responses((status = 201, description = "Created", body = Object), (status = 200, description = "Replaced", body = Object)))]
pub async fn put(
    State(state): State<Arc<AppState>>,
    Path((channel, address)): Path<(String, String)>,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (channel, key) = target(&channel, &address)?;
    let bytes = read_body(&state, body).await?;
    let request: PutSuppression = if bytes.iter().all(u8::is_ascii_whitespace) {
        PutSuppression::default()
    } else {
        parse_json(&bytes)?
    };
    if request
        .note
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS || n.chars().any(char::is_control))
    {
        return Err(ApiError::invalid(
            "invalid_note",
            "note",
            format!("a note is at most {MAX_NOTE_CHARS} characters, without control characters"),
        ));
    }
    let entry = Suppression {
        channel,
        address: key,
        reason: request.reason.unwrap_or(SuppressionReason::Manual),
        source: "api".to_owned(),
        note: request.note,
        created_at: state.clock.now(),
    };
    let created = state
        .store
        .put_suppression(entry.clone())
        .await
        .map_err(ApiError::from)?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view(&entry))))
}

#[utoipa::path(delete, path = "/v1/suppressions/{channel}/{address}", tag = "suppressions",
    params(("channel" = Channel, Path), ("address" = String, Path)),
    responses((status = 204, description = "Lifted"), (status = 404, body = super::error::ErrorBody)))]
pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path((channel, address)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (channel, key) = target(&channel, &address)?;
    if state
        .store
        .delete_suppression(channel, &key, None)
        .await
        .map_err(ApiError::from)?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "{key} is not suppressed on {channel}"
        )))
    }
}
