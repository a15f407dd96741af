//! `POST /v1/routes/preview`: the plan a send would get, nothing stored or sent.

use super::body::{parse_json, read_body};
use super::idempotency;
use super::{ApiError, AppState};
use crate::send::{SendRequest, compose};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{Value, json};
use std::sync::Arc;

#[utoipa::path(post, path = "/v1/routes/preview", tag = "messages",
    request_body = crate::send::SendRequest,
    responses((status = 200, description = "The plan, status, deliveries with the content each would send (SMS priced by segment), and what a template rendered; nothing stored", body = Object),
              (status = 422, body = super::error::ErrorBody)))]
pub async fn preview(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let bytes = read_body(&state, body).await?;
    let request: SendRequest = parse_json(&bytes)?;
    // Refused here exactly when a send would refuse it.
    idempotency::from_request(&headers, request.idempotency_key.as_deref())?;
    let composed = compose(&state.send, request, state.clock.now()).await?;
    let message = composed.message;
    let deliveries: Vec<Value> = message
        .deliveries
        .iter()
        .map(|d| {
            json!({
                "channel": d.channel,
                "connector": d.connector,
                "content": d.content.as_ref().unwrap_or(&message.content),
            })
        })
        .collect();
    let template: Option<Value> = message
        .template
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok());
    Ok(Json(json!({
        "status": message.initial_status().as_str(),
        "send_at": message.send_at.map(super::messages::timestamp),
        "plan": composed.plan,
        "template": template,
        "deliveries": deliveries,
    })))
}
