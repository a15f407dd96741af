//! A Twilio connector in plain Rust, outside the sandbox: the baseline
//! `make bench` measures the WASM connector against (feature
//! `native-baseline`, never in a shipped build).
//!
//! It makes the same request as `plugins/sms-twilio` (form-encoded
//! `Messages.json`, Basic auth, `StatusCallback` with the message id) with
//! the same provider client, so the difference between the two is what the
//! sandbox costs: instantiation, the contract's copies and the guest's code.
//! Configured as `plugin = "native:twilio"` with the same settings.

use super::{Failure, Outgoing, PluginInfo, Receipt};
use crate::message::Channel;
use crate::outbound::OutboundClient;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;

/// What `plugin` names to get this connector instead of a WASM file.
pub const PLUGIN: &str = "native:twilio";

pub struct NativeTwilio {
    url: String,
    authorization: String,
    from: String,
    status_callback: Option<String>,
    client: OutboundClient,
}

#[derive(serde::Deserialize)]
struct TwilioMessage {
    sid: String,
}

impl NativeTwilio {
    pub fn new(settings: &[(String, String)], client: OutboundClient) -> anyhow::Result<Self> {
        let get = |key: &str| {
            settings
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let required =
            |key: &str| get(key).ok_or_else(|| anyhow::anyhow!("{PLUGIN}: {key} is required"));
        let (sid, token) = (required("account_sid")?, required("auth_token")?);
        let base_url = get("base_url").unwrap_or("https://api.twilio.com");
        Ok(NativeTwilio {
            url: format!(
                "{}/2010-04-01/Accounts/{sid}/Messages.json",
                base_url.trim_end_matches('/')
            ),
            authorization: format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{sid}:{token}"))
            ),
            from: required("from")?.to_owned(),
            status_callback: get("status_callback").map(str::to_owned),
            client,
        })
    }

    /// What `crossgate check` and the routing see of it, as of a plugin's `describe`.
    pub fn info(channel: Channel) -> PluginInfo {
        PluginInfo {
            name: PLUGIN.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            sdk_version: String::new(),
            contract_version: String::new(),
            channel,
            description: "bench baseline outside the sandbox".into(),
        }
    }

    pub async fn deliver(&self, out: Outgoing<'_>) -> Result<Receipt, Failure> {
        // The serializer is not `Send`: it ends before the request goes out.
        let body = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("To", out.to)
                .append_pair("Body", &out.content.text)
                .append_pair("From", &self.from);
            if let Some(url) = &self.status_callback {
                let separator = if url.contains('?') { '&' } else { '?' };
                form.append_pair(
                    "StatusCallback",
                    &format!("{url}{separator}crossgate_message_id={}", out.message_id),
                );
            }
            form.finish()
        };
        let request = http::Request::post(&self.url)
            .header("authorization", &self.authorization)
            .header("accept", "application/json")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| failure(false, format!("invalid request: {e}")))?;
        let (status, body) = self
            .client
            .send(request)
            .await
            .map_err(|e| failure(true, format!("{e:#}")))?;
        if !(200..300).contains(&status) {
            return Err(failure(
                status == 429 || status >= 500,
                format!("http_{status}: {}", String::from_utf8_lossy(&body)),
            ));
        }
        let message: TwilioMessage = serde_json::from_slice(&body)
            .map_err(|e| failure(false, format!("unreadable answer: {e}")))?;
        Ok(Receipt::sent(message.sid))
    }
}

fn failure(retryable: bool, message: String) -> Failure {
    Failure {
        retryable,
        ..Failure::sandbox("native_twilio", message)
    }
}
