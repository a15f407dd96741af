//! Email through SendGrid's v3 Mail Send API.
//!
//! `POST {base_url}/v3/mail/send` with a Bearer API key; `202` means
//! accepted, and the message id comes back in `X-Message-Id`.
//!
//! ```toml
//! [connectors.config]
//! api_key = "env:SENDGRID_API_KEY"
//! from = "orders@shop.example"
//! from_name = "Example Shop"          # optional
//! reply_to = "support@shop.example"   # optional
//! default_subject = "A message from Example Shop"   # when a message has none
//! base_url = "https://api.sendgrid.com"             # optional
//! ```
//!
//! Message metadata `header:<Name>` becomes a mail header (e.g.
//! `header:List-Unsubscribe`).
//!
//! Event Webhook (`POST /v1/webhooks/<connector>`): with
//! `event_webhook_public_key` set to the verification key SendGrid shows for
//! signed events, delivered / open / bounce / dropped / spamreport /
//! unsubscribe events move messages forward and suppress dead or unwilling
//! addresses. Unsigned or forged batches are refused.

mod events;

use crossgate_plugin_sdk::{
    Channel, Config, ConfigError, Connector, Failure, InboundEvent, Message, Receipt, Setting,
    WebhookError, WebhookRequest, http,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

pub struct SendgridEmail {
    url: String,
    api_key: String,
    from: Value,
    reply_to: Option<String>,
    default_subject: String,
    event_key: Option<p256::ecdsa::VerifyingKey>,
}

#[derive(Deserialize)]
struct ErrorBody {
    errors: Vec<SendgridError>,
}

#[derive(Deserialize)]
struct SendgridError {
    message: Option<String>,
    field: Option<String>,
}

impl Connector for SendgridEmail {
    const NAME: &'static str = "sendgrid";
    const CHANNEL: Channel = Channel::Email;
    const SETTINGS: &'static [Setting] = &[
        Setting::text("api_key").required().secret(),
        Setting::text("from").required(),
        Setting::text("from_name"),
        Setting::text("reply_to"),
        Setting::text("default_subject"),
        Setting::text("event_webhook_public_key"),
        crossgate_plugin_sdk::BASE_URL,
    ];

    fn new(config: &Config) -> Result<Self, ConfigError> {
        let from = config.required("from")?;
        if !looks_like_email(from) {
            return Err(ConfigError::new("from", "must be an email address"));
        }
        let reply_to = config.get("reply_to").map(str::to_owned);
        if reply_to.as_deref().is_some_and(|r| !looks_like_email(r)) {
            return Err(ConfigError::new("reply_to", "must be an email address"));
        }
        let mut sender = json!({"email": from});
        if let Some(name) = config.get("from_name") {
            sender["name"] = json!(name);
        }
        let base = config.base_url("https://api.sendgrid.com")?;
        let event_key = config
            .get("event_webhook_public_key")
            .map(events::public_key)
            .transpose()
            .map_err(|e| ConfigError::new("event_webhook_public_key", e))?;
        Ok(SendgridEmail {
            url: format!("{base}/v3/mail/send"),
            api_key: config.required("api_key")?.to_owned(),
            from: sender,
            reply_to,
            default_subject: config.get_or("default_subject", "(no subject)").to_owned(),
            event_key,
        })
    }

    fn deliver(&self, msg: &Message) -> Result<Receipt, Failure> {
        let response = http::Request::post(&self.url)
            .bearer_auth(&self.api_key)
            .json(self.request_body(msg).to_string())
            .send()?;
        if response.is_success() {
            // SendGrid answers 202 with an empty body; the id is a header.
            // Accepted is accepted: without the header the mail still goes,
            // and failing over would send the customer a second message. The
            // gateway's own id (also in custom_args) stands in.
            let id = response.header("x-message-id").unwrap_or("").trim();
            if id.is_empty() {
                crossgate_plugin_sdk::log(
                    crossgate_plugin_sdk::Level::Warn,
                    "SendGrid accepted the mail but sent no X-Message-Id; its events cannot be matched",
                );
                return Ok(Receipt::new(msg.id.clone()));
            }
            return Ok(Receipt::new(id));
        }
        let message = serde_json::from_slice::<ErrorBody>(&response.body)
            .ok()
            .map(|b| {
                b.errors
                    .into_iter()
                    .map(|e| match (e.field, e.message) {
                        (Some(field), Some(m)) => format!("{field}: {m}"),
                        (None, Some(m)) => m,
                        (_, None) => "unspecified error".to_owned(),
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| format!("SendGrid answered HTTP {}", response.status));
        Err(response.failure(format!("http_{}", response.status), message))
    }

    fn handle_webhook(&self, req: &WebhookRequest) -> Result<Vec<InboundEvent>, WebhookError> {
        let key = self.event_key.as_ref().ok_or_else(|| {
            WebhookError::Unauthorized(
                "event_webhook_public_key is not configured; cannot verify events".into(),
            )
        })?;
        events::verify(req, key).map_err(WebhookError::Unauthorized)?;
        events::events(&req.body).map_err(WebhookError::Malformed)
    }
}

impl SendgridEmail {
    /// The Mail Send body: one personalization carrying the message id, so
    /// SendGrid's events can be tied back to the gateway's message.
    fn request_body(&self, msg: &Message) -> Value {
        let mut content = vec![json!({"type": "text/plain", "value": msg.text})];
        if let Some(html) = &msg.html {
            content.push(json!({"type": "text/html", "value": html}));
        }
        let mut body = json!({
            "personalizations": [{
                "to": [{"email": msg.to}],
                "custom_args": {"crossgate_message_id": msg.id},
            }],
            "from": self.from,
            "subject": msg.subject.as_deref().unwrap_or(&self.default_subject),
            "content": content,
        });
        if let Some(reply_to) = &self.reply_to {
            body["reply_to"] = json!({"email": reply_to});
        }
        let headers: Map<String, Value> = msg
            .metadata
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("header:")?.to_owned(), json!(v))))
            .collect();
        if !headers.is_empty() {
            body["headers"] = Value::Object(headers);
        }
        body
    }
}

fn looks_like_email(address: &str) -> bool {
    address
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
}

crossgate_plugin_sdk::register_connector!(SendgridEmail);

#[cfg(test)]
mod tests {
    use super::*;
    use crossgate_plugin_sdk::http::Response;
    use crossgate_plugin_sdk::testing::Harness;

    fn harness() -> Harness {
        Harness::new([
            ("api_key", "SG.test"),
            ("from", "orders@shop.example"),
            ("from_name", "Shop"),
            ("reply_to", "help@shop.example"),
            ("base_url", "http://127.0.0.1:9"),
        ])
    }

    fn mail() -> Message {
        let mut msg = Message::text(Channel::Email, "anna@example.nl", "Your order shipped");
        msg.subject = Some("Shipped".into());
        msg.html = Some("<p>Your order shipped</p>".into());
        msg.metadata = vec![(
            "header:List-Unsubscribe".into(),
            "<https://shop.example/u>".into(),
        )];
        msg
    }

    #[test]
    fn accepted_mail_gives_the_x_message_id() {
        let mut h = harness();
        h.respond(Response::new(202, "").with_header("X-Message-Id", "sg-abc"));
        assert_eq!(
            h.deliver::<SendgridEmail>(&mail())
                .unwrap()
                .provider_message_id,
            "sg-abc"
        );
        let request = &h.requests()[0];
        assert_eq!(request.url, "http://127.0.0.1:9/v3/mail/send");
        assert_eq!(
            request.header_value("authorization"),
            Some("Bearer SG.test")
        );
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(
            body["personalizations"][0]["to"][0]["email"],
            "anna@example.nl"
        );
        assert_eq!(
            body["personalizations"][0]["custom_args"]["crossgate_message_id"],
            "msg_test"
        );
        assert_eq!(
            body["from"],
            json!({"email": "orders@shop.example", "name": "Shop"})
        );
        assert_eq!(body["reply_to"]["email"], "help@shop.example");
        assert_eq!(body["subject"], "Shipped");
        assert_eq!(body["content"][1]["type"], "text/html");
        assert_eq!(
            body["headers"]["List-Unsubscribe"],
            "<https://shop.example/u>"
        );
    }

    /// Accepted is accepted: a 2xx without X-Message-Id must not fail over
    /// to another channel, or the customer gets the message twice.
    #[test]
    fn an_accepted_mail_without_an_id_is_still_sent() {
        let mut h = harness();
        h.respond(Response::new(202, ""));
        let receipt = h.deliver::<SendgridEmail>(&mail()).unwrap();
        assert_eq!(receipt.provider_message_id, "msg_test");
    }

    #[test]
    fn errors_are_classified_with_sendgrids_messages() {
        let mut h = harness();
        h.respond(Response::new(
            400,
            r#"{"errors":[{"message":"Does not contain a valid address.","field":"personalizations.0.to.0.email"}]}"#,
        ));
        let failure = h.deliver::<SendgridEmail>(&mail()).unwrap_err();
        assert!(!failure.retryable);
        assert_eq!(
            failure.message,
            "personalizations.0.to.0.email: Does not contain a valid address."
        );
        let mut h = harness();
        h.respond(
            Response::new(429, r#"{"errors":[{"message":"too many requests"}]}"#)
                .with_header("Retry-After", "2"),
        );
        let failure = h.deliver::<SendgridEmail>(&mail()).unwrap_err();
        assert!(failure.retryable);
        assert_eq!(failure.retry_after_ms, Some(2000));
        let mut h = harness();
        h.respond(Response::new(503, ""));
        assert!(h.deliver::<SendgridEmail>(&mail()).unwrap_err().retryable);
    }

    /// A key of the test's own, standing in for SendGrid's.
    fn event_key() -> (p256::ecdsa::SigningKey, String) {
        use base64::Engine as _;
        use p256::pkcs8::EncodePublicKey as _;
        let signing = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let der = signing.verifying_key().to_public_key_der().unwrap();
        let public = base64::engine::general_purpose::STANDARD.encode(der.as_bytes());
        (signing, public)
    }

    fn signed_events(signing: &p256::ecdsa::SigningKey, body: &str) -> WebhookRequest {
        use base64::Engine as _;
        use p256::ecdsa::signature::Signer as _;
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            .to_string();
        let signature: p256::ecdsa::Signature =
            signing.sign(format!("{timestamp}{body}").as_bytes());
        WebhookRequest {
            method: "POST".into(),
            url: "https://gw.example.com/v1/webhooks/sendgrid".into(),
            headers: vec![
                (
                    "X-Twilio-Email-Event-Webhook-Signature".into(),
                    base64::engine::general_purpose::STANDARD.encode(signature.to_der()),
                ),
                ("X-Twilio-Email-Event-Webhook-Timestamp".into(), timestamp),
            ],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn signed_events_become_status_changes_and_suppressions() {
        let (signing, public) = event_key();
        let mut h = Harness::new([
            ("api_key", "SG.test"),
            ("from", "orders@shop.example"),
            ("event_webhook_public_key", public.as_str()),
        ]);
        let body = r#"[
            {"email":"anna@example.nl","event":"delivered","sg_message_id":"sg-1.filter0001.1.0"},
            {"email":"anna@example.nl","event":"open","sg_message_id":"sg-1.filter0001.1.0"},
            {"email":"gone@example.nl","event":"bounce","type":"bounce","reason":"550 5.1.1 no such user","sg_message_id":"sg-2.f"},
            {"email":"full@example.nl","event":"bounce","type":"blocked","reason":"mailbox full","sg_message_id":"sg-3.f"},
            {"email":"x@example.nl","event":"dropped","reason":"Bounced Address","sg_message_id":"sg-4.f"},
            {"email":"angry@example.nl","event":"spamreport","sg_message_id":"sg-5.f"},
            {"email":"anna@example.nl","event":"processed","sg_message_id":"sg-1.f"}
        ]"#;
        let events = h
            .handle_webhook::<SendgridEmail>(&signed_events(&signing, body))
            .unwrap();
        let summary: Vec<String> = events
            .iter()
            .map(|e| match e {
                InboundEvent::Status(s) => format!(
                    "{}:{:?}:{}",
                    s.provider_message_id,
                    s.state,
                    s.code.as_deref().unwrap_or("")
                ),
                InboundEvent::OptOut(a) => format!("opt-out:{a}"),
                InboundEvent::OptIn(a) => format!("opt-in:{a}"),
                InboundEvent::Undeliverable { address, .. } => format!("undeliverable:{address}"),
                InboundEvent::Message(m) => format!("reply:{}", m.from),
            })
            .collect();
        assert_eq!(
            summary,
            [
                "sg-1:Delivered:delivered",
                "sg-1:Read:open",
                "sg-2:Failed:bounce",
                "undeliverable:gone@example.nl",
                "sg-3:Failed:blocked",
                "sg-4:Failed:dropped",
                "opt-out:angry@example.nl",
            ]
        );
    }

    #[test]
    fn forged_or_unsigned_events_are_unauthorized() {
        let (_, public) = event_key();
        let other = p256::ecdsa::SigningKey::from_slice(&[9u8; 32]).unwrap();
        let mut h = Harness::new([
            ("api_key", "SG.test"),
            ("from", "orders@shop.example"),
            ("event_webhook_public_key", public.as_str()),
        ]);
        let body = r#"[{"email":"a@example.nl","event":"bounce","type":"bounce","sg_message_id":"sg-1.f"}]"#;
        let forged = signed_events(&other, body);
        let mut unsigned = forged.clone();
        unsigned.headers.clear();
        for req in [forged, unsigned] {
            assert!(matches!(
                h.handle_webhook::<SendgridEmail>(&req),
                Err(WebhookError::Unauthorized(_))
            ));
        }
        let mut no_key = Harness::new([("api_key", "SG.test"), ("from", "orders@shop.example")]);
        let (signing, _) = event_key();
        assert!(matches!(
            no_key.handle_webhook::<SendgridEmail>(&signed_events(&signing, body)),
            Err(WebhookError::Unauthorized(_))
        ));
        let bad_key = Harness::new([
            ("api_key", "SG.test"),
            ("from", "orders@shop.example"),
            ("event_webhook_public_key", "bm90IGEga2V5"),
        ]);
        assert_eq!(
            bad_key.validate::<SendgridEmail>().unwrap_err().key,
            "event_webhook_public_key"
        );
    }

    #[test]
    fn config_is_checked() {
        let no_key = Harness::new([("from", "a@b.example")]);
        assert_eq!(
            no_key.validate::<SendgridEmail>().unwrap_err().key,
            "api_key"
        );
        let bad_from = Harness::new([("api_key", "k"), ("from", "nobody")]);
        assert_eq!(
            bad_from.validate::<SendgridEmail>().unwrap_err().key,
            "from"
        );
    }
}
