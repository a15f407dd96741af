//! What a run would do, without storing or sending anything: a journey
//! played through the engine from `start` with the events of a timeline,
//! its sends taken as accepted (`POST /v1/journeys/{name}/simulate`).

use super::JourneyConfig;
use super::engine::{self, Effect, Facts, Input, RunState, RunStatus, SendOutcome};
use serde_json::Value;

/// Ticks and events one simulation takes at the most: a journey's timers
/// and the timeline end it, or this does.
const MAX_TURNS: usize = 1000;

/// The run after `timeline` (`(at, event name)`, in any order), its timers
/// firing between the events as the runner would fire them.
pub fn simulate(
    journey: &JourneyConfig,
    properties: Value,
    start: i64,
    mut timeline: Vec<(i64, &str)>,
    facts: &Facts<'_>,
) -> Result<RunState, String> {
    timeline.sort_by_key(|(at, _)| *at);
    let mut run = engine::start(properties, start);
    let mut effects = engine::advance(journey, &mut run, Input::Start, start, facts)?;
    let mut events = timeline.into_iter().peekable();
    for _ in 0..MAX_TURNS {
        for effect in effects.drain(..) {
            if let Effect::Send { step, record } = effect {
                let at = run.history.get(record).map_or(start, |r| r.at);
                let id = journey.steps[step].id.clone();
                let accepted = SendOutcome::Accepted {
                    message_id: "simulated".into(),
                    status: "simulated".into(),
                    channel: None,
                };
                engine::record_send(&mut run, &id, record, at, accepted);
            }
        }
        if run.status != RunStatus::Active {
            break;
        }
        let wake = run.waiting.as_ref().map(|w| w.wake_at());
        let (input, at) = match (wake, events.peek().copied()) {
            (Some(wake), Some((at, _))) if wake < at => (Input::Tick, wake),
            (_, Some((at, name))) => {
                events.next();
                (
                    Input::Event {
                        name,
                        occurred_at: at,
                    },
                    at,
                )
            }
            (Some(wake), None) => (Input::Tick, wake),
            (None, None) => break,
        };
        effects = engine::advance(journey, &mut run, input, at, facts)?;
    }
    Ok(run)
}
