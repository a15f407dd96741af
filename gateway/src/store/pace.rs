//! Each rate-limited connector's shared timeline of turns (GCRA): `tat`,
//! the time (µs) the next turn is free. Taking `n` turns moves it `n`
//! intervals on, from no earlier than `now - burst`; every node takes from
//! the same timeline, so together they keep the connector's `rate`. A
//! timeline already more than `max_ahead` past now gives nothing: the
//! caller postpones its delivery rather than hold it that long. PostgreSQL
//! keeps it in `connector_pace` (schema step 18); SQLite's one process
//! keeps it in memory.

use super::error::Result;
use async_trait::async_trait;

/// What asking for turns came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turns {
    /// `n` turns, the first at `first` (µs), one `interval` apart.
    Granted { first: i64 },
    /// None before `free` (µs): the timeline is that far ahead.
    Full { free: i64 },
}

/// One request for turns, in microseconds.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    pub connector: &'a str,
    pub n: i64,
    pub interval: i64,
    pub burst: i64,
    pub max_ahead: i64,
    pub now: i64,
}

impl Ask<'_> {
    /// The rule itself, for a timeline at `tat` (`None`: never used):
    /// what the caller gets and where the timeline then stands.
    pub fn against(&self, tat: Option<i64>) -> (Turns, i64) {
        // `burst` turns may be had at once after a quiet spell: the
        // timeline lags now by at most `burst - 1` intervals.
        let lag = (self.burst - 1).max(0) * self.interval;
        let from = tat.unwrap_or(self.now).max(self.now - lag);
        if from > self.now + self.max_ahead {
            return (Turns::Full { free: from }, from);
        }
        (
            Turns::Granted { first: from },
            from + self.n * self.interval,
        )
    }
}

#[async_trait]
pub trait PaceStore {
    async fn take_turns(&self, ask: Ask<'_>) -> Result<Turns>;

    /// No turn before `until` (µs): the provider asked us to slow down.
    async fn hold_turns(&self, connector: &str, until: i64) -> Result<()>;
}
