//! Attempts that finish about together are recorded together.
//!
//! At a few thousand messages a second, a store write per attempt meant a
//! place in SQLite's writer queue, a savepoint, a commit's share and a
//! wake-up each. Here every attempt that is ready when the previous batch
//! is done goes in the next one: one store write, one wake of the
//! dispatcher. An attempt keeps its dispatch slot until its record is
//! written, so the unrecorded never outgrow `dispatch.concurrency`.

use crate::clock::Clock;
use crate::message::Channel;
use crate::metrics::Metrics;
use crate::store::{AttemptResult, Next, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, mpsc};
use tokio::task::JoinHandle;

/// The most attempts recorded in one write.
const MAX_BATCH: usize = 256;

/// An attempt waiting for its record, with the slot it holds.
struct Finished {
    result: AttemptResult,
    /// Held, not read: dropped once the record is written.
    slot: OwnedSemaphorePermit,
}

/// Where attempts hand their results; once every copy is dropped, the
/// recorder writes what it holds and ends.
#[derive(Clone)]
pub struct Recorder {
    queue: mpsc::UnboundedSender<Finished>,
}

impl Recorder {
    pub fn start(
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        wake: Arc<Notify>,
        clock: Arc<Clock>,
    ) -> (Recorder, JoinHandle<()>) {
        let (queue, finished) = mpsc::unbounded_channel();
        let task = tokio::spawn(record(store, metrics, wake, clock, finished));
        (Recorder { queue }, task)
    }

    /// Queue `result` for the next batch; `slot` is freed once it is written.
    pub fn record(&self, result: AttemptResult, slot: OwnedSemaphorePermit) {
        if self.queue.send(Finished { result, slot }).is_err() {
            // Only after the recorder's task ended (shutdown): the lease runs
            // out and the delivery is attempted again under the same id.
            tracing::error!("attempt finished after the recorder stopped; not recorded");
        }
    }
}

async fn record(
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
    clock: Arc<Clock>,
    mut finished: mpsc::UnboundedReceiver<Finished>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while finished.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (results, slots): (Vec<_>, Vec<_>) =
            batch.drain(..).map(|f| (f.result, f.slot)).unzip();
        // A retry or a fallback makes work due: the dispatcher looks again.
        let due = results.iter().any(|r| !matches!(r.next, Next::Sent { .. }));
        write(&*store, &metrics, &clock, results).await;
        drop(slots);
        if due {
            wake.notify_one();
        }
    }
}

/// First wait before writing again what the store could not take.
const FIRST_PAUSE: Duration = Duration::from_millis(50);
/// Longest wait between two tries.
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// Record `results`; those the store could not take for a passing reason
/// (a database restarting, a full disk) are written again as soon as it
/// takes them, while their lease holds: a record written in time stops the
/// delivery from being sent a second time a whole lease later. Past the
/// lease another node may be attempting it already, and the record is only
/// history; it is tried once more then and given up.
async fn write(
    store: &dyn Store,
    metrics: &Metrics,
    clock: &Clock,
    mut results: Vec<AttemptResult>,
) {
    let mut pause = FIRST_PAUSE;
    loop {
        let labels: Vec<(Channel, String)> = results
            .iter()
            .map(|r| (r.attempt.channel, r.attempt.connector.clone()))
            .collect();
        let answers = store.record_attempts(results.clone()).await;
        let now = clock.now();
        let mut again = Vec::new();
        for ((result, (channel, connector)), answer) in results.into_iter().zip(labels).zip(answers)
        {
            match answer {
                Ok(Some(ended)) => metrics.finished(channel.as_str(), &connector, ended.as_str()),
                Ok(None) => {}
                Err(e) if e.is_transient() && now < result.lease_until => {
                    crate::store::outage_log::transient(&e);
                    again.push(result);
                }
                // The lease runs out and the delivery is attempted again:
                // the provider may see it twice, under the same message id.
                Err(e) => tracing::error!(%connector, "cannot record attempt: {e}"),
            }
        }
        if again.is_empty() {
            return;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
        results = again;
    }
}
