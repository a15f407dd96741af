//! Back-pressure: past `server.max_backlog` deliveries waiting, new messages
//! get `429` with `Retry-After` instead of `202`.
//!
//! The API is served ahead of delivery (see `dispatch::runtime`), so under a
//! sustained overload the queue would otherwise grow until the disk fills.
//! A `429` tells the platform to hold the message, and nothing is lost: the
//! request was not stored. The count is sampled, not exact: a burst may
//! overshoot the bound by one interval's worth of messages.

use crate::store::Store;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// How often the backlog is counted.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

pub struct Backlog {
    limit: u64,
    waiting: AtomicU64,
}

impl Backlog {
    pub fn new(limit: u64) -> Self {
        Backlog {
            limit,
            waiting: AtomicU64::new(0),
        }
    }

    /// Deliveries due or in flight at the last count.
    pub fn waiting(&self) -> u64 {
        self.waiting.load(Ordering::Relaxed)
    }

    pub fn is_full(&self) -> bool {
        self.waiting() >= self.limit
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Count the backlog every `SAMPLE_EVERY` until `stop` turns true. A
    /// failed count keeps the last one: an unreadable store shows up as
    /// failing inserts, not as a closed door.
    pub async fn sample(
        self: Arc<Self>,
        store: Arc<dyn Store>,
        clock: Arc<crate::clock::Clock>,
        stop: watch::Receiver<bool>,
    ) {
        let mut every = crate::every::Every::new(SAMPLE_EVERY, stop);
        while every.tick().await {
            match store.backlog(clock.now()).await {
                Ok(waiting) => self.waiting.store(waiting, Ordering::Relaxed),
                Err(e) => tracing::warn!("cannot count the backlog: {e}"),
            }
        }
    }
}
