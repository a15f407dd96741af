//! Writes that arrive together share one statement and one commit: the
//! PostgreSQL counterpart of SQLite's group commit. A writer task takes
//! what is waiting, writes it as the rows of one statement, and answers
//! each caller once it is committed. A busy node so pays one round trip,
//! one statement and one commit for many messages or attempts.

use super::StoreError;
use crate::store::Result;
use async_trait::async_trait;
use deadpool_postgres::{Object, Pool};
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Rows in one statement at most.
const MAX_BATCH: usize = 128;

/// One kind of write that can be batched.
#[async_trait]
pub trait Batch: Send + Sync + 'static {
    type Item: Send + Sync + 'static;
    type Out: Send + 'static;

    /// Items with the same key never share a statement (one row per
    /// message: a statement may update a row once).
    fn key(item: &Self::Item) -> &str;

    /// Write `items` as one statement; one answer per item, in order.
    async fn write(&self, db: &Object, items: &[&Self::Item]) -> Result<Vec<Self::Out>>;
}

type Waiting<B> = (
    <B as Batch>::Item,
    oneshot::Sender<Result<<B as Batch>::Out>>,
);

/// The handle the store keeps; its writer task ends when it is dropped.
pub struct Batcher<B: Batch> {
    queue: mpsc::UnboundedSender<Waiting<B>>,
}

impl<B: Batch> Batcher<B> {
    pub fn start(pool: Pool, batch: B) -> Self {
        let (queue, waiting) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(pool, Arc::new(batch), waiting));
        Batcher { queue }
    }

    /// Write `item` with whatever else is waiting; answers once committed.
    pub async fn submit(&self, item: B::Item) -> Result<B::Out> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((item, reply))
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

async fn write_loop<B: Batch>(
    pool: Pool,
    batch: Arc<B>,
    mut waiting: mpsc::UnboundedReceiver<Waiting<B>>,
) {
    while let Some(first) = waiting.recv().await {
        let mut pending = vec![first];
        while pending.len() < MAX_BATCH {
            match waiting.try_recv() {
                Ok(next) => pending.push(next),
                Err(_) => break,
            }
        }
        while !pending.is_empty() {
            let mut seen = HashSet::new();
            let (now, later): (Vec<_>, Vec<_>) = pending
                .into_iter()
                .partition(|(item, _)| seen.insert(B::key(item).to_owned()));
            write(&pool, batch.as_ref(), now).await;
            pending = later;
        }
    }
}

/// One statement for all; if it fails, one per item, so a bad row costs
/// its own write, not its neighbours'.
async fn write<B: Batch>(pool: &Pool, batch: &B, waiting: Vec<Waiting<B>>) {
    let items: Vec<&B::Item> = waiting.iter().map(|(item, _)| item).collect();
    let together = match pool.get().await {
        Ok(db) => batch.write(&db, &items).await,
        Err(e) => Err(e.into()),
    };
    match together {
        Ok(outs) => {
            for ((_, reply), out) in waiting.into_iter().zip(outs) {
                let _ = reply.send(Ok(out));
            }
        }
        Err(e) if waiting.len() == 1 => {
            if let Some((_, reply)) = waiting.into_iter().next() {
                let _ = reply.send(Err(e));
            }
        }
        Err(e) => {
            tracing::warn!(
                rows = waiting.len(),
                "a batched write failed ({e}); writing its rows one by one"
            );
            for (item, reply) in waiting {
                let alone = match pool.get().await {
                    Ok(db) => batch.write(&db, &[&item]).await,
                    Err(e) => Err(e.into()),
                };
                let _ = reply.send(alone.and_then(|outs| {
                    outs.into_iter()
                        .next()
                        .ok_or_else(|| StoreError::Corrupt("a write answered nothing".into()))
                }));
            }
        }
    }
}
