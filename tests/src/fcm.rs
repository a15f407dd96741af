//! FCM HTTP v1 and Google's OAuth 2.0 token endpoint.
//!
//! The token endpoint verifies the RS256 JWT assertion with the public half
//! of the test service-account key (`config/simulator/fcm-service-account.json`)
//! and issues short access tokens; the send endpoint only accepts a token it
//! issued and has not expired.

use super::{Dialect, SimState, misbehave, record};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The test service account: the default config and the tests sign with it.
pub const SERVICE_ACCOUNT_JSON: &str =
    include_str!("../../config/simulator/fcm-service-account.json");
/// The project of the test service account; scripts are keyed by it.
pub const DEFAULT_FCM_PROJECT: &str = "crossgate-sim";
const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";

pub(crate) struct FcmState {
    client_email: String,
    key: DecodingKey,
    inner: Mutex<Tokens>,
}

struct Tokens {
    issued: HashMap<String, Instant>,
    lifetime: Duration,
    exchanges: usize,
    unregistered: HashSet<String>,
}

impl Default for FcmState {
    fn default() -> Self {
        let account: Value = serde_json::from_str(SERVICE_ACCOUNT_JSON).expect("test key is JSON");
        let private = rsa::RsaPrivateKey::from_pkcs8_pem(
            account["private_key"]
                .as_str()
                .expect("key has private_key"),
        )
        .expect("test key is PKCS#8");
        let public = private.to_public_key();
        FcmState {
            client_email: account["client_email"].as_str().unwrap_or("").to_owned(),
            key: DecodingKey::from_rsa_raw_components(
                &public.n().to_bytes_be(),
                &public.e().to_bytes_be(),
            ),
            inner: Mutex::new(Tokens {
                issued: HashMap::new(),
                lifetime: Duration::from_secs(3600),
                exchanges: 0,
                unregistered: HashSet::new(),
            }),
        }
    }
}

impl FcmState {
    pub fn exchanges(&self) -> usize {
        self.inner.lock().expect("fcm lock").exchanges
    }

    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.inner.lock().expect("fcm lock").lifetime = lifetime;
    }

    pub fn unregister(&self, device_token: &str) {
        let mut inner = self.inner.lock().expect("fcm lock");
        inner.unregistered.insert(device_token.to_owned());
    }
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    scope: String,
    iat: u64,
    exp: u64,
}

fn oauth_error(error: &str, description: &str) -> Response {
    let body = json!({"error": error, "error_description": description});
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

/// `POST /token`: the JWT-bearer grant (RFC 7523) as Google checks it.
pub(crate) async fn token(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    record(&state, "/token".to_owned(), &headers, &body, form.clone());
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if field("grant_type") != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return oauth_error("unsupported_grant_type", "Invalid grant_type");
    }
    let Some(assertion) = field("assertion") else {
        return oauth_error("invalid_request", "Missing required parameter: assertion");
    };
    let fcm = &state.fcm;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[format!("{}/token", state.origin)]);
    validation.set_issuer(&[&fcm.client_email]);
    validation.set_required_spec_claims(&["exp", "iat", "aud", "iss"]);
    let claims = match jsonwebtoken::decode::<Claims>(assertion, &fcm.key, &validation) {
        Ok(data) => data.claims,
        Err(e) => return oauth_error("invalid_grant", &format!("Invalid JWT: {e}")),
    };
    if claims.iss != fcm.client_email || claims.scope != SCOPE {
        return oauth_error(
            "invalid_scope",
            "Invalid OAuth scope or ID token audience provided.",
        );
    }
    if claims.exp.saturating_sub(claims.iat) > 3600 {
        return oauth_error(
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token (60 minutes)",
        );
    }
    let mut inner = fcm.inner.lock().expect("fcm lock");
    inner.exchanges += 1;
    let access_token = format!("ya29.sim-{:016x}", inner.exchanges);
    let lifetime = inner.lifetime;
    inner
        .issued
        .insert(access_token.clone(), Instant::now() + lifetime);
    axum::Json(json!({
        "access_token": access_token,
        "expires_in": lifetime.as_secs(),
        "token_type": "Bearer",
    }))
    .into_response()
}

/// FCM's error envelope: the RPC status plus FCM's own error code.
fn fcm_error(status: StatusCode, fcm_code: &str, message: &str) -> Response {
    let rpc = match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    };
    let body = json!({"error": {
        "code": status.as_u16(),
        "message": message,
        "status": rpc,
        "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": fcm_code}],
    }});
    (status, axum::Json(body)).into_response()
}

fn dialect_error(status: StatusCode, _code: u32, message: &str) -> Response {
    let fcm_code = match status.as_u16() {
        429 => "QUOTA_EXCEEDED",
        500 => "INTERNAL",
        503 => "UNAVAILABLE",
        _ => "INVALID_ARGUMENT",
    };
    fcm_error(status, fcm_code, message)
}

const FCM: Dialect = Dialect {
    error: dialect_error,
    outage: (500, "Internal error encountered."),
    rate_limited: (429, "Quota exceeded for quota metric 'Send requests'."),
};

/// `POST /v1/projects/{project}/messages:send`
pub(crate) async fn send(
    State(state): State<Arc<SimState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(
        &state,
        format!("/v1/projects/{project}/messages:send"),
        &headers,
        &body,
        Vec::new(),
    );
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let live = {
        let inner = state.fcm.inner.lock().expect("fcm lock");
        bearer
            .and_then(|t| inner.issued.get(t))
            .is_some_and(|expires| *expires > Instant::now())
    };
    if !live {
        let body = json!({"error": {"code": 401, "status": "UNAUTHENTICATED",
            "message": "Request had invalid authentication credentials. Expected OAuth 2 access token."}});
        return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    }
    let behaviour = {
        let mut accounts = state.accounts.lock().expect("sim lock");
        match accounts.get_mut(&project) {
            Some(account) => account
                .script
                .pop_front()
                .unwrap_or_else(|| account.default.clone()),
            None => {
                return fcm_error(
                    StatusCode::FORBIDDEN,
                    "SENDER_ID_MISMATCH",
                    &format!("Permission denied on project {project}"),
                );
            }
        }
    };
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return fcm_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "Invalid JSON payload received.",
        );
    };
    if let Err(problem) = check_message(&request["message"]) {
        return fcm_error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", &problem);
    }
    let device = request["message"]["token"].as_str().unwrap_or("");
    if state
        .fcm
        .inner
        .lock()
        .expect("fcm lock")
        .unregistered
        .contains(device)
    {
        return fcm_error(
            StatusCode::NOT_FOUND,
            "UNREGISTERED",
            "Requested entity was not found.",
        );
    }
    if let Some(response) = misbehave(behaviour, &FCM).await {
        return response;
    }
    let n = state
        .next_sid
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    axum::Json(json!({"name": format!("projects/{project}/messages/0:{n:016x}")})).into_response()
}

/// FCM's schema for the fields connectors use: a token target, a
/// notification of strings, and data whose values are all strings.
fn check_message(message: &Value) -> Result<(), String> {
    let Some(token) = message["token"].as_str() else {
        return Err("Invalid value at 'message.token': a registration token is required".into());
    };
    if token.is_empty() {
        return Err("The registration token is not a valid FCM registration token".into());
    }
    if let Some(notification) = message.get("notification") {
        let fields = notification
            .as_object()
            .ok_or("message.notification must be an object")?;
        for (name, value) in fields {
            if !["title", "body", "image"].contains(&name.as_str()) || !value.is_string() {
                return Err(format!(
                    "Invalid JSON payload received. Unknown name or non-string \"{name}\" at 'message.notification'"
                ));
            }
        }
    }
    if let Some(data) = message.get("data") {
        let fields = data.as_object().ok_or("message.data must be an object")?;
        if let Some((name, _)) = fields.iter().find(|(_, v)| !v.is_string()) {
            return Err(format!(
                "Invalid value at 'message.data[{name}]': data values must be strings"
            ));
        }
    }
    Ok(())
}
