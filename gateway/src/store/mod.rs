//! Durable state: messages, their deliveries and every attempt.
//!
//! [`Store`] is the seam between the gateway and its database: SQLite is the
//! embedded default for one process; PostgreSQL serves several nodes on one
//! database. Both keep the same contract (tests/it/store runs one suite on
//! both) and the same numbered schema ([`migrations`]). Times are
//! milliseconds since the Unix epoch.

pub mod campaigns;
pub mod journeys;
pub mod migrations;
pub mod outage_log;
pub(crate) mod postgres;
pub mod replies;
pub mod reports;
pub mod segments;
mod sqlite;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use crate::config::Database;
use std::sync::Arc;

use crate::customer::{Consent, Profile, Suppression};
use crate::message::{Channel, Content, MessageStatus, Outcome};
use async_trait::async_trait;

/// What every store method answers: its value, or why the store could not give it.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What can go wrong in any backend; each backend turns its driver's errors
/// into these.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(String),
    /// The database cannot be reached now; the caller may try again.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database is there but cannot take the request now, for a
    /// reason the backend knows; the caller may try again.
    #[error("{}: {}", .0.reason(), .1)]
    Outage(Outage, String),
    /// Another node's transaction got in the way (a deadlock, a key it took
    /// first); the shared store runs the transaction again.
    #[error("conflict with another node: {0}")]
    Conflict(String),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("the store is shut down")]
    Closed,
    /// The database was written by a newer build.
    #[error("{0}")]
    TooNew(String),
}

/// How long one statement of a report or a segment count may run: past it
/// the request gets `503` and asks for less, and the database is free again.
pub const ANALYTICS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl StoreError {
    /// What kind of failure it is, in words an operator reads in an answer
    /// or a log line.
    pub fn reason(&self) -> &'static str {
        match self {
            StoreError::Outage(outage, _) => outage.reason(),
            StoreError::Unavailable(_) => "the database cannot be reached",
            StoreError::Conflict(_) => "a conflict with another node",
            StoreError::Closed => "the gateway is shutting down",
            StoreError::Database(_) => "a database error",
            StoreError::Corrupt(_) => "stored data is unreadable",
            StoreError::TooNew(_) => "the database is newer than this build",
        }
    }

    /// Whether the same request later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_)
                | StoreError::Outage(..)
                | StoreError::Conflict(_)
                | StoreError::Closed
        )
    }
}

/// Why a database that is there cannot take a request now, as each
/// backend reads it from its driver's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    DiskFull,
    /// The server is shutting down or starting (PostgreSQL 57P01-57P03).
    Restarting,
    /// A report or count ran past [`ANALYTICS_TIMEOUT`].
    TimeLimit,
    /// Out of memory, connections or another resource, or an I/O error.
    Resources,
}

impl Outage {
    pub fn reason(self) -> &'static str {
        match self {
            Outage::DiskFull => "the disk is full",
            Outage::Restarting => "the database server is restarting",
            Outage::TimeLimit => "the query ran past its time limit",
            Outage::Resources => "the database is out of resources",
        }
    }
}

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

/// What a purge deleted ([`Store::purge_history`] counts messages, events
/// and what goes with them, [`Store::purge_expired_keys`] keys), or a run of
/// them together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub messages: usize,
    pub events: usize,
    /// Status and reply callbacks given up on.
    pub callbacks: usize,
    /// Conversions, which go with the events they were made from.
    pub conversions: usize,
    /// Members campaigns sent nothing to, which go with the messages.
    pub refusals: usize,
    /// Journey runs a later run superseded, which go with the events.
    pub journey_runs: usize,
    pub idempotency_keys: usize,
    pub dedup_keys: usize,
    /// Consent requests whose window ended.
    pub consent_requests: usize,
}

impl Purged {
    /// Whether any kind reached `limit`: more of it may be waiting.
    pub fn reached(&self, limit: usize) -> bool {
        [
            self.messages,
            self.events,
            self.callbacks,
            self.conversions,
            self.refusals,
            self.journey_runs,
            self.idempotency_keys,
            self.dedup_keys,
            self.consent_requests,
        ]
        .into_iter()
        .any(|n| n >= limit)
    }

    pub fn is_empty(&self) -> bool {
        *self == Purged::default()
    }
}

impl std::ops::AddAssign for Purged {
    fn add_assign(&mut self, other: Purged) {
        self.messages += other.messages;
        self.events += other.events;
        self.callbacks += other.callbacks;
        self.conversions += other.conversions;
        self.refusals += other.refusals;
        self.journey_runs += other.journey_runs;
        self.idempotency_keys += other.idempotency_keys;
        self.dedup_keys += other.dedup_keys;
        self.consent_requests += other.consent_requests;
    }
}

/// What `POST /v1/cancellations` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CancelReport {
    pub cancelled: Vec<String>,
    /// Messages with the key that could not be cancelled, with their status.
    pub not_cancelled: Vec<(String, MessageStatus)>,
}

/// A status callback waiting to be posted.
#[derive(Debug, Clone)]
pub struct Callback {
    pub id: i64,
    pub message_id: String,
    pub url: String,
    pub payload: String,
    pub attempts: u32,
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

/// One provider report, as shown with the message.
#[derive(Debug, Clone)]
pub struct StatusEventRecord {
    pub at: i64,
    pub state: String,
    pub code: Option<String>,
    pub description: Option<String>,
}

/// A stored customer profile.
#[derive(Debug, Clone)]
pub struct CustomerRecord {
    pub profile: Profile,
    pub created_at: i64,
    pub updated_at: i64,
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
}

/// Whom a send is for.
#[derive(Debug, Clone)]
pub enum Audience {
    Customer(String),
    /// An address in [`crate::customer::address_key`] form.
    Address {
        channel: Channel,
        address: String,
    },
}

/// See [`Store::planning_facts`].
#[derive(Debug, Clone, Default)]
pub struct PlanningFacts {
    /// The customer (none when unknown), or every owner of the address.
    pub profiles: Vec<Profile>,
    pub suppressions: Vec<Suppression>,
    pub recent: u32,
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
    /// The provider took the message.
    Sent { provider_message_id: String },
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

/// Where retention ends: history older than this goes. Messages (with
/// their deliveries, attempts, callbacks given up on and campaign refusals)
/// by when they were created; events (with conversions and superseded
/// journey runs) by when they arrived or ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Horizon {
    pub messages: i64,
    pub events: i64,
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

#[async_trait]
pub trait Store: journeys::JourneyStore + campaigns::CampaignStore + Send + Sync + 'static {
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

    /// Lease up to `limit` deliveries that are due, or whose lease expired.
    async fn lease_due(&self, lease: Lease) -> Result<Vec<LeasedDelivery>>;

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

    /// Whether the store can be read and written now: for `/readyz`.
    async fn ping(&self, now: i64) -> Result<()>;

    /// Keep a message's request for its customer's consent, awaiting a YES.
    async fn request_consent(
        &self,
        request: crate::customer::double_opt_in::ConsentRequest,
    ) -> Result<()>;

    /// A YES from `address` on `channel` at `now`: the latest open request
    /// of a customer who owns the address, whose message reached them on
    /// that channel, is confirmed and its consent granted; what it granted.
    async fn confirm_consent(
        &self,
        channel: Channel,
        address: &str,
        now: i64,
    ) -> Result<Option<crate::customer::double_opt_in::Confirmed>>;

    /// Take `key` (in the idempotency keys' table, purged with them once
    /// `expires_at` passes); `false` when it is already taken.
    async fn claim_key(&self, key: &str, expires_at: i64) -> Result<bool>;

    /// Give up a key [`Store::claim_key`] took, so the same request can be taken again.
    async fn release_key(&self, key: &str) -> Result<()>;

    /// The secret stored under `name`; `candidate` becomes it when there is
    /// none yet. Every node asks with a candidate of its own and all get the
    /// first one stored.
    async fn shared_secret(&self, name: &str, candidate: &str, now: i64) -> Result<String>;

    /// Lease up to `limit` status callbacks that are due.
    async fn lease_callbacks(&self, lease: Lease) -> Result<Vec<Callback>>;

    /// A callback was posted (`retry_at: None`), or is to be tried again, or
    /// given up (`give_up`).
    async fn finish_callback(&self, id: i64, retry_at: Option<i64>, give_up: bool) -> Result<()>;

    /// Forget up to `limit` idempotency keys and `limit` dedup keys whose
    /// window has passed at `now`; how many went. Called until it purges
    /// less than `limit` of each, so one call is one short write.
    async fn purge_expired_keys(&self, now: i64, limit: usize) -> Result<Purged>;

    /// Delete up to `limit` finished messages created before
    /// `before.messages` (with their deliveries, attempts and status
    /// history), up to `limit` applied events received before
    /// `before.events`, up to `limit` conversions that occurred before
    /// `before.events`, up to `limit` callbacks given up on whose last
    /// attempt was due before `before.messages`, up to `limit` campaign
    /// refusals made before `before.messages` and up to `limit` superseded
    /// journey runs that ended before `before.events`, oldest first. Open
    /// messages, unapplied events, callbacks still to be tried, active runs
    /// and each customer's latest run of a journey stay whatever their age.
    /// Called until it purges less than `limit` of each, so one call is one
    /// short write.
    async fn purge_history(&self, before: Horizon, limit: usize) -> Result<Purged>;

    /// Create or replace a profile; `true` when it was created.
    async fn put_customer(&self, id: &str, profile: Profile, now: i64) -> Result<bool>;

    async fn customer(&self, id: &str) -> Result<Option<CustomerRecord>>;

    /// Change consent only; `None` when there is no such customer.
    async fn update_consent(
        &self,
        id: &str,
        changes: Vec<(Channel, String, Consent)>,
        now: i64,
    ) -> Result<Option<Profile>>;

    /// Erase a profile and the addresses its messages were sent to; `false`
    /// when there was none.
    async fn delete_customer(&self, id: &str, now: i64) -> Result<bool>;

    /// Record what a provider reported about a message it accepted, moving
    /// the status forward (`sent` -> `delivered` -> `read`, never back).
    /// Returns the message id, or `None` when no message has that provider id.
    async fn apply_provider_status(&self, report: ProviderStatus) -> Result<Option<String>>;

    /// What planning one send needs, read together (one trip to the
    /// store on the accept path): the customer, or the customers who own
    /// the address; the suppressions of the addresses the plan may use; and,
    /// under a frequency cap, how many messages of `category` went to `scope`
    /// since `since`.
    async fn planning_facts(
        &self,
        audience: Audience,
        scope: &str,
        cap: Option<(String, i64)>,
    ) -> Result<PlanningFacts>;

    /// The suppression-list entries of these addresses ([`crate::customer::address_key`] form).
    async fn suppressions(&self, addresses: Vec<(Channel, String)>) -> Result<Vec<Suppression>>;

    /// Add an automatic suppression (opt-out, bounce, dead address). An
    /// entry for a person's own wish (opt-out, staff) is never replaced by a
    /// deliverability one. Returns whether the entry was written.
    async fn suppress(&self, suppression: Suppression) -> Result<bool>;

    /// Support staff: create or replace an entry; `true` when it was created.
    async fn put_suppression(&self, suppression: Suppression) -> Result<bool>;

    /// Remove an address's entry, only when it has `reason` if one is given
    /// (a START lifts an opt-out, not a bounce). `true` when one was removed.
    async fn delete_suppression(
        &self,
        channel: Channel,
        address: &str,
        reason: Option<crate::customer::SuppressionReason>,
    ) -> Result<bool>;

    /// An inbound keyword for every customer reached at `address` on
    /// `channel` ([`crate::customer::Profile::apply_keyword`]): STOP
    /// withdraws consent in every category, START lifts only what a STOP
    /// withdrew. Returns how many customers changed.
    async fn consent_by_address(
        &self,
        address: &str,
        channel: Channel,
        categories: Vec<String>,
        consent: Consent,
        now: i64,
    ) -> Result<usize>;

    /// A provider said `address` is dead: drop it from the profile of the
    /// customer `message_id` was for. Returns that customer's id when the
    /// address was there.
    /// Record a customer's reply: a `message.received` event per customer
    /// and, when the platform listens, its callback, in one transaction and
    /// once per provider reply id.
    async fn record_reply(&self, reply: replies::NewReply) -> Result<replies::ReplyRecorded>;

    async fn forget_address(
        &self,
        message_id: &str,
        channel: Channel,
        address: &str,
        now: i64,
    ) -> Result<Option<String>>;
}

/// Open the configured store, bringing its schema up to date.
/// `node` names this process in attempt histories.
pub async fn open(
    database: &Database,
    max_connections: usize,
    node: &str,
    now: i64,
) -> Result<Arc<dyn Store>> {
    Ok(match database {
        Database::Sqlite(path) => Arc::new(SqliteStore::open(path, node, now)?),
        Database::Postgres(url) => Arc::new(PostgresStore::open(url, max_connections, node).await?),
    })
}

/// Where the configured database stands against this build's schema,
/// changing nothing: `crossgate migrate --check`.
pub async fn schema_status(database: &Database) -> Result<migrations::SchemaStatus> {
    match database {
        Database::Sqlite(path) => sqlite::migrations::status(path),
        Database::Postgres(url) => postgres::migrations::status(url).await,
    }
}

/// `('scheduled', 'queued', 'sending')`: messages the gateway still works
/// on, as both stores' SQL spells them.
pub static OPEN: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| MessageStatus::sql_list(MessageStatus::is_open));

/// Whether a cancel takes a message now in `status`: one still open and
/// with no attempt in flight (a leased delivery may already be with its
/// provider; the cancel is reported as too late instead).
fn may_cancel(status: MessageStatus, attempt_in_flight: bool) -> bool {
    status.may_become(MessageStatus::Cancelled) && !attempt_in_flight
}

/// The statuses a frequency cap counts: what is on its way or went out.
fn counted_by_caps() -> String {
    MessageStatus::sql_list(|s| {
        s.is_open()
            || matches!(
                s,
                MessageStatus::Sent | MessageStatus::Delivered | MessageStatus::Read
            )
    })
}

/// The status reason of a message its provider reported undelivered.
fn undelivered_reason(connector: &str, code: Option<&str>) -> String {
    format!(
        "{connector}: the provider reported the message undelivered{}",
        code.map(|c| format!(" ({c})")).unwrap_or_default()
    )
}

/// Why an attempt whose lease ran out is recorded as `interrupted`.
fn interrupted_message(lease_until: Option<i64>) -> String {
    let until = lease_until
        .and_then(|at| jiff::Timestamp::from_millisecond(at).ok())
        .map(|t| format!(" (it ran until {t})"))
        .unwrap_or_default();
    format!(
        "the lease of this attempt ran out{until} before its outcome was recorded: the node \
         making it stopped or stalled; the provider may have the message"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::DeliveryState;

    /// Every delivery state the backends' SQL spells out (`state = 'x'`,
    /// `state IN ('x', 'y')`, a `CASE` choosing one) is one `DeliveryState`
    /// names: a typo or a state only one backend knows fails here. (The
    /// callbacks outbox's statements are passed over: its states are its own.)
    #[test]
    fn the_stores_sql_names_only_delivery_states_the_type_has() {
        let sources = [
            include_str!("sqlite/messages.rs"),
            include_str!("sqlite/queue.rs"),
            include_str!("sqlite/customers.rs"),
            include_str!("sqlite/mod.rs"),
            include_str!("postgres/messages.rs"),
            include_str!("postgres/queue.rs"),
            include_str!("postgres/recorder.rs"),
            include_str!("postgres/customers.rs"),
            include_str!("postgres/mod.rs"),
        ];
        let mut seen = 0;
        for source in sources {
            for (at, _) in source.match_indices("state") {
                // The callbacks outbox has states of its own.
                let statement = &source[source[..at].rfind('"').unwrap_or(0)..at];
                if statement.contains("callbacks_outbox") {
                    continue;
                }
                let rest = source[at + "state".len()..].trim_start();
                let list = if let Some(one) = rest.strip_prefix('=') {
                    one.trim_start()
                        .strip_prefix('\'')
                        .and_then(|s| s.split_once('\''))
                        .map(|(name, _)| vec![name])
                } else if let Some(list) = rest.strip_prefix("IN (") {
                    list.split_once(')').map(|(names, _)| {
                        names
                            .split(',')
                            .map(|n| n.trim().trim_matches('\''))
                            .collect()
                    })
                } else {
                    None
                };
                for name in list.unwrap_or_default() {
                    if name.starts_with('$') || name.starts_with('?') || name.is_empty() {
                        continue;
                    }
                    assert!(
                        name.parse::<DeliveryState>().is_ok(),
                        "{name:?} is not a delivery state"
                    );
                    seen += 1;
                }
            }
            for (at, _) in source.match_indices("WHEN seq = 0 THEN '") {
                let case = &source[at..source[at..].find("END").map_or(at, |end| at + end)];
                for name in case.split('\'').skip(1).step_by(2) {
                    assert!(name.parse::<DeliveryState>().is_ok(), "{name:?}");
                    seen += 1;
                }
            }
        }
        assert!(seen > 20, "the scan found {seen} names: has the SQL moved?");
    }

    #[test]
    fn a_provider_report_moves_a_message_only_forward() {
        let report = |state: &str| ProviderStatus {
            connector: "twilio".into(),
            provider_message_id: "SM1".into(),
            state: state.into(),
            code: Some("30003".into()),
            description: None,
            at: 0,
        };
        assert_eq!(
            report("delivered").moves(MessageStatus::Sent),
            Some((MessageStatus::Delivered, None))
        );
        let (failed, reason) = report("failed").moves(MessageStatus::Sent).unwrap();
        assert_eq!(failed, MessageStatus::Failed);
        assert!(reason.unwrap().contains("(30003)"));
        assert_eq!(report("delivered").moves(MessageStatus::Read), None);
        assert_eq!(
            report("read").moves(MessageStatus::Sending),
            None,
            "still ours"
        );
        assert_eq!(report("queued").moves(MessageStatus::Sent), None);
        assert!(may_cancel(MessageStatus::Queued, false));
        assert!(!may_cancel(MessageStatus::Queued, true), "in flight");
        assert!(!may_cancel(MessageStatus::Sent, false));
    }
}
