//! Durable state: messages, their deliveries and every attempt.
//!
//! [`Store`] is the seam between the gateway and its database. SQLite is the
//! embedded default; a shared backend for several nodes implements the same
//! trait. Times are milliseconds since the Unix epoch.

mod schema;
mod sqlite;

pub use sqlite::SqliteStore;

use crate::message::{Channel, Content, MessageStatus, Outcome};
use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("the store is shut down")]
    Closed,
}

/// A message as accepted by the API, with the deliveries it may take.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: String,
    pub channel: Channel,
    pub recipient: String,
    pub content: Content,
    pub created_at: i64,
    /// In order: the first is due at once, each next one only when the one
    /// before it has failed for good.
    pub deliveries: Vec<NewDelivery>,
}

#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub channel: Channel,
    pub connector: String,
    pub address: String,
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
    pub updated_at: i64,
    pub delivered_by: Option<String>,
    pub provider_message_id: Option<String>,
    pub attempts: Vec<AttemptRecord>,
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
}

/// What the dispatcher decided after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// The provider took the message.
    Sent { provider_message_id: String },
    /// Try the same connector again at this time.
    RetryAt(i64),
    /// This delivery is done for: take the message's next delivery, or fail
    /// the message with this reason when none is left.
    GiveUp { reason: String },
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
pub trait Store: Send + Sync + 'static {
    /// Store a message and its deliveries durably; returns once committed.
    async fn insert_message(&self, message: NewMessage) -> Result<(), StoreError>;

    async fn message(&self, id: &str) -> Result<Option<MessageRecord>, StoreError>;

    /// Lease up to `limit` deliveries that are due, or whose lease expired.
    async fn lease_due(
        &self,
        now: i64,
        limit: usize,
        lease_ms: u64,
    ) -> Result<Vec<LeasedDelivery>, StoreError>;

    /// Record an attempt and move the delivery and message on.
    async fn record_attempt(&self, result: AttemptResult) -> Result<(), StoreError>;

    /// The earliest time a delivery becomes due (or its lease expires).
    async fn next_due_at(&self) -> Result<Option<i64>, StoreError>;
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}
