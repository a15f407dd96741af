//! A Web Push service and the browsers subscribed to it.
//!
//! A test subscribes (as a browser would) and gets the subscription JSON; the
//! simulator keeps the subscription's private key, so each push is checked the
//! way a push service checks it (TTL, VAPID signature and audience) and then
//! decrypted the way the browser decrypts it (RFC 8291).

use super::{Behaviour, Dialect, SimState, misbehave, record};
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// The VAPID key pair the default config signs with (private half, base64url).
/// A test key, never used anywhere real.
pub const DEFAULT_VAPID_PRIVATE_KEY: &str = "RDamDvx-lheiBGGwe-6sAwLoVDpJRxlzHEwkgwfUs6o";

/// The public key (base64url, uncompressed) of a base64url VAPID private key:
/// what a web page passes to `pushManager.subscribe()` as applicationServerKey.
pub fn vapid_public_key(private_key: &str) -> String {
    let bytes = URL_SAFE_NO_PAD
        .decode(private_key.trim_end_matches('='))
        .expect("base64url VAPID key");
    let secret = SecretKey::from_slice(&bytes).expect("a P-256 private key");
    URL_SAFE_NO_PAD.encode(secret.public_key().to_encoded_point(false).as_bytes())
}

/// A push as the browser received it.
#[derive(Debug, Clone)]
pub struct WebPushReceived {
    pub subscription_id: String,
    /// The decrypted payload.
    pub payload: Vec<u8>,
    pub ttl: u64,
    pub urgency: Option<String>,
}

struct Subscriber {
    secret: SecretKey,
    auth: [u8; 16],
    /// The VAPID public key the page subscribed with, when it gave one.
    application_server_key: Option<Vec<u8>>,
    active: bool,
}

#[derive(Default)]
pub(crate) struct WebPushState {
    subscribers: Mutex<HashMap<String, Subscriber>>,
    received: Mutex<Vec<WebPushReceived>>,
}

impl WebPushState {
    /// A new browser subscription: `PushSubscription.toJSON()` of it.
    pub fn subscribe(&self, origin: &str, application_server_key: Option<&str>) -> Value {
        let secret = SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let mut auth = [0u8; 16];
        getrandom::getrandom(&mut auth).expect("randomness");
        let mut subscribers = self.subscribers.lock().expect("push lock");
        let id = format!("sub{:06}", subscribers.len() + 1);
        let public = secret.public_key().to_encoded_point(false);
        let subscription = json!({
            "endpoint": format!("{origin}/webpush/push/{id}"),
            "expirationTime": null,
            "keys": {
                "p256dh": URL_SAFE_NO_PAD.encode(public.as_bytes()),
                "auth": URL_SAFE_NO_PAD.encode(auth),
            },
        });
        subscribers.insert(
            id,
            Subscriber {
                secret,
                auth,
                application_server_key: application_server_key
                    .and_then(|k| URL_SAFE_NO_PAD.decode(k.trim_end_matches('=')).ok()),
                active: true,
            },
        );
        subscription
    }

    /// The browser unsubscribed: pushes to it get `410 Gone`.
    pub fn unsubscribe(&self, subscription_id: &str) {
        if let Some(s) = self
            .subscribers
            .lock()
            .expect("push lock")
            .get_mut(subscription_id)
        {
            s.active = false;
        }
    }

    pub fn received(&self) -> Vec<WebPushReceived> {
        self.received.lock().expect("push lock").clone()
    }
}

#[derive(Deserialize)]
pub(crate) struct SubscribeRequest {
    application_server_key: Option<String>,
}

/// `POST /webpush/subscribe`: what `pushManager.subscribe()` does in a browser.
pub(crate) async fn subscribe(
    State(state): State<Arc<SimState>>,
    axum::Json(request): axum::Json<SubscribeRequest>,
) -> Response {
    let subscription = state
        .web_push
        .subscribe(&state.origin, request.application_server_key.as_deref());
    (StatusCode::CREATED, axum::Json(subscription)).into_response()
}

fn push_error(status: StatusCode, _code: u32, message: &str) -> Response {
    (status, message.to_owned()).into_response()
}

const PUSH_SERVICE: Dialect = Dialect {
    error: push_error,
    outage: (500, "push service unavailable"),
    rate_limited: (429, "too many requests"),
};

#[derive(Deserialize)]
struct VapidClaims {
    aud: String,
    exp: u64,
    sub: String,
}

/// `POST /webpush/push/{id}`: RFC 8030 delivery.
pub(crate) async fn push(
    State(state): State<Arc<SimState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(
        &state,
        format!("/webpush/push/{id}"),
        &headers,
        &body,
        Vec::new(),
    );
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let behaviour = {
        let mut accounts = state.accounts.lock().expect("sim lock");
        accounts
            .get_mut(&format!("webpush:{id}"))
            .and_then(|a| a.script.pop_front())
            .unwrap_or(Behaviour::Accept)
    };
    let Some(ttl) = header("ttl").and_then(|t| t.trim().parse::<u64>().ok()) else {
        return push_error(StatusCode::BAD_REQUEST, 0, "TTL header is required");
    };
    if header("content-encoding") != Some("aes128gcm") {
        return push_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            0,
            "Content-Encoding must be aes128gcm",
        );
    }
    if let Some(urgency) = header("urgency")
        && !["very-low", "low", "normal", "high"].contains(&urgency)
    {
        return push_error(StatusCode::BAD_REQUEST, 0, "invalid Urgency");
    }
    let (auth, ua_secret, expected_key) = {
        let subscribers = state.web_push.subscribers.lock().expect("push lock");
        match subscribers.get(&id) {
            Some(s) if s.active => (s.auth, s.secret.clone(), s.application_server_key.clone()),
            _ => {
                return push_error(
                    StatusCode::GONE,
                    0,
                    "push subscription has unsubscribed or expired",
                );
            }
        }
    };
    let vapid = header("authorization").unwrap_or("");
    if let Err((status, problem)) = check_vapid(vapid, &state.origin, expected_key.as_deref()) {
        return push_error(status, 0, &problem);
    }
    let payload = match decrypt(&body, &ua_secret, &auth) {
        Ok(payload) => payload,
        Err(problem) => return push_error(StatusCode::BAD_REQUEST, 0, &problem),
    };
    if let Some(response) = misbehave(behaviour, &PUSH_SERVICE).await {
        return response;
    }
    let n = state
        .next_sid
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    state
        .web_push
        .received
        .lock()
        .expect("push lock")
        .push(WebPushReceived {
            subscription_id: id,
            payload,
            ttl,
            urgency: header("urgency").map(str::to_owned),
        });
    let mut response = StatusCode::CREATED.into_response();
    response.headers_mut().insert(
        "location",
        format!("{}/webpush/message/m{n:012x}", state.origin)
            .parse()
            .expect("a URL is a valid header"),
    );
    response
}

/// RFC 8292: `vapid t=<ES256 JWT>, k=<public key>`; the JWT's audience is
/// this push service's origin and it expires within 24 hours.
fn check_vapid(
    authorization: &str,
    origin: &str,
    expected_key: Option<&[u8]>,
) -> Result<(), (StatusCode, String)> {
    let unauthorized = |m: &str| (StatusCode::UNAUTHORIZED, m.to_owned());
    let params = authorization
        .strip_prefix("vapid ")
        .ok_or_else(|| unauthorized("Authorization must use the vapid scheme"))?;
    let param = |name: &str| {
        params
            .split(',')
            .map(str::trim)
            .find_map(|p| p.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
    };
    let (Some(token), Some(key)) = (param("t"), param("k")) else {
        return Err(unauthorized("vapid needs t= and k="));
    };
    let key_bytes = URL_SAFE_NO_PAD
        .decode(key.trim_end_matches('='))
        .map_err(|_| unauthorized("k is not base64url"))?;
    if expected_key.is_some_and(|expected| expected != key_bytes.as_slice()) {
        return Err((
            StatusCode::FORBIDDEN,
            "k is not the applicationServerKey of the subscription".into(),
        ));
    }
    let public = PublicKey::from_sec1_bytes(&key_bytes)
        .map_err(|_| unauthorized("k is not a P-256 public key"))?
        .to_encoded_point(false);
    let (x, y) = (
        public.x().expect("uncompressed"),
        public.y().expect("uncompressed"),
    );
    let decoding =
        DecodingKey::from_ec_components(&URL_SAFE_NO_PAD.encode(x), &URL_SAFE_NO_PAD.encode(y))
            .map_err(|e| unauthorized(&format!("k: {e}")))?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[origin]);
    validation.set_required_spec_claims(&["exp", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<VapidClaims>(token, &decoding, &validation)
        .map_err(|e| unauthorized(&format!("invalid VAPID JWT: {e}")))?
        .claims;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if claims.exp > now + 24 * 3600 {
        return Err(unauthorized("VAPID JWT expires more than 24 hours ahead"));
    }
    if claims.aud != origin {
        return Err(unauthorized("VAPID JWT audience is not this push service"));
    }
    if !(claims.sub.starts_with("mailto:") || claims.sub.starts_with("https:")) {
        return Err(unauthorized("VAPID sub must be a mailto: or https: URL"));
    }
    Ok(())
}

/// The browser's side of RFC 8291: one aes128gcm record.
fn decrypt(body: &[u8], ua_secret: &SecretKey, auth: &[u8; 16]) -> Result<Vec<u8>, String> {
    if body.len() < 21 {
        return Err("body too short for an aes128gcm header".into());
    }
    let salt = &body[..16];
    let record_size = u32::from_be_bytes(body[16..20].try_into().expect("4 bytes")) as usize;
    let id_len = body[20] as usize;
    if body.len() < 21 + id_len || id_len != 65 {
        return Err("keyid must be the sender's 65-byte public key".into());
    }
    let as_public_bytes = &body[21..21 + id_len];
    let ciphertext = &body[21 + id_len..];
    if ciphertext.len() > record_size {
        return Err("more than one record".into());
    }
    let as_public =
        PublicKey::from_sec1_bytes(as_public_bytes).map_err(|_| "keyid is not a P-256 key")?;
    let shared = p256::ecdh::diffie_hellman(ua_secret.to_nonzero_scalar(), as_public.as_affine());
    let ua_public = ua_secret.public_key().to_encoded_point(false);
    let mut key_info = b"WebPush: info\0".to_vec();
    key_info.extend_from_slice(ua_public.as_bytes());
    key_info.extend_from_slice(as_public_bytes);
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(auth), shared.raw_secret_bytes())
        .expand(&key_info, &mut ikm)
        .map_err(|e| e.to_string())?;
    let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let (mut cek, mut nonce) = ([0u8; 16], [0u8; 12]);
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
        .map_err(|e| e.to_string())?;
    prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
        .map_err(|e| e.to_string())?;
    let mut padded = Aes128Gcm::new(&cek.into())
        .decrypt(Nonce::from_slice(&nonce), ciphertext)
        .map_err(|_| "decryption failed: wrong keys or a corrupted body".to_owned())?;
    while padded.last() == Some(&0) {
        padded.pop();
    }
    match padded.pop() {
        Some(2) => Ok(padded),
        _ => Err("the last record must end with the 0x02 delimiter".into()),
    }
}
