//! What keeps the store from growing for ever: idempotency and dedup keys
//! past their window, and history past `[retention]`.
//!
//! History goes a short batch at a time, each batch one write of the
//! store, with a pause between them: on SQLite every write shares one
//! writer with the API, and a year of history deleted in one transaction
//! would hold every `202` behind it.

use crate::config::RetentionConfig;
use crate::every::Every;
use crate::store::{self, Purged, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often expired keys and old history are looked for.
const PURGE_EVERY: Duration = Duration::from_secs(60);
/// Messages (and events) deleted per write.
const BATCH: usize = 500;
/// Between two batches, so the API's writes are never queued behind many.
const PAUSE: Duration = Duration::from_millis(20);

/// Purge expired keys and old history every minute until `stop`.
pub async fn run(store: Arc<dyn Store>, retention: RetentionConfig, stop: watch::Receiver<bool>) {
    let mut every = Every::new(PURGE_EVERY, stop.clone());
    while every.tick().await {
        let now = store::now_ms();
        match store.purge_expired_keys(now).await {
            Ok(0) => {}
            Ok(purged) => tracing::debug!(purged, "expired keys purged"),
            Err(e) => tracing::warn!("cannot purge expired keys: {e}"),
        }
        match purge_history(&*store, &retention, now, &stop).await {
            Ok(Purged {
                messages: 0,
                events: 0,
            }) => {}
            Ok(purged) => tracing::info!(
                messages = purged.messages,
                events = purged.events,
                "history past retention purged"
            ),
            Err(e) => tracing::warn!("cannot purge old history: {e}"),
        }
    }
}

/// Everything past retention at `now`, a batch at a time; what it deleted.
pub async fn purge_history(
    store: &dyn Store,
    retention: &RetentionConfig,
    now: i64,
    stop: &watch::Receiver<bool>,
) -> Result<Purged, store::StoreError> {
    let messages_before = now.saturating_sub(retention.messages);
    let events_before = now.saturating_sub(retention.events);
    let mut total = Purged::default();
    while !*stop.borrow() {
        let batch = store
            .purge_history(messages_before, events_before, BATCH)
            .await?;
        total.messages += batch.messages;
        total.events += batch.events;
        if batch.messages < BATCH && batch.events < BATCH {
            break;
        }
        tokio::time::sleep(PAUSE).await;
    }
    Ok(total)
}
