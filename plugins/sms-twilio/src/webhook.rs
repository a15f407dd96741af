//! Twilio's callbacks: message status updates, and inbound messages: STOP and
//! START keywords, or a customer's reply.

use base64::Engine as _;
use crossgate_plugin_sdk::{
    DeliveryState, InboundEvent, InboundMessage, StatusEvent, WebhookRequest, keywords,
};
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// `X-Twilio-Signature`: base64 HMAC-SHA1, keyed by the auth token, over the
/// full URL followed by every POST parameter's name and value, sorted by name.
pub fn verify_signature(req: &WebhookRequest, auth_token: &str) -> Result<(), String> {
    let given = req
        .header("x-twilio-signature")
        .ok_or("missing X-Twilio-Signature header")?;
    let given = base64::engine::general_purpose::STANDARD
        .decode(given)
        .map_err(|_| "X-Twilio-Signature is not base64")?;
    let mut params = req.form();
    params.sort();
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes())
        .map_err(|_| "auth token unusable as HMAC key")?;
    mac.update(req.url.as_bytes());
    for (name, value) in &params {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac.verify_slice(&given)
        .map_err(|_| "X-Twilio-Signature does not match".to_owned())
}

/// Status callbacks carry `MessageSid` and `MessageStatus`; inbound messages
/// carry `From` and `Body`.
pub fn events(form: &[(String, String)]) -> Vec<InboundEvent> {
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let mut events = Vec::new();
    if let (Some(sid), Some(status)) = (field("MessageSid"), field("MessageStatus")) {
        let state = match status {
            "sent" => Some(DeliveryState::Sent),
            "delivered" => Some(DeliveryState::Delivered),
            "read" => Some(DeliveryState::Read),
            "failed" | "undelivered" => Some(DeliveryState::Failed),
            _ => None,
        };
        if let Some(state) = state {
            events.push(InboundEvent::Status(StatusEvent {
                provider_message_id: sid.to_owned(),
                state,
                code: field("ErrorCode").map(str::to_owned),
                description: Some(status.to_owned()),
            }));
        }
    }
    if let (Some(from), Some(body)) = (field("From"), field("Body")) {
        let message = InboundMessage {
            from: from.to_owned(),
            text: body.to_owned(),
            provider_message_id: field("MessageSid").unwrap_or_default().to_owned(),
            // An SMS does not say what it answers.
            in_reply_to: None,
        };
        match keywords::classify(message) {
            // Twilio ids every message: a reply without one cannot be told
            // from its repeat.
            InboundEvent::Message(reply) if reply.provider_message_id.is_empty() => {}
            event => events.push(event),
        }
    }
    events
}
