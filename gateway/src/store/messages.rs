//! What the stores keep of a message: its request, keys, deliveries and
//! history, and the rules both backends apply to it (what a provider's
//! report moves, what a cancel takes, which statuses count).

use super::error::Result;
use crate::message::{Channel, Content, MessageStatus, Outcome};
use async_trait::async_trait;

/// A message as accepted by the API, with the deliveries it may take.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: String,
    pub channel: Channel,
    pub recipient: String,
    /// Whom dedup and cancel keys are counted for: `phone:+31...` or `customer:42`.
    pub scope: String,
    pub content: Content,
    pub created_at: i64,
    /// Held back until then (`scheduled`); `None` sends at once.
    pub send_at: Option<i64>,
    /// Not delivered by then means `expired`.
    pub expires_at: Option<i64>,
    pub cancel_key: Option<String>,
    pub dedup: Option<DedupKey>,
    pub idempotency: Option<IdempotencyKey>,
    /// Where status changes are posted, if anywhere.
    pub callback_url: Option<String>,
    pub customer_id: Option<String>,
    pub category: Option<String>,
    /// The route plan as JSON, for `GET /v1/messages/{id}`.
    pub plan: Option<String>,
    /// For a template send: the template, locale and what each chosen
    /// channel rendered, as JSON, for `GET /v1/messages/{id}`.
    pub template: Option<String>,
    /// What sent it on the platform's behalf (`broadcast:<id>`,
    /// `journey:<name>`): broadcast progress and reports count by it.
    pub campaign: Option<String>,
    /// The routing region it was planned for: reports count by it.
    pub region: Option<String>,
    /// Set when the plan decided not to send: the message is stored as
    /// `suppressed` with this reason and no deliveries.
    pub suppressed: Option<String>,
    /// In order: the first is due at `send_at`, each next one only when the
    /// one before it has failed for good.
    pub deliveries: Vec<NewDelivery>,
}

impl NewMessage {
    /// The status the message is stored with: decided not to send,
    /// held until `send_at`, or due now.
    pub fn initial_status(&self) -> MessageStatus {
        if self.suppressed.is_some() {
            MessageStatus::Suppressed
        } else if self.send_at.is_some_and(|at| at > self.created_at) {
            MessageStatus::Scheduled
        } else {
            MessageStatus::Queued
        }
    }
}

/// At most one message per scope and key until `expires_at`.
#[derive(Debug, Clone)]
pub struct DedupKey {
    pub key: String,
    pub expires_at: i64,
}

/// The platform's retry token: the same key and request get the same answer.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub key: String,
    /// Hash of the canonical request body.
    pub request_hash: String,
    /// The `202` body to replay.
    pub response: String,
    pub expires_at: i64,
}

/// What became of an insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// Stored and durable.
    New,
    /// The idempotency key was used before with the same request: its answer.
    Replayed { response: String },
    /// The idempotency key was used before with a different request.
    KeyReused,
    /// A live message with the same dedup key exists for this scope.
    Duplicate {
        message_id: String,
        status: MessageStatus,
    },
}

/// What `POST /v1/cancellations` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CancelReport {
    pub cancelled: Vec<String>,
    /// Messages with the key that could not be cancelled, with their status.
    pub not_cancelled: Vec<(String, MessageStatus)>,
    /// Of those, messages already sent whose escalation (a later channel
    /// waiting for its time) was cancelled: nothing more of them goes.
    pub escalation_ended: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub channel: Channel,
    pub connector: String,
    pub address: String,
    /// This channel's content, when it differs from the message's.
    pub content: Option<Content>,
    /// The connector's price for it, as planned.
    pub cost: Option<f64>,
    /// Escalation: once sent, the next delivery goes this many
    /// milliseconds later unless the message is read (in-app: seen) by then.
    pub escalate_after: Option<i64>,
    /// The escalation is failover on silence: a report of delivery ends it too.
    pub ends_on_delivery: bool,
}

/// A provider's report on a message it accepted.
#[derive(Debug, Clone)]
pub struct ProviderStatus {
    pub connector: String,
    pub provider_message_id: String,
    /// `sent`, `delivered`, `read` or `failed`.
    pub state: String,
    pub code: Option<String>,
    pub description: Option<String>,
    pub at: i64,
}

impl ProviderStatus {
    /// What this report does to a message now in `status`: its next status
    /// and, when it failed, why; `None` when the report changes nothing.
    /// Only what left the gateway can be moved by its provider, and only
    /// forward (a late `delivered` never undoes a `read`).
    pub fn moves(&self, status: MessageStatus) -> Option<(MessageStatus, Option<String>)> {
        let reported = match self.state.as_str() {
            "delivered" => MessageStatus::Delivered,
            "read" => MessageStatus::Read,
            "failed" => MessageStatus::Failed,
            _ => return None,
        };
        if status.is_open() || !status.may_become(reported) {
            return None;
        }
        let reason = (reported == MessageStatus::Failed)
            .then(|| undelivered_reason(&self.connector, self.code.as_deref()));
        Some((reported, reason))
    }
}

impl ProviderStatus {
    /// Whether moving to `next` ends the message's escalation: once it was
    /// read (an in-app message: seen, which its own channel reports as
    /// `delivered`), no later channel goes.
    pub fn ends_escalation(&self, next: MessageStatus) -> bool {
        next == MessageStatus::Read
            || (next == MessageStatus::Delivered && self.connector == Channel::InApp.as_str())
    }
}

/// What a report of delivery ends: the deliveries not started yet of a
/// message whose sent delivery fails over on silence (`$1` the message id).
pub(crate) static END_ON_DELIVERY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    use crate::message::DeliveryState;
    format!(
        "UPDATE deliveries SET state = '{}' WHERE message_id = $1 AND state IN ('{}', '{}')
           AND EXISTS (SELECT 1 FROM deliveries s WHERE s.message_id = $1 AND s.state = '{}'
                       AND s.escalate_ends = 'delivered')",
        DeliveryState::Cancelled.as_str(),
        DeliveryState::Waiting.as_str(),
        DeliveryState::Pending.as_str(),
        DeliveryState::Sent.as_str(),
    )
});

/// What ends an escalation: the message's deliveries not started yet are
/// cancelled (`$1` the message id; both stores bind it first).
pub(crate) static END_ESCALATION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    use crate::message::DeliveryState;
    format!(
        "UPDATE deliveries SET state = '{}' WHERE message_id = $1 AND state IN ('{}', '{}')",
        DeliveryState::Cancelled.as_str(),
        DeliveryState::Waiting.as_str(),
        DeliveryState::Pending.as_str(),
    )
});

/// One provider report, as shown with the message.
#[derive(Debug, Clone)]
pub struct StatusEventRecord {
    pub at: i64,
    pub state: String,
    pub code: Option<String>,
    pub description: Option<String>,
}

/// A message with its full history, for `GET /v1/messages/{id}`.
#[derive(Debug, Clone)]
pub struct MessageRecord {
    pub id: String,
    pub status: MessageStatus,
    pub status_reason: Option<String>,
    pub channel: Channel,
    pub recipient: String,
    pub created_at: i64,
    pub send_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub cancel_key: Option<String>,
    pub dedup_key: Option<String>,
    pub updated_at: i64,
    pub delivered_by: Option<String>,
    pub delivered_channel: Option<Channel>,
    pub provider_message_id: Option<String>,
    pub customer_id: Option<String>,
    pub category: Option<String>,
    pub plan: Option<String>,
    pub template: Option<String>,
    /// What sent it on the platform's behalf (`broadcast:<id>`, `journey:<name>`).
    pub campaign: Option<String>,
    pub attempts: Vec<AttemptRecord>,
    pub events: Vec<StatusEventRecord>,
}

/// One connector call and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub number: u32,
    pub connector: String,
    pub channel: Channel,
    pub started_at: i64,
    pub finished_at: i64,
    pub outcome: Outcome,
    pub provider_message_id: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// When the next attempt on the same connector is due, for retryable outcomes.
    pub retry_at: Option<i64>,
    /// The node that made it (`server.node_name`), as read back: each store
    /// records its own node's name on write, so the dispatcher leaves it `None`.
    pub node: Option<String>,
}

/// `('scheduled', 'queued', 'sending')`: messages the gateway still works
/// on, as both stores' SQL spells them.
pub static OPEN: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| MessageStatus::sql_list(MessageStatus::is_open));

/// Whether a cancel takes a message now in `status`: one still open and
/// with no attempt in flight (a leased delivery may already be with its
/// provider; the cancel is reported as too late instead).
pub(crate) fn may_cancel(status: MessageStatus, attempt_in_flight: bool) -> bool {
    status.may_become(MessageStatus::Cancelled) && !attempt_in_flight
}

/// Whether a cancel that cannot take a message in `status` still ends its
/// escalation: it went already, but a later channel waits (`waiting`) for
/// its time, and the cancel says the platform wants nothing more of it.
pub(crate) fn ends_escalation_on_cancel(status: MessageStatus, waiting: bool) -> bool {
    waiting && status.is_final() && status != MessageStatus::Suppressed
}

/// The statuses a frequency cap counts: what is on its way or went out.
pub(crate) fn counted_by_caps() -> String {
    MessageStatus::sql_list(|s| {
        s.is_open()
            || matches!(
                s,
                MessageStatus::Sent | MessageStatus::Delivered | MessageStatus::Read
            )
    })
}

/// The status reason of a message its provider reported undelivered.
pub(crate) fn undelivered_reason(connector: &str, code: Option<&str>) -> String {
    format!(
        "{connector}: the provider reported the message undelivered{}",
        code.map(|c| format!(" ({c})")).unwrap_or_default()
    )
}

/// Messages: stored once (keys), read, cancelled and moved by their providers' reports.
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Store a message and its deliveries durably, unless its idempotency or
    /// dedup key says otherwise; returns once committed.
    async fn insert_message(&self, message: NewMessage) -> Result<Inserted>;

    /// Store many messages (a broadcast's page), each as `insert_message`
    /// would; the answers in the same order. A backend may write them in
    /// one transaction.
    async fn insert_messages(&self, messages: Vec<NewMessage>) -> Result<Vec<Inserted>> {
        futures::future::try_join_all(messages.into_iter().map(|m| self.insert_message(m))).await
    }

    /// Cancel every pending or scheduled message of `scope` with `cancel_key`.
    async fn cancel(&self, scope: &str, cancel_key: &str, now: i64) -> Result<CancelReport>;

    async fn message(&self, id: &str) -> Result<Option<MessageRecord>>;

    /// Messages as [`super::search::MessageQuery`] asks, newest first.
    async fn search_messages(
        &self,
        query: super::search::MessageQuery,
    ) -> Result<Vec<super::search::MessageSummary>>;

    /// Record what a provider reported about a message it accepted, moving
    /// the status forward (`sent` -> `delivered` -> `read`, never back).
    /// Returns the message id, or `None` when no message has that provider id.
    async fn apply_provider_status(&self, report: ProviderStatus) -> Result<Option<String>>;

    /// Take `key` (in the idempotency keys' table, purged with them once
    /// `expires_at` passes); `false` when it is already taken.
    async fn claim_key(&self, key: &str, expires_at: i64) -> Result<bool>;

    /// Give up a key [`Store::claim_key`] took, so the same request can be taken again.
    async fn release_key(&self, key: &str) -> Result<()>;
}
