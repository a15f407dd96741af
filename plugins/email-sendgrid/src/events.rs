//! SendGrid's Event Webhook: signed batches of mail events.
//!
//! SendGrid signs `timestamp + raw body` with ECDSA P-256 / SHA-256 and sends
//! the DER signature, base64, in `X-Twilio-Email-Event-Webhook-Signature`, the
//! timestamp in `X-Twilio-Email-Event-Webhook-Timestamp`. The verification key
//! (base64 DER SubjectPublicKeyInfo) is shown in SendGrid's Mail Settings.

use base64::Engine as _;
use crossgate_plugin_sdk::{DeliveryState, InboundEvent, StatusEvent, WebhookRequest, webhook};
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey as _;
use serde::Deserialize;

const SIGNATURE: &str = "x-twilio-email-event-webhook-signature";
const TIMESTAMP: &str = "x-twilio-email-event-webhook-timestamp";
/// How far a batch's signed timestamp may be from now, either way: enough
/// for a slow queue and a clock a little off, too little for a captured
/// batch to be posted again later (its signature would still hold).
const MAX_SKEW_SECS: i64 = 600;

/// The verification key from the connector's `event_webhook_public_key`.
pub fn public_key(base64_der: &str) -> Result<VerifyingKey, String> {
    let der = base64::engine::general_purpose::STANDARD
        .decode(base64_der.trim())
        .map_err(|_| "is not base64".to_owned())?;
    VerifyingKey::from_public_key_der(&der)
        .map_err(|e| format!("is not a P-256 public key in DER: {e}"))
}

/// Whether SendGrid signed this request with the key's private half.
pub fn verify(req: &WebhookRequest, key: &VerifyingKey) -> Result<(), String> {
    let signature = req
        .header(SIGNATURE)
        .ok_or("missing X-Twilio-Email-Event-Webhook-Signature header")?;
    let timestamp = req
        .header(TIMESTAMP)
        .ok_or("missing X-Twilio-Email-Event-Webhook-Timestamp header")?;
    let der = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|_| "X-Twilio-Email-Event-Webhook-Signature is not base64")?;
    let signature = Signature::from_der(&der)
        .map_err(|_| "X-Twilio-Email-Event-Webhook-Signature is not a DER ECDSA signature")?;
    let mut signed = Vec::with_capacity(timestamp.len() + req.body.len());
    signed.extend_from_slice(timestamp.as_bytes());
    signed.extend_from_slice(&req.body);
    key.verify(&signed, &signature)
        .map_err(|_| "X-Twilio-Email-Event-Webhook-Signature does not match".to_owned())?;
    fresh(timestamp, webhook::now_secs())
}

/// Whether a batch signed at `timestamp` (Unix seconds) is recent at `now`.
fn fresh(timestamp: &str, now: i64) -> Result<(), String> {
    let signed_at: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| "X-Twilio-Email-Event-Webhook-Timestamp is not Unix seconds")?;
    webhook::fresh(signed_at, now, MAX_SKEW_SECS).map_err(|why| format!("the batch was {why}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_a_recent_signature_is_fresh() {
        assert!(super::fresh("1767225600", 1767225600 + 599).is_ok());
        assert!(super::fresh("1767225600", 1767225600 - 30).is_ok());
        assert!(super::fresh("1767225600", 1767225600 + 601).is_err());
        assert!(super::fresh("1767225600", 1767225600 - 601).is_err());
        assert!(super::fresh("soon", 1767225600).is_err());
    }

    #[test]
    fn a_batch_is_read_in_the_order_things_happened() {
        let body = br#"[
            {"email":"a@example.nl","event":"open","sg_message_id":"sg-1.f","timestamp":20},
            {"email":"a@example.nl","event":"spamreport","timestamp":30},
            {"email":"a@example.nl","event":"delivered","sg_message_id":"sg-1.f","timestamp":10}
        ]"#;
        let events = super::events(body).unwrap();
        let kinds: Vec<String> = events
            .iter()
            .map(|e| match e {
                crossgate_plugin_sdk::InboundEvent::Status(s) => format!("{:?}", s.state),
                other => format!("{other:?}").chars().take(6).collect(),
            })
            .collect();
        assert_eq!(kinds, ["Delivered", "Read", "OptOut"]);
    }
}

/// One event of the batch; fields an event type lacks are absent.
#[derive(Deserialize)]
struct Event {
    event: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    sg_message_id: Option<String>,
    /// `bounce` (hard) or `blocked` (soft) for bounce events.
    #[serde(default, rename = "type")]
    bounce_type: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    status: Option<String>,
    /// When it happened, Unix seconds: a batch is applied in this order.
    #[serde(default)]
    timestamp: Option<i64>,
}

/// What the batch tells the gateway. Events of other kinds (processed,
/// deferred, click, group subscriptions) change nothing and are skipped.
pub fn events(body: &[u8]) -> Result<Vec<InboundEvent>, String> {
    let mut batch: Vec<Event> = serde_json::from_slice(body)
        .map_err(|e| format!("the event webhook body is not a JSON array of events: {e}"))?;
    // SendGrid does not promise a batch in the order things happened: an
    // unsubscribe and a later resubscribe must be applied as they happened.
    // Stable, so events of the same second keep the order they came in.
    batch.sort_by_key(|e| e.timestamp.unwrap_or(i64::MIN));
    let mut out = Vec::new();
    for event in batch {
        let status = |state, code: &str| {
            event.sg_message_id.as_deref().map(|id| {
                InboundEvent::Status(StatusEvent {
                    provider_message_id: x_message_id(id).to_owned(),
                    state,
                    code: Some(code.to_owned()),
                    description: event.reason.clone().or_else(|| event.status.clone()),
                })
            })
        };
        match event.event.as_str() {
            "delivered" => out.extend(status(DeliveryState::Delivered, "delivered")),
            "open" => out.extend(status(DeliveryState::Read, "open")),
            "dropped" => out.extend(status(DeliveryState::Failed, "dropped")),
            "bounce" => {
                let hard = event.bounce_type.as_deref() != Some("blocked");
                let code = if hard { "bounce" } else { "blocked" };
                out.extend(status(DeliveryState::Failed, code));
                if let (true, Some(address)) = (hard, &event.email) {
                    out.push(InboundEvent::Undeliverable {
                        address: address.clone(),
                        reason: format!(
                            "SendGrid hard bounce: {}",
                            event.reason.as_deref().unwrap_or("no reason given")
                        ),
                    });
                }
            }
            // A complaint and an unsubscribe are the recipient saying stop.
            "spamreport" | "unsubscribe" => {
                out.extend(event.email.clone().map(InboundEvent::OptOut))
            }
            _ => {}
        }
    }
    Ok(out)
}

/// `sg_message_id` is the `X-Message-Id` SendGrid answered the send with,
/// followed by `.filter…` routing details.
fn x_message_id(sg_message_id: &str) -> &str {
    sg_message_id
        .split_once('.')
        .map_or(sg_message_id, |(id, _)| id)
}
