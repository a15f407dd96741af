//! Connectors' health in the file (the SQL is `store::health`'s). One
//! node writes it; the counts are kept for the window only and a crash
//! loses at most a second of them, so they are written without fsync.

use super::{Durability, SqliteStore};
use crate::store::Result;
use crate::store::health::{
    ADD, CIRCUITS, FIRST_MOVE, FORGET, HealthStore, MOVE, READ, SecondCount, SharedHealth,
    StoredCircuit,
};
use async_trait::async_trait;
use rusqlite::params;

#[async_trait]
impl HealthStore for SqliteStore {
    async fn share_health(
        &self,
        node: &str,
        counts: Vec<(String, SecondCount)>,
        forget_before: i64,
        read_from: i64,
    ) -> Result<SharedHealth> {
        let node = node.to_owned();
        self.write_as(Durability::ProcessCrashSafe, move |conn| {
            let mut add = conn.prepare_cached(ADD)?;
            for (connector, c) in &counts {
                let (ok, failed) = (c.ok as i64, c.failed as i64);
                add.execute(params![node, connector, c.second, ok, failed])?;
            }
            conn.prepare_cached(FORGET)?
                .execute(params![forget_before])?;
            let counts = conn
                .prepare_cached(READ)?
                .query_map(params![read_from], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        SecondCount {
                            second: r.get(1)?,
                            ok: r.get::<_, i64>(2)?.max(0) as u64,
                            failed: r.get::<_, i64>(3)?.max(0) as u64,
                        },
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let circuits = conn
                .prepare_cached(CIRCUITS)?
                .query_map([], |r| {
                    Ok(StoredCircuit {
                        connector: r.get(0)?,
                        state: r.get(1)?,
                        since: r.get(2)?,
                        reason: r.get(3)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(SharedHealth { counts, circuits })
        })
        .await
    }

    async fn move_circuit(&self, from: Option<(&str, i64)>, to: &StoredCircuit) -> Result<bool> {
        let from = from.map(|(state, since)| (state.to_owned(), since));
        let to = to.clone();
        self.write_as(Durability::ProcessCrashSafe, move |conn| {
            let moved = match &from {
                None => conn.prepare_cached(FIRST_MOVE)?.execute(params![
                    to.connector,
                    to.state,
                    to.since,
                    to.reason
                ])?,
                Some((state, since)) => conn.prepare_cached(MOVE)?.execute(params![
                    to.state,
                    to.since,
                    to.reason,
                    to.connector,
                    state,
                    since
                ])?,
            };
            Ok(moved == 1)
        })
        .await
    }
}
