//! The pace of periodic background work (purging keys, sampling the
//! backlog) that must stop promptly with the gateway.

use std::time::Duration;
use tokio::sync::watch;

/// The pace of a periodic background task that stops with the gateway.
pub struct Every {
    period: Duration,
    stop: watch::Receiver<bool>,
    first: bool,
}

impl Every {
    pub fn new(period: Duration, stop: watch::Receiver<bool>) -> Self {
        Every {
            period,
            stop,
            first: true,
        }
    }

    /// Whether to run again: at once the first time, then after `period`;
    /// `false` as soon as `stop` turns true, which cuts the wait short.
    pub async fn tick(&mut self) -> bool {
        if !std::mem::take(&mut self.first) {
            tokio::select! {
                _ = tokio::time::sleep(self.period) => {}
                _ = self.stop.changed() => {}
            }
        }
        !*self.stop.borrow()
    }
}
