//! The clock a plugin's CPU budget is counted on: the engine's epoch,
//! advanced every millisecond while a plugin call runs, and not at all
//! otherwise, so an idle gateway does not wake a thousand times a second.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::Thread;
use std::time::Duration;
use wasmtime::Engine;

/// How often the epoch advances while a call runs; the CPU budget is
/// counted in these ticks.
const TICK: Duration = Duration::from_millis(1);

/// Advances the engine's epoch while any [`Ticking`] is alive, until dropped.
pub struct EpochTicker {
    shared: Arc<Shared>,
    thread: Thread,
}

struct Shared {
    calls: AtomicUsize,
    stop: AtomicBool,
    ticks: AtomicU64,
}

/// Held for the length of one plugin call: the epoch advances meanwhile.
pub struct Ticking<'a>(&'a EpochTicker);

impl EpochTicker {
    pub fn start(engine: Engine) -> Self {
        let shared = Arc::new(Shared {
            calls: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            ticks: AtomicU64::new(0),
        });
        let state = shared.clone();
        let thread = std::thread::Builder::new()
            .name("crossgate-epoch".into())
            .spawn(move || {
                while !state.stop.load(Ordering::Acquire) {
                    if state.calls.load(Ordering::Acquire) == 0 {
                        // A call starting after this check unparks us, and
                        // an unpark that comes first makes this return at once.
                        std::thread::park();
                        continue;
                    }
                    std::thread::sleep(TICK);
                    engine.increment_epoch();
                    state.ticks.fetch_add(1, Ordering::Relaxed);
                }
            })
            .expect("spawning the epoch thread")
            .thread()
            .clone();
        EpochTicker { shared, thread }
    }

    /// Keep the epoch advancing until the returned guard is dropped.
    pub fn running(&self) -> Ticking<'_> {
        if self.shared.calls.fetch_add(1, Ordering::AcqRel) == 0 {
            self.thread.unpark();
        }
        Ticking(self)
    }

    /// Ticks so far: how tests see the clock stand still.
    #[cfg(test)]
    fn ticks(&self) -> u64 {
        self.shared.ticks.load(Ordering::Relaxed)
    }
}

impl Drop for Ticking<'_> {
    fn drop(&mut self) {
        self.0.shared.calls.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Waits up to two seconds for `done`, polling every millisecond.
    fn eventually(done: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if done() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        done()
    }

    #[test]
    fn the_epoch_advances_only_while_a_call_runs() {
        let ticker = EpochTicker::start(Engine::default());
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(ticker.ticks(), 0, "no call, no tick");

        let call = ticker.running();
        assert!(
            eventually(|| ticker.ticks() >= 3),
            "a running call is timed"
        );
        drop(call);

        // A tick already under way may still land; after it, nothing moves.
        std::thread::sleep(Duration::from_millis(10));
        let stopped_at = ticker.ticks();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(ticker.ticks(), stopped_at, "the clock stands still again");

        let _again = ticker.running();
        assert!(
            eventually(|| ticker.ticks() > stopped_at),
            "a later call starts it again"
        );
    }
}
