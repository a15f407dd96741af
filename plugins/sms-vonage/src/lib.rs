//! SMS through Vonage's SMS API: written with the plugin kit's helpers
//! (`phone::digits`, `Message::sms_encoding`, `WebhookRequest::params`,
//! `webhook::{hex_decode, constant_time_eq, fresh}`).
//!
//! `POST {base_url}/sms/json`, form encoded, the account's key and secret in
//! the form. Vonage answers `200` whatever happened; each part of the
//! message has a `status` (`0` taken, `1` throttled, ...).
//!
//! ```toml
//! [connectors.config]
//! api_key = "env:VONAGE_API_KEY"
//! api_secret = "env:VONAGE_API_SECRET"
//! from = "Crossgate"                        # a number (digits) or up to 11 letters
//! signature_secret = "env:VONAGE_SIGNATURE_SECRET"   # to take receipts and replies
//! signature_method = "md5hash"              # or md5, sha1, sha256, sha512 (HMAC)
//! callback = "https://gw.example.com/v1/webhooks/vonage"   # optional, per message
//! base_url = "https://rest.nexmo.com"       # optional
//! ```
//!
//! Delivery receipts and inbound messages come signed, by `GET` or `POST`
//! (form or JSON), to `/v1/webhooks/<connector>`. A long message is sent
//! in parts, each with its own id; the gateway keeps the first part's, so
//! a receipt of a later part matches no message and changes nothing.

mod signature;
mod webhook;

#[cfg(test)]
mod tests;

use crossgate_plugin_sdk::{
    Channel, Config, ConfigError, Connector, Failure, InboundEvent, Message, Receipt, Setting,
    WebhookError, WebhookRequest, http, phone,
};
use serde::Deserialize;
use signature::Method;

pub struct VonageSms {
    base_url: String,
    api_key: String,
    api_secret: String,
    from: String,
    signature: Option<(String, Method)>,
    callback: Option<String>,
}

/// The answer to a send: one entry per part.
#[derive(Deserialize)]
struct Sent {
    messages: Vec<Part>,
}

#[derive(Deserialize)]
struct Part {
    status: String,
    #[serde(rename = "message-id")]
    message_id: Option<String>,
    #[serde(rename = "error-text")]
    error_text: Option<String>,
}

crossgate_plugin_sdk::settings! {
    /// The `[connectors.config]` keys, declared once: the gateway checks
    /// them, `new` reads them.
    struct VonageSettings {
        api_key: required text,
        api_secret: required secret text,
        from: required text,
        signature_secret: optional secret text,
        signature_method: optional choice["md5hash", "md5", "sha1", "sha256", "sha512"],
        callback: optional url,
        base_url: optional url,
    }
}

impl Connector for VonageSms {
    const NAME: &'static str = "vonage";
    const CHANNEL: Channel = Channel::Sms;
    const SETTINGS: &'static [Setting] = VonageSettings::DECLARED;

    fn new(config: &Config) -> Result<Self, ConfigError> {
        let settings = VonageSettings::read(config)?;
        let from = settings.from;
        let alphanumeric = from.len() <= 11 && from.chars().all(|c| c.is_ascii_alphanumeric());
        let number = phone::e164(&from).is_some();
        if !alphanumeric && !number {
            return Err(ConfigError::new(
                "from",
                "must be a phone number or at most 11 letters and digits",
            ));
        }
        let method = settings
            .signature_method
            .and_then(Method::parse)
            .unwrap_or(Method::Md5Hash);
        Ok(VonageSms {
            base_url: config.base_url("https://rest.nexmo.com")?,
            api_key: settings.api_key,
            api_secret: settings.api_secret,
            from: from.trim_start_matches('+').to_owned(),
            signature: settings.signature_secret.map(|secret| (secret, method)),
            callback: settings.callback,
        })
    }

    fn deliver(&self, msg: &Message) -> Result<Receipt, Failure> {
        let to = phone::digits(&msg.to)?;
        // Text in GSM-7 goes as `text`; anything else must be `unicode`,
        // or the handset shows question marks.
        let kind = match msg.sms_encoding() {
            Some("UCS-2") => "unicode",
            Some(_) => "text",
            None if msg.text.is_ascii() => "text",
            None => "unicode",
        };
        let mut form = vec![
            ("api_key", self.api_key.as_str()),
            ("api_secret", self.api_secret.as_str()),
            // A sender pool's number for this recipient (bare digits, as
            // Vonage takes them), else our own.
            (
                "from",
                msg.sender
                    .as_deref()
                    .map_or(self.from.as_str(), |s| s.trim_start_matches('+')),
            ),
            ("to", to),
            ("text", msg.text.as_str()),
            ("type", kind),
            // Ours, stable across attempts: it comes back in the receipt.
            ("client-ref", msg.id.as_str()),
        ];
        if let Some(callback) = &self.callback {
            form.push(("callback", callback));
            form.push(("status-report-req", "1"));
        }
        let response = http::Request::post(&format!("{}/sms/json", self.base_url))
            .header("accept", "application/json")
            .form(form)
            .send()?;
        if !response.is_success() {
            return Err(response.provider_failure("/status", "/error-text"));
        }
        let sent: Sent = response.json()?;
        receipt(sent.messages)
    }

    fn handle_webhook(&self, req: &WebhookRequest) -> Result<Vec<InboundEvent>, WebhookError> {
        let Some((secret, method)) = &self.signature else {
            return Err(WebhookError::Unauthorized(
                "this connector has no signature_secret: set it to take Vonage's signed webhooks"
                    .into(),
            ));
        };
        let params = req.params();
        signature::verify(&params, secret, *method).map_err(WebhookError::Unauthorized)?;
        webhook::events(&params).map_err(WebhookError::Malformed)
    }
}

/// A part's status as a failure: throttling, an internal error and too many
/// binds pass with time; the rest is the request's or the account's.
/// A long text goes as several parts, each with its own id and receipt.
/// A part refused after others went is not retried: the customer would get
/// those twice.
fn receipt(parts: Vec<Part>) -> Result<Receipt, Failure> {
    let mut ids = Vec::with_capacity(parts.len());
    for part in parts {
        match (part.status.as_str(), part.message_id) {
            ("0", Some(id)) => ids.push(id),
            (status, _) => {
                let refused = failure(status, part.error_text.unwrap_or_default());
                return Err(if ids.is_empty() {
                    refused
                } else {
                    Failure::permanent(
                        refused.code,
                        format!("{} (after {} part(s) went)", refused.message, ids.len()),
                    )
                });
            }
        }
    }
    let mut ids = ids.into_iter();
    let first = ids.next().ok_or_else(|| {
        Failure::permanent(
            "unreadable_response",
            "Vonage answered with no message part",
        )
    })?;
    Ok(Receipt::new(first).with_parts(ids))
}

fn failure(status: &str, text: String) -> Failure {
    let code = format!("vonage_{status}");
    match status {
        "1" | "5" | "10" => Failure::retryable(code, text),
        _ => Failure::permanent(code, text),
    }
}

crossgate_plugin_sdk::register_connector!(VonageSms);
