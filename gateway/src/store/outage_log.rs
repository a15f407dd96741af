//! Store outages in the log as counts: when the disk is full or the
//! database restarts, every request fails the same way, and a line per
//! request (tens of thousands a minute) would bury what else happened and
//! fill the disk further. The first failure of a kind is logged at once;
//! the rest are counted and logged once per interval while it lasts.

use super::error::StoreError;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// At most one line per kind of failure per interval.
const INTERVAL: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Tally {
    /// Per kind: when it was last logged, and how many since.
    kinds: HashMap<&'static str, (Option<Instant>, u64)>,
}

fn tally() -> &'static Mutex<Tally> {
    static TALLY: OnceLock<Mutex<Tally>> = OnceLock::new();
    TALLY.get_or_init(Mutex::default)
}

/// Log a transient store failure, or count it when one of its kind was
/// logged less than an interval ago.
pub fn transient(error: &StoreError) {
    let kind = error.reason();
    let due = {
        let mut tally = tally().lock().unwrap_or_else(|e| e.into_inner());
        tally.note(kind, Instant::now())
    };
    if let Some(failures) = due {
        tracing::warn!(
            failures,
            interval_secs = INTERVAL.as_secs(),
            "store unavailable ({kind}): {error}"
        );
    }
}

impl Tally {
    /// Count one failure of `kind` at `now`; how many to log (this one and
    /// those counted since the last line) when a line is due.
    fn note(&mut self, kind: &'static str, now: Instant) -> Option<u64> {
        let (logged_at, count) = self.kinds.entry(kind).or_insert((None, 0));
        *count += 1;
        if logged_at.is_some_and(|at| now.duration_since(at) < INTERVAL) {
            return None;
        }
        *logged_at = Some(now);
        Some(std::mem::take(count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_one_line_then_one_count_per_interval() {
        let mut tally = Tally::default();
        let start = Instant::now();
        assert_eq!(tally.note("the disk is full", start), Some(1));
        let logged: Vec<Option<u64>> = (1..=1000)
            .map(|ms| tally.note("the disk is full", start + Duration::from_millis(ms)))
            .collect();
        assert!(logged.iter().all(Option::is_none), "one line a burst");
        assert_eq!(
            tally.note(
                "the disk is full",
                start + INTERVAL + Duration::from_millis(1)
            ),
            Some(1001)
        );
        // Another kind has lines of its own.
        assert_eq!(tally.note("a conflict with another node", start), Some(1));
    }
}
