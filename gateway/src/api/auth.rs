//! Who is calling and what they may do: `Authorization: Bearer <key>`
//! against `server.api_keys`, each key with its scopes. The caller's name
//! travels with the request (idempotency keys are scoped by it).

use super::{ApiError, AppState};
use crate::config::Scope;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};

/// The name of the key a request came with (`default` for bare keys and
/// for a gateway without keys).
#[derive(Debug, Clone)]
pub struct Caller(pub String);

/// The scope a route needs: reading is `read`; sending (and previewing,
/// cancelling, reporting events, simulating a journey) is `send`; defining
/// segments and starting or cancelling broadcasts, which reach a whole
/// segment at once, is `campaigns`; changing profiles, consent,
/// suppressions or the gateway itself is `admin`.
fn needs(method: &Method, path: &str) -> Scope {
    if path.starts_with("/v1/admin/") {
        Scope::Admin
    } else if matches!(*method, Method::GET | Method::HEAD) {
        Scope::Read
    } else if path == "/v1/broadcasts"
        || path.starts_with("/v1/broadcasts/")
        || path.starts_with("/v1/segments/")
    {
        Scope::Campaigns
    } else if matches!(
        path,
        "/v1/messages" | "/v1/routes/preview" | "/v1/cancellations" | "/v1/events"
    ) || (path.starts_with("/v1/journeys/") && path.ends_with("/simulate"))
    {
        Scope::Send
    } else {
        Scope::Admin
    }
}

/// Who the request comes from, as [`Caller`] in its extensions, or why it
/// is refused (run before every platform API route: [`super::before`]).
pub fn authenticate(state: &AppState, request: &mut Request) -> Result<(), ApiError> {
    if state.api_keys.is_empty() {
        request
            .extensions_mut()
            .insert(Caller("default".to_owned()));
        return Ok(());
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            // The scheme is case-insensitive (RFC 9110 11.1).
            let (scheme, key) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
        })
        .unwrap_or("");
    let Some(key) = key_for(state, presented) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or invalid API key: send Authorization: Bearer <key>",
        ));
    };
    let needed = needs(request.method(), request.uri().path());
    if !key.scopes.contains(&needed) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!(
                "key {:?} lacks the {:?} scope this request needs",
                key.name,
                needed.as_str()
            ),
        ));
    }
    request.extensions_mut().insert(Caller(key.name.clone()));
    Ok(())
}

/// The configured key `presented` is, if any. Every key is compared, so
/// the time taken says nothing about which matched (the API's and the
/// console's sign-in).
pub(super) fn key_for<'s>(
    state: &'s AppState,
    presented: &str,
) -> Option<&'s crate::config::ApiKey> {
    state.api_keys.iter().fold(None, |found, key| {
        let matches = constant_time_eq(key.secret.as_bytes(), presented.as_bytes());
        if matches { Some(key) } else { found }
    })
}

/// Compare without an early exit, so response time does not reveal how much
/// of a key was right.
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
