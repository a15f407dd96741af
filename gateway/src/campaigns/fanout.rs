//! Broadcast fan-out: one broadcast at a time per node, a page of members
//! at a time, each member sent as any customer send (their channel, consent,
//! quiet hours in their own zone, caps, offer groups).
//!
//! It is the lower-priority lane: it runs on the delivery threads (below the
//! API), at the broadcast's `rate_per_second`, and plans no further page
//! while the delivery backlog is above `broadcasts.max_backlog`, so
//! transactional messages never queue behind a hundred thousand members.
//!
//! The cursor (the last member planned) moves only under the node's lease
//! and after the page is stored; each member's message is keyed by the
//! broadcast and the customer. A crash or another node resumes from the
//! cursor, and a page planned twice sends nobody twice.

use crate::config::BroadcastsConfig;
use crate::store::campaigns::{BroadcastRecord, Progress};
use crate::store::segments::SegmentQuery;
use crate::store::{Store, StoreError};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The most members planned in one page (one write of the store).
const MAX_PAGE: usize = 200;

/// What a broadcast's fan-out needs from the API layer.
#[async_trait]
pub trait Members: Send + Sync {
    /// The broadcast's segment, as the store runs it now, and its pace;
    /// `Ok(Err(why))` when it cannot be planned (its segment is gone).
    async fn plan(
        &self,
        broadcast: &BroadcastRecord,
        now: i64,
    ) -> Result<Result<(SegmentQuery, u32), String>, StoreError>;

    /// Send the broadcast to a page of members; safe to repeat.
    async fn send_page(
        &self,
        broadcast: &BroadcastRecord,
        members: &[String],
        now: i64,
    ) -> Result<(), StoreError>;
}

pub struct Fanout {
    store: Arc<dyn Store>,
    members: Arc<dyn Members>,
    clock: Arc<crate::clock::Clock>,
    config: BroadcastsConfig,
}

impl Fanout {
    pub fn new(
        config: &BroadcastsConfig,
        store: Arc<dyn Store>,
        members: Arc<dyn Members>,
        clock: Arc<crate::clock::Clock>,
    ) -> Self {
        Fanout {
            store,
            members,
            clock,
            config: config.clone(),
        }
    }

    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let idle = Duration::from_millis(self.config.tick_ms);
        while !*stop.borrow() {
            let leased = self
                .store
                .lease_broadcast(self.clock.now(), self.lease_ms())
                .await;
            match leased {
                Ok(Some(broadcast)) => {
                    if let Err(e) = self.fan_out(&broadcast, &stop).await {
                        tracing::warn!(broadcast = %broadcast.id, "fan-out paused: {e}");
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!("cannot lease broadcasts: {e}"),
            }
            tokio::select! {
                _ = tokio::time::sleep(idle) => {}
                _ = stop.changed() => {}
            }
        }
    }

    fn lease_ms(&self) -> i64 {
        self.config.lease_ms as i64
    }

    /// Plan pages until the segment is done, the broadcast is cancelled or
    /// the gateway stops (the lease then runs out and planning resumes).
    async fn fan_out(
        &self,
        broadcast: &BroadcastRecord,
        stop: &watch::Receiver<bool>,
    ) -> Result<(), StoreError> {
        let (query, rate) = match self.members.plan(broadcast, self.clock.now()).await? {
            Ok(plan) => plan,
            Err(why) => {
                tracing::warn!(broadcast = %broadcast.id, "broadcast cancelled: {why}");
                self.store
                    .cancel_broadcast(&broadcast.id, self.clock.now())
                    .await?;
                return Ok(());
            }
        };
        let page_size = (rate as usize).clamp(1, MAX_PAGE);
        let mut cursor = broadcast.cursor.clone();
        while !*stop.borrow() {
            if self.store.backlog(self.clock.now()).await? > self.config.max_backlog {
                // Transactional sends first: hold the page, keep the lease.
                tokio::time::sleep(Duration::from_millis(self.config.tick_ms)).await;
                let now = self.clock.now();
                let held = Progress::held(cursor.clone(), now + self.lease_ms());
                if !self
                    .store
                    .advance_broadcast(&broadcast.id, held, now)
                    .await?
                {
                    return Ok(());
                }
                continue;
            }
            let started = Instant::now();
            let page = self
                .store
                .segment_members(query.clone(), cursor.clone(), page_size)
                .await?;
            self.members
                .send_page(broadcast, &page, self.clock.now())
                .await?;
            let done = page.len() < page_size;
            if let Some(last) = page.last() {
                cursor.clone_from(last);
            }
            let now = self.clock.now();
            let still_on = self
                .store
                .advance_broadcast(
                    &broadcast.id,
                    Progress {
                        cursor: cursor.clone(),
                        planned: page.len() as i64,
                        done,
                        lease_until: now + self.lease_ms(),
                    },
                    now,
                )
                .await?;
            if !still_on {
                // Cancelled while this page was sent: its messages go too.
                let campaign = format!("broadcast:{}", broadcast.id);
                self.store
                    .cancel_campaign(&campaign, self.clock.now())
                    .await?;
                return Ok(());
            }
            if done {
                return Ok(());
            }
            // The page's share of a second at `rate` members per second.
            let pace = Duration::from_secs_f64(page.len() as f64 / f64::from(rate.max(1)));
            tokio::time::sleep(pace.saturating_sub(started.elapsed())).await;
        }
        // Stopping: hand the broadcast over now rather than when the lease
        // runs out, so a restart (or another node) goes on at once.
        let now = self.clock.now();
        let handed_over = Progress::held(cursor, now);
        self.store
            .advance_broadcast(&broadcast.id, handed_over, now)
            .await?;
        Ok(())
    }
}
