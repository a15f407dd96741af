//! Request bodies: read within `server.max_body_bytes`, parsed as one JSON
//! object. Every handler that takes JSON goes through here.

use super::{ApiError, AppState};
use axum::body::{Body, to_bytes};
use axum::http::StatusCode;

/// A JSON request body as `T`, or `400 invalid_json` saying what is wrong.
///
/// The top level must be an object: serde would read a struct from a JSON
/// array by position, so `[]` could wipe a profile.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "the request body must be a JSON object",
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("invalid request body: {e}"),
        )
    })
}

pub async fn read_body(state: &AppState, body: Body) -> Result<axum::body::Bytes, ApiError> {
    read_at_most(body, state.max_body_bytes).await
}

/// A body of at most `limit` bytes, or `413`.
pub async fn read_at_most(body: Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    to_bytes(body, limit).await.map_err(|_| too_large(limit))
}

pub fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("request body exceeds {limit} bytes"),
    )
}

/// The most a request to `path` may carry: webhooks have their own limit.
pub fn limit_for(state: &AppState, path: &str) -> usize {
    if path.starts_with("/v1/webhooks/") {
        state.max_webhook_body_bytes
    } else {
        state.max_body_bytes
    }
}
