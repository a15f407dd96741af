//! Connectors' health in the shared database (the SQL is `store::health`'s).

use super::{PostgresStore, Sql};
use crate::store::Result;
use crate::store::health::{
    ADD, CIRCUITS, FIRST_MOVE, FORGET, HealthStore, MOVE, READ, SecondCount, SharedHealth,
    StoredCircuit,
};
use async_trait::async_trait;

#[async_trait]
impl HealthStore for PostgresStore {
    async fn share_health(
        &self,
        node: &str,
        counts: Vec<(String, SecondCount)>,
        forget_before: i64,
        read_from: i64,
    ) -> Result<SharedHealth> {
        let db = self.client().await?;
        for (connector, c) in &counts {
            let (ok, failed) = (c.ok as i64, c.failed as i64);
            db.exec(ADD, &[&node, connector, &c.second, &ok, &failed])
                .await?;
        }
        db.exec(FORGET, &[&forget_before]).await?;
        let counts = db
            .rows(READ, &[&read_from])
            .await?
            .iter()
            .map(|r| {
                (
                    r.get::<_, String>(0),
                    SecondCount {
                        second: r.get(1),
                        ok: r.get::<_, i64>(2).max(0) as u64,
                        failed: r.get::<_, i64>(3).max(0) as u64,
                    },
                )
            })
            .collect();
        let circuits = db
            .rows(CIRCUITS, &[])
            .await?
            .iter()
            .map(|r| StoredCircuit {
                connector: r.get(0),
                state: r.get(1),
                since: r.get(2),
                reason: r.get(3),
            })
            .collect();
        Ok(SharedHealth { counts, circuits })
    }

    async fn move_circuit(&self, from: Option<(&str, i64)>, to: &StoredCircuit) -> Result<bool> {
        let db = self.client().await?;
        let moved = match from {
            None => {
                db.exec(
                    FIRST_MOVE,
                    &[&to.connector, &to.state, &to.since, &to.reason],
                )
                .await?
            }
            Some((state, since)) => {
                db.exec(
                    MOVE,
                    &[
                        &to.state,
                        &to.since,
                        &to.reason,
                        &to.connector,
                        &state,
                        &since,
                    ],
                )
                .await?
            }
        };
        Ok(moved == 1)
    }
}
