//! `POST /v1/messages` and `GET /v1/messages/{id}`.

use super::idempotency;
use super::{ApiError, AppState};
use crate::message::{Channel, Content};
use crate::store::{
    AttemptRecord, DedupKey, IdempotencyKey, Inserted, MessageRecord, NewDelivery, NewMessage,
    now_ms,
};
use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The longest text accepted; Twilio's own limit for one SMS body.
const MAX_TEXT_CHARS: usize = 1600;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    pub channel: String,
    pub to: Recipient,
    pub content: ContentRequest,
    /// Same as the `Idempotency-Key` header.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// At most one message per recipient and key within `messages.dedup_window_secs`.
    #[serde(default)]
    pub dedup_key: Option<String>,
    /// `POST /v1/cancellations` with this key cancels the message while it is pending.
    #[serde(default)]
    pub cancel_key: Option<String>,
    /// RFC 3339: hold the message until then.
    #[serde(default)]
    pub send_at: Option<String>,
    /// Seconds, or a duration like `"2h"`: not delivered by then means `expired`.
    #[serde(default)]
    pub ttl: Option<Ttl>,
    /// Where status changes are posted (default: `callbacks.default_url`).
    #[serde(default)]
    pub callback_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Ttl {
    Seconds(u64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    pub phone: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentRequest {
    pub text: String,
    pub subject: Option<String>,
    pub html: Option<String>,
}

#[derive(Serialize)]
pub struct Accepted {
    pub id: String,
    pub status: &'static str,
}

/// The longest a message may be scheduled ahead.
const MAX_SCHEDULE_AHEAD_MS: i64 = 366 * 24 * 3600 * 1000;

pub async fn send(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(&state, body).await?;
    let request: SendRequest = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("invalid request body: {e}"),
        )
    })?;
    let key = idempotency_key(&headers, request.idempotency_key.as_deref())?;
    let _claim = match &key {
        Some(key) => Some(state.in_flight.claim(key).ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_in_progress",
                "a request with this Idempotency-Key is still being processed; retry later",
            )
        })?),
        None => None,
    };
    let mut message = validate(&state, request)?;
    let status = if message.send_at.is_some_and(|at| at > message.created_at) {
        "scheduled"
    } else {
        "queued"
    };
    let accepted = Accepted {
        id: message.id.clone(),
        status,
    };
    if let Some(key) = key {
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(ApiError::internal)?;
        message.idempotency = Some(IdempotencyKey {
            key,
            request_hash: idempotency::request_hash(&value),
            response: serde_json::to_string(&accepted).map_err(ApiError::internal)?,
            expires_at: message
                .created_at
                .saturating_add(secs_to_ms(state.messages.idempotency_window_secs)),
        });
    }
    match state
        .store
        .insert_message(message)
        .await
        .map_err(ApiError::internal)?
    {
        Inserted::New => {
            state.wake.notify_one();
            Ok((StatusCode::ACCEPTED, Json(accepted)).into_response())
        }
        Inserted::Replayed { response } => Ok((
            StatusCode::ACCEPTED,
            [
                (header::CONTENT_TYPE, "application/json"),
                (HeaderName::from_static("idempotent-replayed"), "true"),
            ],
            response,
        )
            .into_response()),
        Inserted::KeyReused => Err(ApiError::invalid(
            "idempotency_key_reused",
            "idempotency_key",
            "this Idempotency-Key was used with a different request",
        )),
        Inserted::Duplicate { message_id, status } => Ok((
            StatusCode::OK,
            Json(serde_json::json!({
                "id": message_id,
                "status": status.as_str(),
                "duplicate": true,
            })),
        )
            .into_response()),
    }
}

pub async fn read_body(state: &AppState, body: Body) -> Result<axum::body::Bytes, ApiError> {
    to_bytes(body, state.max_body_bytes).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body exceeds {} bytes", state.max_body_bytes),
        )
    })
}

/// The `Idempotency-Key` header or the `idempotency_key` field; both must agree.
fn idempotency_key(headers: &HeaderMap, field: Option<&str>) -> Result<Option<String>, ApiError> {
    let header = match headers.get("idempotency-key") {
        Some(value) => Some(value.to_str().map_err(|_| {
            ApiError::invalid(
                "invalid_idempotency_key",
                "Idempotency-Key",
                "must be printable ASCII",
            )
        })?),
        None => None,
    };
    let key = match (header, field) {
        (Some(h), Some(f)) if h != f => {
            return Err(ApiError::invalid(
                "invalid_idempotency_key",
                "idempotency_key",
                "the Idempotency-Key header and the idempotency_key field differ",
            ));
        }
        (Some(k), _) | (None, Some(k)) => k,
        (None, None) => return Ok(None),
    };
    if !idempotency::valid_key(key) {
        return Err(ApiError::invalid(
            "invalid_idempotency_key",
            "idempotency_key",
            format!(
                "must be 1-{} printable ASCII characters",
                idempotency::MAX_KEY_LEN
            ),
        ));
    }
    Ok(Some(key.to_owned()))
}

fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// Everything a request must satisfy before it is stored.
fn validate(state: &AppState, request: SendRequest) -> Result<NewMessage, ApiError> {
    let channel: Channel = request
        .channel
        .parse()
        .map_err(|e: String| ApiError::invalid("unknown_channel", "channel", e))?;
    let connectors = state
        .routes
        .get(&channel)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            ApiError::invalid(
                "channel_unavailable",
                "channel",
                format!("no connector is configured for channel {channel}"),
            )
        })?;
    let address = match channel {
        Channel::Sms | Channel::Whatsapp => {
            let phone = request.to.phone.as_deref().ok_or_else(|| {
                ApiError::invalid(
                    "missing_phone",
                    "to.phone",
                    format!("{channel} needs to.phone"),
                )
            })?;
            e164(phone)?
        }
        other => {
            return Err(ApiError::invalid(
                "channel_unavailable",
                "channel",
                format!("sending to {other} by address is not supported yet"),
            ));
        }
    };
    let text = request.content.text;
    if text.trim().is_empty() {
        return Err(ApiError::invalid(
            "empty_text",
            "content.text",
            "content.text is empty",
        ));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(ApiError::invalid(
            "text_too_long",
            "content.text",
            format!("content.text exceeds {MAX_TEXT_CHARS} characters"),
        ));
    }
    for (field, value) in [
        ("dedup_key", &request.dedup_key),
        ("cancel_key", &request.cancel_key),
    ] {
        if value.as_deref().is_some_and(|k| !idempotency::valid_key(k)) {
            return Err(ApiError::invalid(
                "invalid_key",
                field,
                format!(
                    "{field} must be 1-{} printable ASCII characters",
                    idempotency::MAX_KEY_LEN
                ),
            ));
        }
    }
    let now = now_ms();
    let send_at = request
        .send_at
        .as_deref()
        .map(|text| {
            let at: jiff::Timestamp = text.parse().map_err(|e| {
                ApiError::invalid(
                    "invalid_send_at",
                    "send_at",
                    format!("{text:?} is not an RFC 3339 time: {e}"),
                )
            })?;
            let at = at.as_millisecond();
            if at > now.saturating_add(MAX_SCHEDULE_AHEAD_MS) {
                return Err(ApiError::invalid(
                    "invalid_send_at",
                    "send_at",
                    "send_at is more than 366 days ahead",
                ));
            }
            Ok(at)
        })
        .transpose()?;
    let expires_at = request
        .ttl
        .map(|ttl| {
            let ms = ttl_ms(&ttl)?;
            let at = now.saturating_add(ms);
            if send_at.is_some_and(|s| s >= at) {
                return Err(ApiError::invalid(
                    "invalid_ttl",
                    "ttl",
                    "ttl runs out before send_at",
                ));
            }
            Ok(at)
        })
        .transpose()?;
    let callback_url = match request
        .callback_url
        .or_else(|| state.default_callback_url.clone())
    {
        Some(url) => {
            if !state.callbacks_enabled {
                return Err(ApiError::invalid(
                    "callbacks_disabled",
                    "callback_url",
                    "status callbacks need [callbacks].secret in the gateway's configuration",
                ));
            }
            crate::config::callback_url(&url)
                .map_err(|e| ApiError::invalid("invalid_callback_url", "callback_url", e))?;
            Some(url)
        }
        None => None,
    };
    Ok(NewMessage {
        id: format!("msg_{}", uuid::Uuid::now_v7().simple()),
        channel,
        recipient: address.clone(),
        scope: format!("phone:{address}"),
        content: Content {
            subject: request.content.subject,
            text,
            html: request.content.html,
        },
        created_at: now,
        send_at,
        expires_at,
        cancel_key: request.cancel_key,
        dedup: request.dedup_key.map(|key| DedupKey {
            key,
            expires_at: now.saturating_add(secs_to_ms(state.messages.dedup_window_secs)),
        }),
        idempotency: None,
        callback_url,
        deliveries: connectors
            .iter()
            .map(|connector| NewDelivery {
                channel,
                connector: connector.clone(),
                address: address.clone(),
            })
            .collect(),
    })
}

fn ttl_ms(ttl: &Ttl) -> Result<i64, ApiError> {
    let invalid = |why: String| ApiError::invalid("invalid_ttl", "ttl", why);
    let ms = match ttl {
        Ttl::Seconds(secs) => secs_to_ms(*secs),
        Ttl::Text(text) => {
            let duration: jiff::SignedDuration = text.parse().map_err(|e| {
                invalid(format!(
                    "{text:?} is not a duration like \"90s\" or \"2h\": {e}"
                ))
            })?;
            i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
        }
    };
    if ms <= 0 {
        return Err(invalid("ttl must be positive".into()));
    }
    Ok(ms)
}

/// A phone number in strict E.164, or the API's `invalid_phone` error.
pub fn e164(raw: &str) -> Result<String, ApiError> {
    crate::message::e164(raw).map_err(|e| ApiError::invalid("invalid_phone", "to.phone", e))
}

#[derive(Serialize)]
pub struct MessageView {
    pub id: String,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    pub channel: Channel,
    pub to: String,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dedup_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_message_id: Option<String>,
    pub attempts: Vec<AttemptView>,
}

#[derive(Serialize)]
pub struct AttemptView {
    pub number: u32,
    pub connector: String,
    pub channel: Channel,
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<AttemptError>,
    pub started_at: String,
    pub finished_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<String>,
}

#[derive(Serialize)]
pub struct AttemptError {
    pub code: String,
    pub message: String,
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<MessageView>, ApiError> {
    let record = state
        .store
        .message(&id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no message with id {id:?}")))?;
    Ok(Json(view(record)))
}

fn view(m: MessageRecord) -> MessageView {
    MessageView {
        id: m.id,
        status: m.status.as_str(),
        status_reason: m.status_reason,
        channel: m.channel,
        to: m.recipient,
        created_at: timestamp(m.created_at),
        updated_at: timestamp(m.updated_at),
        send_at: m.send_at.map(timestamp),
        expires_at: m.expires_at.map(timestamp),
        cancel_key: m.cancel_key,
        dedup_key: m.dedup_key,
        delivered_by: m.delivered_by,
        provider_message_id: m.provider_message_id,
        attempts: m.attempts.into_iter().map(attempt_view).collect(),
    }
}

fn attempt_view(a: AttemptRecord) -> AttemptView {
    AttemptView {
        number: a.number,
        connector: a.connector,
        channel: a.channel,
        outcome: a.outcome.as_str(),
        provider_message_id: a.provider_message_id,
        error: a.error_code.map(|code| AttemptError {
            code,
            message: a.error_message.unwrap_or_default(),
        }),
        started_at: timestamp(a.started_at),
        finished_at: timestamp(a.finished_at),
        retry_at: a.retry_at.map(timestamp),
    }
}

/// RFC 3339 with milliseconds, UTC.
fn timestamp(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| format!("{t:.3}"))
        .unwrap_or_else(|_| ms.to_string())
}
