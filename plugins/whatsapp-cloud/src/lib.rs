//! WhatsApp through Meta's WhatsApp Cloud API.
//!
//! `POST {base_url}/{api_version}/{phone_number_id}/messages` with a Bearer
//! token: an approved `template` when the message carries one, free `text`
//! otherwise (only allowed inside the 24-hour customer service window).
//!
//! ```toml
//! [connectors.config]
//! access_token = "env:WHATSAPP_ACCESS_TOKEN"
//! phone_number_id = "106540352242922"
//! app_secret = "env:WHATSAPP_APP_SECRET"   # verifies webhooks
//! api_version = "v21.0"                     # optional
//! base_url = "https://graph.facebook.com"   # optional
//! ```

mod webhook;

use crossgate_plugin_sdk::{
    Channel, Config, ConfigError, Connector, Failure, InboundEvent, Message, Receipt, Setting,
    WebhookError, WebhookRequest, http,
};
use serde::Deserialize;
use serde_json::{Value, json};

pub struct WhatsappCloud {
    url: String,
    access_token: String,
    app_secret: Option<String>,
}

/// Outside the 24-hour window only templates may be sent. Permanent, with a
/// code the gateway falls back on.
pub const REENGAGEMENT_REQUIRED: &str = "131047";

/// Meta's codes that a later retry can fix: rate limits and temporary outages.
const RETRYABLE_CODES: &[u64] = &[4, 80007, 130429, 131000, 131016, 131056, 133004];

#[derive(Deserialize)]
struct Sent {
    messages: Vec<SentMessage>,
}

#[derive(Deserialize)]
struct SentMessage {
    id: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: MetaError,
}

#[derive(Deserialize)]
struct MetaError {
    code: Option<u64>,
    message: Option<String>,
}

impl Connector for WhatsappCloud {
    const NAME: &'static str = "whatsapp-cloud";
    const CHANNEL: Channel = Channel::Whatsapp;
    const SETTINGS: &'static [Setting] = &[
        Setting::text("access_token").required().secret(),
        Setting::text("phone_number_id").required(),
        Setting::text("app_secret").secret(),
        Setting::text("api_version"),
        crossgate_plugin_sdk::BASE_URL,
    ];

    fn new(config: &Config) -> Result<Self, ConfigError> {
        let phone_number_id = config.required("phone_number_id")?;
        if !phone_number_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConfigError::new("phone_number_id", "must be digits"));
        }
        let version = config.get_or("api_version", "v21.0");
        if !version.starts_with('v') {
            return Err(ConfigError::new("api_version", "must look like v21.0"));
        }
        let base = config.base_url("https://graph.facebook.com")?;
        Ok(WhatsappCloud {
            url: format!("{base}/{version}/{phone_number_id}/messages"),
            access_token: config.required("access_token")?.to_owned(),
            app_secret: config.get("app_secret").map(str::to_owned),
        })
    }

    fn deliver(&self, msg: &Message) -> Result<Receipt, Failure> {
        let body = request_body(msg);
        let response = http::Request::post(&self.url)
            .bearer_auth(&self.access_token)
            .json(body.to_string())
            .send()?;
        if response.is_success() {
            let sent: Sent = response.json()?;
            return sent
                .messages
                .into_iter()
                .next()
                .map(|m| Receipt::new(m.id))
                .ok_or_else(|| {
                    Failure::permanent("unreadable_response", "Meta's answer lists no message")
                });
        }
        let error = serde_json::from_slice::<ErrorBody>(&response.body)
            .ok()
            .map(|b| b.error);
        let code = error.as_ref().and_then(|e| e.code);
        let message = error
            .and_then(|e| e.message)
            .unwrap_or_else(|| format!("Meta answered HTTP {}", response.status));
        let code_text = code.map_or_else(|| format!("http_{}", response.status), |c| c.to_string());
        Err(match code {
            Some(c) if RETRYABLE_CODES.contains(&c) => Failure::retryable(code_text, message)
                .with_retry_after_ms(response.retry_after_ms()),
            Some(_) if response.status < 500 && response.status != 429 => {
                Failure::permanent(code_text, message)
            }
            _ => response.failure(code_text, message),
        })
    }

    fn handle_webhook(&self, req: &WebhookRequest) -> Result<Vec<InboundEvent>, WebhookError> {
        let secret = self.app_secret.as_deref().ok_or_else(|| {
            WebhookError::Unauthorized(
                "app_secret is not configured; cannot verify webhooks".into(),
            )
        })?;
        webhook::verify(req, secret).map_err(WebhookError::Unauthorized)?;
        webhook::events(&req.body).map_err(WebhookError::Malformed)
    }
}

/// The JSON body of one send: a template when given, free text otherwise.
fn request_body(msg: &Message) -> Value {
    let to: String = msg.to.chars().filter(char::is_ascii_digit).collect();
    let mut body = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "biz_opaque_callback_data": msg.id,
    });
    match &msg.template {
        Some(template) => {
            let parameters: Vec<Value> = template
                .parameters
                .iter()
                .map(|p| json!({"type": "text", "text": p}))
                .collect();
            body["type"] = json!("template");
            body["template"] = json!({
                "name": template.name,
                "language": {"code": template.language},
            });
            // A template without variables takes no components at all: an
            // empty body component is refused by Meta.
            if !parameters.is_empty() {
                body["template"]["components"] =
                    json!([{"type": "body", "parameters": parameters}]);
            }
        }
        None => {
            body["type"] = json!("text");
            body["text"] = json!({"body": msg.text, "preview_url": false});
        }
    }
    body
}

crossgate_plugin_sdk::register_connector!(WhatsappCloud);

#[cfg(test)]
mod tests;
