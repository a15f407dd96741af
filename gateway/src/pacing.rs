//! Rate limits per provider account (`rate = "30/s"`, `burst`): every
//! node takes turns from one shared timeline per connector
//! ([`crate::store::pace`]: PostgreSQL's row, or SQLite's process), a
//! block of about a tenth of a second's turns at a time, and a delivery
//! waits for its turn before the call. Deliveries beyond the limit wait;
//! they never fail for it. A delivery whose turn would be more than
//! [`MAX_AHEAD_MS`] away is given back to the queue, due when there will
//! be room, without an attempt counted, so a backlog of one connector does
//! not hold the dispatcher's slots (or outlive a lease) waiting.
//!
//! A provider that answers with `Retry-After` pauses the timeline that
//! long, for every node.

use crate::config::Config;
use crate::store::Store;
use crate::store::pace::{Ask, Turns};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// How far ahead a delivery may be given a turn and wait for it.
pub const MAX_AHEAD_MS: i64 = 2_000;
/// A turn missed by more than this many intervals is dropped: used late
/// beside the turns after it, it would make a burst the provider counts.
const STALE_INTERVALS: i64 = 2;

#[derive(Debug, Clone, Copy)]
struct Pace {
    interval_us: i64,
    burst: i64,
    /// Turns taken from the shared timeline at once.
    block: i64,
}

/// When a delivery may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// Not paced, or its turn is now.
    Now,
    /// At this time (ms): wait for it.
    At(i64),
    /// Give the delivery back, due at this time (ms).
    Later(i64),
}

pub struct Pacing {
    paces: HashMap<String, Pace>,
    store: Arc<dyn Store>,
    /// This node's turns not yet used, per connector (µs).
    turns: Mutex<HashMap<String, VecDeque<i64>>>,
}

impl Pacing {
    pub fn new(config: &Config, store: Arc<dyn Store>) -> Pacing {
        let paces = config
            .connectors
            .iter()
            .filter_map(|c| {
                let rate = c.rate?;
                let interval_us = ((1e6 / rate.per_second).round() as i64).max(1);
                Some((
                    c.name.clone(),
                    Pace {
                        interval_us,
                        burst: i64::from(rate.burst),
                        block: (rate.per_second / 10.0).ceil().max(1.0) as i64,
                    },
                ))
            })
            .collect();
        Pacing {
            paces,
            store,
            turns: Mutex::default(),
        }
    }

    fn local(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<i64>>> {
        self.turns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The turn of one delivery on `connector` at `now` (ms).
    pub async fn turn(&self, connector: &str, now: i64) -> Turn {
        let Some(pace) = self.paces.get(connector) else {
            return Turn::Now;
        };
        let now_us = now.saturating_mul(1_000);
        if let Some(queue) = self.local().get_mut(connector) {
            while let Some(turn) = queue.pop_front() {
                if turn >= now_us - STALE_INTERVALS * pace.interval_us {
                    return at(turn, now);
                }
            }
        }
        let ask = Ask {
            connector,
            n: pace.block,
            interval: pace.interval_us,
            burst: pace.burst,
            max_ahead: MAX_AHEAD_MS * 1_000,
            now: now_us,
        };
        match self.store.take_turns(ask).await {
            Ok(Turns::Granted { first }) => {
                let rest = (1..pace.block).map(|k| first + k * pace.interval_us);
                self.local()
                    .entry(connector.to_owned())
                    .or_default()
                    .extend(rest);
                at(first, now)
            }
            // Due when the timeline will be within reach again.
            Ok(Turns::Full { free }) => Turn::Later(free / 1_000 - MAX_AHEAD_MS / 2),
            Err(e) => {
                tracing::warn!(
                    connector,
                    "cannot take turns: {e}; trying again in a second"
                );
                Turn::Later(now + 1_000)
            }
        }
    }

    /// The provider asked to wait until `until` (ms): no node's turn before it.
    pub async fn hold(&self, connector: &str, until: i64) {
        if !self.paces.contains_key(connector) {
            return;
        }
        self.local().remove(connector);
        if let Err(e) = self
            .store
            .hold_turns(connector, until.saturating_mul(1_000))
            .await
        {
            tracing::warn!(connector, "cannot pause the pace: {e}");
        }
    }
}

fn at(turn_us: i64, now: i64) -> Turn {
    let turn = turn_us.div_euclid(1_000);
    if turn <= now {
        Turn::Now
    } else {
        Turn::At(turn)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::pace::{Ask, Turns};

    #[test]
    fn turns_follow_one_another_and_a_full_timeline_gives_none() {
        let ask = |now| Ask {
            connector: "c",
            n: 3,
            interval: 1_000,
            burst: 1,
            max_ahead: 5_000,
            now,
        };
        // Unused: the first turn is now; the timeline moves three on.
        assert_eq!(
            ask(10_000).against(None),
            (Turns::Granted { first: 10_000 }, 13_000)
        );
        assert_eq!(
            ask(10_000).against(Some(13_000)),
            (Turns::Granted { first: 13_000 }, 16_000)
        );
        // Idle a long time: no turn from the past with a burst of 1 ...
        assert_eq!(
            ask(50_000).against(Some(13_000)),
            (Turns::Granted { first: 50_000 }, 53_000)
        );
        // ... and `burst - 1` intervals of them with more.
        let bursty = Ask {
            burst: 4,
            ..ask(50_000)
        };
        assert_eq!(
            bursty.against(Some(13_000)),
            (Turns::Granted { first: 47_000 }, 50_000)
        );
        // Too far ahead: nothing taken.
        assert_eq!(
            ask(10_000).against(Some(15_001)),
            (Turns::Full { free: 15_001 }, 15_001)
        );
    }
}
