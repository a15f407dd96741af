//! Store outages in the log as counts: when the disk is full or the
//! database restarts, every request fails the same way, and a line per
//! request (tens of thousands a minute) would bury what else happened and
//! fill the disk further. The first failure of a kind is logged at once;
//! the rest are counted and logged once per interval while it lasts.

use super::StoreError;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// At most one line per kind of failure per interval.
const INTERVAL: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Tally {
    /// Per kind: when it was last logged, and how many since.
    kinds: HashMap<&'static str, (Instant, u64)>,
}

fn tally() -> &'static Mutex<Tally> {
    static TALLY: OnceLock<Mutex<Tally>> = OnceLock::new();
    TALLY.get_or_init(Mutex::default)
}

/// Log a transient store failure, or count it when one of its kind was
/// logged less than an interval ago.
pub fn transient(error: &StoreError) {
    let kind = error.reason();
    let now = Instant::now();
    let unlogged = {
        let mut tally = tally().lock().unwrap_or_else(|e| e.into_inner());
        let entry = tally.kinds.entry(kind).or_insert((now - INTERVAL, 0));
        entry.1 += 1;
        if now.duration_since(entry.0) < INTERVAL {
            return;
        }
        entry.0 = now;
        std::mem::take(&mut entry.1)
    };
    tracing::warn!(
        failures = unlogged,
        interval_secs = INTERVAL.as_secs(),
        "store unavailable ({kind}): {error}"
    );
}
