//! The channel report's kept days on PostgreSQL (see
//! [`crate::store::report_days`]): counted on the analytics pool, claimed
//! in a transaction of its own, kept under the claim's row lock, so a
//! message written meanwhile waits for the keep and then forgets the day.

use super::{PostgresStore, Sql};
use crate::store::Result;
use crate::store::report_days::{self, CLAIM_TIMEOUT_MS, DAY_MS, DaySums, SETTLE_MS};
use crate::store::reports::{self, MessageCounts, ReportKey};
use async_trait::async_trait;
use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::LazyLock;
use tokio_postgres::Row;

fn placeholder(n: usize) -> String {
    format!("${n}")
}

/// A row's key (columns `at..at + n`) and sums (the six after them).
fn counts(r: &Row, at: usize, n: usize) -> MessageCounts {
    let mut counts = [0i64; 5];
    for (i, count) in counts.iter_mut().enumerate() {
        // Sums over no rows are NULL.
        *count = r.get::<_, Option<i64>>(at + n + i).unwrap_or(0);
    }
    MessageCounts {
        key: (at..at + n).map(|i| r.get(i)).collect(),
        counts,
        cost: r.get::<_, Option<f64>>(at + n + 5).unwrap_or(0.0),
    }
}

/// Only a day settled on the database's clock too, whatever the node's
/// says: the triggers that forget a day read that clock.
static CLAIM: LazyLock<String> = LazyLock::new(|| {
    report_days::claim_sql(
        &format!(
            "SELECT $1::BIGINT, $2::TEXT, $3::BIGINT
             WHERE ($1::BIGINT + 1) * {DAY_MS}
                 <= FLOOR(EXTRACT(EPOCH FROM now()) * 1000)::BIGINT - {SETTLE_MS}"
        ),
        placeholder,
    )
});

#[async_trait]
impl DaySums for PostgresStore {
    async fn kept(
        &self,
        days: Range<i64>,
        keys: &[ReportKey],
    ) -> Result<(BTreeSet<i64>, Vec<MessageCounts>)> {
        let db = self.analyst().await?;
        let rows = db
            .rows(
                &report_days::kept_sql(keys, placeholder),
                &[&days.start, &days.end],
            )
            .await?;
        let kept = rows.iter().map(|r| r.get::<_, i64>(0)).collect();
        let counts = rows.iter().map(|r| counts(r, 1, keys.len())).collect();
        Ok((kept, counts))
    }

    async fn claim(&self, day: i64, claim: &str, now: i64) -> Result<bool> {
        let db = self.client().await?;
        let oldest = now - CLAIM_TIMEOUT_MS;
        Ok(db
            .opt(&CLAIM, &[&day, &claim, &now, &oldest])
            .await?
            .is_some())
    }

    async fn keep(&self, day: i64, claim: &str, rows: Vec<MessageCounts>, now: i64) -> Result<()> {
        let holds = format!("{} FOR UPDATE", report_days::holds_sql(placeholder));
        transaction!(self, |tx| {
            async {
                if tx.opt(&holds, &[&day, &claim]).await?.is_none() {
                    return Ok(());
                }
                let insert = report_days::row_sql(placeholder);
                for row in &rows {
                    let [sent, delivered, read, failed, suppressed] = &row.counts;
                    tx.exec(
                        &insert,
                        &[
                            &day,
                            &row.key[0],
                            &row.key[1],
                            &row.key[2],
                            sent,
                            delivered,
                            read,
                            failed,
                            suppressed,
                            &row.cost,
                        ],
                    )
                    .await?;
                }
                tx.exec(&report_days::rolled_sql(placeholder), &[&day, &now])
                    .await?;
                Ok(())
            }
            .await
        })
    }

    async fn count(&self, from: i64, to: i64, keys: &[ReportKey]) -> Result<Vec<MessageCounts>> {
        let db = self.analyst().await?;
        Ok(db
            .rows(&reports::messages_sql(keys, placeholder), &[&from, &to])
            .await?
            .iter()
            .map(|r| counts(r, 0, keys.len()))
            .collect())
    }

    async fn conversions(
        &self,
        from: i64,
        to: i64,
        keys: &[ReportKey],
    ) -> Result<Vec<(Vec<Option<String>>, i64, f64)>> {
        let db = self.analyst().await?;
        let n = keys.len();
        Ok(db
            .rows(&reports::conversions_sql(keys, placeholder), &[&from, &to])
            .await?
            .iter()
            .map(|r| {
                (
                    (0..n).map(|i| r.get(i)).collect(),
                    r.get::<_, i64>(n),
                    r.get::<_, Option<f64>>(n + 1).unwrap_or(0.0),
                )
            })
            .collect())
    }
}
