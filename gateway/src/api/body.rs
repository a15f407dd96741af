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
    to_bytes(body, state.max_body_bytes).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body exceeds {} bytes", state.max_body_bytes),
        )
    })
}
