//! What one plugin call may use, and the per-call store that enforces it.

use super::connector_cache::Claim;
use super::egress::Egress;
use super::last_words::LastWords;
use super::limits::CallLimits;
use super::outcome::Failure;
use super::scope::Scope;
use crate::config::PluginsConfig;
use crate::outbound::OutboundClient;
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime::{
    Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store,
    UpdateDeadline,
};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::body::{HostFutureTrailers, HostIncomingBody, HostOutgoingBody};
use wasmtime_wasi_http::p2::types::{
    HostFutureIncomingResponse, HostIncomingResponse, HostOutgoingRequest,
};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Plugin panics print here; the last line is quoted in the attempt's reason.
const STDERR_CAPACITY: usize = 4096;
/// Bytes of each pooled memory and table reset in place rather than unmapped.
const KEEP_RESIDENT: usize = 1024 * 1024;

/// One engine for the whole process: pooled instances, epoch interruption.
pub fn engine(config: &PluginsConfig) -> wasmtime::Result<Engine> {
    let limits = CallLimits::from_config(config);
    let instances = config.max_instances;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(8))
        .total_memories(instances.saturating_mul(2))
        .total_tables(instances.saturating_mul(4))
        .total_stacks(instances)
        .max_memory_size(limits.memory_bytes)
        // Reset a reused slot in place instead of unmapping it: a plugin call
        // touches little memory, and page faults on every fresh instance cost
        // more than clearing it. Where the kernel can say which pages a call
        // dirtied (PAGEMAP_SCAN, Linux 6.7+), only those are cleared.
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT)
        .pagemap_scan(wasmtime::Enabled::Auto);
    let mut wasm = wasmtime::Config::new();
    wasm.epoch_interruption(true)
        .memory_reservation(limits.memory_bytes as u64)
        .memory_init_cow(false)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&wasm)
}

/// The state of one call's store.
pub struct CallState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    pub(super) egress: Egress,
    memory: MemoryLimiter,
    pub(super) scope: Arc<Scope>,
    cpu_ticks_left: u64,
    stderr: LastWords,
    /// Cache keys this call missed and is expected to fill.
    pub(super) claims: Vec<Claim>,
    /// Addresses the connector reported dead during this call, with the reason.
    pub(super) dead_addresses: Vec<(String, String)>,
}

impl Drop for CallState {
    /// A call that missed a key and ended without filling it (it failed,
    /// trapped or timed out) hands the fill to the next caller.
    fn drop(&mut self) {
        for claim in &self.claims {
            self.scope.cache.release(claim);
        }
    }
}

impl CallState {
    pub fn new(scope: Arc<Scope>, limits: &CallLimits, client: OutboundClient) -> Self {
        let stderr = LastWords::new(STDERR_CAPACITY);
        // No preopens, no environment, no arguments, no sockets: the only
        // capability a plugin gets is the filtered `wasi:http`.
        let wasi = WasiCtxBuilder::new().stderr(stderr.clone()).build();
        CallState {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            egress: Egress::new(scope.clone(), client, limits),
            memory: MemoryLimiter {
                limit: limits.memory_bytes,
                exceeded: false,
            },
            scope,
            cpu_ticks_left: limits.cpu_ticks,
            stderr,
            claims: Vec::new(),
            dead_addresses: Vec::new(),
        }
    }

    /// Make a kept instance's state what a fresh one's would be: new limits,
    /// egress policy state and stderr; its memory is the guest's own.
    pub fn begin_call(&mut self, limits: &CallLimits, client: OutboundClient) {
        self.egress = Egress::new(self.scope.clone(), client, limits);
        self.memory.exceeded = false;
        self.cpu_ticks_left = limits.cpu_ticks;
        self.stderr.clear();
    }

    /// Close a call that ended well, for its instance to be kept. Claims it
    /// left unfilled go to the next caller, as when a store is dropped.
    /// False when the egress gate refused or timed out one of its requests,
    /// or when the guest still holds an HTTP request, response or body,
    /// whose connection would outlive the call and escape the next call's
    /// request limits: such an instance is not kept. (Handles it keeps for
    /// good, such as stderr's stream, are no reason to drop it.)
    pub fn end_call(&mut self) -> bool {
        for claim in self.claims.drain(..) {
            self.scope.cache.release(&claim);
        }
        self.dead_addresses.clear();
        if self.egress.refused().is_some() || self.egress.timed_out().is_some() {
            return false;
        }
        !self.table.iter_mut().any(|entry| {
            entry.is::<HostOutgoingRequest>()
                || entry.is::<HostFutureIncomingResponse>()
                || entry.is::<HostIncomingResponse>()
                || entry.is::<HostIncomingBody>()
                || entry.is::<HostOutgoingBody>()
                || entry.is::<HostFutureTrailers>()
        })
    }
}

/// A fresh store with the call's memory limit and CPU budget.
pub fn store(engine: &Engine, state: CallState) -> Store<CallState> {
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.memory);
    store.set_epoch_deadline(1);
    // Called at most once per tick while guest code runs, so it counts CPU
    // time, not time spent waiting on the provider.
    store.epoch_deadline_callback(|mut ctx| {
        let state = ctx.data_mut();
        if state.cpu_ticks_left == 0 {
            return Err(wasmtime::Error::new(CpuBudgetExceeded));
        }
        state.cpu_ticks_left -= 1;
        Ok(UpdateDeadline::Yield(1))
    });
    store
}

#[derive(Debug)]
struct CpuBudgetExceeded;

impl std::fmt::Display for CpuBudgetExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CPU budget exceeded")
    }
}

impl std::error::Error for CpuBudgetExceeded {}

/// Turn a failed call into an attempt's reason an operator can act on.
pub fn explain_trap(error: &wasmtime::Error, state: &CallState, limits: &CallLimits) -> Failure {
    if state.memory.exceeded {
        return Failure::sandbox(
            "plugin_memory_limit",
            format!(
                "exceeded the {} MiB memory limit",
                limits.memory_bytes >> 20
            ),
        );
    }
    // Every pooled sandbox is in use: the gateway is busy, not the plugin
    // at fault, so the same connector is tried again shortly.
    if error
        .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
    {
        return Failure {
            retryable: true,
            ..Failure::sandbox(
                "sandbox_busy",
                format!("every pooled sandbox is in use: {error}; raise plugins.max_instances"),
            )
        };
    }
    if error.downcast_ref::<CpuBudgetExceeded>().is_some() {
        return Failure::sandbox(
            "plugin_cpu_budget",
            format!("exceeded the CPU budget of {} ms", limits.cpu_ticks),
        );
    }
    let stderr = state.stderr.contents();
    let last_words = String::from_utf8_lossy(&stderr);
    let last_words = last_words
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.starts_with("note: "))
        .map(|l| format!(": {}", super::untrusted::text(l.trim(), 512)))
        .unwrap_or_default();
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => Failure::sandbox(
            "plugin_trap",
            format!("plugin trapped ({trap}){last_words}"),
        ),
        None => Failure::sandbox(
            "plugin_error",
            format!("plugin call failed: {error}{last_words}"),
        ),
    }
}

/// Refuses memory growth past the limit and remembers that it did.
struct MemoryLimiter {
    limit: usize,
    exceeded: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.egress,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PluginsConfig;

    fn state() -> CallState {
        let scope = Arc::new(Scope {
            name: Arc::from("test"),
            settings: Vec::new(),
            allowed_hosts: Vec::new(),
            cache: Default::default(),
            transcript: None,
        });
        let limits = CallLimits::from_config(&PluginsConfig::default());
        CallState::new(scope, &limits, OutboundClient::new())
    }

    #[test]
    fn an_instance_holding_an_http_resource_is_not_kept() {
        let mut state = state();
        let kept_for_good = state
            .table
            .push(String::from("a stream kept by libc"))
            .unwrap();
        assert!(
            state.end_call(),
            "a harmless handle kept the instance off the shelf"
        );
        let pending = state
            .table
            .push(HostFutureIncomingResponse::Consumed)
            .unwrap();
        assert!(!state.end_call(), "an open response was kept");
        state.table.delete(pending).unwrap();
        state.table.delete(kept_for_good).unwrap();
        assert!(state.end_call());
    }
}
