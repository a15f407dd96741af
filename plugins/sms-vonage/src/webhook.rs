//! What Vonage calls back with: a delivery receipt (`messageId`, `status`,
//! `err-code`) or an inbound message (`msisdn`, `text`, `messageId`), the
//! same parameters by `GET` or `POST`, form or JSON.

use crossgate_plugin_sdk::{
    DeliveryState, InboundEvent, InboundMessage, StatusEvent, keywords, phone,
};

pub fn events(params: &[(String, String)]) -> Result<Vec<InboundEvent>, String> {
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    if let (Some(id), Some(status)) = (param("messageId"), param("status")) {
        let state = match status {
            "accepted" | "buffered" => DeliveryState::Sent,
            "delivered" => DeliveryState::Delivered,
            "expired" | "failed" | "rejected" => DeliveryState::Failed,
            // `unknown`: nothing to say yet.
            _ => return Ok(Vec::new()),
        };
        return Ok(vec![InboundEvent::Status(StatusEvent {
            provider_message_id: id.to_owned(),
            state,
            // `0` is Vonage's "no error".
            code: param("err-code").filter(|c| *c != "0").map(str::to_owned),
            description: Some(status.to_owned()),
        })]);
    }
    if let (Some(msisdn), Some(text), Some(id)) =
        (param("msisdn"), param("text"), param("messageId"))
    {
        let from =
            phone::e164(msisdn).ok_or_else(|| format!("msisdn {msisdn:?} is not a number"))?;
        return Ok(vec![keywords::classify(InboundMessage {
            from,
            text: text.to_owned(),
            provider_message_id: id.to_owned(),
            in_reply_to: None,
        })]);
    }
    Err("neither a delivery receipt (messageId, status) nor an inbound message (msisdn, text, messageId)".into())
}
