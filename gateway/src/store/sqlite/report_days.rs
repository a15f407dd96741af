//! The channel report's kept days in SQLite (see
//! [`crate::store::report_days`]): counted on the analytics connection,
//! claimed and kept through the writer, which no other write can slip past.

use super::SqliteStore;
use crate::store::Result;
use crate::store::report_days::{self, CLAIM_TIMEOUT_MS, DaySums};
use crate::store::reports::{self, MessageCounts, ReportKey};
use async_trait::async_trait;
use rusqlite::{OptionalExtension as _, Row, params};
use std::collections::BTreeSet;
use std::ops::Range;

fn placeholder(n: usize) -> String {
    format!("?{n}")
}

/// A row's key (columns `at..at + n`) and sums (the six after them).
fn counts(r: &Row, at: usize, n: usize) -> rusqlite::Result<MessageCounts> {
    let mut counts = [0i64; 5];
    for (i, count) in counts.iter_mut().enumerate() {
        // Sums over no rows are NULL.
        *count = r.get::<_, Option<i64>>(at + n + i)?.unwrap_or(0);
    }
    Ok(MessageCounts {
        key: (at..at + n).map(|i| r.get(i)).collect::<Result<_, _>>()?,
        counts,
        cost: r.get::<_, Option<f64>>(at + n + 5)?.unwrap_or(0.0),
    })
}

#[async_trait]
impl DaySums for SqliteStore {
    async fn kept(
        &self,
        days: Range<i64>,
        keys: &[ReportKey],
    ) -> Result<(BTreeSet<i64>, Vec<MessageCounts>)> {
        let keys = keys.to_vec();
        self.analyze(move |conn| {
            let mut kept = BTreeSet::new();
            let rows = conn
                .prepare_cached(&report_days::kept_sql(&keys, placeholder))?
                .query_map(params![days.start, days.end], |r| {
                    Ok((r.get::<_, i64>(0)?, counts(r, 1, keys.len())?))
                })?
                .map(|row| {
                    row.map(|(day, counts)| {
                        kept.insert(day);
                        counts
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((kept, rows))
        })
        .await
    }

    async fn claim(&self, day: i64, claim: &str, now: i64) -> Result<bool> {
        let claim = claim.to_owned();
        self.write(move |conn| {
            let sql = report_days::claim_sql("VALUES (?1, ?2, ?3)", placeholder);
            Ok(conn
                .prepare_cached(&sql)?
                .query_row(params![day, claim, now, now - CLAIM_TIMEOUT_MS], |_| Ok(()))
                .optional()?
                .is_some())
        })
        .await
    }

    async fn keep(&self, day: i64, claim: &str, rows: Vec<MessageCounts>, now: i64) -> Result<()> {
        let claim = claim.to_owned();
        self.write(move |conn| {
            let holds = conn
                .prepare_cached(&report_days::holds_sql(placeholder))?
                .query_row(params![day, claim], |_| Ok(()))
                .optional()?
                .is_some();
            if !holds {
                return Ok(());
            }
            let mut insert = conn.prepare_cached(&report_days::row_sql(placeholder))?;
            for row in &rows {
                let [sent, delivered, read, failed, suppressed] = row.counts;
                insert.execute(params![
                    day, row.key[0], row.key[1], row.key[2], sent, delivered, read, failed,
                    suppressed, row.cost
                ])?;
            }
            conn.prepare_cached(&report_days::rolled_sql(placeholder))?
                .execute(params![day, now])?;
            Ok(())
        })
        .await
    }

    async fn count(&self, from: i64, to: i64, keys: &[ReportKey]) -> Result<Vec<MessageCounts>> {
        let keys = keys.to_vec();
        self.analyze(move |conn| {
            Ok(conn
                .prepare_cached(&reports::messages_sql(&keys, placeholder))?
                .query_map(params![from, to], |r| counts(r, 0, keys.len()))?
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn conversions(
        &self,
        from: i64,
        to: i64,
        keys: &[ReportKey],
    ) -> Result<Vec<(Vec<Option<String>>, i64, f64)>> {
        let keys = keys.to_vec();
        self.analyze(move |conn| {
            let n = keys.len();
            Ok(conn
                .prepare_cached(&reports::conversions_sql(&keys, placeholder))?
                .query_map(params![from, to], |r| {
                    Ok((
                        (0..n).map(|i| r.get(i)).collect::<Result<_, _>>()?,
                        r.get(n)?,
                        r.get::<_, Option<f64>>(n + 1)?.unwrap_or(0.0),
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }
}
