//! The runner: applies stored events to runs (starting new ones, moving
//! waiting ones on, ending them on `exit_on` and goals) and wakes runs whose
//! timer is due. Every node runs one; the store's leases and run revisions
//! keep two nodes from doing the same work, and each send carries an
//! idempotency key made from the run, the step and its place in the run's
//! history, so work done again after a crash sends nothing twice.

use super::engine::{self, Effect, Facts, Input, RunState, RunStatus, SendOutcome};
use super::experiments::{self, Arm};
use super::{Catalogue, JourneyConfig, Pinned};
use crate::clock::Clock;
use crate::config::JourneyRunnerConfig;
use crate::config::journeys::{Entry, SendStep, StepKind, Variant};
use crate::live::Live;
use crate::store::journeys::{ArmRecord, EventRecord, JourneyVersion, RunRecord};
use crate::store::{Lease, Store, StoreError};
use async_trait::async_trait;
use futures::stream::{self, StreamExt as _};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// How long a node holds claimed events or a due run before another may take them.
const LEASE_MS: u64 = 60_000;
/// Events or runs taken in one go.
const BATCH: usize = 200;
/// Tries to write a run that another node wrote meanwhile.
const WRITE_TRIES: usize = 5;
/// Customers (or due runs) worked on at once.
const PARALLEL: usize = 32;

/// One `send` step to make, for a customer, as the platform's own send
/// would be made (planned, consented, capped).
pub struct SendJob<'a> {
    pub run_id: &'a str,
    /// The journey's name: its messages' campaign is `journey:<name>`.
    pub journey: &'a str,
    pub customer_id: &'a str,
    pub step: &'a SendStep,
    /// The trigger event's properties, available to templates as `event`.
    pub event: &'a Value,
    /// The run's closed digest (`{"events": [...], "count": n}`), available
    /// to templates as `digest`.
    pub digest: Option<&'a Value>,
    /// The customer's arm of the step's experiment, when it is one: what it
    /// changes of the step.
    pub variant: Option<&'a Variant>,
    /// The same for the same step of the same run, however often it is tried.
    pub idempotency_key: String,
    pub now: i64,
}

/// Sends, as the API layer makes them.
#[async_trait]
pub trait Sends: Send + Sync {
    /// `Err` when the store is unavailable: the run is tried again later.
    async fn send(&self, job: SendJob<'_>) -> Result<SendOutcome, StoreError>;
    /// Cancel what a run sent that has not gone out yet.
    async fn cancel_run(&self, customer_id: &str, run_id: &str) -> Result<(), StoreError>;
}

pub struct Runner {
    store: Arc<dyn Store>,
    live: Arc<Live>,
    sends: Arc<dyn Sends>,
    clock: Arc<Clock>,
    wake: Arc<Notify>,
    tick: Duration,
    /// `max_event_delay`: events that arrive later than this after they
    /// occurred start nothing.
    max_event_delay: i64,
    /// Journey versions runs are pinned to that the configuration no longer has.
    old_versions: Mutex<HashMap<String, Arc<JourneyConfig>>>,
    /// Versions this node has stored already.
    stored_versions: Mutex<std::collections::HashSet<String>>,
}

impl Runner {
    pub fn new(
        config: &JourneyRunnerConfig,
        store: Arc<dyn Store>,
        live: Arc<Live>,
        sends: Arc<dyn Sends>,
        clock: Arc<Clock>,
        wake: Arc<Notify>,
    ) -> Self {
        Runner {
            store,
            live,
            sends,
            clock,
            wake,
            tick: Duration::from_millis(config.tick_ms.max(10)),
            max_event_delay: config.max_event_delay,
            old_versions: Mutex::default(),
            stored_versions: Mutex::default(),
        }
    }

    /// Work until `stop`: at every tick, and whenever an event arrives.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.work().await {
                tracing::warn!("journeys: {e}; trying again at the next tick");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.tick) => {}
                _ = self.wake.notified() => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Apply every waiting event, then wake every due run. Customers are
    /// worked on [`PARALLEL`] at a time (one customer's events in order, by
    /// one task), so their writes share the store's commits instead of each
    /// waiting for its own.
    pub async fn work(&self) -> Result<(), StoreError> {
        loop {
            let events = self
                .store
                .claim_events(Lease::new(self.clock.now(), BATCH, LEASE_MS))
                .await?;
            if events.is_empty() {
                break;
            }
            let customers: Vec<Vec<EventRecord>> = events
                .chunk_by(|a, b| a.customer_id == b.customer_id)
                .map(<[EventRecord]>::to_vec)
                .collect();
            let done: Vec<Result<Vec<String>, StoreError>> = stream::iter(customers)
                .map(|events| self.apply_customer(events))
                .buffer_unordered(PARALLEL)
                .collect()
                .await;
            let mut handled = Vec::with_capacity(events.len());
            let mut failed = None;
            for result in done {
                match result {
                    Ok(ids) => handled.extend(ids),
                    Err(e) => failed = Some(e),
                }
            }
            // What was applied is done even if a customer failed: theirs
            // are claimed again when the lease runs out.
            self.store.events_handled(handled).await?;
            if let Some(e) = failed {
                return Err(e);
            }
        }
        loop {
            let now = self.clock.now();
            let due = self
                .store
                .lease_due_runs(Lease::new(now, BATCH, LEASE_MS))
                .await?;
            if due.is_empty() {
                return Ok(());
            }
            let done: Vec<Result<(), StoreError>> = stream::iter(due)
                .map(|run| self.tick(run))
                .buffer_unordered(PARALLEL)
                .collect()
                .await;
            done.into_iter().collect::<Result<(), _>>()?;
        }
    }

    /// One customer's events, in order; the ids of those applied.
    async fn apply_customer(&self, events: Vec<EventRecord>) -> Result<Vec<String>, StoreError> {
        for event in &events {
            self.apply_event(event).await?;
        }
        Ok(events.into_iter().map(|e| e.id).collect())
    }

    async fn tick(&self, run: RunRecord) -> Result<(), StoreError> {
        let profile = self.profile(&run.customer_id).await?;
        self.advance(run, &Input::Tick, &profile).await.map(drop)
    }

    /// One event: the customer's active runs see it, then the journeys it
    /// triggers start.
    async fn apply_event(&self, event: &EventRecord) -> Result<(), StoreError> {
        let runs = self.store.customer_runs(&event.customer_id).await?;
        // Read once for every run the event moves and every run it starts.
        let profile = self.profile(&event.customer_id).await?;
        let input = Input::Event {
            name: &event.name,
            occurred_at: event.occurred_at,
        };
        for run in &runs {
            // A completed run is woken only when it still has a message to
            // cancel: most are done, and reading their messages costs.
            let open = match RunStatus::parse(&run.status) {
                Some(RunStatus::Completed) => self.still_sending(run, &event.name).await?,
                Some(status) => status.takes(&input),
                None => false,
            };
            if open {
                self.advance(run.clone(), &input, &profile).await?;
            }
        }
        let catalogue = self.live.current().journeys.clone();
        if catalogue.triggered_by(&event.name).next().is_none() {
            return Ok(());
        }
        let properties: Value =
            serde_json::from_str(&event.properties).unwrap_or(Value::Object(Default::default()));
        for pinned in catalogue.triggered_by(&event.name) {
            if self
                .join_digest(pinned, event, &properties, &runs, &profile)
                .await?
            {
                continue;
            }
            if let Some(why) = super::intake::too_late_to_start(
                event.occurred_at,
                event.received_at,
                self.max_event_delay,
            ) {
                tracing::info!(event = %event.id, name = %event.name, customer = %event.customer_id, "{why}");
                continue;
            }
            self.start(pinned, event, &properties, &runs, &profile)
                .await?;
        }
        Ok(())
    }

    async fn start(
        &self,
        pinned: &Pinned,
        event: &EventRecord,
        properties: &Value,
        runs: &[RunRecord],
        profile: &CustomerFacts,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        let last = runs.iter().find(|r| r.journey == pinned.name);
        let id = match (&pinned.config.entry, last) {
            // A trigger no open digest took starts the next digest.
            _ if pinned.config.digest().is_some() => {
                format!("run_{}", uuid::Uuid::now_v7().simple())
            }
            (Entry::Once, Some(_)) => return Ok(()),
            // Named after the customer: two nodes cannot both start it.
            (Entry::Once, None) => format!("run_{}_{}", pinned.name, event.customer_id),
            (Entry::Again(cool_down), Some(last)) if last.started_at + cool_down > now => {
                return Ok(());
            }
            (Entry::Again(_), _) => format!("run_{}", uuid::Uuid::now_v7().simple()),
        };
        if let Some(condition) = &pinned.config.condition {
            let context = serde_json::json!({"event": properties, "profile": profile.json});
            match crate::expression::holds(condition, &context) {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(e) => {
                    tracing::warn!(journey = %pinned.name, "condition: {e}");
                    return Ok(());
                }
            }
        }
        let known = self
            .stored_versions
            .lock()
            .is_ok_and(|known| known.contains(&pinned.version));
        if !known {
            self.store
                .put_journey_version(JourneyVersion {
                    version: pinned.version.clone(),
                    journey: pinned.name.clone(),
                    config: serde_json::to_string(&*pinned.config).unwrap_or_default(),
                    created_at: now,
                })
                .await?;
            if let Ok(mut known) = self.stored_versions.lock() {
                known.insert(pinned.version.clone());
            }
        }
        let mut state = engine::start(properties.clone(), event.occurred_at);
        state.history.push(engine::StepRecord {
            step: "start".into(),
            at: now,
            what: "started".into(),
            why: Some(format!("event {} ({})", event.name, event.id)),
        });
        // An exit or the goal that occurred after the trigger but arrived
        // before it ends the run before its first step.
        let ended_by = self.ended_before_start(&pinned.config, event).await?;
        let input = match &ended_by {
            Some((name, occurred_at)) => Input::Event {
                name,
                occurred_at: *occurred_at,
            },
            None => Input::Start,
        };
        let record = RunRecord {
            id,
            journey: pinned.name.clone(),
            version: pinned.version.clone(),
            customer_id: event.customer_id.clone(),
            status: RunStatus::Active.as_str().into(),
            state: String::new(),
            wake_at: None,
            revision: 0,
            started_at: now,
            updated_at: now,
        };
        let sent = self
            .sent_elsewhere(
                &pinned.config,
                &pinned.name,
                &event.customer_id,
                &record.id,
                now,
            )
            .await?;
        let opened = self
            .feed_opened_at(&pinned.config, &event.customer_id)
            .await?;
        let mut effects = engine::advance(
            &pinned.config,
            &mut state,
            input,
            now,
            &profile.facts(&sent, opened),
        )
        .unwrap_or_else(|e| fail(&mut state, now, e));
        if ended_by.is_some() {
            // Nothing was sent yet: nothing to cancel.
            effects.retain(|e| !matches!(e, Effect::CancelPending));
        }
        self.execute(&pinned.config, &record, &mut state, effects, now)
            .await?;
        let record = with_state(record, &state, now);
        if !self.store.insert_run(record).await? {
            tracing::debug!(journey = %pinned.name, customer = %event.customer_id, "run exists");
        }
        Ok(())
    }

    /// When the customer last opened their inbox, for a journey whose
    /// digest leaves out what it showed; nothing is read for any other.
    async fn feed_opened_at(
        &self,
        journey: &JourneyConfig,
        customer_id: &str,
    ) -> Result<Option<i64>, StoreError> {
        if !journey.digest().is_some_and(|d| d.unread_only) {
            return Ok(None);
        }
        let facts = self
            .store
            .planning_facts(
                crate::store::customers::Audience::Customer(customer_id.to_owned()),
                &format!("customer:{customer_id}"),
                None,
                true,
            )
            .await?;
        Ok(facts.feed_opened_at)
    }

    /// Put a trigger of a digest journey into its customer's open digest
    /// with the same key, if one takes it (see [`engine::Input::Digest`]);
    /// `false`: it starts the next digest.
    async fn join_digest(
        &self,
        pinned: &Pinned,
        event: &EventRecord,
        properties: &Value,
        runs: &[RunRecord],
        profile: &CustomerFacts,
    ) -> Result<bool, StoreError> {
        let Some(digest) = pinned.config.digest() else {
            return Ok(false);
        };
        let key = match engine::digest_key(digest, properties) {
            Ok(key) => key,
            Err(e) => {
                tracing::warn!(journey = %pinned.name, event = %event.id, "digest key: {e}");
                return Ok(false);
            }
        };
        let input = Input::digest(&key, properties, event.occurred_at);
        for run in runs
            .iter()
            .filter(|r| r.journey == pinned.name && r.status == RunStatus::Active.as_str())
        {
            if self.advance(run.clone(), &input, profile).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// When `journey` (named `name`) sent to `customer_id` in runs other
    /// than `run_id`, within its throttle's window: what the engine counts
    /// against the throttle. Nothing is read for a journey without one.
    async fn sent_elsewhere(
        &self,
        journey: &JourneyConfig,
        name: &str,
        customer_id: &str,
        run_id: &str,
        now: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let Some(throttle) = &journey.throttle else {
            return Ok(Vec::new());
        };
        let since = now.saturating_sub(throttle.per);
        let runs = self.store.customer_runs(customer_id).await?;
        let mut sent = Vec::new();
        // A run last written before the window sent nothing within it.
        for run in runs
            .iter()
            .filter(|r| r.journey == name && r.id != run_id && r.updated_at > since)
        {
            let state: RunState = serde_json::from_str(&run.state)
                .map_err(|e| StoreError::Corrupt(format!("run {}: {e}", run.id)))?;
            sent.extend(
                state
                    .history
                    .iter()
                    .filter(|r| r.what == "sent" && r.at > since)
                    .map(|r| r.at),
            );
        }
        Ok(sent)
    }

    /// The stored exit or goal event of `trigger`'s customer that occurred
    /// first at or after the trigger, as `(name, occurred_at)`: it arrived
    /// before the trigger (or with it), and ends the run the trigger starts.
    async fn ended_before_start(
        &self,
        journey: &JourneyConfig,
        trigger: &EventRecord,
    ) -> Result<Option<(String, i64)>, StoreError> {
        let mut first: Option<(String, i64)> = None;
        for name in journey.goal.iter().chain(&journey.exit_on) {
            if let Some((_, at)) = self
                .store
                .first_event_since(&trigger.customer_id, name, trigger.occurred_at, &trigger.id)
                .await?
                && first.as_ref().is_none_or(|(_, earliest)| at < *earliest)
            {
                first = Some((name.clone(), at));
            }
        }
        Ok(first)
    }

    /// Move one stored run on by `input`, writing over the revision it was
    /// read at; read again and retry when another node wrote it meanwhile.
    /// `true` when the input changed the run.
    async fn advance(
        &self,
        mut record: RunRecord,
        input: &Input<'_>,
        profile: &CustomerFacts,
    ) -> Result<bool, StoreError> {
        for _ in 0..WRITE_TRIES {
            let Some(journey) = self.journey(&record).await? else {
                tracing::warn!(run = %record.id, version = %record.version, "journey version unknown");
                return Ok(false);
            };
            let mut state: RunState = match serde_json::from_str(&record.state) {
                Ok(state) => state,
                Err(e) => return Err(StoreError::Corrupt(format!("run {}: {e}", record.id))),
            };
            let now = self.clock.now();
            // Read only when the run may reach a branch, a send or its
            // digest's close.
            let (sent, opened) = if engine::may_move(&journey, &state, input) {
                if journey
                    .steps
                    .iter()
                    .any(|s| matches!(s.kind, StepKind::Branch(_)))
                {
                    self.refresh_statuses(&mut state).await?;
                }
                let sent = self
                    .sent_elsewhere(
                        &journey,
                        &record.journey,
                        &record.customer_id,
                        &record.id,
                        now,
                    )
                    .await?;
                let opened = match input {
                    // Only closing a digest reads the inbox.
                    Input::Event { .. } => None,
                    _ => self.feed_opened_at(&journey, &record.customer_id).await?,
                };
                (sent, opened)
            } else {
                (Vec::new(), None)
            };
            let before = state.clone();
            let effects = engine::advance(
                &journey,
                &mut state,
                input.clone(),
                now,
                &profile.facts(&sent, opened),
            )
            .unwrap_or_else(|e| fail(&mut state, now, e));
            if state == before {
                return Ok(false);
            }
            self.execute(&journey, &record, &mut state, effects, now)
                .await?;
            let read_at = record.revision;
            let updated = with_state(record.clone(), &state, now);
            if self.store.update_run(updated, read_at).await? {
                return Ok(true);
            }
            match self.store.run(&record.id).await? {
                Some(fresh) => record = fresh,
                None => return Ok(false),
            }
        }
        Err(StoreError::Conflict(format!(
            "run {} kept changing under this node",
            record.id
        )))
    }

    async fn execute(
        &self,
        journey: &JourneyConfig,
        record: &RunRecord,
        state: &mut RunState,
        effects: Vec<Effect>,
        now: i64,
    ) -> Result<(), StoreError> {
        for effect in effects {
            match effect {
                Effect::Send { step, record: at } => {
                    let Some(config) = journey.steps.get(step) else {
                        continue;
                    };
                    let StepKind::Send(send) = &config.kind else {
                        continue;
                    };
                    let arm =
                        experiments::deal(&record.journey, &config.id, &record.customer_id, send);
                    let outcome = match arm {
                        Some(Arm::Holdout) => experiments::held_out(),
                        _ => {
                            let digest = engine::digest_of(journey, state);
                            let variant = match arm {
                                Some(Arm::Send(variant)) => variant,
                                _ => None,
                            };
                            self.sends
                                .send(SendJob {
                                    run_id: &record.id,
                                    journey: &record.journey,
                                    customer_id: &record.customer_id,
                                    step: send,
                                    event: &state.event,
                                    digest: digest.as_ref(),
                                    variant,
                                    idempotency_key: format!(
                                        "journey:{}:{}:{at}",
                                        record.id, config.id
                                    ),
                                    now,
                                })
                                .await?
                        }
                    };
                    let message_id = match &outcome {
                        SendOutcome::Accepted { message_id, .. } => Some(message_id.clone()),
                        SendOutcome::Skipped { .. } => None,
                    };
                    engine::record_send(
                        state,
                        &config.id,
                        at,
                        now,
                        outcome,
                        arm.as_ref().map(Arm::name),
                    );
                    if let Some(arm) = arm {
                        self.store
                            .record_arm(ArmRecord {
                                journey: record.journey.clone(),
                                step: config.id.clone(),
                                customer_id: record.customer_id.clone(),
                                arm: arm.name().to_owned(),
                                run_id: record.id.clone(),
                                message_id,
                                assigned_at: now,
                            })
                            .await?;
                    }
                }
                Effect::CancelPending => {
                    self.sends
                        .cancel_run(&record.customer_id, &record.id)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Whether a completed run that `event` would end has a message not yet
    /// gone out (held by quiet hours, say): the event still cancels it.
    async fn still_sending(&self, run: &RunRecord, event: &str) -> Result<bool, StoreError> {
        let Some(journey) = self.journey(run).await? else {
            return Ok(false);
        };
        if journey.goal.as_deref() != Some(event) && !journey.exit_on.iter().any(|e| e == event) {
            return Ok(false);
        }
        let mut state: RunState = serde_json::from_str(&run.state)
            .map_err(|e| StoreError::Corrupt(format!("run {}: {e}", run.id)))?;
        self.refresh_statuses(&mut state).await?;
        Ok(state.steps.values().any(|s| {
            s.get("status")
                .and_then(Value::as_str)
                .and_then(|status| status.parse::<crate::message::MessageStatus>().ok())
                .is_some_and(|status| status.is_open())
        }))
    }

    /// A branch reads what became of earlier sends (`steps.<id>.status`:
    /// `delivered`, `read`, ...): their messages' status now, not at send time.
    async fn refresh_statuses(&self, state: &mut RunState) -> Result<(), StoreError> {
        for result in state.steps.values_mut() {
            let Some(id) = result.get("message_id").and_then(Value::as_str) else {
                continue;
            };
            if let Some(message) = self.store.message(id).await? {
                result["status"] = Value::from(message.status.as_str());
            }
        }
        Ok(())
    }

    /// The configuration a run is pinned to: today's if its version is
    /// current, else the stored version it started on.
    async fn journey(&self, record: &RunRecord) -> Result<Option<Arc<JourneyConfig>>, StoreError> {
        let catalogue: Arc<Catalogue> = self.live.current().journeys.clone();
        if let Some(pinned) = catalogue.get(&record.journey)
            && pinned.version == record.version
        {
            return Ok(Some(pinned.config.clone()));
        }
        if let Some(config) = self
            .old_versions
            .lock()
            .ok()
            .and_then(|cache| cache.get(&record.version).cloned())
        {
            return Ok(Some(config));
        }
        let Some(stored) = self.store.journey_version(&record.version).await? else {
            return Ok(None);
        };
        let config: JourneyConfig = serde_json::from_str(&stored.config)
            .map_err(|e| StoreError::Corrupt(format!("journey version {}: {e}", stored.version)))?;
        let config = Arc::new(config);
        if let Ok(mut cache) = self.old_versions.lock() {
            cache.insert(record.version.clone(), config.clone());
        }
        Ok(Some(config))
    }

    async fn profile(&self, customer_id: &str) -> Result<CustomerFacts, StoreError> {
        let record = self.store.customer(customer_id).await?;
        Ok(match record {
            Some(record) => CustomerFacts {
                json: serde_json::to_value(&record.profile).unwrap_or_default(),
                time_zone: record.profile.time_zone(),
            },
            None => CustomerFacts {
                json: Value::Null,
                time_zone: jiff::tz::TimeZone::UTC,
            },
        })
    }
}

/// What conditions and local-time waits read of a customer.
struct CustomerFacts {
    json: Value,
    time_zone: jiff::tz::TimeZone,
}

impl CustomerFacts {
    /// With `sent_elsewhere`: when the run's journey sent to the customer
    /// in their other runs (see [`Runner::sent_elsewhere`]); and when they
    /// last opened their inbox, for a digest that leaves out what it showed.
    fn facts<'a>(&'a self, sent_elsewhere: &'a [i64], feed_opened_at: Option<i64>) -> Facts<'a> {
        Facts {
            profile: &self.json,
            time_zone: &self.time_zone,
            sent_elsewhere,
            feed_opened_at,
        }
    }
}

/// A run the engine cannot move on (a condition that fails to evaluate)
/// ends, saying why, rather than retrying forever.
fn fail(state: &mut RunState, now: i64, why: String) -> Vec<Effect> {
    state.status = RunStatus::Exited;
    state.waiting = None;
    state.history.push(engine::StepRecord {
        step: "error".into(),
        at: now,
        what: "failed".into(),
        why: Some(why),
    });
    vec![Effect::CancelPending]
}

fn with_state(mut record: RunRecord, state: &RunState, now: i64) -> RunRecord {
    record.status = state.status.as_str().into();
    record.state = serde_json::to_string(state).unwrap_or_default();
    record.wake_at = match state.status {
        RunStatus::Active => state.waiting.as_ref().map(|w| w.wake_at()),
        _ => None,
    };
    record.revision += 1;
    record.updated_at = now;
    record
}
