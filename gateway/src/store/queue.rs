//! The delivery queue: leasing due deliveries and recording what their
//! attempts did.

use super::error::Result;
use super::messages::AttemptRecord;
use crate::message::{Channel, Content, MessageStatus};
use async_trait::async_trait;

/// A delivery leased to this node: nobody else works on it until `lease_until`.
#[derive(Debug, Clone)]
pub struct LeasedDelivery {
    pub delivery_id: i64,
    pub message_id: String,
    pub channel: Channel,
    pub connector: String,
    pub address: String,
    pub content: Content,
    /// Attempts already made on this delivery.
    pub attempts: u32,
    /// Attempts already made on the whole message, all deliveries together.
    pub message_attempts: u32,
    pub lease_until: i64,
    pub created_at: i64,
    /// The message's ttl runs out then: no retry is scheduled past it.
    pub expires_at: Option<i64>,
    /// Escalation after this delivery is sent ([`crate::store::NewDelivery::escalate_after`]).
    pub escalate_after: Option<i64>,
    /// The message's category (a feed item shows it).
    pub category: Option<String>,
}

/// The queue as `/metrics` shows it.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueHealth {
    pub oldest_due_at: Option<i64>,
    pub outbox: u64,
}

/// What the dispatcher decided after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// The provider took the message (or, on a feed channel, the gateway
    /// delivered it: then the message is `delivered`, not `sent`). With
    /// `escalate_at`, the message's next delivery goes then unless the
    /// message is read first.
    Sent {
        provider_message_id: String,
        /// The ids of its further parts, when the provider split it.
        parts: Vec<String>,
        delivered: bool,
        escalate_at: Option<i64>,
    },
    /// Try the same connector again at this time.
    RetryAt(i64),
    /// This delivery is done for: take the message's next delivery, or end
    /// the message in `ending` (`failed`, or `expired` when its ttl ran out
    /// before another try) with this reason when none is left.
    GiveUp {
        reason: String,
        ending: MessageStatus,
    },
}

impl Next {
    /// The delivery's state once this is recorded.
    pub fn delivery_state(&self) -> crate::message::DeliveryState {
        use crate::message::DeliveryState;
        match self {
            Next::Sent { .. } => DeliveryState::Sent,
            Next::RetryAt(_) => DeliveryState::Pending,
            Next::GiveUp { .. } => DeliveryState::Failed,
        }
    }

    /// When the delivery is due again: only a retry is.
    pub fn retry_at(&self) -> Option<i64> {
        match self {
            Next::RetryAt(at) => Some(*at),
            _ => None,
        }
    }
}

/// A node's ask for work it will hold a while (deliveries, status
/// callbacks, events, journey timers): up to `limit` items due at `now`,
/// each held until [`Lease::until`] before another node may take it over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub now: i64,
    pub limit: usize,
    /// How long each item is held, in milliseconds.
    pub ms: i64,
}

impl Lease {
    pub fn new(now: i64, limit: usize, ms: u64) -> Lease {
        Lease {
            now,
            limit,
            ms: i64::try_from(ms).unwrap_or(i64::MAX),
        }
    }

    /// When what this lease takes may be taken over.
    pub fn until(&self) -> i64 {
        self.now.saturating_add(self.ms)
    }

    /// `limit` as SQL binds it.
    pub fn limit_sql(&self) -> i64 {
        i64::try_from(self.limit).unwrap_or(i64::MAX)
    }
}

/// One finished attempt and its consequence, written in one transaction.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub delivery_id: i64,
    pub message_id: String,
    /// The lease the attempt ran under; a stale lease updates nothing but history.
    pub lease_until: i64,
    pub attempt: AttemptRecord,
    pub next: Next,
}

/// Why an attempt whose lease ran out is recorded as `interrupted`.
pub(crate) fn interrupted_message(lease_until: Option<i64>) -> String {
    let until = lease_until
        .and_then(|at| jiff::Timestamp::from_millisecond(at).ok())
        .map(|t| format!(" (it ran until {t})"))
        .unwrap_or_default();
    format!(
        "the lease of this attempt ran out{until} before its outcome was recorded: the node \
         making it stopped or stalled; the provider may have the message"
    )
}

/// The queue every node leases deliveries from and records attempts to.
#[async_trait]
pub trait QueueStore: Send + Sync {
    /// Lease up to `limit` deliveries that are due, or whose lease expired.
    async fn lease_due(&self, lease: Lease) -> Result<Vec<LeasedDelivery>>;

    /// Give a leased delivery back, due at `due_at`, with no attempt made
    /// or counted: its connector's pace has no turn for it sooner
    /// ([`crate::pacing`]). False when the lease was no longer held.
    async fn postpone(&self, delivery_id: i64, lease_until: i64, due_at: i64) -> Result<bool>;

    /// Record an attempt and move the delivery and message on. Returns the
    /// status the message ended in, when this attempt ended it.
    async fn record_attempt(&self, result: AttemptResult) -> Result<Option<MessageStatus>>;

    /// [`Self::record_attempt`] for attempts that finished about together,
    /// each answered on its own, in order: one failing record undoes no
    /// other. By default they go at once, for a store that gathers
    /// concurrent records into one statement (PostgreSQL); the embedded
    /// store writes them in one turn of its writer.
    async fn record_attempts(
        &self,
        results: Vec<AttemptResult>,
    ) -> Vec<Result<Option<MessageStatus>>> {
        futures::future::join_all(results.into_iter().map(|r| self.record_attempt(r))).await
    }

    /// The earliest time a delivery becomes due (or its lease expires).
    async fn next_due_at(&self) -> Result<Option<i64>>;

    /// Deliveries due by `now` and not yet attempted, plus those in flight.
    async fn backlog(&self, now: i64) -> Result<u64>;

    /// When the oldest delivery due by `now` became due, and how many status
    /// callbacks wait: for `/metrics`.
    async fn queue_health(&self, now: i64) -> Result<QueueHealth>;
}

/// [`QueueStore::postpone`]'s statement, the same in both stores: `$1` due
/// at, `$2` the delivery, `$3` the lease it must still hold.
pub(crate) const POSTPONE: &str = "UPDATE deliveries SET state = 'pending', lease_until = NULL,
     due_at = $1 WHERE id = $2 AND state = 'leased' AND lease_until = $3";
