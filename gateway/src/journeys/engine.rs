//! A journey run as a pure state machine: a run's state, an input (its
//! start, an event, the clock) and the time in; the next state and what to
//! do out. The worker, the API and `POST /v1/journeys/{name}/simulate` all
//! drive this one function, so a simulation shows what a run would do.

use crate::config::journeys::{
    DigestStep, JourneyConfig, OverThrottle, StepKind, Throttle, WaitStep,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Where a run is; stored whole with the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub status: RunStatus,
    /// Index of the step to run next.
    pub step: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Waiting>,
    /// The trigger event's properties.
    pub event: Value,
    /// When the trigger event occurred (its `occurred_at`): an `exit_on` or
    /// goal event ends the run only if it occurred at or after this, in
    /// whatever order the two arrived. Runs stored before it was kept have
    /// none, and any such event ends them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_at: Option<i64>,
    /// The `wait_for` whose timeout fired last, while the run has done
    /// nothing since but wait: an awaited event that occurred inside that
    /// window and arrives late still counts for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late: Option<LateWindow>,
    /// Each step's record, by id: what conditions read as `steps.<id>`.
    pub steps: Map<String, Value>,
    pub history: Vec<StepRecord>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Active,
    /// Every step ran.
    Completed,
    /// An `exit_on` event ended it.
    Exited,
    /// The goal event came.
    Converted,
}

impl RunStatus {
    /// Whether a run in this status still takes `input`: an active run
    /// takes everything; a completed one only events, since its last
    /// message may still be held (quiet hours) and an exit or the goal
    /// must cancel it, so a cart reminder never arrives after the purchase.
    /// The engine and the runner both ask this.
    pub fn takes(self, input: &Input<'_>) -> bool {
        self == RunStatus::Active
            || (self == RunStatus::Completed && matches!(input, Input::Event { .. }))
    }

    /// The status a stored run's text names.
    pub fn parse(text: &str) -> Option<RunStatus> {
        [
            RunStatus::Active,
            RunStatus::Completed,
            RunStatus::Exited,
            RunStatus::Converted,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Active => "active",
            RunStatus::Completed => "completed",
            RunStatus::Exited => "exited",
            RunStatus::Converted => "converted",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Waiting {
    /// A `wait` step: until this time.
    Until { at: i64 },
    /// A `wait_for` step: this event, occurred from `since` (when the step
    /// began) until `timeout_at`, or the timeout.
    Event {
        name: String,
        #[serde(default)]
        since: i64,
        timeout_at: i64,
    },
    /// A `send` step over the journey's throttle: until the customer is
    /// under it again, then the same step.
    Throttled { at: i64 },
    /// A `digest` step: collecting the triggers with this key that occur
    /// until `until`, in the order they occurred.
    Digest {
        key: String,
        until: i64,
        events: Vec<Collected>,
        /// The events' properties, in bytes of JSON: see [`MAX_DIGEST_BYTES`].
        #[serde(default)]
        bytes: usize,
    },
}

/// A digest is full at this many bytes of its events' properties, whatever
/// its `max`: the run is stored whole at every event that joins it.
pub const MAX_DIGEST_BYTES: usize = 256 * 1024;

/// Whether a digest of `max` events is full with `events` of `bytes`.
fn digest_full(max: u32, events: usize, bytes: usize) -> bool {
    events >= usize::try_from(max).unwrap_or(usize::MAX) || bytes >= MAX_DIGEST_BYTES
}

/// Whether `input` may take `run` on to its next steps, which read what
/// [`Facts::sent_elsewhere`] and [`Facts::feed_opened_at`] tell. `false`
/// for an event that joins an open digest without filling it (most of a
/// digest journey's events), or that no digest of `run` takes: the runner
/// spares the reads of the customer's other runs and inbox then.
pub fn may_move(journey: &JourneyConfig, run: &RunState, input: &Input<'_>) -> bool {
    let Input::Digest {
        key,
        bytes,
        occurred_at,
        ..
    } = input
    else {
        return true;
    };
    match run.waiting.as_ref().filter(|w| w.takes(key, *occurred_at)) {
        Some(Waiting::Digest {
            events,
            bytes: held,
            ..
        }) => digest_full(
            journey.digest().map_or(1, |d| d.max),
            events.len() + 1,
            held + bytes,
        ),
        _ => false,
    }
}

/// The length of `value` written as JSON, without writing it anywhere.
fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // A `Value` always serialises, and counting never fails.
    serde_json::to_writer(&mut count, value).map_or(0, |()| count.0)
}

/// One trigger in an open digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Collected {
    pub occurred_at: i64,
    pub properties: Value,
}

/// A timed-out `wait_for`'s window, kept open for late arrivals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LateWindow {
    /// The `wait_for` step's index.
    pub step: usize,
    pub name: String,
    pub since: i64,
    pub until: i64,
}

impl LateWindow {
    fn holds(&self, name: &str, occurred_at: i64) -> bool {
        self.name == name && (self.since..=self.until).contains(&occurred_at)
    }
}

impl Waiting {
    /// Whether this is an open digest that an event with `key`, occurred at
    /// `occurred_at`, joins.
    fn takes(&self, key: &str, occurred_at: i64) -> bool {
        matches!(self, Waiting::Digest { key: open, until, .. } if open == key && occurred_at <= *until)
    }

    /// When the clock alone moves the run on.
    pub fn wake_at(&self) -> i64 {
        match self {
            Waiting::Until { at } | Waiting::Throttled { at } => *at,
            Waiting::Event { timeout_at, .. } => *timeout_at,
            Waiting::Digest { until, .. } => *until,
        }
    }
}

/// What happened at one step, when and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: String,
    pub at: i64,
    /// `sent`, `waiting`, `waited`, `event`, `timeout`, `branch`, `exited`,
    /// `converted`, `completed`, or what stopped a send (`suppressed`, `offer_group`, ...).
    pub what: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// What moves a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Input<'a> {
    /// The trigger event (its properties); the run starts.
    Start,
    /// An event of the run's customer, judged by when it occurred.
    Event { name: &'a str, occurred_at: i64 },
    /// A trigger of a digest journey, for the digest it may join: made by
    /// [`Input::digest`].
    Digest {
        key: &'a str,
        properties: &'a Value,
        /// `properties` in bytes of JSON, measured once for every run the
        /// trigger is offered to.
        bytes: usize,
        occurred_at: i64,
    },
    /// The clock.
    Tick,
}

impl<'a> Input<'a> {
    pub fn digest(key: &'a str, properties: &'a Value, occurred_at: i64) -> Input<'a> {
        Input::Digest {
            key,
            properties,
            bytes: json_len(properties),
            occurred_at,
        }
    }
}

/// What the caller must do for the run.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Run the `send` step with this index; its result goes to `steps.<id>`
    /// and to history entry `record` (a `sending` placeholder) through
    /// [`record_send`]. `record` also tells repeated visits of a step apart.
    Send { step: usize, record: usize },
    /// Cancel the run's messages not yet sent.
    CancelPending,
}

/// What conditions and local-time waits need to know of the customer.
pub struct Facts<'a> {
    pub profile: &'a Value,
    pub time_zone: &'a jiff::tz::TimeZone,
    /// When this journey sent to the customer in their other runs (for a
    /// throttled journey; empty otherwise).
    pub sent_elsewhere: &'a [i64],
    /// When the customer last opened their inbox (read for a digest with
    /// `unread_only`; `None` otherwise, or never).
    pub feed_opened_at: Option<i64>,
}

/// A new run of a journey started by an event with `properties` that
/// occurred at `trigger_at`.
pub fn start(properties: Value, trigger_at: i64) -> RunState {
    RunState {
        status: RunStatus::Active,
        step: 0,
        waiting: None,
        event: properties,
        trigger_at: Some(trigger_at),
        late: None,
        steps: Map::new(),
        history: Vec::new(),
    }
}

/// Move `run` on by `input` at `now`. Sends are not made here: each comes
/// back as an [`Effect::Send`] in order, and the run continues past it.
pub fn advance(
    journey: &JourneyConfig,
    run: &mut RunState,
    input: Input<'_>,
    now: i64,
    facts: &Facts<'_>,
) -> Result<Vec<Effect>, String> {
    let mut effects = Vec::new();
    if !run.status.takes(&input) {
        return Ok(effects);
    }
    let step_id = |run: &RunState| {
        journey
            .steps
            .get(run.step)
            .map_or_else(|| "end".to_owned(), |s| s.id.clone())
    };
    match input {
        Input::Start => {}
        Input::Event { name, occurred_at } => {
            let after_trigger = run.trigger_at.is_none_or(|t| occurred_at >= t);
            let ends = if !after_trigger {
                None
            } else if journey.goal.as_deref() == Some(name) {
                Some((RunStatus::Converted, "converted"))
            } else if journey.exit_on.iter().any(|e| e == name) {
                Some((RunStatus::Exited, "exited"))
            } else {
                None
            };
            if let Some((status, what)) = ends {
                run.status = status;
                run.waiting = None;
                run.late = None;
                run.history.push(StepRecord {
                    step: step_id(run),
                    at: now,
                    what: what.into(),
                    why: Some(format!(
                        "event {name} (occurred {})",
                        timestamp(occurred_at)
                    )),
                });
                effects.push(Effect::CancelPending);
                return Ok(effects);
            }
            if let Some(late) = run.late.take_if(|l| l.holds(name, occurred_at)) {
                let id = journey
                    .steps
                    .get(late.step)
                    .map_or_else(|| "end".to_owned(), |s| s.id.clone());
                run.steps.insert(
                    id.clone(),
                    json!({"came": name, "at": occurred_at, "arrived_at": now, "late": true}),
                );
                run.history.push(StepRecord {
                    step: id,
                    at: now,
                    what: "event".into(),
                    why: Some(format!(
                        "{name} occurred {} before the timeout and arrived after it",
                        timestamp(occurred_at)
                    )),
                });
                return Ok(effects);
            }
            match &run.waiting {
                Some(Waiting::Event {
                    name: awaited,
                    since,
                    timeout_at,
                }) if awaited == name && (*since..=*timeout_at).contains(&occurred_at) => {
                    let id = step_id(run);
                    run.steps
                        .insert(id.clone(), json!({"came": name, "at": occurred_at}));
                    run.history.push(StepRecord {
                        step: id,
                        at: now,
                        what: "event".into(),
                        why: Some(format!("{name} came before the timeout")),
                    });
                    run.waiting = None;
                    run.step += 1;
                }
                // Not what the run waits for, or not in its window: nothing moves.
                _ => return Ok(effects),
            }
            if run.status != RunStatus::Active {
                return Ok(effects);
            }
        }
        Input::Digest {
            key,
            properties,
            bytes,
            occurred_at,
        } => {
            let max = journey.digest().map_or(1, |d| d.max);
            match run.waiting.as_mut().filter(|w| w.takes(key, occurred_at)) {
                Some(Waiting::Digest {
                    events,
                    bytes: held,
                    ..
                }) => {
                    let at = events.partition_point(|e| e.occurred_at <= occurred_at);
                    events.insert(
                        at,
                        Collected {
                            occurred_at,
                            properties: properties.clone(),
                        },
                    );
                    *held += bytes;
                    if !digest_full(max, events.len(), *held) {
                        return Ok(effects);
                    }
                }
                // Not this run's digest, or it closed: the caller starts the next.
                _ => return Ok(effects),
            }
            close_digest(journey, run, now, "full", facts);
        }
        Input::Tick => match run.waiting.clone() {
            Some(Waiting::Digest { until, .. }) if until <= now => {
                close_digest(journey, run, now, "its window ended", facts);
            }
            Some(Waiting::Throttled { at }) if at <= now => {
                // The same send step again: it sends, or waits again.
                run.waiting = None;
            }
            Some(waiting) if waiting.wake_at() <= now => {
                let id = step_id(run);
                let (what, record) = match waiting {
                    Waiting::Until { .. } | Waiting::Throttled { .. } | Waiting::Digest { .. } => {
                        ("waited", json!({"until": waiting.wake_at()}))
                    }
                    Waiting::Event {
                        name,
                        since,
                        timeout_at,
                    } => {
                        let record = json!({"came": "timeout", "waited_for": name, "at": now});
                        run.late = Some(LateWindow {
                            step: run.step,
                            name,
                            since,
                            until: timeout_at,
                        });
                        ("timeout", record)
                    }
                };
                run.steps.insert(id.clone(), record);
                run.history.push(StepRecord {
                    step: id,
                    at: now,
                    what: what.into(),
                    why: None,
                });
                run.waiting = None;
                run.step += 1;
            }
            _ => return Ok(effects),
        },
    }
    run_steps(journey, run, now, facts, &mut effects)?;
    Ok(effects)
}

/// Run steps from `run.step` until one waits or the journey ends.
fn run_steps(
    journey: &JourneyConfig,
    run: &mut RunState,
    now: i64,
    facts: &Facts<'_>,
    effects: &mut Vec<Effect>,
) -> Result<(), String> {
    // A branch may jump back: bound the steps one input may run.
    for _ in 0..journey.steps.len() * 4 + 1 {
        let Some(step) = journey.steps.get(run.step) else {
            run.status = RunStatus::Completed;
            run.late = None;
            run.history.push(StepRecord {
                step: "end".into(),
                at: now,
                what: "completed".into(),
                why: None,
            });
            return Ok(());
        };
        if !matches!(step.kind, StepKind::Wait(_)) {
            // The step after a timed-out `wait_for` runs: too late for a
            // late event to change what the run did.
            run.late = None;
        }
        match &step.kind {
            StepKind::Send(_) if digest_of(journey, run).is_some_and(|d| d["count"] == 0) => {
                run.steps.insert(
                    step.id.clone(),
                    json!({"skipped": "nothing_unread", "at": now}),
                );
                run.history.push(StepRecord {
                    step: step.id.clone(),
                    at: now,
                    what: "nothing_unread".into(),
                    why: Some("the customer saw every event of the digest in their inbox".into()),
                });
                run.step += 1;
            }
            StepKind::Send(_) => {
                if let Some(throttle) = &journey.throttle
                    && let Some(free_at) = throttled(throttle, run, facts.sent_elsewhere, now)
                {
                    let why = format!(
                        "{} of this journey's messages within {}s already",
                        throttle.max,
                        throttle.per / 1000
                    );
                    match throttle.then {
                        OverThrottle::Skip => {
                            run.steps.insert(
                                step.id.clone(),
                                json!({"skipped": "throttled", "at": now}),
                            );
                            run.history.push(StepRecord {
                                step: step.id.clone(),
                                at: now,
                                what: "throttled".into(),
                                why: Some(why),
                            });
                            run.step += 1;
                            continue;
                        }
                        OverThrottle::Wait => {
                            run.waiting = Some(Waiting::Throttled { at: free_at });
                            run.history.push(StepRecord {
                                step: step.id.clone(),
                                at: now,
                                what: "throttled".into(),
                                why: Some(format!("{why}: waits until {}", timestamp(free_at))),
                            });
                            return Ok(());
                        }
                    }
                }
                effects.push(Effect::Send {
                    step: run.step,
                    record: run.history.len(),
                });
                run.history.push(StepRecord {
                    step: step.id.clone(),
                    at: now,
                    what: "sending".into(),
                    why: None,
                });
                run.step += 1;
            }
            StepKind::Wait(wait) => {
                let at = match wait {
                    WaitStep::For(ms) => now.saturating_add(*ms),
                    WaitStep::Until { until } => next_local(until, facts.time_zone, now)?,
                };
                run.waiting = Some(Waiting::Until { at });
                run.history.push(StepRecord {
                    step: step.id.clone(),
                    at: now,
                    what: "waiting".into(),
                    why: Some(format!("until {}", timestamp(at))),
                });
                return Ok(());
            }
            StepKind::WaitFor(wait) => {
                let timeout_at = now.saturating_add(wait.timeout);
                run.waiting = Some(Waiting::Event {
                    name: wait.event.clone(),
                    since: now,
                    timeout_at,
                });
                run.history.push(StepRecord {
                    step: step.id.clone(),
                    at: now,
                    what: "waiting".into(),
                    why: Some(format!(
                        "for {} until {}",
                        wait.event,
                        timestamp(timeout_at)
                    )),
                });
                return Ok(());
            }
            StepKind::Digest(digest) => {
                let key = digest_key(digest, &run.event)?;
                // The window runs from when the first trigger occurred.
                let until = run
                    .trigger_at
                    .map_or(now, |t| t.min(now))
                    .saturating_add(digest.window);
                run.history.push(StepRecord {
                    step: step.id.clone(),
                    at: now,
                    what: "digesting".into(),
                    why: Some(format!("key {key:?} until {}", timestamp(until))),
                });
                run.waiting = Some(Waiting::Digest {
                    key,
                    until,
                    bytes: json_len(&run.event),
                    events: vec![Collected {
                        occurred_at: run.trigger_at.unwrap_or(now),
                        properties: run.event.clone(),
                    }],
                });
                if digest.max > 1 && until > now {
                    return Ok(());
                }
                close_digest(journey, run, now, "full at once", facts);
            }
            StepKind::Branch(branch) => {
                let holds = crate::expression::holds(
                    &branch.condition,
                    &json!({"profile": facts.profile, "event": run.event, "steps": run.steps}),
                )?;
                let target = if holds {
                    Some(branch.then.as_str())
                } else {
                    branch.otherwise.as_deref()
                };
                run.history.push(StepRecord {
                    step: step.id.clone(),
                    at: now,
                    what: "branch".into(),
                    why: Some(format!(
                        "`{}` is {holds}: {}",
                        branch.condition,
                        target.map_or("next step".to_owned(), |t| format!("to {t}"))
                    )),
                });
                run.steps
                    .insert(step.id.clone(), json!({"took": holds, "at": now}));
                run.step = match target {
                    Some(id) => journey
                        .steps
                        .iter()
                        .position(|s| s.id == id)
                        .ok_or_else(|| format!("branch {} goes to no step {id:?}", step.id))?,
                    None => run.step + 1,
                };
            }
        }
    }
    Err("the journey's branches loop without waiting".into())
}

/// The key `digest` keeps a trigger with `properties` under.
pub fn digest_key(digest: &DigestStep, properties: &Value) -> Result<String, String> {
    match &digest.key {
        Some(template) => crate::expression::render(template, &json!({"event": properties})),
        None => Ok(String::new()),
    }
}

/// End the run's open digest: its events go to `steps.<id>` (what the next
/// send renders as `digest`) and the run moves on. With `unread_only`, the
/// events the customer saw in their inbox before it closed are left out.
fn close_digest(
    journey: &JourneyConfig,
    run: &mut RunState,
    now: i64,
    why: &str,
    facts: &Facts<'_>,
) {
    let Some(Waiting::Digest {
        key, mut events, ..
    }) = run.waiting.take()
    else {
        return;
    };
    let collected = events.len();
    if journey.digest().is_some_and(|d| d.unread_only)
        && let Some(opened) = facts.feed_opened_at
    {
        events.retain(|e| e.occurred_at > opened);
    }
    let seen = collected - events.len();
    let why = if seen > 0 {
        format!("{why}; {seen} seen in the inbox before, left out")
    } else {
        why.to_owned()
    };
    let id = journey
        .steps
        .get(run.step)
        .map_or_else(|| "end".to_owned(), |s| s.id.clone());
    run.history.push(StepRecord {
        step: id.clone(),
        at: now,
        what: "digested".into(),
        why: Some(format!("{} events: {why}", events.len())),
    });
    let count = events.len();
    let events: Vec<Value> = events.into_iter().map(|e| e.properties).collect();
    run.steps.insert(
        id,
        json!({"key": key, "count": count, "events": events, "at": now}),
    );
    run.step += 1;
}

/// What a send renders as `digest`: the run's closed digest, if any.
pub fn digest_of(journey: &JourneyConfig, run: &RunState) -> Option<Value> {
    let step = journey.steps.first()?;
    if !matches!(step.kind, StepKind::Digest(_)) {
        return None;
    }
    let record = run.steps.get(&step.id)?;
    Some(json!({"events": record["events"], "count": record["count"]}))
}

/// When a send now would go over `throttle`: `Some(time)` the customer is
/// under it again, counting what this run sent (or is sending) and
/// `elsewhere`, what the journey's other runs sent them.
fn throttled(throttle: &Throttle, run: &RunState, elsewhere: &[i64], now: i64) -> Option<i64> {
    let since = now.saturating_sub(throttle.per);
    let own = run
        .history
        .iter()
        .filter(|r| r.what == "sent" || r.what == "sending")
        .map(|r| r.at);
    let mut times: Vec<i64> = own
        .chain(elsewhere.iter().copied())
        .filter(|at| *at > since)
        .collect();
    let max = usize::try_from(throttle.max.max(1)).unwrap_or(usize::MAX);
    if times.len() < max {
        return None;
    }
    times.sort_unstable();
    // Under it again once all but `max - 1` of these have left the window.
    Some(times[times.len() - max] + throttle.per)
}

/// What became of a `send` step, written into the run by the caller over
/// its `sending` placeholder; with the experiment's arm the customer was
/// dealt, if the step is one (as `steps.<id>.arm`).
pub fn record_send(
    run: &mut RunState,
    step_id: &str,
    record: usize,
    now: i64,
    outcome: SendOutcome,
    arm: Option<&str>,
) {
    let (what, why, mut result) = match outcome {
        SendOutcome::Accepted {
            message_id,
            status,
            channel,
        } => (
            if status == "suppressed" {
                "suppressed"
            } else {
                "sent"
            },
            None,
            json!({"message_id": message_id, "status": status, "channel": channel, "at": now}),
        ),
        SendOutcome::Skipped { reason, detail } => (
            reason,
            Some(detail.clone()),
            json!({"skipped": reason, "detail": detail, "at": now}),
        ),
    };
    if let Some(arm) = arm {
        result["arm"] = Value::from(arm);
    }
    run.steps.insert(step_id.to_owned(), result);
    let entry = StepRecord {
        step: step_id.to_owned(),
        at: now,
        what: what.to_owned(),
        why,
    };
    match run.history.get_mut(record) {
        Some(placeholder) => *placeholder = entry,
        None => run.history.push(entry),
    }
}

/// What a send step did.
pub enum SendOutcome {
    Accepted {
        message_id: String,
        /// `queued`, `scheduled`, `suppressed`.
        status: String,
        channel: Option<String>,
    },
    /// Not sent: `offer_group`, `refused` (the send was invalid).
    Skipped {
        reason: &'static str,
        detail: String,
    },
}

/// The next time at or after `now` the customer's clock shows `hh:mm`.
fn next_local(hh_mm: &str, tz: &jiff::tz::TimeZone, now: i64) -> Result<i64, String> {
    let time: jiff::civil::Time = format!("{hh_mm}:00")
        .parse()
        .map_err(|e| format!("wait until {hh_mm:?}: {e}"))?;
    let now_ts = jiff::Timestamp::from_millisecond(now).map_err(|e| e.to_string())?;
    let local = now_ts.to_zoned(tz.clone());
    let mut date = local.date();
    for _ in 0..2 {
        let at = date
            .to_datetime(time)
            .to_zoned(tz.clone())
            .map_err(|e| e.to_string())?
            .timestamp()
            .as_millisecond();
        if at >= now {
            return Ok(at);
        }
        date = date.tomorrow().map_err(|e| e.to_string())?;
    }
    Err("no next local time".into())
}

fn timestamp(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journeys::JourneyConfig;

    fn journey(toml: &str) -> JourneyConfig {
        toml::from_str(toml).unwrap()
    }

    const DAY: i64 = 86_400_000;
    const HOUR: i64 = 3_600_000;

    fn opened(occurred_at: i64) -> Input<'static> {
        Input::Event {
            name: "opened",
            occurred_at,
        }
    }

    fn purchase(occurred_at: i64) -> Input<'static> {
        Input::Event {
            name: "purchase",
            occurred_at,
        }
    }

    static PROFILE: std::sync::LazyLock<Value> =
        std::sync::LazyLock::new(|| json!({"country": "NL"}));
    static ZONE: std::sync::LazyLock<jiff::tz::TimeZone> =
        std::sync::LazyLock::new(|| jiff::tz::TimeZone::get("Europe/Amsterdam").unwrap());

    /// A customer in Amsterdam, with nothing sent elsewhere and no inbox.
    fn plain() -> Facts<'static> {
        Facts {
            profile: &PROFILE,
            time_zone: &ZONE,
            sent_elsewhere: &[],
            feed_opened_at: None,
        }
    }

    #[test]
    fn wait_for_records_which_came_first() {
        let j = journey(
            r#"trigger = "t"
               [[steps]]
               id = "read"
               wait_for = { event = "opened", timeout = "2d" }
               [[steps]]
               id = "next"
               send = { text = "x", category = "c" }"#,
        );
        let facts = plain();
        let mut early = start(json!({}), 0);
        assert!(
            advance(&j, &mut early, Input::Start, 0, &facts)
                .unwrap()
                .is_empty()
        );
        assert_eq!(early.waiting.as_ref().unwrap().wake_at(), 2 * DAY);
        let effects = advance(&j, &mut early, opened(DAY), DAY, &facts).unwrap();
        assert_eq!(effects, [Effect::Send { step: 1, record: 2 }]);
        assert_eq!(early.steps["read"]["came"], "opened");

        let mut late = start(json!({}), 0);
        advance(&j, &mut late, Input::Start, 0, &facts).unwrap();
        assert!(
            advance(&j, &mut late, Input::Tick, DAY, &facts)
                .unwrap()
                .is_empty(),
            "not yet"
        );
        advance(&j, &mut late, Input::Tick, 2 * DAY, &facts).unwrap();
        assert_eq!(late.steps["read"]["came"], "timeout");
        assert_eq!(late.status, RunStatus::Completed);
    }

    #[test]
    fn an_exit_ends_a_wait_and_cancels_what_is_pending() {
        let j = journey(
            r#"trigger = "t"
               exit_on = ["purchase"]
               [[steps]]
               id = "hour"
               wait = "1h"
               [[steps]]
               id = "remind"
               send = { text = "x", category = "c" }"#,
        );
        let facts = plain();
        let mut run = start(json!({}), 0);
        advance(&j, &mut run, Input::Start, 0, &facts).unwrap();
        let effects = advance(&j, &mut run, purchase(10), 10, &facts).unwrap();
        assert_eq!(effects, [Effect::CancelPending]);
        assert_eq!(run.status, RunStatus::Exited);
        assert!(
            advance(&j, &mut run, Input::Tick, DAY, &facts)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_local_time_wait_is_in_the_customers_zone_and_loops_are_bounded() {
        let j = journey(
            r#"trigger = "t"
               [[steps]]
               id = "morning"
               wait = { until = "09:00" }"#,
        );
        let facts = plain();
        let mut run = start(json!({}), 0);
        // 2026-12-01 10:00 UTC is 11:00 in Amsterdam: tomorrow 09:00 local.
        let now = jiff::Timestamp::from_second(1_796_119_200)
            .unwrap()
            .as_millisecond();
        advance(&j, &mut run, Input::Start, now, &facts).unwrap();
        let at = jiff::Timestamp::from_millisecond(run.waiting.unwrap().wake_at()).unwrap();
        assert_eq!(at.to_string(), "2026-12-02T08:00:00Z");

        let looping = journey(
            r#"trigger = "t"
               [[steps]]
               id = "a"
               branch = { if = "true", then = "a" }"#,
        );
        let mut run = start(json!({}), 0);
        assert!(advance(&looping, &mut run, Input::Start, 0, &facts).is_err());
    }

    #[test]
    fn only_an_exit_that_occurred_after_the_trigger_ends_the_run() {
        let j = journey(
            r#"trigger = "t"
               goal = "purchase"
               [[steps]]
               id = "hour"
               wait = "1h"
               [[steps]]
               id = "remind"
               send = { text = "x", category = "c" }"#,
        );
        let facts = plain();
        // The trigger occurred at 10:00 (it arrived at 10:05).
        let trigger = 10 * HOUR;
        let mut run = start(json!({}), trigger);
        advance(&j, &mut run, Input::Start, trigger + 300_000, &facts).unwrap();
        let before = run.clone();
        // A purchase of 09:59 arrives now: an earlier purchase, not this cart's.
        let now = trigger + 600_000;
        let effects = advance(&j, &mut run, purchase(trigger - 60_000), now, &facts).unwrap();
        assert!(effects.is_empty());
        assert_eq!(run, before);
        // One at the trigger's own time counts.
        let effects = advance(&j, &mut run, purchase(trigger), now, &facts).unwrap();
        assert_eq!(effects, [Effect::CancelPending]);
        assert_eq!(run.status, RunStatus::Converted);
    }

    #[test]
    fn a_wait_for_counts_what_occurred_in_its_window_until_the_run_moves_on() {
        let j = journey(
            r#"trigger = "t"
               [[steps]]
               id = "read"
               wait_for = { event = "opened", timeout = "1h" }
               [[steps]]
               id = "grace"
               wait = "30m"
               [[steps]]
               id = "next"
               send = { text = "x", category = "c" }"#,
        );
        let facts = plain();
        let begin = DAY;
        let waiting = || {
            let mut run = start(json!({}), begin);
            advance(&j, &mut run, Input::Start, begin, &facts).unwrap();
            run
        };
        // Arriving in time: an open from before the wait began, or from
        // after its end, is not the awaited one.
        let mut run = waiting();
        let out_of_window = [begin - 1, begin + HOUR + 1];
        for occurred in out_of_window {
            advance(&j, &mut run, opened(occurred), begin + 10, &facts).unwrap();
            assert!(matches!(run.waiting, Some(Waiting::Event { .. })));
        }
        advance(&j, &mut run, opened(begin + 5), begin + 10, &facts).unwrap();
        assert_eq!(run.steps["read"]["came"], "opened");

        // Arriving after the timeout, during the grace: it counts once.
        let mut run = waiting();
        advance(&j, &mut run, Input::Tick, begin + HOUR, &facts).unwrap();
        assert_eq!(run.steps["read"]["came"], "timeout");
        let now = begin + HOUR + 60_000;
        advance(&j, &mut run, opened(begin + HOUR + 1), now, &facts).unwrap();
        assert_eq!(run.steps["read"]["came"], "timeout", "after the window");
        advance(&j, &mut run, opened(begin + HOUR - 1), now, &facts).unwrap();
        assert_eq!(run.steps["read"]["came"], "opened");
        assert_eq!(run.steps["read"]["late"], true);
        assert!(run.late.is_none());
        assert!(
            matches!(run.waiting, Some(Waiting::Until { .. })),
            "the grace goes on"
        );

        // Arriving once the step after the grace has run: too late.
        let mut run = waiting();
        advance(&j, &mut run, Input::Tick, begin + HOUR, &facts).unwrap();
        let effects = advance(&j, &mut run, Input::Tick, begin + 2 * HOUR, &facts).unwrap();
        assert_eq!(effects.len(), 1, "the send after the grace");
        advance(&j, &mut run, opened(begin + 5), begin + 2 * HOUR, &facts).unwrap();
        assert_eq!(run.steps["read"]["came"], "timeout");
    }

    #[test]
    fn a_digest_collects_in_occurrence_order_until_its_window_or_max() {
        let j = journey(
            r#"trigger = "comment"
               [[steps]]
               id = "bundle"
               digest = { window = "1h", key = "{{ event.thread }}", max = 3 }
               [[steps]]
               id = "tell"
               send = { text = "x", category = "c" }"#,
        );
        let facts = plain();
        let comment = |n: i64| json!({"thread": "a", "n": n});
        let mut run = start(comment(1), 0);
        assert!(
            advance(&j, &mut run, Input::Start, 60_000, &facts)
                .unwrap()
                .is_empty()
        );
        let join = |run: &mut RunState, key: &str, n: i64, occurred_at: i64| {
            let properties = comment(n);
            let input = Input::digest(key, &properties, occurred_at);
            // Only the join that fills it moves the run on (and needs facts).
            let moves = may_move(&j, run, &input);
            let effects = advance(&j, run, input, 120_000, &facts).unwrap();
            assert_eq!(moves, !effects.is_empty());
            effects
        };
        // Another thread's, and one after the window (from 0): not this digest.
        let before = run.clone();
        join(&mut run, "b", 9, 10);
        join(&mut run, "a", 9, HOUR + 1);
        assert_eq!(run, before);
        // Out of order: kept in the order they occurred; the third fills it.
        assert!(join(&mut run, "a", 3, 30).is_empty());
        let effects = join(&mut run, "a", 2, 20);
        assert_eq!(effects, [Effect::Send { step: 1, record: 2 }]);
        let digest = digest_of(&j, &run).unwrap();
        assert_eq!(digest["count"], 3);
        let order: Vec<i64> = digest["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["n"].as_i64().unwrap())
            .collect();
        assert_eq!(order, [1, 2, 3]);

        // A lone trigger: the window's end closes it.
        let mut run = start(comment(1), 0);
        advance(&j, &mut run, Input::Start, 0, &facts).unwrap();
        assert!(
            advance(&j, &mut run, Input::Tick, HOUR - 1, &facts)
                .unwrap()
                .is_empty()
        );
        let effects = advance(&j, &mut run, Input::Tick, HOUR, &facts).unwrap();
        assert_eq!(effects.len(), 1);
        assert_eq!(run.steps["bundle"]["count"], 1);
    }

    #[test]
    fn a_throttle_counts_other_runs_and_skips_or_waits() {
        let skip = journey(
            r#"trigger = "t"
               throttle = { max = 2, per = "1d" }
               [[steps]]
               id = "tell"
               send = { text = "x", category = "c" }"#,
        );
        let now = 10 * DAY;
        let facts = |sent_elsewhere| Facts {
            sent_elsewhere,
            ..plain()
        };
        let two_today: &[i64] = &[now - HOUR, now - 2 * HOUR];
        let one_today_one_old: &[i64] = &[now - HOUR, now - 2 * DAY];
        let mut run = start(json!({}), now);
        let effects = advance(
            &skip,
            &mut run,
            Input::Start,
            now,
            &facts(one_today_one_old),
        )
        .unwrap();
        assert_eq!(effects.len(), 1, "yesterday's does not count");
        let mut run = start(json!({}), now);
        let effects = advance(&skip, &mut run, Input::Start, now, &facts(two_today)).unwrap();
        assert!(effects.is_empty());
        assert_eq!(run.steps["tell"]["skipped"], "throttled");
        assert_eq!(run.status, RunStatus::Completed);

        let wait = journey(
            r#"trigger = "t"
               throttle = { max = 2, per = "1d", then = "wait" }
               [[steps]]
               id = "tell"
               send = { text = "x", category = "c" }"#,
        );
        let mut run = start(json!({}), now);
        assert!(
            advance(&wait, &mut run, Input::Start, now, &facts(two_today))
                .unwrap()
                .is_empty()
        );
        // Under it again when the older of the two leaves the day.
        assert_eq!(
            run.waiting,
            Some(Waiting::Throttled {
                at: now - 2 * HOUR + DAY
            })
        );
        let effects = advance(
            &wait,
            &mut run,
            Input::Tick,
            now - 2 * HOUR + DAY,
            &facts(two_today),
        )
        .unwrap();
        assert_eq!(effects.len(), 1);
    }

    #[test]
    fn an_unread_only_digest_leaves_out_what_the_inbox_showed() {
        let j = journey(
            r#"trigger = "comment"
               [[steps]]
               id = "bundle"
               digest = { window = "1h", unread_only = true }
               [[steps]]
               id = "tell"
               send = { text = "x", category = "c" }"#,
        );
        let opened_at = |feed_opened_at| Facts {
            feed_opened_at,
            ..plain()
        };
        let comment = json!({});
        let digest = |opened: Option<i64>| {
            let mut run = start(json!({}), 0);
            let facts = opened_at(opened);
            advance(&j, &mut run, Input::Start, 0, &facts).unwrap();
            let join = Input::digest("", &comment, 20 * 60_000);
            advance(&j, &mut run, join, 20 * 60_000, &facts).unwrap();
            let effects = advance(&j, &mut run, Input::Tick, HOUR, &facts).unwrap();
            (run, effects)
        };
        // Opened at 0:10: the first comment was seen, the second was not.
        let (run, effects) = digest(Some(10 * 60_000));
        assert_eq!(run.steps["bundle"]["count"], 1);
        assert_eq!(effects.len(), 1);
        // Opened at 0:30: both seen, nothing to tell.
        let (run, effects) = digest(Some(30 * 60_000));
        assert!(effects.is_empty());
        assert_eq!(run.steps["tell"]["skipped"], "nothing_unread");
        // Never opened: both.
        assert_eq!(digest(None).0.steps["bundle"]["count"], 2);
    }
}
