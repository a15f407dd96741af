//! The gateway's one time. Everything that depends on when it is reads
//! [`Clock::now`]: what is due, quiet hours, expiry, leases, journeys' waits,
//! broadcasts' pacing and every record's timestamp. Store methods never read
//! the time themselves; they are handed `now`.
//!
//! The system clock is for production. A manual clock (`[clock] mode =
//! "manual"`, loopback only) starts where `[clock] start` says and then runs
//! at real speed, and `POST /v1/admin/clock` moves it forward: a test pins
//! the hour it depends on (quiet hours at 03:30 or 22:30, a night across
//! midnight in the customer's zone) and a rehearsal skips a week of waits.
//!
//! Two things keep the wall's time and are not the gateway's to move:
//! timeouts and pacing (monotonic [`std::time::Instant`]), and signatures
//! another system checks against its own clock ([`wall_ms`]).

use crate::config::{ClockConfig, ClockMode};
use std::sync::atomic::{AtomicI64, Ordering};

pub struct Clock {
    manual: bool,
    /// Milliseconds the clock is ahead of the wall (negative: behind).
    offset: AtomicI64,
}

impl Clock {
    /// The wall's time.
    pub fn system() -> Self {
        Clock {
            manual: false,
            offset: AtomicI64::new(0),
        }
    }

    /// A manual clock that shows `start` now and runs on from there.
    pub fn manual(start: Option<jiff::Timestamp>) -> Self {
        let offset = start.map_or(0, |at| at.as_millisecond() - wall_ms());
        Clock {
            manual: true,
            offset: AtomicI64::new(offset),
        }
    }

    pub fn from_config(config: &ClockConfig) -> Self {
        match config.mode {
            ClockMode::System => Clock::system(),
            ClockMode::Manual => Clock::manual(config.start),
        }
    }

    /// Milliseconds since the Unix epoch, as the gateway counts them.
    pub fn now(&self) -> i64 {
        wall_ms() + self.offset.load(Ordering::Relaxed)
    }

    /// Move a manual clock forward by `ms`; the system clock refuses.
    /// Never back: leases, waits and keys are only ever extended by time.
    pub fn advance(&self, ms: i64) -> Result<i64, &'static str> {
        if !self.manual {
            return Err("the clock is the system's: set [clock] mode = \"manual\"");
        }
        if ms < 0 {
            return Err("the clock only moves forward");
        }
        self.offset.fetch_add(ms, Ordering::Relaxed);
        Ok(self.now())
    }
}

/// The wall's time in milliseconds since the Unix epoch: for what another
/// system checks against its own clock (the timestamp a status callback is
/// signed with) and for records of the gateway's own life (when a
/// migration ran). Everything else reads a [`Clock`].
pub fn wall_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_starts_where_it_is_told_and_moves_only_forward() {
        let start: jiff::Timestamp = "2026-03-02T03:30:00Z".parse().unwrap();
        let clock = Clock::manual(Some(start));
        let shown = clock.now() - start.as_millisecond();
        assert!((0..60_000).contains(&shown), "{shown} ms after the start");
        let moved = clock.advance(3_600_000).unwrap();
        assert!(moved - start.as_millisecond() >= 3_600_000);
        assert!(clock.advance(-1).is_err());
        assert!(Clock::system().advance(1).is_err());
    }
}
