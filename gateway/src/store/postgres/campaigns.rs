//! Segments, broadcasts and campaign counts on PostgreSQL. A broadcast is
//! leased with `FOR UPDATE SKIP LOCKED`: two nodes never fan out the same
//! one at once.

use super::messages;
use super::{PostgresStore, Sql};
use crate::store::OPEN;
use crate::store::Result;
use crate::store::campaigns::{
    BroadcastRecord, CampaignStore, Progress, RefusedMember, StatusCount,
};
use crate::store::reports::{self, ConversionRecord, NewConversion, ReportKey, ReportRow, Touch};
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
async fn segment_rows(db: &impl Sql, query: &SegmentQuery, select: Select<'_>) -> Result<Vec<Row>> {
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

async fn cancel_campaign(tx: &impl Sql, campaign: &str, now: i64) -> Result<usize> {
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

const CONVERSION_COLUMNS: &str = "event_id, customer_id, name, value, currency, occurred_at, \
    last_message_id, first_message_id, channel, region, connector, campaign, template";

fn conversion_row(r: &Row) -> ConversionRecord {
    ConversionRecord {
        event_id: r.get(0),
        customer_id: r.get(1),
        name: r.get(2),
        value: r.get(3),
        currency: r.get(4),
        occurred_at: r.get(5),
        last_message_id: r.get(6),
        first_message_id: r.get(7),
        channel: r.get(8),
        region: r.get(9),
        connector: r.get(10),
        campaign: r.get(11),
        template: r.get(12),
    }
}

async fn read_conversion(db: &impl Sql, event_id: &str) -> Result<Option<ConversionRecord>> {
    Ok(db
        .opt(
            &format!("SELECT {CONVERSION_COLUMNS} FROM conversions WHERE event_id = $1"),
            &[&event_id],
        )
        .await?
        .map(|r| conversion_row(&r)))
}

async fn touch(db: &impl Sql, order: &str, c: &NewConversion) -> Result<Option<Touch>> {
    let since = c.occurred_at - c.window_ms;
    Ok(db
        .opt(
            &reports::touch_sql(order, placeholder),
            &[&c.customer_id, &since, &c.occurred_at],
        )
        .await?
        .map(|r| Touch {
            message_id: r.get(0),
            channel: r.get(1),
            region: r.get(2),
            connector: r.get(3),
            campaign: r.get(4),
            template: r.get(5),
        }))
}

#[async_trait]
impl CampaignStore for PostgresStore {
    async fn segment_members(
        &self,
        query: SegmentQuery,
        after: String,
        limit: usize,
    ) -> Result<Vec<String>> {
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

    async fn segment_count(&self, query: SegmentQuery) -> Result<u64> {
        let rows = segment_rows(&self.analyst().await?, &query, Select::Count).await?;
        Ok(rows.first().map_or(0, |r| r.get::<_, i64>(0)) as u64)
    }

    async fn put_segment(&self, name: &str, definition: String, now: i64) -> Result<bool> {
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

    async fn segment(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .client()
            .await?
            .opt("SELECT definition FROM segments WHERE name = $1", &[&name])
            .await?
            .map(|r| r.get(0)))
    }

    async fn insert_broadcast(&self, b: BroadcastRecord) -> Result<()> {
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

    async fn broadcast(&self, id: &str) -> Result<Option<BroadcastRecord>> {
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

    async fn list_broadcasts(
        &self,
        status: Option<String>,
        before: Option<String>,
        limit: usize,
    ) -> Result<Vec<BroadcastRecord>> {
        let rows = self
            .client()
            .await?
            .rows(
                &format!(
                    "SELECT {BROADCAST_COLUMNS} FROM broadcasts
                     WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR id < $2)
                     ORDER BY id DESC LIMIT $3"
                ),
                &[&status, &before, &(limit as i64)],
            )
            .await?;
        Ok(rows.iter().map(broadcast_row).collect())
    }

    async fn lease_broadcast(&self, now: i64, lease_ms: i64) -> Result<Option<BroadcastRecord>> {
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

    async fn advance_broadcast(&self, id: &str, progress: Progress, now: i64) -> Result<bool> {
        let changed = self
            .client()
            .await?
            .exec(
                "UPDATE broadcasts SET cursor = $2, planned = planned + $3, status = $4,
                     lease_until = $5, updated_at = $6
                 WHERE id = $1 AND status = 'planning'",
                &[
                    &id,
                    &progress.cursor,
                    &progress.planned,
                    &progress.status(),
                    &progress.lease_until,
                    &now,
                ],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn cancel_broadcast(&self, id: &str, now: i64) -> Result<bool> {
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

    async fn record_refusals(&self, campaign: &str, refusals: Vec<RefusedMember>) -> Result<()> {
        let column = |f: fn(&RefusedMember) -> &String| -> Vec<&str> {
            refusals.iter().map(|r| f(r).as_str()).collect()
        };
        let (customers, codes, messages) = (
            column(|r| &r.customer_id),
            column(|r| &r.code),
            column(|r| &r.message),
        );
        let at: Vec<i64> = refusals.iter().map(|r| r.refused_at).collect();
        self.client()
            .await?
            .exec(
                "INSERT INTO refusals (campaign, customer_id, code, message, refused_at)
                 SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[])
                 ON CONFLICT DO NOTHING",
                &[&campaign, &customers, &codes, &messages, &at],
            )
            .await?;
        Ok(())
    }

    async fn refusals(
        &self,
        campaign: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<RefusedMember>> {
        let rows = self
            .client()
            .await?
            .rows(
                "SELECT customer_id, code, message, refused_at FROM refusals
                 WHERE campaign = $1 AND customer_id > $2
                 ORDER BY customer_id LIMIT $3",
                &[&campaign, &after, &(limit as i64)],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| RefusedMember {
                customer_id: r.get(0),
                code: r.get(1),
                message: r.get(2),
                refused_at: r.get(3),
            })
            .collect())
    }

    async fn campaign_progress(&self, campaign: &str) -> Result<Vec<StatusCount>> {
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
                 GROUP BY status, reason
                 UNION ALL
                 SELECT 'refused', code, COUNT(*) FROM refusals WHERE campaign = $1
                 GROUP BY code
                 ORDER BY 1, 2",
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

    async fn cancel_campaign(&self, campaign: &str, now: i64) -> Result<usize> {
        transaction!(self, |tx| cancel_campaign(&tx, campaign, now).await)
    }

    async fn record_conversion(&self, conversion: NewConversion) -> Result<ConversionRecord> {
        let db = self.client().await?;
        if let Some(stored) = read_conversion(&db, &conversion.event_id).await? {
            return Ok(stored);
        }
        let last = touch(&db, "DESC", &conversion).await?;
        let first = touch(&db, "ASC", &conversion).await?;
        let r = ConversionRecord::credit(conversion, last, first);
        db.exec(
            &format!(
                "INSERT INTO conversions ({CONVERSION_COLUMNS})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                 ON CONFLICT (event_id) DO NOTHING"
            ),
            &[
                &r.event_id,
                &r.customer_id,
                &r.name,
                &r.value,
                &r.currency,
                &r.occurred_at,
                &r.last_message_id,
                &r.first_message_id,
                &r.channel,
                &r.region,
                &r.connector,
                &r.campaign,
                &r.template,
            ],
        )
        .await?;
        // Another node may have credited it first: its record stands.
        Ok(read_conversion(&db, &r.event_id).await?.unwrap_or(r))
    }

    async fn conversion(&self, event_id: &str) -> Result<Option<ConversionRecord>> {
        read_conversion(&self.client().await?, event_id).await
    }

    async fn channel_report(
        &self,
        from: i64,
        to: i64,
        keys: Vec<ReportKey>,
        now: i64,
    ) -> Result<Vec<ReportRow>> {
        crate::store::report_days::channel_report(self, from, to, &keys, now).await
    }
}
