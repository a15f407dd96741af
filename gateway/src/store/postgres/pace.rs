//! Rate-limited connectors' timelines in the shared database: every node
//! takes its turns from the same row, under its lock (see `store::pace`).

use super::{PostgresStore, Sql};
use crate::store::Result;
use crate::store::pace::{Ask, PaceStore, Turns};
use async_trait::async_trait;

#[async_trait]
impl PaceStore for PostgresStore {
    async fn take_turns(&self, ask: Ask<'_>) -> Result<Turns> {
        transaction!(self, |tx| {
            async {
                // The row first, so that two nodes' first turns at once
                // wait on one lock like any others.
                tx.exec(
                    "INSERT INTO connector_pace (connector, tat) VALUES ($1, $2)
                     ON CONFLICT (connector) DO NOTHING",
                    &[&ask.connector, &ask.now],
                )
                .await?;
                let tat: Option<i64> = tx
                    .opt(
                        "SELECT tat FROM connector_pace WHERE connector = $1 FOR UPDATE",
                        &[&ask.connector],
                    )
                    .await?
                    .map(|row| row.get(0));
                let (turns, moved) = ask.against(tat);
                tx.exec(
                    "UPDATE connector_pace SET tat = $2 WHERE connector = $1",
                    &[&ask.connector, &moved],
                )
                .await?;
                Ok(turns)
            }
            .await
        })
    }

    async fn hold_turns(&self, connector: &str, until: i64) -> Result<()> {
        self.client()
            .await?
            .exec(
                "INSERT INTO connector_pace (connector, tat) VALUES ($1, $2)
                 ON CONFLICT (connector) DO UPDATE
                 SET tat = GREATEST(connector_pace.tat, excluded.tat)",
                &[&connector, &until],
            )
            .await?;
        Ok(())
    }
}
