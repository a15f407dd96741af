//! What one plugin call may use, from `[plugins]`: the sandbox enforces
//! memory, CPU and time; the egress gate enforces requests.

use crate::config::PluginsConfig;
use std::time::Duration;

/// Per-call limits, from `[plugins]`.
#[derive(Debug, Clone)]
pub struct CallLimits {
    pub memory_bytes: usize,
    pub cpu_ticks: u64,
    pub timeout: Duration,
    pub max_response_bytes: u64,
    pub max_requests: u32,
    pub max_requests_in_flight: u32,
}

impl CallLimits {
    pub fn from_config(config: &PluginsConfig) -> Self {
        CallLimits {
            memory_bytes: usize::try_from(config.memory_limit_mb.saturating_mul(1 << 20))
                .unwrap_or(usize::MAX),
            cpu_ticks: config.cpu_budget_ms.max(1),
            timeout: Duration::from_millis(config.timeout_ms),
            max_response_bytes: config.max_response_bytes,
            max_requests: config.max_requests_per_call,
            max_requests_in_flight: config.max_requests_in_flight,
        }
    }
}
