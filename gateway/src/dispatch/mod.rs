//! Delivery workers: lease due deliveries, call the connector, record the
//! attempt, and decide what comes next (retry later, fall back, done).

mod recorder;
mod retry;
pub mod runtime;

pub use retry::{Budget, backoff, decide, exponential_ms};

use crate::config::{Config, DispatchConfig};
use crate::customer::{Suppression, address_key};
use crate::health::Admission;
use crate::live::Live;
use crate::message::Outcome;
use crate::metrics::Metrics;
use crate::pacing::Turn;
use crate::plugins::{Delivered, Failure, Outgoing};
use crate::store::{AttemptRecord, AttemptResult, Lease, LeasedDelivery, Next, Store};
use recorder::Recorder;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument as _;

/// The longest the dispatcher sleeps without looking for due work.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// The most deliveries leased in one transaction.
const LEASE_BATCH: usize = 256;

pub struct Dispatcher {
    store: Arc<dyn Store>,
    /// Connectors and their plugins, as of the latest reload.
    live: Arc<Live>,
    config: DispatchConfig,
    wake: Arc<Notify>,
    metrics: Arc<Metrics>,
    clock: Arc<crate::clock::Clock>,
    /// Delivers the channels the gateway serves itself (inbox, in-app).
    feed: crate::feed::Deliverer,
    /// Skips connectors whose circuit is open; counts every attempt.
    health: Arc<crate::health::Health>,
    /// Rate-limited connectors' turns.
    pacing: crate::pacing::Pacing,
}

impl Dispatcher {
    pub fn new(
        config: &Config,
        store: Arc<dyn Store>,
        live: Arc<Live>,
        wake: Arc<Notify>,
        metrics: Arc<Metrics>,
        clock: Arc<crate::clock::Clock>,
        health: Arc<crate::health::Health>,
    ) -> Self {
        Dispatcher {
            pacing: crate::pacing::Pacing::new(config, store.clone()),
            health,
            feed: crate::feed::Deliverer::new(
                store.clone(),
                metrics.clone(),
                config.inbox.in_app_ttl,
            ),
            store,
            live,
            config: config.dispatch.clone(),
            wake,
            metrics,
            clock,
        }
    }

    /// Run until `stop` turns true, then wait up to `grace` for attempts in
    /// flight. Deliveries not finished by then keep their lease and are
    /// picked up again after the next start.
    pub async fn run(self, mut stop: watch::Receiver<bool>, grace: Duration) {
        let (recorder, recording) = Recorder::start(
            self.store.clone(),
            self.metrics.clone(),
            self.wake.clone(),
            self.clock.clone(),
        );
        let this = Arc::new(self);
        let slots = Arc::new(Semaphore::new(this.config.concurrency));
        let min_lease = (this.config.concurrency / 8).clamp(1, LEASE_BATCH);
        let mut in_flight = JoinSet::new();
        while !*stop.borrow() {
            while in_flight.try_join_next().is_some() {}
            // Lease in batches: a lease per freed slot would cost the writer
            // a transaction per delivery. A slot is free once its attempt is
            // recorded.
            if slots.available_permits() < min_lease {
                tokio::select! {
                    enough = slots.clone().acquire_many_owned(min_lease as u32) => drop(enough),
                    _ = stop.changed() => {}
                }
                continue;
            }
            let free = slots.available_permits();
            let now = this.clock.now();
            let leased = match this
                .store
                .lease_due(Lease::new(now, free.min(LEASE_BATCH), this.config.lease_ms))
                .await
            {
                Ok(leased) => leased,
                Err(e) => {
                    if e.is_transient() {
                        crate::store::outage_log::transient(&e);
                    } else {
                        tracing::error!("cannot lease deliveries: {e}");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(IDLE_POLL) => {}
                        _ = stop.changed() => {}
                    }
                    continue;
                }
            };
            if leased.is_empty() {
                let wait = match this.store.next_due_at().await {
                    Ok(Some(at)) => {
                        Duration::from_millis(u64::try_from(at - now).unwrap_or(0).max(1))
                    }
                    _ => IDLE_POLL,
                }
                .min(IDLE_POLL);
                tokio::select! {
                    _ = this.wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            for delivery in leased {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    break;
                };
                let (this, recorder) = (this.clone(), recorder.clone());
                let span = tracing::info_span!(
                    "attempt",
                    message_id = %delivery.message_id,
                    connector = %delivery.connector
                );
                in_flight.spawn(
                    async move { this.attempt(delivery, slot, recorder).await }.instrument(span),
                );
            }
        }
        let deadline = Instant::now() + grace;
        let drained = tokio::time::timeout_at(deadline.into(), async {
            while in_flight.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                left = in_flight.len(),
                "grace period over; unfinished attempts will be retried after restart"
            );
            in_flight.abort_all();
            while in_flight.join_next().await.is_some() {}
        }
        // The last attempts' records are written before the store closes.
        drop(recorder);
        if tokio::time::timeout_at(deadline.into(), recording)
            .await
            .is_err()
        {
            tracing::warn!("grace period over before the last attempts were recorded");
        }
    }

    /// A connector said an address no longer exists: it goes on the
    /// suppression list (no send by anyone reaches it) and the customer's
    /// profile loses it (their next address of the kind takes over). Only
    /// the address this delivery went to counts: a plugin cannot edit others.
    async fn forget_dead_address(&self, d: &LeasedDelivery, address: &str, reason: &str, now: i64) {
        if address != d.address {
            tracing::warn!(
                reason,
                "connector reported another address than the message's dead; ignored"
            );
            return;
        }
        let key = address_key(d.channel, address).unwrap_or_else(|_| address.to_owned());
        let dead =
            Suppression::dead_address(d.channel, key, &d.connector, Some(reason.to_owned()), now);
        match self
            .store
            .address_is_dead(dead, Some(d.message_id.clone()), now)
            .await
        {
            Ok(done) => {
                for customer_id in done.forgotten_by {
                    tracing::info!(%customer_id, channel = %d.channel, reason, "dead address removed from the profile");
                }
            }
            Err(e) => tracing::error!("cannot suppress and forget a dead address: {e}"),
        }
    }

    /// Make one attempt and hand its result, with its slot, to the recorder.
    async fn attempt(&self, d: LeasedDelivery, slot: OwnedSemaphorePermit, recorder: Recorder) {
        let admission = if d.channel.is_feed() {
            Admission::Go
        } else {
            self.health.admit(&d.connector)
        };
        // The provider account's pace: wait for the turn, or give the
        // delivery back when its turn is further off (no attempt made).
        if !matches!(admission, Admission::Skip(_)) && !d.channel.is_feed() {
            match self.pacing.turn(&d.connector, self.clock.now()).await {
                Turn::Now => {}
                Turn::At(at) => {
                    let wait = at - self.clock.now();
                    if wait > 0 {
                        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
                    }
                }
                Turn::Later(due) => {
                    let probe = admission == Admission::Probe;
                    self.health
                        .record(&d.connector, None, probe, self.clock.now());
                    if let Err(e) = self.store.postpone(d.delivery_id, d.lease_until, due).await {
                        // Its lease runs out and it is leased again.
                        tracing::warn!("cannot give a paced delivery back: {e}");
                    }
                    drop(slot);
                    return;
                }
            }
        }
        let started_at = self.clock.now();
        let routing = self.live.current();
        // The sender the plan showed: the same pools, the same address.
        let sender = routing
            .policy
            .connectors
            .iter()
            .find(|c| c.name == d.connector && !c.senders.is_empty())
            .and_then(|c| crate::routing::senders::choose(c, &routing.policy.regions, &d.address));
        let out = Outgoing {
            message_id: &d.message_id,
            attempt: d.attempts + 1,
            channel: d.channel,
            to: &d.address,
            content: &d.content,
            sender: sender.as_ref().map(|s| s.sender.as_str()),
        };
        let delivered = match &admission {
            _ if d.channel.is_feed() => self.feed.deliver(&d, started_at).await,
            // Skipped, not tried: the next delivery of the plan goes.
            Admission::Skip(why) => Delivered {
                result: Err(Failure {
                    retryable: false,
                    retry_after: None,
                    code: "connector_unhealthy".into(),
                    message: why.clone(),
                }),
                dead_addresses: Vec::new(),
            },
            Admission::Go | Admission::Probe => routing.plugins.deliver(&d.connector, out).await,
        };
        let finished_at = self.clock.now();
        if !d.channel.is_feed() {
            let probe = admission == Admission::Probe;
            let healthy = match (&admission, &delivered.result) {
                (Admission::Skip(_), _) => None,
                (_, Ok(_)) => Some(true),
                // Worth retrying: the provider (or the way to it) is unwell.
                (_, Err(f)) if f.retryable => Some(false),
                // Refused for this message's own sake: says nothing.
                (_, Err(_)) => None,
            };
            self.health
                .record(&d.connector, healthy, probe, finished_at);
            // The provider asked for a pause: every node keeps it.
            if let Err(f) = &delivered.result
                && f.retryable
                && let Some(after) = f.retry_after
            {
                let until = finished_at.saturating_add(after.as_millis() as i64);
                self.pacing.hold(&d.connector, until).await;
            }
        }
        for (address, reason) in &delivered.dead_addresses {
            self.forget_dead_address(&d, address, reason, finished_at)
                .await;
        }
        let result = delivered.result;
        let budget = Budget {
            max_attempts: routing
                .max_attempts
                .get(&d.connector)
                .copied()
                .unwrap_or(self.config.max_attempts),
            deadline: d
                .created_at
                .saturating_add(i64::try_from(self.config.retry_window_ms).unwrap_or(i64::MAX)),
            expires_at: d.expires_at,
            escalate_after: d.escalate_after,
        };
        let next = decide(
            &result,
            &d.connector,
            d.attempts,
            budget,
            finished_at,
            &self.config,
            retry::jitter(),
        );
        let (outcome, provider_message_id, error_code, error_message) = match &result {
            Ok(receipt) => (
                Outcome::Sent,
                Some(receipt.provider_message_id.clone()),
                None,
                None,
            ),
            Err(f) => (
                if f.retryable {
                    Outcome::Retryable
                } else {
                    Outcome::Permanent
                },
                None,
                Some(f.code.clone()),
                Some(f.message.clone()),
            ),
        };
        match &next {
            Next::Sent { .. } => tracing::info!("sent"),
            Next::RetryAt(at) => tracing::info!(retry_in_ms = at - finished_at, "will retry"),
            Next::GiveUp { reason, .. } => tracing::warn!(%reason, "delivery failed"),
        }
        let record = AttemptResult {
            delivery_id: d.delivery_id,
            message_id: d.message_id,
            lease_until: d.lease_until,
            attempt: AttemptRecord {
                number: d.message_attempts + 1,
                connector: d.connector,
                channel: d.channel,
                started_at,
                finished_at,
                outcome,
                provider_message_id,
                error_code,
                error_message,
                retry_at: match next {
                    Next::RetryAt(at) => Some(at),
                    _ => None,
                },
                node: None,
            },
            next,
        };
        let attempt = &record.attempt;
        self.metrics.attempt(
            &attempt.connector,
            attempt.outcome.as_str(),
            attempt.error_code.as_deref(),
            (finished_at - started_at) as f64 / 1000.0,
        );
        recorder.record(record, slot);
    }
}
