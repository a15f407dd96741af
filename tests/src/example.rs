//! The example provider `crossgate plugin new` scaffolds against: the
//! smallest API with what every real one has (a bearer key, a JSON body
//! checked field by field, the provider's id in the answer, errors as a
//! code and a message), so a new connector delivers against the simulator
//! before its author has changed a line.
//!
//! `POST /example/v1/messages` with `Authorization: Bearer <key>` and
//! `{"to": "...", "text": "...", "from"?: "...", "subject"?: "..."}`:
//! `201 {"id": "ex_<n>", "status": "accepted"}`, or `{"code", "message"}`
//! with 400, 401, 429 or 503. The key is [`super::DEFAULT_EXAMPLE_KEY`]
//! unless the test adds another account.

use super::{Dialect, SimState, bearer_behaviour, misbehave, record};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    let code = match code {
        401 => "unauthorized",
        429 => "rate_limited",
        503 => "unavailable",
        _ => "invalid_request",
    };
    (
        status,
        axum::Json(json!({"code": code, "message": message})),
    )
        .into_response()
}

const EXAMPLE: Dialect = Dialect {
    error,
    outage: (503, "try again later"),
    rate_limited: (429, "too many requests"),
};

pub async fn send(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    record(
        &state,
        "/example/v1/messages".to_owned(),
        &headers,
        &body,
        Vec::new(),
    );
    let key = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_owned();
    let Some(behaviour) = bearer_behaviour(&state, &key, &headers) else {
        return error(StatusCode::UNAUTHORIZED, 401, "unknown API key");
    };
    let Ok(message) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, 400, "the body is not JSON");
    };
    for field in ["to", "text"] {
        if message[field].as_str().is_none_or(str::is_empty) {
            return error(
                StatusCode::BAD_REQUEST,
                400,
                &format!("{field} is required and must be a non-empty string"),
            );
        }
    }
    if let Some(response) = misbehave(behaviour, &EXAMPLE).await {
        return response;
    }
    let n = state.next_sid.fetch_add(1, Ordering::Relaxed);
    (
        StatusCode::CREATED,
        axum::Json(json!({"id": format!("ex_{n}"), "status": "accepted"})),
    )
        .into_response()
}
