//! Where a sandboxed call's time goes, for `make bench` (issue #36's
//! breakdown): making the store, instantiating, the guest's own work with
//! the host-call glue, the provider's request through the egress gate, and
//! dropping or shelving the instance.
//!
//! Only the bench-only `native-baseline` feature keeps the clock; in the
//! gateway every [`Stopwatch`] is empty and its laps compile to nothing.

#[cfg(feature = "native-baseline")]
use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(feature = "native-baseline")]
use std::time::Instant;

/// A part of one call.
#[derive(Debug, Clone, Copy)]
pub enum Phase {
    Setup = 0,
    Instantiate = 1,
    /// The export's whole run, the provider's request included.
    Call = 2,
    Provider = 3,
    Teardown = 4,
}

#[cfg(feature = "native-baseline")]
static NANOS: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];
#[cfg(feature = "native-baseline")]
static CALLS: AtomicU64 = AtomicU64::new(0);

/// Times consecutive phases of one call.
pub struct Stopwatch {
    #[cfg(feature = "native-baseline")]
    since: Instant,
}

impl Stopwatch {
    pub fn start() -> Stopwatch {
        Stopwatch {
            #[cfg(feature = "native-baseline")]
            since: Instant::now(),
        }
    }

    /// Count the time since the start or the last lap to `phase`.
    pub fn lap(&mut self, phase: Phase) {
        #[cfg(feature = "native-baseline")]
        {
            let now = Instant::now();
            let nanos = u64::try_from((now - self.since).as_nanos()).unwrap_or(u64::MAX);
            NANOS[phase as usize].fetch_add(nanos, Ordering::Relaxed);
            self.since = now;
        }
        #[cfg(not(feature = "native-baseline"))]
        let _ = phase;
    }

    /// A call that ended well: its phases count in the means.
    pub fn finished(self) {
        #[cfg(feature = "native-baseline")]
        CALLS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Mean microseconds per finished call since the last [`take`].
#[cfg(feature = "native-baseline")]
#[derive(Debug, Clone, Copy)]
pub struct Breakdown {
    pub calls: u64,
    pub setup: f64,
    pub instantiate: f64,
    /// The guest's work and the host-call glue: the call less the provider.
    pub guest_and_glue: f64,
    pub provider: f64,
    pub teardown: f64,
}

#[cfg(feature = "native-baseline")]
impl Breakdown {
    /// What the sandbox adds to the provider's request.
    pub fn lifecycle_and_glue(&self) -> f64 {
        self.setup + self.instantiate + self.guest_and_glue + self.teardown
    }
}

/// The means so far, and start counting again. Calls running on other
/// connectors meanwhile count too: take it around one connector's calls.
#[cfg(feature = "native-baseline")]
pub fn take() -> Breakdown {
    let calls = CALLS.swap(0, Ordering::Relaxed).max(1);
    let mean =
        |phase: Phase| NANOS[phase as usize].swap(0, Ordering::Relaxed) as f64 / 1e3 / calls as f64;
    let call = mean(Phase::Call);
    let provider = mean(Phase::Provider);
    Breakdown {
        calls,
        setup: mean(Phase::Setup),
        instantiate: mean(Phase::Instantiate),
        guest_and_glue: call - provider,
        provider,
        teardown: mean(Phase::Teardown),
    }
}
