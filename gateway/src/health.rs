//! Each connector's circuit: closed (used), open (skipped, with the reason
//! `connector_unhealthy`) or half open (a few probes let through).
//!
//! A node counts its own attempts per second in memory ([`Health::record`],
//! on the delivery path: one short lock) and, every `sync_ms`, adds them to
//! the store and reads every node's back ([`Health::sync`]), so all nodes
//! judge the same window. What counts as a failure is what says the
//! provider is unwell: a failure worth retrying (a 5xx, a 429, a timeout,
//! a refused connection). A provider refusing one message for itself (an
//! invalid number) says nothing about its health and is not counted.
//!
//! The rules, judged on the counts since the circuit's last move (so the
//! failures that opened it do not open it again once it closed):
//! - closed -> open: at least `min_attempts` in the window and at least
//!   `open_at` of them failed;
//! - open -> half open: after `open_for`;
//! - half open -> closed: `probes` probes succeeded; -> open: a probe failed
//!   and failures are again at least `open_at` of the probes.
//!
//! A move is written to the store naming the state it leaves, so when
//! several nodes see the same counts, one moves the circuit and the others
//! read the move on their next sync.

use crate::config::HealthConfig;
use crate::store::Store;
use crate::store::health::{SecondCount, StoredCircuit};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
        }
    }

    /// `/metrics`' figure: 0 closed, 1 half open, 2 open.
    pub fn gauge(self) -> i64 {
        match self {
            State::Closed => 0,
            State::HalfOpen => 1,
            State::Open => 2,
        }
    }

    fn parse(s: &str) -> State {
        match s {
            "open" => State::Open,
            "half_open" => State::HalfOpen,
            _ => State::Closed,
        }
    }
}

/// What the delivery path may do with a connector now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Go,
    /// Half open: this attempt is one of the probes.
    Probe,
    /// Open (or half open with every probe in flight): why.
    Skip(String),
}

/// One connector's circuit and window, as `GET /v1/connectors` and
/// `/metrics` show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectorHealth {
    pub state: State,
    /// When the circuit last moved (ms), if it ever did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Every node's attempts in the window since the last move.
    pub attempts: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, Default)]
struct Circuit {
    state: Option<State>,
    since: i64,
    reason: String,
    /// Shared counts since the last move, within the window.
    attempts: u64,
    failed: u64,
}

impl Circuit {
    fn state(&self) -> State {
        self.state.unwrap_or(State::Closed)
    }
}

#[derive(Default)]
struct Inner {
    /// This node's counts not yet shared, by connector and second.
    pending: HashMap<(String, i64), (u64, u64)>,
    circuits: HashMap<String, Circuit>,
    /// Probes in flight on this node, by connector.
    probing: HashMap<String, u32>,
}

pub struct Health {
    config: HealthConfig,
    node: String,
    inner: Mutex<Inner>,
}

impl Health {
    pub fn new(config: HealthConfig, node: &str) -> Health {
        Health {
            config,
            node: node.to_owned(),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether an attempt on `connector` may go now.
    pub fn admit(&self, connector: &str) -> Admission {
        if !self.config.enabled {
            return Admission::Go;
        }
        let mut inner = self.lock();
        let Some(circuit) = inner.circuits.get(connector) else {
            return Admission::Go;
        };
        match circuit.state() {
            State::Closed => Admission::Go,
            State::Open => Admission::Skip(format!(
                "connector {connector:?} is unhealthy: {}",
                circuit.reason
            )),
            State::HalfOpen => {
                let reason = circuit.reason.clone();
                let probing = inner.probing.entry(connector.to_owned()).or_default();
                if *probing < self.config.probes {
                    *probing += 1;
                    Admission::Probe
                } else {
                    Admission::Skip(format!("connector {connector:?} is being probed: {reason}"))
                }
            }
        }
    }

    /// An attempt's end: `healthy` false for a failure that says the
    /// provider is unwell; `None` for one that says nothing (not counted).
    pub fn record(&self, connector: &str, healthy: Option<bool>, probe: bool, at: i64) {
        if !self.config.enabled {
            return;
        }
        let mut inner = self.lock();
        if probe && let Some(n) = inner.probing.get_mut(connector) {
            *n = n.saturating_sub(1);
        }
        let Some(healthy) = healthy else { return };
        let second = at.div_euclid(1_000);
        let entry = inner
            .pending
            .entry((connector.to_owned(), second))
            .or_default();
        if healthy {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
    }

    /// Connectors whose circuit is open now: the planner tries them last.
    pub fn unhealthy(&self) -> Vec<String> {
        if !self.config.enabled {
            return Vec::new();
        }
        self.lock()
            .circuits
            .iter()
            .filter(|(_, c)| c.state() == State::Open)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Every connector's circuit that moved or counted anything.
    pub fn snapshot(&self) -> HashMap<String, ConnectorHealth> {
        self.lock()
            .circuits
            .iter()
            .map(|(name, c)| {
                (
                    name.clone(),
                    ConnectorHealth {
                        state: c.state(),
                        since: c.state.map(|_| c.since),
                        reason: c.reason.clone(),
                        attempts: c.attempts,
                        failed: c.failed,
                    },
                )
            })
            .collect()
    }

    /// Share this node's counts, read every node's and move circuits that
    /// the rules say should move.
    pub async fn sync(&self, store: &dyn Store, now: i64) -> crate::store::Result<()> {
        if !self.config.enabled {
            return Ok(());
        }
        let pending: Vec<(String, SecondCount)> = std::mem::take(&mut self.lock().pending)
            .into_iter()
            .map(|((connector, second), (ok, failed))| {
                (connector, SecondCount { second, ok, failed })
            })
            .collect();
        let from = (now - self.config.window).div_euclid(1_000);
        let shared = match store
            .share_health(&self.node, pending.clone(), from, from)
            .await
        {
            Ok(shared) => shared,
            Err(e) => {
                // Kept for the next sync rather than lost.
                let mut inner = self.lock();
                for (connector, c) in pending {
                    let entry = inner.pending.entry((connector, c.second)).or_default();
                    entry.0 += c.ok;
                    entry.1 += c.failed;
                }
                return Err(e);
            }
        };
        let mut circuits: HashMap<String, Circuit> = HashMap::new();
        for stored in shared.circuits {
            circuits.insert(
                stored.connector,
                Circuit {
                    state: Some(State::parse(&stored.state)),
                    since: stored.since,
                    reason: stored.reason,
                    ..Circuit::default()
                },
            );
        }
        for (connector, c) in &shared.counts {
            let circuit = circuits.entry(connector.clone()).or_default();
            if c.second * 1_000 + 999 >= circuit.since {
                circuit.attempts += c.ok + c.failed;
                circuit.failed += c.failed;
            }
        }
        for (connector, circuit) in circuits.iter_mut() {
            if let Some(to) = self.next(connector, circuit, now) {
                let from = circuit.state.map(|s| (s.as_str(), circuit.since));
                if store.move_circuit(from, &to).await? {
                    tracing::warn!(
                        connector = %connector,
                        state = %to.state,
                        reason = %to.reason,
                        "connector circuit moved"
                    );
                    *circuit = Circuit {
                        state: Some(State::parse(&to.state)),
                        since: to.since,
                        reason: to.reason,
                        ..Circuit::default()
                    };
                }
            }
        }
        self.lock().circuits = circuits;
        Ok(())
    }

    /// The move the rules make now, if any.
    fn next(&self, connector: &str, c: &Circuit, now: i64) -> Option<StoredCircuit> {
        let h = &self.config;
        let share = |failed: u64, attempts: u64| failed as f64 / attempts.max(1) as f64;
        let to = |state: State, reason: String| StoredCircuit {
            connector: connector.to_owned(),
            state: state.as_str().to_owned(),
            since: now,
            reason,
        };
        match c.state() {
            State::Closed
                if c.attempts >= u64::from(h.min_attempts)
                    && share(c.failed, c.attempts) >= h.open_at =>
            {
                Some(to(
                    State::Open,
                    format!(
                        "{} of {} attempts failed within {}",
                        c.failed,
                        c.attempts,
                        crate::routing::policy::humane(h.window)
                    ),
                ))
            }
            State::Open if now - c.since >= h.open_for => Some(to(
                State::HalfOpen,
                format!(
                    "probing after {}",
                    crate::routing::policy::humane(h.open_for)
                ),
            )),
            State::HalfOpen if c.failed > 0 && share(c.failed, c.attempts) >= h.open_at => {
                Some(to(
                    State::Open,
                    format!("{} of {} probes failed", c.failed, c.attempts),
                ))
            }
            State::HalfOpen if c.attempts - c.failed >= u64::from(h.probes) => Some(to(
                State::Closed,
                format!("{} probes went through", c.attempts - c.failed),
            )),
            _ => None,
        }
    }
}

/// Judge every `sync_ms` until `stop`: a store that cannot be reached
/// keeps the last judgement and this node's counts for the next try.
pub async fn run(
    health: std::sync::Arc<Health>,
    store: std::sync::Arc<dyn Store>,
    clock: std::sync::Arc<crate::clock::Clock>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    if !health.config.enabled {
        return;
    }
    let every = std::time::Duration::from_millis(health.config.sync_ms);
    while !*stop.borrow() {
        if let Err(e) = health.sync(&*store, clock.now()).await {
            tracing::warn!("cannot share connectors' health: {e}");
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => {}
        }
    }
}
