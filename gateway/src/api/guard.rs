//! What every request must pass before a handler reads it: a body that
//! announces more than `server.max_body_bytes` is refused at once (no
//! `100 Continue`, no 30-second wait); the platform API takes JSON only, so a
//! web page cannot post a "simple" `text/plain` request across origins; and
//! without API keys only requests addressed to this gateway's own names are
//! served, so a DNS-rebinding page cannot reach a loopback gateway, and a
//! POST must show it came from a program, not a cross-site form.

use super::{ApiError, AppState};
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};

/// The custom header that, like a JSON content type, a cross-site form cannot send.
const REQUESTED_WITH: &str = "x-requested-with";

/// Why `request` is refused before any handler reads it, if it is.
pub fn check(state: &AppState, request: &mut Request) -> Result<(), ApiError> {
    let headers = request.headers();
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let path = request.uri().path();
    let limit = super::body::limit_for(state, path);
    if announced.is_some_and(|len| len > limit as u64) {
        return Err(super::body::too_large(limit));
    }
    let platform_api = path.starts_with("/v1/") && !path.starts_with("/v1/webhooks/");
    let has_body =
        announced.is_some_and(|len| len > 0) || headers.contains_key(header::TRANSFER_ENCODING);
    let writes = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH
    );
    let json = is_json(headers.get(header::CONTENT_TYPE));
    if platform_api && writes && has_body && !json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as Content-Type: application/json",
        ));
    }
    // A page on another site can POST without a body and without asking
    // first (a "simple" request); it cannot set a JSON content type or a
    // header of its own without the browser asking us, and we never agree.
    // With API keys the Authorization header already makes that so.
    if state.api_keys.is_empty()
        && platform_api
        && *request.method() == Method::POST
        && !json
        && !headers.contains_key(REQUESTED_WITH)
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "without API keys a POST needs Content-Type: application/json (a body may be empty) or an X-Requested-With header",
        ));
    }
    // Health probes come from load balancers by address; everything else
    // answers only to the gateway's own names when there are no keys.
    let probe = matches!(path, "/healthz" | "/readyz");
    if state.api_keys.is_empty() && !probe {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| request.uri().authority().map(|a| a.as_str()))
            .unwrap_or("");
        if !state.own_hosts.iter().any(|own| *own == host_name(host)) {
            return Err(ApiError::new(
                StatusCode::MISDIRECTED_REQUEST,
                "host_not_allowed",
                "without API keys this gateway answers only requests addressed to its own names (localhost, its listen address, server.public_url)",
            ));
        }
    }
    Ok(())
}

fn is_json(value: Option<&axum::http::HeaderValue>) -> bool {
    let Some(essence) = value
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
    else {
        return false;
    };
    let essence = essence.trim().to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// `Host` without its port, lower-cased; IPv6 keeps its brackets.
pub fn host_name(host: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host.clone(), |(h, _)| format!("{h}]"));
    }
    host.rsplit_once(':')
        .map_or(host.clone(), |(h, _)| h.to_owned())
}
