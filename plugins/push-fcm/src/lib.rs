//! Push notifications through Firebase Cloud Messaging's HTTP v1 API.
//!
//! `POST {base_url}/v1/projects/{project_id}/messages:send` with an OAuth 2.0
//! access token minted from a service-account key (see [`token`]); the
//! message's `to` is the device's registration token.
//!
//! ```toml
//! [connectors.config]
//! service_account = "file:/etc/crossgate/fcm-service-account.json"
//! project_id = "my-project"                    # optional: the key's project
//! base_url = "https://fcm.googleapis.com"      # optional
//! token_uri = "https://oauth2.googleapis.com/token"  # optional: the key's
//! ```
//!
//! `allowed_hosts` must list both the FCM origin and the token URI's origin.

mod token;

use crossgate_plugin_sdk::{
    Channel, Config, ConfigError, Connector, Failure, Message, Receipt, Setting, http,
    report_dead_address,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use token::ServiceAccount;

pub struct Fcm {
    account: ServiceAccount,
    send_url: String,
}

#[derive(Deserialize)]
struct Sent {
    name: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: GoogleError,
}

#[derive(Deserialize)]
struct GoogleError {
    message: Option<String>,
    status: Option<String>,
    #[serde(default)]
    details: Vec<Value>,
}

impl GoogleError {
    /// FCM's own code (`UNREGISTERED`, `QUOTA_EXCEEDED`, ...), else the RPC status.
    fn code(&self) -> String {
        self.details
            .iter()
            .find_map(|d| d["errorCode"].as_str())
            .or(self.status.as_deref())
            .unwrap_or("UNKNOWN")
            .to_owned()
    }
}

impl Connector for Fcm {
    const NAME: &'static str = "fcm";
    const CHANNEL: Channel = Channel::Push;
    const SETTINGS: &'static [Setting] = &[
        Setting::text("service_account").required().secret(),
        Setting::text("project_id"),
        Setting::url("token_uri"),
        crossgate_plugin_sdk::BASE_URL,
    ];

    fn new(config: &Config) -> Result<Self, ConfigError> {
        let mut account: ServiceAccount = serde_json::from_str(config.required("service_account")?)
            .map_err(|e| {
                ConfigError::new(
                    "service_account",
                    format!("not a Google service-account JSON key: {e}"),
                )
            })?;
        if !account.private_key.contains("-----BEGIN PRIVATE KEY-----") {
            return Err(ConfigError::new(
                "service_account",
                "private_key must be a PKCS#8 PEM key (BEGIN PRIVATE KEY)",
            ));
        }
        if let Some(uri) = config.get("token_uri") {
            account.token_uri = uri.to_owned();
        }
        let project_id = match config.get("project_id").or(account.project_id.as_deref()) {
            Some(id) if !id.is_empty() => id.to_owned(),
            _ => {
                return Err(ConfigError::new(
                    "project_id",
                    "is required when the service account key has none",
                ));
            }
        };
        let base = config.base_url("https://fcm.googleapis.com")?;
        Ok(Fcm {
            send_url: format!("{base}/v1/projects/{project_id}/messages:send"),
            account,
        })
    }

    fn deliver(&self, msg: &Message) -> Result<Receipt, Failure> {
        let access_token = self.account.access_token()?;
        let response = http::Request::post(&self.send_url)
            .bearer_auth(&access_token)
            .json(fcm_message(msg).to_string())
            .send()?;
        if response.is_success() {
            let sent: Sent = serde_json::from_slice(&response.body).map_err(|e| {
                Failure::retryable("invalid_response", format!("unreadable FCM answer: {e}"))
            })?;
            return Ok(Receipt::new(sent.name));
        }
        let Ok(ErrorBody { error }) = serde_json::from_slice::<ErrorBody>(&response.body) else {
            return Err(response.failure(
                format!("http_{}", response.status),
                format!("FCM answered HTTP {}", response.status),
            ));
        };
        let code = error.code();
        let message = error.message.clone().unwrap_or_default();
        match code.as_str() {
            "UNREGISTERED" => {
                report_dead_address(&msg.to, "FCM: token unregistered");
                Err(Failure::permanent(code, message))
            }
            "INVALID_ARGUMENT" if message.contains("registration token") => {
                report_dead_address(&msg.to, "FCM: not a valid registration token");
                Err(Failure::permanent(code, message))
            }
            // The access token expired or was revoked early: mint a new one next time.
            "UNAUTHENTICATED" => {
                self.account.forget_token();
                Err(Failure::retryable(code, message))
            }
            _ => Err(response.failure(code, message)),
        }
    }
}

/// FCM's `message`: the notification the device shows, plus `data` for the
/// app (string values only), carrying the gateway's message id.
fn fcm_message(msg: &Message) -> Value {
    let mut notification = Map::new();
    if let Some(title) = &msg.subject {
        notification.insert("title".into(), json!(title));
    }
    notification.insert("body".into(), json!(msg.text));
    let mut data = Map::new();
    for (key, value) in &msg.metadata {
        if let Some(key) = key.strip_prefix("data:") {
            data.insert(key.to_owned(), json!(value));
        }
    }
    data.insert("crossgate_message_id".into(), json!(msg.id));
    json!({
        "message": {
            "token": msg.to,
            "notification": notification,
            "data": data,
        }
    })
}

crossgate_plugin_sdk::register_connector!(Fcm);

#[cfg(test)]
mod tests;
