//! SMS through Twilio's Programmable Messaging API (2010-04-01).
//!
//! `POST {base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json`, form
//! encoded, HTTP Basic auth with the account SID and auth token.
//!
//! ```toml
//! [connectors.config]
//! account_sid = "env:TWILIO_ACCOUNT_SID"
//! auth_token = "env:TWILIO_AUTH_TOKEN"
//! from = "+15005550006"                 # or messaging_service_sid = "MG..."
//! status_callback = "https://gw.example.com/v1/webhooks/twilio"   # optional
//! base_url = "https://api.twilio.com"   # optional
//! ```

mod webhook;

use crossgate_plugin_sdk::{
    Channel, Config, ConfigError, Connector, Failure, InboundEvent, Message, Receipt, Setting,
    WebhookError, WebhookRequest, http,
};
use serde::Deserialize;

pub struct TwilioSms {
    base_url: String,
    account_sid: String,
    auth_token: String,
    sender: Sender,
    status_callback: Option<String>,
}

/// Twilio takes either a sending number or a Messaging Service, never both.
enum Sender {
    From(String),
    MessagingService(String),
}

/// Twilio's error body: `{"code": 21211, "message": "...", "more_info": "...", "status": 400}`.
#[derive(Deserialize)]
struct TwilioError {
    code: Option<u64>,
    message: Option<String>,
    more_info: Option<String>,
}

#[derive(Deserialize)]
struct TwilioMessage {
    sid: String,
}

impl Connector for TwilioSms {
    const NAME: &'static str = "twilio";
    const CHANNEL: Channel = Channel::Sms;
    const SETTINGS: &'static [Setting] = &[
        Setting::text("account_sid").required(),
        Setting::text("auth_token").required().secret(),
        Setting::text("from"),
        Setting::text("messaging_service_sid"),
        Setting::url("status_callback"),
        crossgate_plugin_sdk::BASE_URL,
    ];

    fn new(config: &Config) -> Result<Self, ConfigError> {
        let account_sid = config.required("account_sid")?;
        if !is_sid(account_sid, "AC") {
            return Err(ConfigError::new(
                "account_sid",
                "must be AC followed by 32 hex digits",
            ));
        }
        let sender = match (config.get("from"), config.get("messaging_service_sid")) {
            (Some(from), None) => Sender::From(from.to_owned()),
            (None, Some(sid)) if is_sid(sid, "MG") => Sender::MessagingService(sid.to_owned()),
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "messaging_service_sid",
                    "must be MG followed by 32 hex digits",
                ));
            }
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "from",
                    "set either from or messaging_service_sid, not both",
                ));
            }
            (None, None) => {
                return Err(ConfigError::new(
                    "from",
                    "is required (or messaging_service_sid)",
                ));
            }
        };
        Ok(TwilioSms {
            base_url: config.base_url("https://api.twilio.com")?,
            account_sid: account_sid.to_owned(),
            auth_token: config.required("auth_token")?.to_owned(),
            sender,
            status_callback: config
                .get("status_callback")
                .map(|url| {
                    let ok = url.starts_with("https://") || url.starts_with("http://");
                    ok.then(|| url.to_owned()).ok_or_else(|| {
                        ConfigError::new("status_callback", "must be an http or https URL")
                    })
                })
                .transpose()?,
        })
    }

    fn deliver(&self, msg: &Message) -> Result<Receipt, Failure> {
        let mut form = vec![("To", msg.to.as_str()), ("Body", msg.text.as_str())];
        match &self.sender {
            Sender::From(from) => form.push(("From", from)),
            Sender::MessagingService(sid) => form.push(("MessagingServiceSid", sid)),
        }
        // The message id rides along in the callback URL: stable across
        // attempts, it ties Twilio's status reports to the gateway's message.
        let callback = self.status_callback.as_ref().map(|url| {
            let separator = if url.contains('?') { '&' } else { '?' };
            format!("{url}{separator}crossgate_message_id={}", msg.id)
        });
        if let Some(url) = &callback {
            form.push(("StatusCallback", url));
        }
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.base_url, self.account_sid
        );
        let response = http::Request::post(&url)
            .basic_auth(&self.account_sid, &self.auth_token)
            .header("accept", "application/json")
            .form(form)
            .send()?;

        if response.is_success() {
            return response
                .json::<TwilioMessage>()
                .map(|m| Receipt::new(m.sid));
        }
        let error = serde_json::from_slice::<TwilioError>(&response.body).ok();
        let code = error
            .as_ref()
            .and_then(|e| e.code)
            .map_or_else(|| format!("http_{}", response.status), |c| c.to_string());
        // Twilio's own words, with its pointer to the error's documentation;
        // an answer that is not Twilio's JSON is quoted as it came.
        let message = match error {
            Some(TwilioError {
                message: Some(message),
                more_info,
                ..
            }) => match more_info {
                Some(link) => format!("{message} ({link})"),
                None => message,
            },
            _ => {
                let text = response.text();
                let text: String = text.trim().chars().take(300).collect();
                if text.is_empty() {
                    format!("twilio answered HTTP {}", response.status)
                } else {
                    format!("twilio answered HTTP {}: {text}", response.status)
                }
            }
        };
        Err(response.failure(code, message))
    }

    fn handle_webhook(&self, req: &WebhookRequest) -> Result<Vec<InboundEvent>, WebhookError> {
        webhook::verify_signature(req, &self.auth_token).map_err(WebhookError::Unauthorized)?;
        Ok(webhook::events(&req.form()))
    }
}

/// Twilio SIDs are a two-letter prefix and 32 hex digits.
fn is_sid(value: &str, prefix: &str) -> bool {
    value.len() == 34
        && value.starts_with(prefix)
        && value[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

crossgate_plugin_sdk::register_connector!(TwilioSms);

#[cfg(test)]
mod tests;
