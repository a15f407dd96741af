//! What a run would do, without storing or sending anything: a journey
//! played through the engine from `start` with the events of a timeline,
//! its sends taken as accepted (`POST /v1/journeys/{name}/simulate`).

use super::JourneyConfig;
use super::engine::{self, Effect, Facts, Input, RunState, RunStatus, SendOutcome, Waiting};
use super::experiments::{self, Arm};
use crate::config::journeys::StepKind;
use serde_json::Value;

/// Ticks and events one simulation takes at the most: a journey's timers
/// and the timeline end it, or this does.
const MAX_TURNS: usize = 1000;

/// The run after `timeline` (`(at, event name)`, in any order), its timers
/// firing between the events as the runner would fire them; the trigger
/// again, while a digest is open, joins it. `who` (the journey's name and
/// a customer id) deals that customer's arm of each experiment step, as the
/// runner would: the holdout's step sends nothing.
pub fn simulate(
    journey: &JourneyConfig,
    properties: Value,
    start: i64,
    mut timeline: Vec<(i64, &str)>,
    facts: &Facts<'_>,
    who: Option<(&str, &str)>,
) -> Result<RunState, String> {
    timeline.sort_by_key(|(at, _)| *at);
    let same = properties.clone();
    let mut run = engine::start(properties, start);
    let mut effects = engine::advance(journey, &mut run, Input::Start, start, facts)?;
    let mut events = timeline.into_iter().peekable();
    for _ in 0..MAX_TURNS {
        for effect in effects.drain(..) {
            if let Effect::Send { step, record } = effect {
                let at = run.history.get(record).map_or(start, |r| r.at);
                let id = journey.steps[step].id.clone();
                let arm = match (&journey.steps[step].kind, who) {
                    (StepKind::Send(send), Some((name, customer))) => {
                        experiments::deal(name, &id, customer, send)
                    }
                    _ => None,
                };
                let outcome = match arm {
                    Some(Arm::Holdout) => experiments::held_out(),
                    _ => SendOutcome::Accepted {
                        message_id: "simulated".into(),
                        status: "simulated".into(),
                        channel: None,
                    },
                };
                engine::record_send(
                    &mut run,
                    &id,
                    record,
                    at,
                    outcome,
                    arm.as_ref().map(Arm::name),
                );
            }
        }
        if run.status != RunStatus::Active {
            break;
        }
        let wake = run.waiting.as_ref().map(|w| w.wake_at());
        // The trigger again, with the same properties, joins an open digest.
        let digest_key = match &run.waiting {
            Some(Waiting::Digest { key, .. }) => Some(key.clone()),
            _ => None,
        };
        let (input, at) = match (wake, events.peek().copied()) {
            (Some(wake), Some((at, _))) if wake < at => (Input::Tick, wake),
            (_, Some((at, name))) => {
                events.next();
                let input = match &digest_key {
                    Some(key) if name == journey.trigger => Input::digest(key, &same, at),
                    _ => Input::Event {
                        name,
                        occurred_at: at,
                    },
                };
                (input, at)
            }
            (Some(wake), None) => (Input::Tick, wake),
            (None, None) => break,
        };
        effects = engine::advance(journey, &mut run, input, at, facts)?;
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_trigger_again_joins_the_open_digest() {
        let journey: JourneyConfig = toml::from_str(
            r#"trigger = "comment"
               [[steps]]
               id = "bundle"
               digest = { window = "1h" }
               [[steps]]
               id = "tell"
               send = { text = "{{ digest.count }} new", category = "c" }"#,
        )
        .unwrap();
        let (profile, tz) = (json!({}), jiff::tz::TimeZone::UTC);
        let facts = Facts {
            profile: &profile,
            time_zone: &tz,
            sent_elsewhere: &[],
            feed_opened_at: None,
        };
        let minute = 60_000;
        let timeline = vec![(20 * minute, "comment"), (10 * minute, "comment")];
        let run = simulate(&journey, json!({}), 0, timeline, &facts, None).unwrap();
        assert_eq!(run.steps["bundle"]["count"], 3);
        assert_eq!(run.steps["tell"]["status"], "simulated");
        assert_eq!(run.status, RunStatus::Completed);
    }
}
