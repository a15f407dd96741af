//! Segments, broadcasts and campaign counts in SQLite.

use super::SqliteStore;
use super::messages;
use crate::store::OPEN;
use crate::store::Result;
use crate::store::campaigns::{
    BroadcastRecord, CampaignStore, Progress, RefusedMember, StatusCount,
};
use crate::store::reports::{self, ConversionRecord, NewConversion, ReportKey, ReportRow, Touch};
use crate::store::segments::{self, Param, SegmentQuery, Select};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension as _, Row, params, params_from_iter};

const BROADCAST_COLUMNS: &str =
    "id, definition, status, cursor, planned, start_at, created_at, updated_at";

fn broadcast_row(r: &Row) -> rusqlite::Result<BroadcastRecord> {
    Ok(BroadcastRecord {
        id: r.get(0)?,
        definition: r.get(1)?,
        status: r.get(2)?,
        cursor: r.get(3)?,
        planned: r.get(4)?,
        start_at: r.get(5)?,
        created_at: r.get(6)?,
        updated_at: r.get(7)?,
    })
}

fn bound(params: Vec<Param>) -> Vec<rusqlite::types::Value> {
    params
        .into_iter()
        .map(|p| match p {
            Param::Text(t) => rusqlite::types::Value::Text(t),
            Param::Int(i) => rusqlite::types::Value::Integer(i),
        })
        .collect()
}

fn placeholder(n: usize) -> String {
    format!("?{n}")
}

/// One process owns an SQLite file: at start, every broadcast lease
/// belongs to a process that is gone, and its fan-out resumes at once.
pub fn recover_leases(conn: &Connection) -> Result<()> {
    conn.execute(
        "UPDATE broadcasts SET lease_until = NULL WHERE lease_until IS NOT NULL",
        [],
    )?;
    Ok(())
}

fn lease_broadcast(conn: &Connection, now: i64, lease_ms: i64) -> Result<Option<BroadcastRecord>> {
    Ok(conn
        .prepare_cached(&format!(
            "UPDATE broadcasts SET status = 'planning', lease_until = ?1 + ?2, updated_at = ?1
             WHERE id = (SELECT id FROM broadcasts
                         WHERE status IN ('scheduled', 'planning') AND start_at <= ?1
                           AND (lease_until IS NULL OR lease_until <= ?1)
                         ORDER BY start_at LIMIT 1)
             RETURNING {BROADCAST_COLUMNS}"
        ))?
        .query_row(params![now, lease_ms], broadcast_row)
        .optional()?)
}

fn cancel_campaign(conn: &Connection, campaign: &str, now: i64) -> Result<usize> {
    let keys: Vec<(String, String)> = conn
        .prepare_cached(&format!(
            "SELECT DISTINCT scope, cancel_key FROM messages
             WHERE campaign = ?1 AND cancel_key IS NOT NULL AND status IN {}",
            *OPEN
        ))?
        .query_map(params![campaign], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut cancelled = 0;
    for (scope, key) in keys {
        cancelled += messages::cancel(conn, &scope, &key, now)?.cancelled.len();
    }
    Ok(cancelled)
}

const CONVERSION_COLUMNS: &str = "event_id, customer_id, name, value, currency, occurred_at, \
    last_message_id, first_message_id, channel, region, connector, campaign, template";

fn conversion_row(r: &Row) -> rusqlite::Result<ConversionRecord> {
    Ok(ConversionRecord {
        event_id: r.get(0)?,
        customer_id: r.get(1)?,
        name: r.get(2)?,
        value: r.get(3)?,
        currency: r.get(4)?,
        occurred_at: r.get(5)?,
        last_message_id: r.get(6)?,
        first_message_id: r.get(7)?,
        channel: r.get(8)?,
        region: r.get(9)?,
        connector: r.get(10)?,
        campaign: r.get(11)?,
        template: r.get(12)?,
    })
}

fn read_conversion(conn: &Connection, event_id: &str) -> Result<Option<ConversionRecord>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {CONVERSION_COLUMNS} FROM conversions WHERE event_id = ?1"
        ))?
        .query_row(params![event_id], conversion_row)
        .optional()?)
}

fn touch(conn: &Connection, order: &str, c: &NewConversion) -> Result<Option<Touch>> {
    Ok(conn
        .prepare_cached(&reports::touch_sql(order, placeholder))?
        .query_row(
            params![c.customer_id, c.occurred_at - c.window_ms, c.occurred_at],
            |r| {
                Ok(Touch {
                    message_id: r.get(0)?,
                    channel: r.get(1)?,
                    region: r.get(2)?,
                    connector: r.get(3)?,
                    campaign: r.get(4)?,
                    template: r.get(5)?,
                })
            },
        )
        .optional()?)
}

fn record_conversion(conn: &Connection, c: NewConversion) -> Result<ConversionRecord> {
    if let Some(stored) = read_conversion(conn, &c.event_id)? {
        return Ok(stored);
    }
    let last = touch(conn, "DESC", &c)?;
    let first = touch(conn, "ASC", &c)?;
    let r = ConversionRecord::credit(c, last, first);
    conn.prepare_cached(&format!(
        "INSERT INTO conversions ({CONVERSION_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
    ))?
    .execute(params![
        r.event_id,
        r.customer_id,
        r.name,
        r.value,
        r.currency,
        r.occurred_at,
        r.last_message_id,
        r.first_message_id,
        r.channel,
        r.region,
        r.connector,
        r.campaign,
        r.template
    ])?;
    Ok(r)
}

#[async_trait]
impl CampaignStore for SqliteStore {
    async fn segment_members(
        &self,
        query: SegmentQuery,
        after: String,
        limit: usize,
    ) -> Result<Vec<String>> {
        self.read(move |conn| {
            let (sql, params) = segments::sql(
                &query,
                Select::Page {
                    after: &after,
                    limit,
                },
                placeholder,
            );
            Ok(conn
                .prepare_cached(&sql)?
                .query_map(params_from_iter(bound(params)), |r| r.get(0))?
                .collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn segment_count(&self, query: SegmentQuery) -> Result<u64> {
        self.analyze(move |conn| {
            let (sql, params) = segments::sql(&query, Select::Count, placeholder);
            let count: i64 = conn
                .prepare_cached(&sql)?
                .query_row(params_from_iter(bound(params)), |r| r.get(0))?;
            Ok(count as u64)
        })
        .await
    }

    async fn put_segment(&self, name: &str, definition: String, now: i64) -> Result<bool> {
        let name = name.to_owned();
        self.write(move |conn| {
            let replaced = conn
                .prepare_cached(
                    "UPDATE segments SET definition = ?2, updated_at = ?3 WHERE name = ?1",
                )?
                .execute(params![name, definition, now])?;
            if replaced == 0 {
                conn.prepare_cached(
                    "INSERT INTO segments (name, definition, updated_at) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![name, definition, now])?;
            }
            Ok(replaced == 0)
        })
        .await
    }

    async fn segment(&self, name: &str) -> Result<Option<String>> {
        let name = name.to_owned();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached("SELECT definition FROM segments WHERE name = ?1")?
                .query_row(params![name], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    async fn insert_broadcast(&self, b: BroadcastRecord) -> Result<()> {
        self.write(move |conn| {
            conn.prepare_cached(&format!(
                "INSERT INTO broadcasts ({BROADCAST_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            ))?
            .execute(params![
                b.id,
                b.definition,
                b.status,
                b.cursor,
                b.planned,
                b.start_at,
                b.created_at,
                b.updated_at
            ])?;
            Ok(())
        })
        .await
    }

    async fn broadcast(&self, id: &str) -> Result<Option<BroadcastRecord>> {
        let id = id.to_owned();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {BROADCAST_COLUMNS} FROM broadcasts WHERE id = ?1"
                ))?
                .query_row(params![id], broadcast_row)
                .optional()?)
        })
        .await
    }

    async fn list_broadcasts(
        &self,
        status: Option<String>,
        before: Option<String>,
        limit: usize,
    ) -> Result<Vec<BroadcastRecord>> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {BROADCAST_COLUMNS} FROM broadcasts
                     WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR id < ?2)
                     ORDER BY id DESC LIMIT ?3"
                ))?
                .query_map(params![status, before, limit as i64], broadcast_row)?
                .collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn lease_broadcast(&self, now: i64, lease_ms: i64) -> Result<Option<BroadcastRecord>> {
        self.write(move |conn| lease_broadcast(conn, now, lease_ms))
            .await
    }

    async fn advance_broadcast(&self, id: &str, progress: Progress, now: i64) -> Result<bool> {
        let id = id.to_owned();
        self.write(move |conn| {
            Ok(conn
                .prepare_cached(
                    "UPDATE broadcasts SET cursor = ?2, planned = planned + ?3, status = ?4,
                         lease_until = ?5, updated_at = ?6
                     WHERE id = ?1 AND status = 'planning'",
                )?
                .execute(params![
                    id,
                    progress.cursor,
                    progress.planned,
                    progress.status(),
                    progress.lease_until,
                    now
                ])?
                == 1)
        })
        .await
    }

    async fn cancel_broadcast(&self, id: &str, now: i64) -> Result<bool> {
        let id = id.to_owned();
        self.write(move |conn| {
            let stopped = conn
                .prepare_cached(
                    "UPDATE broadcasts SET status = 'cancelled', lease_until = NULL, updated_at = ?2
                     WHERE id = ?1 AND status IN ('scheduled', 'planning', 'planned')",
                )?
                .execute(params![id, now])?;
            cancel_campaign(conn, &format!("broadcast:{id}"), now)?;
            Ok(stopped == 1)
        })
        .await
    }

    async fn record_refusals(&self, campaign: &str, refusals: Vec<RefusedMember>) -> Result<()> {
        let campaign = campaign.to_owned();
        self.write(move |conn| {
            let mut insert = conn.prepare_cached(
                "INSERT INTO refusals (campaign, customer_id, code, message, refused_at)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
            )?;
            for r in &refusals {
                insert.execute(params![
                    campaign,
                    r.customer_id,
                    r.code,
                    r.message,
                    r.refused_at
                ])?;
            }
            Ok(())
        })
        .await
    }

    async fn refusals(
        &self,
        campaign: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<RefusedMember>> {
        let (campaign, after) = (campaign.to_owned(), after.to_owned());
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT customer_id, code, message, refused_at FROM refusals
                     WHERE campaign = ?1 AND customer_id > ?2
                     ORDER BY customer_id LIMIT ?3",
                )?
                .query_map(params![campaign, after, limit as i64], |r| {
                    Ok(RefusedMember {
                        customer_id: r.get(0)?,
                        code: r.get(1)?,
                        message: r.get(2)?,
                        refused_at: r.get(3)?,
                    })
                })?
                .collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn campaign_progress(&self, campaign: &str) -> Result<Vec<StatusCount>> {
        let campaign = campaign.to_owned();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT status,
                            CASE WHEN status IN ('suppressed', 'failed', 'expired')
                                 THEN substr(status_reason, 1, instr(status_reason || ':', ':') - 1)
                            END AS reason,
                            COUNT(*)
                     FROM messages WHERE campaign = ?1
                     GROUP BY status, reason
                     UNION ALL
                     SELECT 'refused', code, COUNT(*) FROM refusals WHERE campaign = ?1
                     GROUP BY code
                     ORDER BY 1, 2",
                )?
                .query_map(params![campaign], |r| {
                    Ok(StatusCount {
                        status: r.get(0)?,
                        reason: r.get(1)?,
                        count: r.get(2)?,
                    })
                })?
                .collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn cancel_campaign(&self, campaign: &str, now: i64) -> Result<usize> {
        let campaign = campaign.to_owned();
        self.write(move |conn| cancel_campaign(conn, &campaign, now))
            .await
    }

    async fn record_conversion(&self, conversion: NewConversion) -> Result<ConversionRecord> {
        self.write(move |conn| record_conversion(conn, conversion.clone()))
            .await
    }

    async fn conversion(&self, event_id: &str) -> Result<Option<ConversionRecord>> {
        let event_id = event_id.to_owned();
        self.read(move |conn| read_conversion(conn, &event_id))
            .await
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
