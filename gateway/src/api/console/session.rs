//! Signing in and out. An API key of scope `read` (or `admin`, which may
//! change things) is exchanged for a session: a random cookie (HttpOnly,
//! SameSite=Strict, Secure behind TLS, expiring) whose hash the store
//! keeps, so a sign-out on any node ends it everywhere and a replayed
//! cookie is refused. A gateway without API keys (loopback only) signs
//! anyone in as admin, as its API lets anyone do anything.

use super::{html_response, layout};
use crate::api::AppState;
use crate::api::page::escape;
use crate::config::Scope;
use crate::store::sessions::ConsoleSession;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};
use std::sync::Arc;

const COOKIE: &str = "crossgate_console";
/// How long a session lasts.
const SESSION_MS: i64 = 8 * 3_600_000;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_hex() -> String {
    use rand::Rng as _;
    let bytes: [u8; 32] = rand::rng().random();
    hex(&bytes)
}

/// What the store keeps a cookie under.
fn session_id(cookie: &str) -> String {
    hex(&Sha256::digest(cookie.as_bytes()))
}

fn cookie_of(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// The signed-in operator, or the way to the sign-in page.
pub async fn operator(state: &AppState, headers: &HeaderMap) -> Result<ConsoleSession, Response> {
    let to_sign_in = || Redirect::to("/console/sign-in").into_response();
    let cookie = cookie_of(headers).ok_or_else(to_sign_in)?;
    match state
        .store
        .session(&session_id(cookie), state.clock.now())
        .await
    {
        Ok(Some(session)) => Ok(session),
        Ok(None) => Err(to_sign_in()),
        Err(e) => Err(crate::api::ApiError::from(e).into_response()),
    }
}

/// A post that changes something: an admin session's, from its own page
/// with its check; its session and fields, or the answer that refuses it.
pub async fn admin_form(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(ConsoleSession, Vec<(String, String)>), Response> {
    let session = operator(state, headers).await?;
    let body = crate::api::body::read_body(state, body)
        .await
        .map_err(IntoResponse::into_response)?;
    let fields = crate::api::page::form(&body);
    if !session.admin || !checked(&session, headers, &fields) {
        return Err(super::refused(&session));
    }
    Ok((session, fields))
}

/// A post that may change something: from this gateway's own page (the
/// browser says so) and carrying the session's check.
pub fn checked(session: &ConsoleSession, headers: &HeaderMap, fields: &[(String, String)]) -> bool {
    let csrf = fields
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str());
    !crate::api::page::from_another_site(headers)
        && csrf.is_some_and(|c| {
            crate::api::auth::constant_time_eq(c.as_bytes(), session.csrf.as_bytes())
        })
}

fn sign_in_form(status: StatusCode, problem: Option<&str>) -> Response {
    let problem = problem
        .map(|p| format!("<p role=alert>{}</p>", escape(p)))
        .unwrap_or_default();
    html_response(
        status,
        format!(
            "<!doctype html><html lang=en><meta charset=utf-8><title>Sign in · Crossgate</title>\
             <style>{}</style><main><h1>Crossgate console</h1>{problem}\
             <form method=post action=\"/console/sign-in\">\
             <label>API key (read or admin scope)<input type=password name=key autocomplete=off required autofocus></label>\
             <button type=submit>Sign in</button></form></main></html>",
            super::STYLE
        ),
    )
}

pub async fn sign_in_page() -> Response {
    sign_in_form(StatusCode::OK, None)
}

pub async fn sign_in(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if crate::api::page::from_another_site(&headers) {
        return sign_in_form(
            StatusCode::FORBIDDEN,
            Some("Sign in from this console's own page."),
        );
    }
    let body = match crate::api::body::read_body(&state, body).await {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    let presented = crate::api::page::form(&body)
        .into_iter()
        .find(|(k, _)| k == "key")
        .map(|(_, v)| v)
        .unwrap_or_default();
    let (key_name, admin) = if state.api_keys.is_empty() {
        ("default".to_owned(), true)
    } else {
        let Some(key) = crate::api::auth::key_for(&state, presented.trim()) else {
            return sign_in_form(
                StatusCode::UNAUTHORIZED,
                Some("That is not an API key of this gateway."),
            );
        };
        let admin = key.scopes.contains(&Scope::Admin);
        if !admin && !key.scopes.contains(&Scope::Read) {
            return sign_in_form(
                StatusCode::FORBIDDEN,
                Some("The console needs a key of scope read or admin."),
            );
        }
        (key.name.clone(), admin)
    };
    let now = state.clock.now();
    let cookie = random_hex();
    let session = ConsoleSession {
        id: session_id(&cookie),
        key_name,
        admin,
        csrf: random_hex(),
        created_at: now,
        expires_at: now + SESSION_MS,
    };
    if let Err(e) = state.store.start_session(session).await {
        return crate::api::ApiError::from(e).into_response();
    }
    let secure = if state.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let set = format!(
        "{COOKIE}={cookie}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        SESSION_MS / 1000
    );
    let mut response = Redirect::to("/console/messages").into_response();
    if let Ok(value) = HeaderValue::from_str(&set) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

pub async fn sign_out(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let session = match operator(&state, &headers).await {
        Ok(session) => session,
        Err(to_sign_in) => return to_sign_in,
    };
    let body = match crate::api::body::read_body(&state, body).await {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    if !checked(&session, &headers, &crate::api::page::form(&body)) {
        let mut refused = layout(
            &session,
            "Refused",
            "<p role=alert>This form can only be sent from its own page.</p>",
        );
        *refused.status_mut() = StatusCode::FORBIDDEN;
        return refused;
    }
    if let Err(e) = state
        .store
        .end_session(&session.id, state.clock.now())
        .await
    {
        return crate::api::ApiError::from(e).into_response();
    }
    let mut response = Redirect::to("/console/sign-in").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "crossgate_console=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    response
}
