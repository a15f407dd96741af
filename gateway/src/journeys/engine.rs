//! A journey run as a pure state machine: a run's state, an input (its
//! start, an event, the clock) and the time in; the next state and what to
//! do out. The worker, the API and `POST /v1/journeys/{name}/simulate` all
//! drive this one function, so a simulation shows what a run would do.

use crate::config::journeys::{JourneyConfig, StepKind, WaitStep};
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
    /// A `wait_for` step: this event, or the timeout.
    Event { name: String, timeout_at: i64 },
}

impl Waiting {
    /// When the clock alone moves the run on.
    pub fn wake_at(&self) -> i64 {
        match self {
            Waiting::Until { at } => *at,
            Waiting::Event { timeout_at, .. } => *timeout_at,
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
    /// An event of the run's customer.
    Event { name: &'a str },
    /// The clock.
    Tick,
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
}

/// A new run of a journey started by an event with `properties`.
pub fn start(properties: Value) -> RunState {
    RunState {
        status: RunStatus::Active,
        step: 0,
        waiting: None,
        event: properties,
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
        Input::Event { name } => {
            let ends = if journey.goal.as_deref() == Some(name) {
                Some((RunStatus::Converted, "converted"))
            } else if journey.exit_on.iter().any(|e| e == name) {
                Some((RunStatus::Exited, "exited"))
            } else {
                None
            };
            if let Some((status, what)) = ends {
                run.status = status;
                run.waiting = None;
                run.history.push(StepRecord {
                    step: step_id(run),
                    at: now,
                    what: what.into(),
                    why: Some(format!("event {name}")),
                });
                effects.push(Effect::CancelPending);
                return Ok(effects);
            }
            match &run.waiting {
                Some(Waiting::Event { name: awaited, .. }) if awaited == name => {
                    let id = step_id(run);
                    run.steps
                        .insert(id.clone(), json!({"came": name, "at": now}));
                    run.history.push(StepRecord {
                        step: id,
                        at: now,
                        what: "event".into(),
                        why: Some(format!("{name} came before the timeout")),
                    });
                    run.waiting = None;
                    run.step += 1;
                }
                // Not what the run waits for: nothing moves.
                _ => return Ok(effects),
            }
            if run.status != RunStatus::Active {
                return Ok(effects);
            }
        }
        Input::Tick => match &run.waiting {
            Some(waiting) if waiting.wake_at() <= now => {
                let id = step_id(run);
                let (what, record) = match waiting {
                    Waiting::Until { .. } => ("waited", json!({"until": waiting.wake_at()})),
                    Waiting::Event { name, .. } => (
                        "timeout",
                        json!({"came": "timeout", "waited_for": name, "at": now}),
                    ),
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
            run.history.push(StepRecord {
                step: "end".into(),
                at: now,
                what: "completed".into(),
                why: None,
            });
            return Ok(());
        };
        match &step.kind {
            StepKind::Send(_) => {
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

/// What became of a `send` step, written into the run by the caller over
/// its `sending` placeholder.
pub fn record_send(
    run: &mut RunState,
    step_id: &str,
    record: usize,
    now: i64,
    outcome: SendOutcome,
) {
    let (what, why, result) = match outcome {
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

    fn facts() -> (Value, jiff::tz::TimeZone) {
        (
            json!({"country": "NL"}),
            jiff::tz::TimeZone::get("Europe/Amsterdam").unwrap(),
        )
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
        let (profile, tz) = facts();
        let facts = Facts {
            profile: &profile,
            time_zone: &tz,
        };
        let mut early = start(json!({}));
        assert!(
            advance(&j, &mut early, Input::Start, 0, &facts)
                .unwrap()
                .is_empty()
        );
        assert_eq!(early.waiting.as_ref().unwrap().wake_at(), 2 * DAY);
        let effects =
            advance(&j, &mut early, Input::Event { name: "opened" }, DAY, &facts).unwrap();
        assert_eq!(effects, [Effect::Send { step: 1, record: 2 }]);
        assert_eq!(early.steps["read"]["came"], "opened");

        let mut late = start(json!({}));
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
        let (profile, tz) = facts();
        let facts = Facts {
            profile: &profile,
            time_zone: &tz,
        };
        let mut run = start(json!({}));
        advance(&j, &mut run, Input::Start, 0, &facts).unwrap();
        let effects = advance(&j, &mut run, Input::Event { name: "purchase" }, 10, &facts).unwrap();
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
        let (profile, tz) = facts();
        let facts = Facts {
            profile: &profile,
            time_zone: &tz,
        };
        let mut run = start(json!({}));
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
        let mut run = start(json!({}));
        assert!(advance(&looping, &mut run, Input::Start, 0, &facts).is_err());
    }
}
