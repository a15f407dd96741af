//! A customer's reply, recorded at once: a `message.received` event for
//! every customer it belongs to and, when the platform listens, a callback
//! in the outbox. Both backends run this in one transaction: the SQL is
//! theirs, what is written is decided here.

use super::journeys::NewEvent;
use crate::message::Channel;
use serde_json::json;

/// How long a provider's reply id is remembered: a provider repeating its
/// callback within this time is one reply.
pub const REMEMBERED_FOR_MS: i64 = 7 * 24 * 3_600_000;

/// A reply as a connector read it, its sender's address in stored form.
#[derive(Debug, Clone)]
pub struct NewReply {
    pub connector: String,
    pub channel: Channel,
    pub address: String,
    pub text: String,
    pub provider_message_id: String,
    /// The provider's id of the message it answers, when the provider says.
    pub in_reply_to: Option<String>,
    pub received_at: i64,
    /// Where the platform hears of replies that answer no message with a
    /// callback URL of its own; `None` when callbacks are off.
    pub callback_url: Option<String>,
}

impl NewReply {
    /// The key that makes a repeated callback one reply.
    pub fn dedup_key(&self) -> String {
        format!("{}:{}", self.connector, self.provider_message_id)
    }
}

/// The message a reply answers, as the store found it.
#[derive(Debug, Clone, Default)]
pub struct Answered {
    pub message_id: String,
    pub customer_id: Option<String>,
    pub callback_url: Option<String>,
}

/// What recording a reply came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplyRecorded {
    /// The provider sent this reply before: nothing was written.
    pub duplicate: bool,
    /// Our id of the message it answers.
    pub in_reply_to: Option<String>,
    /// The customers it was recorded for (the answered message's, and every
    /// owner of the sender's address).
    pub customers: Vec<String>,
    /// A callback to the platform was queued.
    pub callback_queued: bool,
}

/// What a backend writes for a new reply.
pub struct Writes {
    pub events: Vec<NewEvent>,
    /// `(message id, url, payload)` for the outbox.
    pub callback: Option<(String, String, String)>,
    pub recorded: ReplyRecorded,
}

/// The events and the callback of a reply not seen before.
pub fn writes(reply: &NewReply, answered: Option<Answered>, owners: Vec<String>) -> Writes {
    let mut customers = owners;
    if let Some(customer) = answered.as_ref().and_then(|a| a.customer_id.clone()) {
        customers.push(customer);
    }
    customers.sort();
    customers.dedup();
    let in_reply_to = answered.as_ref().map(|a| a.message_id.clone());
    let properties = json!({
        "channel": reply.channel,
        "connector": reply.connector,
        "from": reply.address,
        "text": reply.text,
        "provider_message_id": reply.provider_message_id,
        "in_reply_to": in_reply_to,
    });
    let events = customers
        .iter()
        .map(|customer| NewEvent {
            id: format!("evt_{}", uuid::Uuid::now_v7().simple()),
            customer_id: customer.clone(),
            name: "message.received".to_owned(),
            properties: properties.to_string(),
            occurred_at: reply.received_at,
            received_at: reply.received_at,
            idempotency_key: Some(format!("reply:{}:{customer}", reply.dedup_key())),
        })
        .collect::<Vec<_>>();
    // A reply to a message goes where that message's statuses go.
    let url = answered
        .as_ref()
        .and_then(|a| a.callback_url.clone())
        .or_else(|| reply.callback_url.clone());
    let callback = url.map(|url| {
        let at = jiff::Timestamp::from_millisecond(reply.received_at)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        // The event's properties, and who and when.
        let mut payload = properties.clone();
        let fields = payload.as_object_mut().expect("an object");
        fields.insert("type".into(), json!("message.received"));
        fields.insert("customer_ids".into(), json!(customers));
        let ids: Vec<&String> = events.iter().map(|e| &e.id).collect();
        fields.insert("event_ids".into(), json!(ids));
        fields.insert("at".into(), json!(at.to_string()));
        let about = in_reply_to
            .clone()
            .unwrap_or_else(|| format!("reply:{}", reply.provider_message_id));
        (about, url, payload.to_string())
    });
    Writes {
        recorded: ReplyRecorded {
            duplicate: false,
            in_reply_to,
            callback_queued: callback.is_some(),
            customers,
        },
        events,
        callback,
    }
}
