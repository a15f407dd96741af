//! Segments, broadcasts and campaign counts on PostgreSQL. A broadcast is
//! leased with `FOR UPDATE SKIP LOCKED`: two nodes never fan out the same
//! one at once.

use super::messages::{self, OPEN};
use super::{PostgresStore, Sql};
use crate::store::StoreError;
use crate::store::campaigns::{BroadcastRecord, CampaignStore, StatusCount};
use crate::store::segments::{self, Param, SegmentQuery, Select};
use async_trait::async_trait;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

const BROADCAST_COLUMNS: &str =
    "id, definition, status, cursor, planned, start_at, created_at, updated_at";

fn broadcast_row(r: &Row) -> BroadcastRecord {
    BroadcastRecord {
        id: r.get(0),
        definition: r.get(1),
        status: r.get(2),
        cursor: r.get(3),
        planned: r.get(4),
        start_at: r.get(5),
        created_at: r.get(6),
        updated_at: r.get(7),
    }
}

fn placeholder(n: usize) -> String {
    format!("${n}")
}

/// The segment's SQL run with its parameters bound.
async fn segment_rows(
    db: &impl Sql,
    query: &SegmentQuery,
    select: Select<'_>,
) -> Result<Vec<Row>, StoreError> {
    let (sql, params) = segments::sql(query, select, placeholder);
    let owned: Vec<Box<dyn ToSql + Sync + Send>> = params
        .into_iter()
        .map(|p| -> Box<dyn ToSql + Sync + Send> {
            match p {
                Param::Text(t) => Box::new(t),
                Param::Int(i) => Box::new(i),
            }
        })
        .collect();
    let refs: Vec<&(dyn ToSql + Sync)> = owned
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect();
    db.rows(&sql, &refs).await
}

async fn cancel_campaign(tx: &impl Sql, campaign: &str, now: i64) -> Result<usize, StoreError> {
    let keys = tx
        .rows(
            &format!(
                "SELECT DISTINCT scope, cancel_key FROM messages
                 WHERE campaign = $1 AND cancel_key IS NOT NULL AND status IN {}",
                *OPEN
            ),
            &[&campaign],
        )
        .await?;
    let mut cancelled = 0;
    for key in keys {
        let (scope, key): (String, String) = (key.get(0), key.get(1));
        cancelled += messages::cancel(tx, &scope, &key, now)
            .await?
            .cancelled
            .len();
    }
    Ok(cancelled)
}

#[async_trait]
impl CampaignStore for PostgresStore {
    async fn segment_members(
        &self,
        query: SegmentQuery,
        after: String,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let rows = segment_rows(
            &self.client().await?,
            &query,
            Select::Page {
                after: &after,
                limit,
            },
        )
        .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn segment_count(&self, query: SegmentQuery) -> Result<u64, StoreError> {
        let rows = segment_rows(&self.client().await?, &query, Select::Count).await?;
        Ok(rows.first().map_or(0, |r| r.get::<_, i64>(0)) as u64)
    }

    async fn put_segment(
        &self,
        name: &str,
        definition: String,
        now: i64,
    ) -> Result<bool, StoreError> {
        let row = self
            .client()
            .await?
            .one(
                "INSERT INTO segments (name, definition, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET definition = EXCLUDED.definition,
                                                  updated_at = EXCLUDED.updated_at
                 RETURNING xmax = 0",
                &[&name, &definition, &now],
            )
            .await?;
        Ok(row.get(0))
    }

    async fn segment(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .client()
            .await?
            .opt("SELECT definition FROM segments WHERE name = $1", &[&name])
            .await?
            .map(|r| r.get(0)))
    }

    async fn insert_broadcast(&self, b: BroadcastRecord) -> Result<(), StoreError> {
        self.client()
            .await?
            .exec(
                &format!(
                    "INSERT INTO broadcasts ({BROADCAST_COLUMNS})
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                ),
                &[
                    &b.id,
                    &b.definition,
                    &b.status,
                    &b.cursor,
                    &b.planned,
                    &b.start_at,
                    &b.created_at,
                    &b.updated_at,
                ],
            )
            .await?;
        Ok(())
    }

    async fn broadcast(&self, id: &str) -> Result<Option<BroadcastRecord>, StoreError> {
        Ok(self
            .client()
            .await?
            .opt(
                &format!("SELECT {BROADCAST_COLUMNS} FROM broadcasts WHERE id = $1"),
                &[&id],
            )
            .await?
            .map(|r| broadcast_row(&r)))
    }

    async fn lease_broadcast(
        &self,
        now: i64,
        lease_ms: i64,
    ) -> Result<Option<BroadcastRecord>, StoreError> {
        Ok(self
            .client()
            .await?
            .opt(
                &format!(
                    "UPDATE broadcasts SET status = 'planning', lease_until = $1 + $2,
                         updated_at = $1
                     WHERE id = (SELECT id FROM broadcasts
                                 WHERE status IN ('scheduled', 'planning') AND start_at <= $1
                                   AND (lease_until IS NULL OR lease_until <= $1)
                                 ORDER BY start_at LIMIT 1
                                 FOR UPDATE SKIP LOCKED)
                     RETURNING {BROADCAST_COLUMNS}"
                ),
                &[&now, &lease_ms],
            )
            .await?
            .map(|r| broadcast_row(&r)))
    }

    async fn advance_broadcast(
        &self,
        id: &str,
        cursor: &str,
        planned: i64,
        done: bool,
        lease_until: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let status = if done { "planned" } else { "planning" };
        let changed = self
            .client()
            .await?
            .exec(
                "UPDATE broadcasts SET cursor = $2, planned = planned + $3, status = $4,
                     lease_until = $5, updated_at = $6
                 WHERE id = $1 AND status = 'planning'",
                &[&id, &cursor, &planned, &status, &lease_until, &now],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn cancel_broadcast(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let campaign = format!("broadcast:{id}");
        transaction!(self, |tx| {
            async {
                let stopped = tx
                    .exec(
                        "UPDATE broadcasts SET status = 'cancelled', lease_until = NULL,
                             updated_at = $2
                         WHERE id = $1 AND status IN ('scheduled', 'planning', 'planned')",
                        &[&id, &now],
                    )
                    .await?;
                cancel_campaign(&tx, &campaign, now).await?;
                Ok(stopped == 1)
            }
            .await
        })
    }

    async fn campaign_progress(&self, campaign: &str) -> Result<Vec<StatusCount>, StoreError> {
        let rows = self
            .client()
            .await?
            .rows(
                "SELECT status,
                        CASE WHEN status IN ('suppressed', 'failed', 'expired')
                             THEN split_part(status_reason, ':', 1)
                        END AS reason,
                        COUNT(*)
                 FROM messages WHERE campaign = $1
                 GROUP BY status, reason ORDER BY status, reason",
                &[&campaign],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| StatusCount {
                status: r.get(0),
                reason: r.get(1),
                count: r.get(2),
            })
            .collect())
    }

    async fn cancel_campaign(&self, campaign: &str, now: i64) -> Result<usize, StoreError> {
        transaction!(self, |tx| cancel_campaign(&tx, campaign, now).await)
    }
}
