//! Live feed streams: one node's open streams, by customer. The store says
//! what changed in any feed (on PostgreSQL every node's changes, through
//! `LISTEN/NOTIFY`; on SQLite this process's); the hub wakes only the
//! streams of that customer, so a node with thousands of open streams does
//! one map lookup per change, not a wake-up per stream.

use crate::store::Store;
use crate::store::feed::FeedChange;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, watch};

/// What a stream is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// A new item: send it, then the counts.
    Item(String),
    /// Send the counts again.
    Counts,
}

/// How many signals one customer's streams may fall behind before they
/// resync (send their counts again).
const PER_CUSTOMER: usize = 64;

pub struct Hub {
    customers: Mutex<HashMap<String, broadcast::Sender<Signal>>>,
    open: AtomicUsize,
    max_streams: usize,
    /// Turns true at shutdown: every stream ends, so the server can drain.
    closing: watch::Sender<bool>,
    metrics: Arc<crate::metrics::Metrics>,
}

/// One open stream's place in the hub; leaving it (drop) frees the place.
pub struct Subscription {
    hub: Arc<Hub>,
    customer_id: String,
    pub signals: broadcast::Receiver<Signal>,
    pub closing: watch::Receiver<bool>,
}

impl Hub {
    /// A hub fed by `store`'s changes until the store closes.
    pub fn start(
        store: &dyn Store,
        max_streams: usize,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Arc<Hub> {
        let hub = Arc::new(Hub {
            customers: Mutex::default(),
            open: AtomicUsize::new(0),
            max_streams,
            closing: watch::channel(false).0,
            metrics,
        });
        let mut changes = store.feed_changes();
        let weak = Arc::downgrade(&hub);
        tokio::spawn(async move {
            loop {
                let change = changes.recv().await;
                let Some(hub) = weak.upgrade() else { return };
                match change {
                    Ok(change) => hub.tell(change),
                    // Changes were missed: every stream counts again.
                    Err(broadcast::error::RecvError::Lagged(_)) => hub.tell(FeedChange::Resync),
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        hub
    }

    fn tell(&self, change: FeedChange) {
        let customers = self.customers.lock().unwrap_or_else(|e| e.into_inner());
        let (customer_id, signal) = match change {
            FeedChange::Item {
                customer_id,
                item_id,
            } => (customer_id, Signal::Item(item_id)),
            FeedChange::Marked { customer_id } => (customer_id, Signal::Counts),
            FeedChange::Resync => {
                for sender in customers.values() {
                    let _ = sender.send(Signal::Counts);
                }
                return;
            }
        };
        if let Some(sender) = customers.get(&customer_id) {
            let _ = sender.send(signal);
        }
    }

    /// A place for one more stream of `customer_id`; `None` when this node
    /// serves `[inbox] max_streams` already.
    pub fn subscribe(self: &Arc<Self>, customer_id: &str) -> Option<Subscription> {
        let taken = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_streams).then_some(n + 1)
            });
        if taken.is_err() {
            return None;
        }
        self.metrics.feed_stream(1);
        let signals = self
            .customers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(customer_id.to_owned())
            .or_insert_with(|| broadcast::channel(PER_CUSTOMER).0)
            .subscribe();
        Some(Subscription {
            hub: self.clone(),
            customer_id: customer_id.to_owned(),
            signals,
            closing: self.closing.subscribe(),
        })
    }

    /// End every stream (shutdown); no new one starts.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut customers = self.hub.customers.lock().unwrap_or_else(|e| e.into_inner());
        // This stream's receiver is still alive: it is the last one when it
        // is the only one.
        if customers
            .get(&self.customer_id)
            .is_some_and(|sender| sender.receiver_count() <= 1)
        {
            customers.remove(&self.customer_id);
        }
        drop(customers);
        self.hub.open.fetch_sub(1, Ordering::AcqRel);
        self.hub.metrics.feed_stream(-1);
    }
}
