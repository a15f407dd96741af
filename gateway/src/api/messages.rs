//! `POST /v1/messages` and `GET /v1/messages/{id}`.

use super::{ApiError, AppState};
use crate::message::{Channel, Content};
use crate::store::{AttemptRecord, MessageRecord, NewDelivery, NewMessage, now_ms};
use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, State};
use axum::http::StatusCode;
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

pub async fn send(
    State(state): State<Arc<AppState>>,
    body: Body,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let bytes = to_bytes(body, state.max_body_bytes).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body exceeds {} bytes", state.max_body_bytes),
        )
    })?;
    let request: SendRequest = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("invalid request body: {e}"),
        )
    })?;
    let message = validate(&state, request)?;
    let id = message.id.clone();
    state
        .store
        .insert_message(message)
        .await
        .map_err(ApiError::internal)?;
    state.wake.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            id,
            status: "queued",
        }),
    ))
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
    Ok(NewMessage {
        id: format!("msg_{}", uuid::Uuid::now_v7().simple()),
        channel,
        recipient: address.clone(),
        content: Content {
            subject: request.content.subject,
            text,
            html: request.content.html,
        },
        created_at: now_ms(),
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

/// A phone number in strict E.164 (`+` and country code), normalised.
pub fn e164(raw: &str) -> Result<String, ApiError> {
    let invalid = |why: &str| {
        ApiError::invalid(
            "invalid_phone",
            "to.phone",
            format!("{raw:?} is not a valid E.164 phone number: {why}"),
        )
    };
    if !raw.starts_with('+') {
        return Err(invalid("it must start with + and the country code"));
    }
    let number = phonenumber::parse(None, raw).map_err(|e| invalid(&e.to_string()))?;
    if !phonenumber::is_valid(&number) {
        return Err(invalid("no such number in its country's numbering plan"));
    }
    Ok(number.format().mode(phonenumber::Mode::E164).to_string())
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
