//! Who may call the feed API from a browser: `[inbox] allowed_origins`
//! and the gateway's own pages.

use crate::api::{ApiError, AppState};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Cross-origin calls from browsers: a page of `[inbox] allowed_origins`
/// (or the gateway's own) is let through and told so; any other origin is
/// refused before the handler runs, preflight or not. Requests without an
/// `Origin` (apps, servers) pass.
pub async fn cors(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let Some(origin) = request.headers().get(header::ORIGIN).cloned() else {
        return next.run(request).await;
    };
    if !origin_allowed(&state, request.headers(), &origin) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "this page's origin is not in [inbox] allowed_origins",
        )
        .into_response();
    }
    let preflight = request.method() == Method::OPTIONS;
    let mut response = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    if preflight {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    response
}

/// An allowed origin, or the gateway's own (its page calling itself).
fn origin_allowed(state: &AppState, headers: &HeaderMap, origin: &HeaderValue) -> bool {
    let Some(origin) = origin
        .to_str()
        .ok()
        .and_then(|o| crate::origin::Origin::try_from(o.to_owned()).ok())
    else {
        return false;
    };
    if state.feed_origins.contains(&origin) {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    host.is_some_and(|host| {
        format!("{}://{host}", origin.scheme)
            .parse::<axum::http::Uri>()
            .ok()
            .and_then(|uri| crate::origin::Origin::of(&uri).ok())
            .is_some_and(|own| own == origin)
    })
}
