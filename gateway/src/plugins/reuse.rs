//! Instances kept for another call, where the operator allows it.
//!
//! The rule is a fresh store per call (a trapped or misbehaving instance is
//! never entered again), and `calls_per_instance = 1` (the default) keeps it. Instantiating and resetting a sandbox costs about
//! as much as the connector's own work (docs/benchmarks.md), so an operator who
//! trusts a connector may let one instance serve up to N calls in a row. What
//! still holds then: every call gets fresh limits, egress state and stderr;
//! an instance whose call trapped, timed out, was refused a request or still
//! holds an HTTP request, response or body is dropped as before; and none
//! outlives N calls. What does not: the guest's memory, so one message's data
//! may be seen by the next call of the same connector.

use super::contract::Instance;
use super::sandbox::CallState;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use wasmtime::Store;

/// An instance between calls, with the calls it has served.
pub struct Kept {
    pub store: Store<CallState>,
    pub instance: Instance,
    pub calls: u32,
}

/// One connector's kept instances.
pub struct Shelf {
    calls_per_instance: u32,
    kept: Mutex<Vec<Kept>>,
}

/// How many instances all of a host's shelves may keep together: half the
/// pool, so kept instances never leave a call without a slot. It goes with
/// the host (a reload builds a new one), so a dropped shelf owes it nothing.
pub struct ShelfSpace {
    left: AtomicU32,
}

impl ShelfSpace {
    pub fn new(max_instances: u32) -> Self {
        ShelfSpace {
            left: AtomicU32::new(max_instances / 2),
        }
    }

    fn claim(&self) -> bool {
        self.left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
    }

    fn free(&self) {
        self.left.fetch_add(1, Ordering::AcqRel);
    }
}

impl Shelf {
    pub fn new(calls_per_instance: u32) -> Self {
        Shelf {
            calls_per_instance,
            kept: Mutex::new(Vec::new()),
        }
    }

    /// Whether the connector's instances may serve more than one call.
    pub fn keeps(&self) -> bool {
        self.calls_per_instance > 1
    }

    /// The most recently used instance: its pages are likeliest to be warm.
    pub fn take(&self, space: &ShelfSpace) -> Option<Kept> {
        if !self.keeps() {
            return None;
        }
        let kept = self.lock().pop()?;
        space.free();
        Some(kept)
    }

    /// Keep an instance whose call ended well, unless it has served its
    /// calls, is unfit for another ([`CallState::end_call`]), or there is
    /// no room.
    pub fn put_back(&self, mut kept: Kept, space: &ShelfSpace) {
        if kept.calls >= self.calls_per_instance || !kept.store.data_mut().end_call() {
            return;
        }
        if space.claim() {
            self.lock().push(kept);
        }
    }

    /// Instances on the shelf now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// A poisoned lock only means a call panicked while pushing or popping:
    /// the instances on the shelf are whole.
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Kept>> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }
}
