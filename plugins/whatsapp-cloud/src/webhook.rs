//! Meta's webhooks: `X-Hub-Signature-256`, delivery progress in
//! `entry[].changes[].value.statuses[]` and customers' messages in `messages[]`.

use crossgate_plugin_sdk::webhook::hex_decode;
use crossgate_plugin_sdk::{
    DeliveryState, InboundEvent, InboundMessage, StatusEvent, WebhookRequest, keywords,
};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// `sha256=<hex HMAC-SHA256 of the raw body, keyed by the app secret>`.
pub fn verify(req: &WebhookRequest, app_secret: &str) -> Result<(), String> {
    let header = req
        .header("x-hub-signature-256")
        .ok_or("missing X-Hub-Signature-256 header")?;
    let hex = header
        .strip_prefix("sha256=")
        .ok_or("X-Hub-Signature-256 must start with sha256=")?;
    let given = hex_decode(hex).ok_or("X-Hub-Signature-256 is not hex")?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(app_secret.as_bytes()).map_err(|_| "unusable app secret")?;
    mac.update(&req.body);
    mac.verify_slice(&given)
        .map_err(|_| "X-Hub-Signature-256 does not match".to_owned())
}

pub fn events(body: &[u8]) -> Result<Vec<InboundEvent>, String> {
    let payload: Value =
        serde_json::from_slice(body).map_err(|e| format!("webhook body is not JSON: {e}"))?;
    let mut events = Vec::new();
    let entries = payload["entry"].as_array().into_iter().flatten();
    for change in entries.flat_map(|e| e["changes"].as_array().into_iter().flatten()) {
        for status in change["value"]["statuses"].as_array().into_iter().flatten() {
            let state = match status["status"].as_str() {
                Some("sent") => DeliveryState::Sent,
                Some("delivered") => DeliveryState::Delivered,
                Some("read") => DeliveryState::Read,
                Some("failed") => DeliveryState::Failed,
                _ => continue,
            };
            let Some(id) = status["id"].as_str() else {
                continue;
            };
            let error = &status["errors"][0];
            events.push(InboundEvent::Status(StatusEvent {
                provider_message_id: id.to_owned(),
                state,
                code: error["code"].as_u64().map(|c| c.to_string()),
                description: error["title"].as_str().map(str::to_owned),
            }));
        }
        let messages = change["value"]["messages"].as_array().into_iter().flatten();
        events.extend(messages.filter_map(inbound));
    }
    Ok(events)
}

/// A customer's message: text, a quick-reply button, an interactive choice,
/// or media with a caption. Other kinds (a sticker, a location) carry no
/// words to go on with and are left out.
fn inbound(message: &Value) -> Option<InboundEvent> {
    let text = match message["type"].as_str()? {
        "text" => message["text"]["body"].as_str(),
        "button" => message["button"]["text"].as_str(),
        "interactive" => {
            let choice = &message["interactive"];
            choice["button_reply"]["title"]
                .as_str()
                .or_else(|| choice["list_reply"]["title"].as_str())
        }
        kind @ ("image" | "video" | "document") => message[kind]["caption"].as_str(),
        _ => None,
    }?;
    // WhatsApp ids are the number's digits; the gateway speaks E.164.
    let from = message["from"].as_str()?;
    Some(keywords::classify(InboundMessage {
        from: format!("+{}", from.trim_start_matches('+')),
        text: text.to_owned(),
        provider_message_id: message["id"].as_str()?.to_owned(),
        in_reply_to: message["context"]["id"].as_str().map(str::to_owned),
    }))
}
