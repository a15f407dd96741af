//! The status-callback outbox: written with the change it reports,
//! drained by whichever node leases a row first.

use super::error::Result;
use super::queue::Lease;
use async_trait::async_trait;

/// A status callback waiting to be posted.
#[derive(Debug, Clone)]
pub struct Callback {
    pub id: i64,
    pub message_id: String,
    pub url: String,
    pub payload: String,
    pub attempts: u32,
}

/// One status callback of a message, as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackRecord {
    pub url: String,
    pub payload: String,
    /// `pending`, `leased`, `done` or `abandoned`.
    pub state: String,
    pub attempts: u32,
    /// When it was (or is) due.
    pub due_at: i64,
}

/// [`OutboxStore::callbacks_of`]' statement, the same in both stores.
pub(crate) const OF_MESSAGE: &str = "SELECT url, payload, state, attempts, due_at
     FROM callbacks_outbox WHERE message_id = $1 ORDER BY id";

/// Status callbacks waiting to be posted.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// A message's status callbacks, first first (an index finds them).
    async fn callbacks_of(&self, message_id: &str) -> Result<Vec<CallbackRecord>>;

    /// Lease up to `limit` status callbacks that are due.
    async fn lease_callbacks(&self, lease: Lease) -> Result<Vec<Callback>>;

    /// A callback was posted (`retry_at: None`), or is to be tried again, or
    /// given up (`give_up`).
    async fn finish_callback(&self, id: i64, retry_at: Option<i64>, give_up: bool) -> Result<()>;
}
