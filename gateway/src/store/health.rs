//! Connectors' health as every node sees it (schema step 16): each node
//! adds its attempts, counted per second, to `connector_attempts`, and
//! reads back every node's; a circuit's state lives in
//! `connector_circuits`, moved by one node at a time (a move names the
//! state it leaves, so two nodes seeing the same failures open it once).
//! The runtime's side is [`crate::health`]. The SQL is the same in both
//! stores; SQLite numbers `$n` by first appearance, so each statement
//! names them in order.

use super::error::Result;
use async_trait::async_trait;

/// One node's attempts on one connector within one second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecondCount {
    pub second: i64,
    pub ok: u64,
    pub failed: u64,
}

/// A circuit as stored: `closed`, `open` or `half_open` since when, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCircuit {
    pub connector: String,
    pub state: String,
    pub since: i64,
    pub reason: String,
}

/// Every node's counts since a second, and the circuits.
#[derive(Debug, Clone, Default)]
pub struct SharedHealth {
    /// Summed over nodes, per connector and second.
    pub counts: Vec<(String, SecondCount)>,
    pub circuits: Vec<StoredCircuit>,
}

#[async_trait]
pub trait HealthStore {
    /// Adds `node`'s counts, forgets seconds before `forget_before`, and
    /// reads every node's counts from `read_from` on with the circuits.
    async fn share_health(
        &self,
        node: &str,
        counts: Vec<(String, SecondCount)>,
        forget_before: i64,
        read_from: i64,
    ) -> Result<SharedHealth>;

    /// Moves `connector`'s circuit from `from` (its state and since, as
    /// read; `None`: no row yet) to `to`; false when another node moved it
    /// first.
    async fn move_circuit(&self, from: Option<(&str, i64)>, to: &StoredCircuit) -> Result<bool>;
}

/// `$1` node, `$2` connector, `$3` second, `$4` ok, `$5` failed.
pub(crate) const ADD: &str = "INSERT INTO connector_attempts (node, connector, second, ok, failed)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (node, connector, second) DO UPDATE
     SET ok = connector_attempts.ok + excluded.ok,
         failed = connector_attempts.failed + excluded.failed";

pub(crate) const FORGET: &str = "DELETE FROM connector_attempts WHERE second < $1";

pub(crate) const READ: &str =
    "SELECT connector, second, CAST(SUM(ok) AS BIGINT), CAST(SUM(failed) AS BIGINT)
     FROM connector_attempts WHERE second >= $1 GROUP BY connector, second";

pub(crate) const CIRCUITS: &str = "SELECT connector, state, since, reason FROM connector_circuits";

/// `$1` connector, `$2` state, `$3` since, `$4` reason.
pub(crate) const FIRST_MOVE: &str =
    "INSERT INTO connector_circuits (connector, state, since, reason)
     VALUES ($1, $2, $3, $4) ON CONFLICT (connector) DO NOTHING";

/// `$1` state, `$2` since, `$3` reason, `$4` connector, `$5` the state
/// left, `$6` its since.
pub(crate) const MOVE: &str = "UPDATE connector_circuits SET state = $1, since = $2, reason = $3
     WHERE connector = $4 AND state = $5 AND since = $6";
