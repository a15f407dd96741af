//! `POST /v1/messages` and `GET /v1/messages/{id}`.

use super::body::{parse_json, read_body};
use super::idempotency;
use super::{ApiError, AppState, Caller};
use crate::customer::double_opt_in::{self, ConsentRequest};
use crate::message::Channel;
use crate::routing::Plan;
use crate::send::{Composed, SendRequest, compose, secs_to_ms};
use crate::store::{AttemptRecord, IdempotencyKey, Inserted, MessageRecord};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;
use std::sync::Arc;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Accepted {
    pub id: String,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The route plan: every channel considered and why (see docs/api.md).
    #[schema(value_type = Option<Object>)]
    pub plan: Option<Plan>,
}

#[utoipa::path(post, path = "/v1/messages", tag = "messages",
    request_body = SendRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "The same key and request return the first answer")),
    responses((status = 202, description = "Stored durably, with its plan", body = Accepted),
              (status = 200, description = "A duplicate of a live message (dedup_key)", body = Object),
              (status = 400, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody),
              (status = 422, body = super::error::ErrorBody), (status = 429, body = super::error::ErrorBody)))]
pub async fn send(
    State(state): State<Arc<AppState>>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if state.backlog.is_full() {
        return Ok(backlog_full(&state));
    }
    let bytes = read_body(&state, body).await?;
    let mut request: SendRequest = parse_json(&bytes)?;
    let asks = request.consent_request.take();
    // One platform's retry token is not another's: keys are scoped by caller.
    let caller = caller.map_or_else(|| "default".to_owned(), |Extension(c)| c.0);
    let key = idempotency::from_request(&headers, request.idempotency_key.as_deref())?
        .map(|key| idempotency::scoped(&caller, &key));
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
    let Composed { mut message, plan } = compose(&state.send, request, state.clock.now()).await?;
    let consent_request = asks
        .map(|asks| consent_request(&state, asks, &message))
        .transpose()?;
    // A caller cancels only what it sent, and never a journey's or a
    // broadcast's messages (whose keys are the gateway's own).
    message.cancel_key = message.cancel_key.map(|k| idempotency::scoped(&caller, &k));
    let accepted = Accepted {
        id: message.id.clone(),
        status: message.initial_status().as_str(),
        status_reason: message.suppressed.clone(),
        plan: Some(plan),
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
                .saturating_add(secs_to_ms(state.send.messages.idempotency_window_secs)),
        });
    }
    let counted = (
        message.channel,
        message.category.clone().unwrap_or_default(),
        accepted.status,
    );
    // Before the message, so its YES can never come before the request.
    if let Some(request) = consent_request {
        state
            .store
            .request_consent(request)
            .await
            .map_err(ApiError::from)?;
    }
    match state
        .store
        .insert_message(message)
        .await
        .map_err(ApiError::from)?
    {
        Inserted::New => {
            let (channel, category, status) = counted;
            state.metrics.accepted(channel.as_str(), &category, status);
            tracing::debug!(message_id = %accepted.id, caller, status, "accepted");
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

/// `429`: nothing was stored; the same request later will be accepted.
fn backlog_full(state: &AppState) -> Response {
    let error = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "backlog_full",
        format!(
            "{} deliveries are waiting (server.max_backlog = {}); retry later",
            state.backlog.waiting(),
            state.backlog.limit()
        ),
    );
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    response
}

#[derive(Serialize, utoipa::ToSchema)]
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
    pub delivered_channel: Option<Channel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub plan: Option<serde_json::Value>,
    /// A template send: its name, the locale asked for, and what each
    /// chosen channel rendered (in which locale; SMS with its encoding and segments).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub template: Option<serde_json::Value>,
    pub attempts: Vec<AttemptView>,
    /// What the provider reported after accepting the message.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<serde_json::Value>,
}

#[derive(Serialize, utoipa::ToSchema)]
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
    /// The gateway node that made the attempt (`server.node_name`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Why this attempt went after one that was sent: the connector before
    /// it expected a delivery report that did not come in time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AttemptError {
    pub code: String,
    pub message: String,
}

#[utoipa::path(get, path = "/v1/messages/{id}", tag = "messages",
    params(("id" = String, Path, description = "The message id from the 202")),
    responses((status = 200, body = MessageView), (status = 404, body = super::error::ErrorBody)))]
pub async fn get(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<MessageView>, ApiError> {
    let record = state
        .store
        .message(&id)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::not_found(format!("no message with id {id:?}")))?;
    Ok(Json(view(record)))
}

/// A send's `consent_request`, checked: it asks a customer, in a category
/// the gateway has, on a channel the customer can answer.
fn consent_request(
    state: &AppState,
    asks: crate::send::ConsentRequestBody,
    message: &crate::store::NewMessage,
) -> Result<ConsentRequest, ApiError> {
    let invalid =
        |message: &str| ApiError::invalid("invalid_consent_request", "consent_request", message);
    let customer_id = message
        .customer_id
        .clone()
        .ok_or_else(|| invalid("a consent request asks a customer: send with customer_id"))?;
    if !state
        .live
        .current()
        .policy
        .categories
        .contains_key(&asks.category)
    {
        return Err(invalid(&format!(
            "no category {:?} is configured",
            asks.category
        )));
    }
    let answerable = message
        .deliveries
        .iter()
        .any(|d| matches!(d.channel, Channel::Sms | Channel::Whatsapp));
    if !answerable {
        return Err(invalid(
            "the plan has no channel a customer can answer YES on (sms, whatsapp)",
        ));
    }
    let window = match &asks.window {
        Some(text) => crate::routing::policy::parse_duration(text)
            .map_err(|e| invalid(&format!("window: {e}")))?,
        None => double_opt_in::DEFAULT_WINDOW_MS,
    };
    if !(1..=double_opt_in::MAX_WINDOW_MS).contains(&window) {
        return Err(invalid("window is at most 7d"));
    }
    let starts = message.send_at.unwrap_or(message.created_at);
    Ok(ConsentRequest {
        message_id: message.id.clone(),
        customer_id,
        category: asks.category,
        created_at: message.created_at,
        open_until: starts.saturating_add(window),
    })
}

fn view(m: MessageRecord) -> MessageView {
    let plan: Option<serde_json::Value> = m.plan.and_then(|p| serde_json::from_str(&p).ok());
    let mut attempts: Vec<AttemptView> = m.attempts.into_iter().map(attempt_view).collect();
    explain_failovers(plan.as_ref(), &mut attempts);
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
        cancel_key: m.cancel_key.map(|k| idempotency::unscoped(&k).to_owned()),
        dedup_key: m.dedup_key,
        delivered_by: m.delivered_by,
        delivered_channel: m.delivered_channel,
        provider_message_id: m.provider_message_id,
        customer_id: m.customer_id,
        category: m.category,
        plan,
        template: m.template.and_then(|t| serde_json::from_str(&t).ok()),
        attempts,
        events: m
            .events
            .into_iter()
            .map(|e| {
                serde_json::json!({
                    "at": timestamp(e.at),
                    "state": e.state,
                    "code": e.code,
                    "description": e.description,
                })
            })
            .collect(),
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
        node: a.node,
        why: None,
    }
}

/// Failover on silence, read back from the plan and the history: after an
/// attempt that sent the message through a connector the plan expected a
/// report from (`failover_on_silence`), a later attempt elsewhere is the
/// failover. Only the plan's silence connectors qualify: an escalation
/// (read-based) keeps its own rule there, so nothing else moves on after
/// a send.
fn explain_failovers(plan: Option<&serde_json::Value>, attempts: &mut [AttemptView]) {
    let Some(channels) = plan.and_then(|p| p["channels"].as_array()) else {
        return;
    };
    let silence: std::collections::HashMap<&str, &str> = channels
        .iter()
        .filter_map(|c| c["failover_on_silence"].as_object())
        .flat_map(|by| by.iter())
        .filter_map(|(connector, after)| Some((connector.as_str(), after.as_str()?)))
        .collect();
    if silence.is_empty() {
        return;
    }
    for i in 1..attempts.len() {
        let (before, after) = attempts.split_at_mut(i);
        let (last, this) = (&before[i - 1], &mut after[0]);
        if last.outcome == "sent"
            && last.connector != this.connector
            && let Some(within) = silence.get(last.connector.as_str())
        {
            this.why = Some(format!(
                "no delivery report from {} within {within}",
                last.connector
            ));
        }
    }
}

/// RFC 3339 with milliseconds, UTC.
pub fn timestamp(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| format!("{t:.3}"))
        .unwrap_or_else(|_| ms.to_string())
}
