//! What every store promises, whatever it runs on: one file per aggregate,
//! helpers here.

use super::{Stores, message};
use crossgate::clock::wall_ms;
use crossgate::config::RetentionConfig;
use crossgate::customer::{Consent, ConsentStatus, Profile, Suppression, SuppressionReason};
use crossgate::message::{Channel, MessageStatus, Outcome};
use crossgate::store::campaigns::{BroadcastRecord, Progress, RefusedMember};
use crossgate::store::journeys::{EventInserted, JourneyVersion, NewEvent, RunRecord};
use crossgate::store::replies::{NewReply, ReplyRecorded};
use crossgate::store::reports::{NewConversion, ReportKey};
use crossgate::store::segments::SegmentQuery;
use crossgate::store::{
    AttemptRecord, AttemptResult, DedupKey, Horizon, IdempotencyKey, Inserted, Lease,
    LeasedDelivery, Next, Purged, Store,
};
use std::collections::HashSet;

mod campaigns;
mod customers;
mod feed;
mod health;
mod journeys;
mod messages;
mod outbox;
mod purging;
mod queue;

pub use campaigns::*;
pub use customers::*;
pub use feed::*;
pub use health::*;
pub use journeys::*;
pub use messages::*;
pub use outbox::*;
pub use purging::*;
pub use queue::*;

pub(super) const LEASE: u64 = 30_000;

pub(super) fn attempt(d: &LeasedDelivery, at: i64, outcome: Outcome, next: Next) -> AttemptResult {
    AttemptResult {
        delivery_id: d.delivery_id,
        message_id: d.message_id.clone(),
        lease_until: d.lease_until,
        attempt: AttemptRecord {
            number: d.message_attempts + 1,
            connector: d.connector.clone(),
            channel: d.channel,
            started_at: at,
            finished_at: at + 1,
            outcome,
            provider_message_id: matches!(next, Next::Sent { .. }).then(|| "SM1".to_owned()),
            error_code: None,
            error_message: None,
            retry_at: None,
            node: None,
        },
        next,
    }
}

pub(super) fn sent() -> Next {
    Next::Sent {
        provider_message_id: "SM1".into(),
        parts: Vec::new(),
        delivered: false,
        escalate_at: None,
    }
}

pub(super) fn give_up() -> Next {
    Next::GiveUp {
        reason: "provider refused".into(),
        ending: MessageStatus::Failed,
    }
}

pub(super) async fn status(store: &dyn Store, id: &str) -> MessageStatus {
    store.message(id).await.unwrap().unwrap().status
}

/// The first delivery due at `now`, leased for [`LEASE`].
pub(super) async fn lease_one(store: &dyn Store, now: i64) -> LeasedDelivery {
    store
        .lease_due(Lease::new(now, 10, LEASE))
        .await
        .unwrap()
        .remove(0)
}

pub(super) async fn insert(store: &dyn Store, m: crossgate::store::NewMessage) {
    assert_eq!(store.insert_message(m).await.unwrap(), Inserted::New);
}

pub(super) fn profile(phone: &str) -> Profile {
    serde_json::from_value(serde_json::json!({
        "addresses": { "phone": phone, "email": "ana@shop.example" },
        "country": "NL"
    }))
    .unwrap()
}

pub(super) fn new_event(
    id: &str,
    customer: &str,
    name: &str,
    at: i64,
    key: Option<&str>,
) -> NewEvent {
    NewEvent {
        id: id.into(),
        customer_id: customer.into(),
        name: name.into(),
        properties: r#"{"total":42}"#.into(),
        occurred_at: at,
        received_at: at,
        idempotency_key: key.map(str::to_owned),
    }
}

pub(super) fn new_run(id: &str, customer: &str, wake_at: Option<i64>) -> RunRecord {
    RunRecord {
        id: id.into(),
        journey: "welcome".into(),
        version: "v1".into(),
        customer_id: customer.into(),
        status: "active".into(),
        state: r#"{"step":1}"#.into(),
        wake_at,
        revision: 1,
        started_at: 1_000,
        updated_at: 1_000,
    }
}

/// Retention ends at `messages` for messages and at `events` for events.
fn horizon(messages: i64, events: i64) -> Horizon {
    Horizon { messages, events }
}
