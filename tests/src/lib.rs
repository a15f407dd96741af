//! # Provider simulator
//!
//! A loopback HTTP server that speaks providers' real wire formats, so the
//! gateway and its wasm connectors are tested end to end without the
//! internet. It checks what the real provider checks (credentials, required
//! fields; Twilio and SendGrid bodies against their published OpenAPI
//! documents, see [`specs`]), records every request, and can be told per account to fail,
//! rate-limit, reject or stall.
//!
//! - Twilio: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`.
//! - WhatsApp Cloud API: `POST /{version}/{phone_number_id}/messages`.
//! - SendGrid: `POST /v3/mail/send`.
//! - FCM HTTP v1: `POST /token` (Google OAuth) and
//!   `POST /v1/projects/{project}/messages:send`.
//! - Web Push: `POST /webpush/subscribe` (a browser subscribing) and
//!   `POST /webpush/push/{id}` (the push service).
//!
//! Accounts (a Twilio account SID, a WhatsApp phone number id) each have a
//! credential, a default behaviour and a script of behaviours to come.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

mod example;
mod fcm;
pub mod specs;
pub mod vonage;
mod webpush;

pub use fcm::{DEFAULT_FCM_PROJECT, SERVICE_ACCOUNT_JSON};
pub use webpush::{DEFAULT_VAPID_PRIVATE_KEY, WebPushReceived, vapid_public_key};

/// The account every simulator knows from the start (the default config's).
pub const DEFAULT_ACCOUNT_SID: &str = "AC00000000000000000000000000000000";
pub const DEFAULT_AUTH_TOKEN: &str = "simulator-auth-token";
/// The WhatsApp Cloud API sender every simulator knows from the start.
pub const DEFAULT_WHATSAPP_PHONE_NUMBER_ID: &str = "100000000000001";
pub const DEFAULT_WHATSAPP_TOKEN: &str = "simulator-whatsapp-token";
/// The SendGrid API key every simulator knows from the start; it is also its account id.
pub const DEFAULT_SENDGRID_KEY: &str = "SG.simulator-key";
/// The example provider's key (`crossgate plugin new`'s `dev.toml`).
pub const DEFAULT_EXAMPLE_KEY: &str = "example-key";

/// A Twilio connector entry against the simulator.
pub fn twilio_connector(name: &str, sim_url: &str, account_sid: &str, token: &str) -> String {
    format!(
        r#"
[[connectors]]
name = "{name}"
plugin = "sms_twilio.wasm"
channel = "sms"
allowed_hosts = ["{sim_url}"]
[connectors.config]
account_sid = "{account_sid}"
auth_token = "{token}"
from = "+15005550006"
base_url = "{sim_url}"
"#
    )
}

/// A `test_faults.wasm` connector that misbehaves in `mode` (see
/// plugins/test-faults; `ok` succeeds without I/O), with `extra` settings.
/// A feed token for `customer` until `expires_ms`, made as a platform's
/// backend makes it from docs/api.md's recipe (not with the gateway's code,
/// so the recipe is what is tested).
pub fn feed_token(secret: &str, customer: &str, expires_ms: i64) -> String {
    use hmac::Mac as _;
    let payload = format!("{customer}\n{expires_ms}");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(b"crossgate-inbox-v1\n");
    mac.update(payload.as_bytes());
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}",
        b64.encode(payload),
        b64.encode(mac.finalize().into_bytes())
    )
}

pub fn fault_connector(name: &str, mode: &str, extra: &str) -> String {
    format!(
        r#"
[[connectors]]
name = "{name}"
plugin = "test_faults.wasm"
channel = "sms"
allowed_hosts = ["http://127.0.0.1:9"]
[connectors.config]
mode = "{mode}"
{extra}
"#
    )
}

/// `connector` (one entry made by the helpers above) with its instances
/// kept for up to `calls` calls: the opt-in that the default, a fresh store
/// per call, leaves out. Panics on an entry without a config table,
/// which would otherwise stay fresh and be measured as kept.
pub fn with_calls_per_instance(connector: &str, calls: u32) -> String {
    const TABLE: &str = "\n[connectors.config]";
    assert!(
        connector.contains(TABLE),
        "no [connectors.config] table to put calls_per_instance before"
    );
    connector.replacen(TABLE, &format!("\ncalls_per_instance = {calls}{TABLE}"), 1)
}

/// The Twilio connector the simulator knows from the start, named `twilio`.
pub fn default_twilio(sim_url: &str) -> String {
    twilio_connector("twilio", sim_url, DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN)
}

/// A Vonage connector entry against the simulator's default account,
/// taking webhooks signed with `signature_secret` by HMAC-SHA256.
pub fn vonage_connector(name: &str, sim_url: &str, signature_secret: &str) -> String {
    format!(
        r#"
[[connectors]]
name = "{name}"
plugin = "sms_vonage.wasm"
channel = "sms"
allowed_hosts = ["{sim_url}"]
[connectors.config]
api_key = "{}"
api_secret = "{}"
from = "Crossgate"
signature_secret = "{signature_secret}"
signature_method = "sha256"
base_url = "{sim_url}"
"#,
        vonage::DEFAULT_API_KEY,
        vonage::DEFAULT_API_SECRET
    )
}

/// A Twilio connector `twilio` on an account of this simulator alone, for
/// gateways with API keys: those refuse the default account's token, which
/// this repository ships.
pub fn private_twilio(sim: &ProviderSim) -> String {
    const SID: &str = "AC22222222222222222222222222222222";
    const TOKEN: &str = "a-token-this-test-made-up";
    sim.add_account(SID, TOKEN, Behaviour::Accept);
    twilio_connector("twilio", &sim.url(), SID, TOKEN)
}

/// How the simulator answers a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// `201` with a message resource.
    Accept,
    /// `500` with Twilio's error body.
    Fail,
    /// `429` with `Retry-After` in seconds.
    RateLimit { retry_after_secs: u64 },
    /// `400` with the provider's error body: permanent.
    Reject { code: u32, message: String },
    /// Answer only after this long.
    Stall(Duration),
}

/// A request as the simulator received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The form fields, for form-encoded bodies.
    pub form: Vec<(String, String)>,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl Recorded {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Account {
    auth_token: String,
    script: VecDeque<Behaviour>,
    default: Behaviour,
}

struct SimState {
    /// `http://127.0.0.1:PORT`: token audience and push service origin.
    origin: String,
    accounts: Mutex<HashMap<String, Account>>,
    requests: Mutex<Vec<Recorded>>,
    next_sid: AtomicU64,
    fcm: fcm::FcmState,
    web_push: webpush::WebPushState,
}

/// A running simulator; stops when dropped.
pub struct ProviderSim {
    addr: SocketAddr,
    state: Arc<SimState>,
    _server: tokio::task::JoinHandle<()>,
}

impl Drop for ProviderSim {
    fn drop(&mut self) {
        self._server.abort();
    }
}

impl ProviderSim {
    /// Start on an ephemeral loopback port.
    pub async fn start() -> std::io::Result<ProviderSim> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    pub async fn start_on(addr: SocketAddr) -> std::io::Result<ProviderSim> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(SimState {
            origin: format!("http://{addr}"),
            accounts: Mutex::default(),
            requests: Mutex::default(),
            next_sid: AtomicU64::default(),
            fcm: fcm::FcmState::default(),
            web_push: webpush::WebPushState::default(),
        });
        for (id, secret) in [
            (DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN),
            (DEFAULT_WHATSAPP_PHONE_NUMBER_ID, DEFAULT_WHATSAPP_TOKEN),
            (DEFAULT_SENDGRID_KEY, DEFAULT_SENDGRID_KEY),
            (DEFAULT_EXAMPLE_KEY, DEFAULT_EXAMPLE_KEY),
            (vonage::DEFAULT_API_KEY, vonage::DEFAULT_API_SECRET),
            // FCM authenticates with issued access tokens, not a fixed secret.
            (DEFAULT_FCM_PROJECT, ""),
        ] {
            state.accounts.lock().expect("fresh lock").insert(
                id.to_owned(),
                Account {
                    auth_token: secret.to_owned(),
                    script: VecDeque::new(),
                    default: Behaviour::Accept,
                },
            );
        }
        let app = Router::new()
            .route(
                "/2010-04-01/Accounts/{sid}/Messages.json",
                post(twilio_create_message),
            )
            .route("/{version}/{phone_number_id}/messages", post(whatsapp_send))
            .route("/v3/mail/send", post(sendgrid_send))
            .route("/example/v1/messages", post(example::send))
            .route("/sms/json", post(vonage::send))
            .route("/token", post(fcm::token))
            .route("/v1/projects/{project}/messages:send", post(fcm::send))
            .route("/webpush/subscribe", post(webpush::subscribe))
            .route("/webpush/push/{id}", post(webpush::push))
            .route("/_sim/requests", get(list_requests))
            .fallback(unknown_route)
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(ProviderSim {
            addr,
            state,
            _server: server,
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Add (or reset) an account (Twilio SID or WhatsApp phone number id)
    /// whose requests get `default` unless scripted.
    pub fn add_account(&self, sid: &str, auth_token: &str, default: Behaviour) {
        self.state.accounts.lock().expect("sim lock").insert(
            sid.to_owned(),
            Account {
                auth_token: auth_token.to_owned(),
                script: VecDeque::new(),
                default,
            },
        );
    }

    /// The next requests to `sid` get these answers, in order; then its default again.
    pub fn script(&self, sid: &str, behaviours: impl IntoIterator<Item = Behaviour>) {
        if let Some(account) = self.state.accounts.lock().expect("sim lock").get_mut(sid) {
            account.script.extend(behaviours);
        }
    }

    /// Forget what is left of `sid`'s script: the provider recovers.
    pub fn unscript(&self, sid: &str) {
        if let Some(account) = self.state.accounts.lock().expect("sim lock").get_mut(sid) {
            account.script.clear();
        }
    }

    /// Google OAuth token exchanges that succeeded so far.
    pub fn fcm_token_exchanges(&self) -> usize {
        self.state.fcm.exchanges()
    }

    /// Access tokens issued from now on live this long (default an hour).
    pub fn set_fcm_token_lifetime(&self, lifetime: Duration) {
        self.state.fcm.set_token_lifetime(lifetime);
    }

    /// FCM answers `404 UNREGISTERED` for this device token from now on.
    pub fn fcm_unregister(&self, device_token: &str) {
        self.state.fcm.unregister(device_token);
    }

    /// Subscribe a new browser, as `pushManager.subscribe()` would; returns
    /// the subscription JSON to put in a customer's profile.
    pub fn web_push_subscribe(&self, application_server_key: Option<&str>) -> serde_json::Value {
        self.state
            .web_push
            .subscribe(&self.state.origin, application_server_key)
    }

    /// The browser behind a subscription unsubscribes: pushes get `410 Gone`.
    pub fn web_push_unsubscribe(&self, subscription_id: &str) {
        self.state.web_push.unsubscribe(subscription_id);
    }

    /// The next pushes to a subscription get these answers, in order.
    pub fn script_web_push(
        &self,
        subscription_id: &str,
        behaviours: impl IntoIterator<Item = Behaviour>,
    ) {
        let mut accounts = self.state.accounts.lock().expect("sim lock");
        accounts
            .entry(format!("webpush:{subscription_id}"))
            .or_insert_with(|| Account {
                auth_token: String::new(),
                script: VecDeque::new(),
                default: Behaviour::Accept,
            })
            .script
            .extend(behaviours);
    }

    /// Pushes the browsers received, decrypted, in arrival order.
    pub fn web_pushes(&self) -> Vec<WebPushReceived> {
        self.state.web_push.received()
    }

    /// How many requests arrived so far, without copying them.
    pub fn request_count(&self) -> usize {
        self.state.requests.lock().expect("sim lock").len()
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().expect("sim lock").clone()
    }
}

fn twilio_error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    (status, axum::Json(body)).into_response()
}

/// Twilio's checks, in Twilio's order: credentials, then the form.
async fn twilio_create_message(
    State(state): State<Arc<SimState>>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    record(
        &state,
        format!("/2010-04-01/Accounts/{sid}/Messages.json"),
        &headers,
        &body,
        form.clone(),
    );

    let behaviour = {
        let mut accounts = state.accounts.lock().expect("sim lock");
        let Some(account) = accounts.get_mut(&sid) else {
            return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
        };
        if !basic_auth_matches(&headers, &sid, &account.auth_token) {
            return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
        }
        account
            .script
            .pop_front()
            .unwrap_or_else(|| account.default.clone())
    };

    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            20001,
            "Content-Type must be application/x-www-form-urlencoded",
        );
    }
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let Some(to) = field("To") else {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21604,
            "A 'To' phone number is required.",
        );
    };
    if field("From").is_none() && field("MessagingServiceSid").is_none() {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21603,
            "A 'From' phone number is required.",
        );
    }
    if field("Body").is_none_or(|b| b.is_empty()) && field("MediaUrl").is_none() {
        return twilio_error(StatusCode::BAD_REQUEST, 21602, "Message body is required.");
    }
    if !to.starts_with('+') || to.len() < 8 || !to[1..].bytes().all(|b| b.is_ascii_digit()) {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21211,
            &format!("The 'To' number {to} is not a valid phone number."),
        );
    }

    if let Err(problems) = specs::check_twilio_create_message(&sid, &form) {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            20001,
            &format!(
                "Request does not match Twilio's API: {}",
                problems.join("; ")
            ),
        );
    }
    if let Some(response) = misbehave(behaviour, &TWILIO).await {
        return response;
    }

    let n = state.next_sid.fetch_add(1, Ordering::Relaxed);
    let message_sid = format!("SM{n:032x}");
    let body = json!({
        "sid": message_sid,
        "account_sid": sid,
        "to": to,
        "from": field("From"),
        "messaging_service_sid": field("MessagingServiceSid"),
        "body": field("Body"),
        "status": "queued",
        "num_segments": "1",
        "direction": "outbound-api",
        "api_version": "2010-04-01",
        "uri": format!("/2010-04-01/Accounts/{sid}/Messages/{message_sid}.json"),
    });
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

/// How a provider words its errors, and the codes it uses for outages and rate limits.
struct Dialect {
    error: fn(StatusCode, u32, &str) -> Response,
    outage: (u32, &'static str),
    rate_limited: (u32, &'static str),
}

const TWILIO: Dialect = Dialect {
    error: twilio_error,
    outage: (20500, "Internal Server Error"),
    rate_limited: (20429, "Too Many Requests"),
};

const SENDGRID: Dialect = Dialect {
    error: sendgrid_error,
    outage: (500, "internal error"),
    rate_limited: (429, "too many requests"),
};

const META: Dialect = Dialect {
    error: meta_error,
    outage: (131000, "Something went wrong"),
    rate_limited: (130429, "Rate limit hit"),
};

/// The answer a behaviour gives instead of accepting, if any; a stall
/// waits and then lets the request through.
async fn misbehave(behaviour: Behaviour, dialect: &Dialect) -> Option<Response> {
    match behaviour {
        Behaviour::Accept => None,
        Behaviour::Fail => {
            let (code, message) = dialect.outage;
            Some((dialect.error)(
                StatusCode::INTERNAL_SERVER_ERROR,
                code,
                message,
            ))
        }
        Behaviour::RateLimit { retry_after_secs } => {
            let (code, message) = dialect.rate_limited;
            let mut response = (dialect.error)(StatusCode::TOO_MANY_REQUESTS, code, message);
            response.headers_mut().insert(
                header::RETRY_AFTER,
                retry_after_secs
                    .to_string()
                    .parse()
                    .expect("digits are a valid header"),
            );
            Some(response)
        }
        Behaviour::Reject { code, message } => {
            Some((dialect.error)(StatusCode::BAD_REQUEST, code, &message))
        }
        Behaviour::Stall(delay) => {
            tokio::time::sleep(delay).await;
            None
        }
    }
}

fn record(
    state: &SimState,
    path: String,
    headers: &HeaderMap,
    body: &Bytes,
    form: Vec<(String, String)>,
) {
    state.requests.lock().expect("sim lock").push(Recorded {
        method: "POST".into(),
        path,
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
        form,
        at: std::time::Instant::now(),
    });
}

/// SendGrid's error body has no numeric code: `code` becomes the field.
fn sendgrid_error(status: StatusCode, code: u32, message: &str) -> Response {
    let body =
        json!({"errors": [{"message": message, "field": null, "help": format!("code {code}")}]});
    (status, axum::Json(body)).into_response()
}

/// SendGrid's checks: the API key, then the envelope and content.
async fn sendgrid_send(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(
        &state,
        "/v3/mail/send".to_owned(),
        &headers,
        &body,
        Vec::new(),
    );
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_owned();
    let Some(behaviour) = bearer_behaviour(&state, &key, &headers) else {
        return sendgrid_error(
            StatusCode::UNAUTHORIZED,
            401,
            "The provided authorization grant is invalid, expired, or revoked",
        );
    };
    let Ok(mail) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return sendgrid_error(
            StatusCode::BAD_REQUEST,
            400,
            "Bad Request: body is not JSON",
        );
    };
    let has_recipient = mail["personalizations"].as_array().is_some_and(|p| {
        !p.is_empty()
            && p.iter().all(|p| {
                p["to"][0]["email"]
                    .as_str()
                    .is_some_and(|e| e.contains('@'))
            })
    });
    if !has_recipient {
        return sendgrid_error(
            StatusCode::BAD_REQUEST,
            400,
            "The personalizations field is required and must have at least one to email",
        );
    }
    if !mail["from"]["email"]
        .as_str()
        .is_some_and(|e| e.contains('@'))
    {
        return sendgrid_error(
            StatusCode::BAD_REQUEST,
            400,
            "The from object must be provided for every email send",
        );
    }
    let has_content = mail["content"].as_array().is_some_and(|c| {
        !c.is_empty()
            && c.iter().all(|c| {
                c["type"].is_string() && c["value"].as_str().is_some_and(|v| !v.is_empty())
            })
    });
    if !has_content && mail["template_id"].is_null() {
        return sendgrid_error(
            StatusCode::BAD_REQUEST,
            400,
            "Unless a valid template_id is provided, the content parameter is required",
        );
    }
    if mail["subject"].as_str().is_none_or(str::is_empty) && mail["template_id"].is_null() {
        return sendgrid_error(StatusCode::BAD_REQUEST, 400, "The subject is required");
    }
    if let Err(problems) = specs::check_sendgrid_mail_send(&mail) {
        return sendgrid_error(StatusCode::BAD_REQUEST, 400, &problems.join("; "));
    }
    if let Some(response) = misbehave(behaviour, &SENDGRID).await {
        return response;
    }
    let n = state.next_sid.fetch_add(1, Ordering::Relaxed);
    let mut response = StatusCode::ACCEPTED.into_response();
    response.headers_mut().insert(
        "x-message-id",
        format!("sg{n:022x}")
            .parse()
            .expect("hex is a valid header"),
    );
    response
}

fn meta_error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = json!({
        "error": {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "fbtrace_id": "AbCdEfGhIjK",
        }
    });
    (status, axum::Json(body)).into_response()
}

/// The account's next behaviour, after its Bearer token checked out.
fn bearer_behaviour(state: &SimState, id: &str, headers: &HeaderMap) -> Option<Behaviour> {
    let mut accounts = state.accounts.lock().expect("sim lock");
    let account = accounts.get_mut(id)?;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))?;
    if token != account.auth_token {
        return None;
    }
    Some(
        account
            .script
            .pop_front()
            .unwrap_or_else(|| account.default.clone()),
    )
}

/// Meta's checks: token, `messaging_product`, recipient, and a well-formed
/// `text` or `template` message.
async fn whatsapp_send(
    State(state): State<Arc<SimState>>,
    Path((version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(
        &state,
        format!("/{version}/{phone_number_id}/messages"),
        &headers,
        &body,
        Vec::new(),
    );
    let Some(behaviour) = bearer_behaviour(&state, &phone_number_id, &headers) else {
        return meta_error(StatusCode::UNAUTHORIZED, 190, "Invalid OAuth access token.");
    };
    let Ok(message) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return meta_error(
            StatusCode::BAD_REQUEST,
            100,
            "Invalid parameter: body is not JSON",
        );
    };
    if message["messaging_product"] != "whatsapp" {
        return meta_error(
            StatusCode::BAD_REQUEST,
            100,
            "Invalid parameter: messaging_product must be whatsapp",
        );
    }
    let to = message["to"].as_str().unwrap_or("");
    if to.is_empty() || !to.bytes().all(|b| b.is_ascii_digit()) {
        return meta_error(
            StatusCode::BAD_REQUEST,
            131030,
            "Recipient phone number not valid",
        );
    }
    let well_formed = match message["type"].as_str() {
        Some("text") => message["text"]["body"]
            .as_str()
            .is_some_and(|b| !b.is_empty()),
        Some("template") => {
            message["template"]["name"].is_string()
                && message["template"]["language"]["code"].is_string()
        }
        _ => false,
    };
    if !well_formed {
        return meta_error(
            StatusCode::BAD_REQUEST,
            100,
            "Invalid parameter: message type and content",
        );
    }
    if let Some(response) = misbehave(behaviour, &META).await {
        return response;
    }
    let n = state.next_sid.fetch_add(1, Ordering::Relaxed);
    let body = json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": to}],
        "messages": [{"id": format!("wamid.HBgL{n:024X}")}],
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn basic_auth_matches(headers: &HeaderMap, user: &str, password: &str) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(value) else {
        return false;
    };
    decoded == format!("{user}:{password}").as_bytes()
}

async fn list_requests(State(state): State<Arc<SimState>>) -> Response {
    let requests = state.requests.lock().expect("sim lock");
    let list: Vec<_> = requests
        .iter()
        .map(|r| json!({"method": r.method, "path": r.path, "form": r.form}))
        .collect();
    axum::Json(list).into_response()
}

/// Anything else is recorded too, so a test can prove a request never arrived.
async fn unknown_route(
    State(state): State<Arc<SimState>>,
    request: axum::extract::Request,
) -> Response {
    state.requests.lock().expect("sim lock").push(Recorded {
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
        headers: Vec::new(),
        body: Vec::new(),
        form: Vec::new(),
        at: std::time::Instant::now(),
    });
    (StatusCode::NOT_FOUND, "no such provider endpoint").into_response()
}
