//! What keeps the store from growing for ever: idempotency and dedup keys
//! and consent requests past their window, and history past `[retention]` (callbacks given up on
//! and campaign refusals go with the messages; conversions, superseded
//! journey runs and experiment arms with the events).
//!
//! Both go a short batch at a time, each batch one write of the store,
//! with a pause between them: on SQLite every write shares one writer with
//! the API, and a day of expired keys or a year of history deleted in one
//! transaction would hold every `202` behind it.

use crate::config::RetentionConfig;
use crate::every::Every;
use crate::store::{Horizon, Purged, Store, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often expired keys and old history are looked for.
const PURGE_EVERY: Duration = Duration::from_secs(60);
/// Rows of each kind deleted per write.
const BATCH: usize = 500;
/// Between two batches, so the API's writes are never queued behind many.
const PAUSE: Duration = Duration::from_millis(20);

/// Purge expired keys and old history every minute until `stop`.
pub async fn run(
    store: Arc<dyn Store>,
    clock: Arc<crate::clock::Clock>,
    retention: RetentionConfig,
    stop: watch::Receiver<bool>,
) {
    let mut every = Every::new(PURGE_EVERY, stop.clone());
    while every.tick().await {
        let now = clock.now();
        let keys = in_batches(&stop, || store.purge_expired_keys(now, BATCH)).await;
        let history = purge_history(&*store, &retention, now, &stop).await;
        for (what, purged) in [("expired keys", keys), ("history past retention", history)] {
            match purged {
                Ok(purged) if purged.is_empty() => {}
                Ok(purged) => tracing::info!(
                    messages = purged.messages,
                    events = purged.events,
                    callbacks = purged.callbacks,
                    conversions = purged.conversions,
                    refusals = purged.refusals,
                    journey_runs = purged.journey_runs,
                    experiment_arms = purged.experiment_arms,
                    idempotency_keys = purged.idempotency_keys,
                    dedup_keys = purged.dedup_keys,
                    consent_requests = purged.consent_requests,
                    "{what} purged"
                ),
                Err(e) => tracing::warn!("cannot purge {what}: {e}"),
            }
        }
    }
}

/// Everything past retention at `now`, a batch at a time; what it deleted.
pub async fn purge_history(
    store: &dyn Store,
    retention: &RetentionConfig,
    now: i64,
    stop: &watch::Receiver<bool>,
) -> Result<Purged, StoreError> {
    let before = Horizon {
        messages: now.saturating_sub(retention.messages),
        events: now.saturating_sub(retention.events),
    };
    in_batches(stop, || store.purge_history(before, BATCH)).await
}

/// Run `batch` until it comes back short of `BATCH` of every kind (or the
/// gateway stops), pausing between batches; the sum of what they deleted.
async fn in_batches<F, Fut>(
    stop: &watch::Receiver<bool>,
    mut batch: F,
) -> Result<Purged, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Purged, StoreError>>,
{
    let mut total = Purged::default();
    while !*stop.borrow() {
        let purged = batch().await?;
        total += purged;
        if !purged.reached(BATCH) {
            break;
        }
        tokio::time::sleep(PAUSE).await;
    }
    Ok(total)
}
