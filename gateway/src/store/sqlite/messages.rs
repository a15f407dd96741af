//! Messages: accepting them (with their idempotency and dedup keys),
//! ending them, provider reports, cancellation, and reading them back.
//! Which statuses are open or final is `MessageStatus`'s to say; the SQL
//! here is built from it.

use super::SqliteStore;
use super::outbox::report_status;
use crate::message::{DeliveryState, MessageStatus};
use crate::store::MessageStore;
use crate::store::OPEN;
use crate::store::parts;
use crate::store::{
    AttemptRecord, CancelReport, Inserted, MessageRecord, NewMessage, ProviderStatus, Purged,
    StatusEventRecord, StoreError,
};
use crate::store::{Horizon, Result};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::sync::LazyLock;

static CLOSE_UNSTARTED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE deliveries SET state = ?2 WHERE message_id = ?1 AND state IN {}",
        DeliveryState::sql_list(DeliveryState::is_unstarted)
    )
});

pub fn insert(conn: &Connection, m: &NewMessage) -> Result<Inserted> {
    let now = m.created_at;
    if let Some(idem) = &m.idempotency {
        let earlier = conn
            .prepare_cached(
                "SELECT request_hash, response FROM idempotency_keys
                 WHERE key = ?1 AND expires_at > ?2",
            )?
            .query_row(params![idem.key, now], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .optional()?;
        if let Some((hash, response)) = earlier {
            return Ok(if hash == idem.request_hash {
                Inserted::Replayed { response }
            } else {
                Inserted::KeyReused
            });
        }
    }
    if let Some(dedup) = &m.dedup {
        let earlier = conn
            .prepare_cached(
                "SELECT m.id, m.status FROM dedup_keys d JOIN messages m ON m.id = d.message_id
                 WHERE d.scope = ?1 AND d.key = ?2 AND d.expires_at > ?3",
            )?
            .query_row(params![m.scope, dedup.key, now], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .optional()?;
        if let Some((message_id, status)) = earlier {
            return Ok(Inserted::Duplicate {
                message_id,
                status: status.parse().map_err(StoreError::Corrupt)?,
            });
        }
    }

    let content = json(&m.content)?;
    let due_at = m.send_at.unwrap_or(now).max(now);
    let status = m.initial_status();
    conn.prepare_cached(
        "INSERT OR FAIL INTO messages (id, status, status_reason, channel, recipient, scope, content,
             created_at, updated_at, send_at, expires_at, cancel_key, dedup_key, callback_url,
             customer_id, category, plan, template, campaign, region)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                 ?18, ?19)",
    )?
    .execute(params![
        m.id,
        status.as_str(),
        m.suppressed,
        m.channel.as_str(),
        m.recipient,
        m.scope,
        content,
        now,
        m.send_at,
        m.expires_at,
        m.cancel_key,
        m.dedup.as_ref().map(|d| &d.key),
        m.callback_url,
        m.customer_id,
        m.category,
        m.plan,
        m.template,
        m.campaign,
        m.region,
    ])?;
    let mut delivery = conn.prepare_cached(
        "INSERT INTO deliveries (message_id, seq, channel, connector, address, content, state,
             due_at, cost, escalate_after, escalate_ends)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    let deliveries = if m.suppressed.is_some() {
        &[][..]
    } else {
        &m.deliveries[..]
    };
    for (seq, d) in deliveries.iter().enumerate() {
        let state = DeliveryState::initial(seq).as_str();
        let content = d.content.as_ref().map(json).transpose()?;
        delivery.execute(params![
            m.id,
            seq as i64,
            d.channel.as_str(),
            d.connector,
            d.address,
            content,
            state,
            due_at,
            d.cost,
            d.escalate_after,
            d.ends_on_delivery.then_some("delivered")
        ])?;
    }
    if let Some(dedup) = &m.dedup {
        conn.prepare_cached(
            "INSERT OR REPLACE INTO dedup_keys (scope, key, message_id, expires_at)
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![m.scope, dedup.key, m.id, dedup.expires_at])?;
    }
    if let Some(idem) = &m.idempotency {
        conn.prepare_cached(
            "INSERT OR REPLACE INTO idempotency_keys (key, request_hash, response, expires_at)
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            idem.key,
            idem.request_hash,
            idem.response,
            idem.expires_at
        ])?;
    }
    if m.callback_url.is_some() {
        report_status(conn, &m.id, now)?;
    }
    Ok(Inserted::New)
}

pub fn json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("cannot encode: {e}")))
}

/// Move an open message to a final status and report it; a message that is
/// already final keeps its status. Returns whether it moved.
pub fn finish(
    conn: &Connection,
    message_id: &str,
    status: MessageStatus,
    reason: Option<&str>,
    now: i64,
) -> Result<bool> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "UPDATE OR FAIL messages SET status = ?2, status_reason = ?3, updated_at = ?4
             WHERE id = ?1 AND status IN {}
             RETURNING callback_url IS NOT NULL",
            *OPEN
        )
    });
    let changed: Option<bool> = conn
        .prepare_cached(&SQL)?
        .query_row(params![message_id, status.as_str(), reason, now], |r| {
            r.get(0)
        })
        .optional()?;
    if changed == Some(true) {
        report_status(conn, message_id, now)?;
    }
    Ok(changed.is_some())
}

/// End what is still open of a message: its unstarted deliveries and the
/// message take `status` with `reason`.
pub fn close(
    conn: &Connection,
    message_id: &str,
    status: MessageStatus,
    reason: &str,
    now: i64,
) -> Result<()> {
    conn.prepare_cached(&CLOSE_UNSTARTED)?.execute(params![
        message_id,
        DeliveryState::closed_as(status).as_str()
    ])?;
    finish(conn, message_id, status, Some(reason), now)?;
    Ok(())
}

/// Cancel what has not reached a provider yet. A message whose attempt is in
/// flight (its delivery is leased) or that is no longer open is left alone
/// and reported.
pub fn cancel(conn: &Connection, scope: &str, key: &str, now: i64) -> Result<CancelReport> {
    let messages: Vec<(String, String, bool, bool)> = conn
        .prepare_cached(
            "SELECT id, status,
                    EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.state = 'leased'),
                    EXISTS (SELECT 1 FROM deliveries d
                            WHERE d.message_id = m.id AND d.state IN ('waiting', 'pending'))
             FROM messages m WHERE scope = ?1 AND cancel_key = ?2 ORDER BY created_at",
        )?
        .query_map(params![scope, key], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut report = CancelReport::default();
    for (id, status, in_flight, waiting) in messages {
        let status: MessageStatus = status.parse().map_err(StoreError::Corrupt)?;
        if !crate::store::may_cancel(status, in_flight) {
            if crate::store::ends_escalation_on_cancel(status, waiting) {
                conn.prepare_cached(&crate::store::messages::END_ESCALATION)?
                    .execute(params![id])?;
                report.escalation_ended.push(id.clone());
            }
            report.not_cancelled.push((id, status));
            continue;
        }
        close(
            conn,
            &id,
            MessageStatus::Cancelled,
            "cancelled by cancel_key",
            now,
        )?;
        report.cancelled.push(id);
    }
    Ok(report)
}

/// Forward-only: a report the message's status may not move to is kept as
/// history but changes nothing.
pub fn apply_provider_status(conn: &Connection, r: &ProviderStatus) -> Result<Option<String>> {
    let (message, whole) = match part_report(conn, r)? {
        Some((id, whole)) => (
            conn.prepare_cached("SELECT id, status FROM messages WHERE id = ?1")?
                .query_row(params![id], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))
                .optional()?,
            whole,
        ),
        None => (
            conn.prepare_cached(
                "SELECT id, status FROM messages WHERE delivered_by = ?1 AND provider_message_id = ?2",
            )?
            .query_row(params![r.connector, r.provider_message_id], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .optional()?,
            Some(r.clone()),
        ),
    };
    let Some((id, status)) = message else {
        return Ok(None);
    };
    let status: MessageStatus = status.parse().map_err(StoreError::Corrupt)?;
    conn.prepare_cached(
        "INSERT INTO status_events (message_id, at, state, code, description) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![id, r.at, r.state, r.code, r.description])?;
    if let Some((next, reason)) = whole.and_then(|whole| whole.moves(status)) {
        conn.prepare_cached(
            "UPDATE OR FAIL messages SET status = ?2, status_reason = COALESCE(?3, status_reason),
                 updated_at = ?4
             WHERE id = ?1",
        )?
        .execute(params![id, next.as_str(), reason, r.at])?;
        report_status(conn, &id, r.at)?;
        if r.ends_escalation(next) {
            conn.prepare_cached(&crate::store::messages::END_ESCALATION)?
                .execute(params![id])?;
        } else if next == MessageStatus::Delivered {
            conn.prepare_cached(&crate::store::messages::END_ON_DELIVERY)?
                .execute(params![id])?;
        }
    }
    Ok(Some(id))
}

/// A report on one part of a split message ([`crate::store::parts`]):
/// the part is moved forward, and the message gets the report its parts
/// make together (`None` while some part is on its way). `None` outside:
/// the id names no part.
fn part_report(
    conn: &Connection,
    r: &ProviderStatus,
) -> Result<Option<(String, Option<ProviderStatus>)>> {
    // Every part of the message the reported id belongs to, in one read.
    let mut id = None;
    let parts = conn
        .prepare_cached(
            "SELECT message_id, provider_message_id, state FROM provider_parts
             WHERE message_id = (SELECT message_id FROM provider_parts
                                 WHERE connector = ?1 AND provider_message_id = ?2)",
        )?
        .query_map(params![r.connector, r.provider_message_id], |row| {
            id.get_or_insert(row.get::<_, String>(0)?);
            Ok((row.get::<_, String>(1)?, row.get::<_, String>(2)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let Some(id) = id else {
        return Ok(None);
    };
    let (moves, whole) = parts::report(&parts, r);
    if moves {
        conn.prepare_cached(
            "UPDATE provider_parts SET state = ?3 WHERE connector = ?1 AND provider_message_id = ?2",
        )?
        .execute(params![r.connector, r.provider_message_id, r.state])?;
    }
    Ok(Some((id, whole)))
}

/// The first `limit` expired keys of each kind, by their expiry index.
pub fn purge_expired_keys(conn: &Connection, now: i64, limit: usize) -> Result<Purged> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let idempotency = conn
        .prepare_cached(
            "DELETE FROM idempotency_keys WHERE rowid IN (
                 SELECT rowid FROM idempotency_keys WHERE expires_at <= ?1 LIMIT ?2)",
        )?
        .execute(params![now, limit])?;
    let dedup = conn
        .prepare_cached(
            "DELETE FROM dedup_keys WHERE rowid IN (
                 SELECT rowid FROM dedup_keys WHERE expires_at <= ?1 LIMIT ?2)",
        )?
        .execute(params![now, limit])?;
    let consent_requests = conn
        .prepare_cached(
            "DELETE FROM consent_requests WHERE rowid IN (
                 SELECT rowid FROM consent_requests WHERE open_until <= ?1 LIMIT ?2)",
        )?
        .execute(params![now, limit])?;
    Ok(Purged {
        idempotency_keys: idempotency,
        dedup_keys: dedup,
        consent_requests,
        ..Purged::default()
    })
}

/// The oldest finished messages and applied events, and what goes with
/// them, `limit` of each; deliveries, attempts and status history go with
/// their message (the foreign keys cascade).
pub fn purge_history(conn: &Connection, before: Horizon, limit: usize) -> Result<Purged> {
    let (messages_before, events_before) = (before.messages, before.events);
    static MESSAGES: LazyLock<String> = LazyLock::new(|| {
        format!(
            "DELETE FROM messages WHERE id IN (
                 SELECT id FROM messages WHERE created_at < ?1 AND status NOT IN {}
                 ORDER BY created_at LIMIT ?2)",
            *OPEN
        )
    });
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // Each statement deletes the `limit` oldest rows before its horizon.
    let oldest = |sql: &str, before: i64| -> Result<usize> {
        Ok(conn.prepare_cached(sql)?.execute(params![before, limit])?)
    };
    Ok(Purged {
        messages: oldest(&MESSAGES, messages_before)?,
        feed_items: oldest(crate::store::feed::PURGE, messages_before)?,
        events: oldest(
            "DELETE FROM events WHERE id IN (
                 SELECT id FROM events WHERE received_at < ?1 AND handled
                 ORDER BY received_at LIMIT ?2)",
            events_before,
        )?,
        callbacks: oldest(
            "DELETE FROM callbacks_outbox WHERE id IN (
                 SELECT id FROM callbacks_outbox WHERE state = 'abandoned' AND due_at < ?1
                 ORDER BY due_at LIMIT ?2)",
            messages_before,
        )?,
        conversions: oldest(
            "DELETE FROM conversions WHERE event_id IN (
                 SELECT event_id FROM conversions WHERE occurred_at < ?1
                 ORDER BY occurred_at LIMIT ?2)",
            events_before,
        )?,
        refusals: oldest(
            "DELETE FROM refusals WHERE rowid IN (
                 SELECT rowid FROM refusals WHERE refused_at < ?1
                 ORDER BY refused_at LIMIT ?2)",
            messages_before,
        )?,
        journey_runs: oldest(
            "DELETE FROM journey_runs WHERE id IN (
                 SELECT id FROM journey_runs
                 WHERE superseded AND status <> 'active' AND updated_at < ?1
                 ORDER BY updated_at LIMIT ?2)",
            events_before,
        )?,
        experiment_arms: oldest(crate::store::journeys::PURGE_ARMS, events_before)?,
        ..Purged::default()
    })
}

pub fn recent(conn: &Connection, scope: &str, category: &str, since: i64) -> Result<u32> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT COUNT(*) FROM messages
             WHERE scope = ?1 AND category = ?2 AND created_at >= ?3 AND status IN {}",
            crate::store::counted_by_caps()
        )
    });
    Ok(conn
        .prepare_cached(&SQL)?
        .query_row(params![scope, category, since], |r| r.get(0))?)
}

pub fn read(conn: &Connection, id: &str) -> Result<Option<MessageRecord>> {
    let row = conn
        .prepare_cached(
            "SELECT status, status_reason, channel, recipient, created_at, updated_at,
                    delivered_by, provider_message_id, send_at, expires_at, cancel_key, dedup_key,
                    delivered_channel, customer_id, category, plan, template, campaign
             FROM messages WHERE id = ?1",
        )?
        .query_row(params![id], |r| {
            Ok(MessageRow {
                status: r.get(0)?,
                status_reason: r.get(1)?,
                channel: r.get(2)?,
                recipient: r.get(3)?,
                created_at: r.get(4)?,
                updated_at: r.get(5)?,
                delivered_by: r.get(6)?,
                provider_message_id: r.get(7)?,
                send_at: r.get(8)?,
                expires_at: r.get(9)?,
                cancel_key: r.get(10)?,
                dedup_key: r.get(11)?,
                delivered_channel: r.get(12)?,
                customer_id: r.get(13)?,
                category: r.get(14)?,
                plan: r.get(15)?,
                template: r.get(16)?,
                campaign: r.get(17)?,
            })
        })
        .optional()?;
    let Some(row) = row else {
        return Ok(None);
    };
    let attempts = conn
        .prepare_cached(
            "SELECT number, connector, channel, started_at, finished_at, outcome,
                    provider_message_id, error_code, error_message, retry_at, node
             FROM attempts WHERE message_id = ?1 ORDER BY number",
        )?
        .query_map(params![id], attempt)?
        .map(|attempt| attempt?)
        .collect::<Result<Vec<_>>>()?;
    let events = conn
        .prepare_cached(
            "SELECT at, state, code, description FROM status_events
             WHERE message_id = ?1 ORDER BY at, rowid",
        )?
        .query_map(params![id], |r| {
            Ok(StatusEventRecord {
                at: r.get(0)?,
                state: r.get(1)?,
                code: r.get(2)?,
                description: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(MessageRecord {
        id: id.to_owned(),
        status: row
            .status
            .parse::<MessageStatus>()
            .map_err(StoreError::Corrupt)?,
        status_reason: row.status_reason,
        channel: row.channel.parse().map_err(StoreError::Corrupt)?,
        recipient: row.recipient,
        created_at: row.created_at,
        updated_at: row.updated_at,
        send_at: row.send_at,
        expires_at: row.expires_at,
        cancel_key: row.cancel_key,
        dedup_key: row.dedup_key,
        delivered_by: row.delivered_by,
        delivered_channel: row
            .delivered_channel
            .map(|c| c.parse())
            .transpose()
            .map_err(StoreError::Corrupt)?,
        provider_message_id: row.provider_message_id,
        customer_id: row.customer_id,
        category: row.category,
        plan: row.plan,
        template: row.template,
        campaign: row.campaign,
        attempts,
        events,
    }))
}

struct MessageRow {
    status: String,
    status_reason: Option<String>,
    channel: String,
    recipient: String,
    created_at: i64,
    updated_at: i64,
    delivered_by: Option<String>,
    provider_message_id: Option<String>,
    send_at: Option<i64>,
    expires_at: Option<i64>,
    cancel_key: Option<String>,
    dedup_key: Option<String>,
    delivered_channel: Option<String>,
    customer_id: Option<String>,
    category: Option<String>,
    plan: Option<String>,
    template: Option<String>,
    campaign: Option<String>,
}

/// A row of `attempts`; the outer error is SQLite's, the inner one bad data.
fn attempt(r: &Row<'_>) -> rusqlite::Result<Result<AttemptRecord>> {
    let channel: String = r.get(2)?;
    let outcome: String = r.get(5)?;
    let (number, connector, started_at, finished_at) = (r.get(0)?, r.get(1)?, r.get(3)?, r.get(4)?);
    let (provider_message_id, error_code, error_message, retry_at, node) =
        (r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?, r.get(10)?);
    Ok((|| {
        Ok(AttemptRecord {
            number,
            connector,
            channel: channel.parse().map_err(StoreError::Corrupt)?,
            started_at,
            finished_at,
            outcome: outcome.parse().map_err(StoreError::Corrupt)?,
            provider_message_id,
            error_code,
            error_message,
            retry_at,
            node,
        })
    })())
}

#[async_trait]
impl MessageStore for SqliteStore {
    async fn insert_message(&self, message: NewMessage) -> Result<Inserted> {
        self.write(move |conn| insert(conn, &message)).await
    }

    /// One write for the page: one place in the writer's queue, not one per
    /// message ahead of the API's.
    async fn insert_messages(&self, messages: Vec<NewMessage>) -> Result<Vec<Inserted>> {
        self.write(move |conn| messages.iter().map(|m| insert(conn, m)).collect())
            .await
    }

    async fn cancel(&self, scope: &str, cancel_key: &str, now: i64) -> Result<CancelReport> {
        let (scope, key) = (scope.to_owned(), cancel_key.to_owned());
        self.write(move |conn| cancel(conn, &scope, &key, now))
            .await
    }

    async fn message(&self, id: &str) -> Result<Option<MessageRecord>> {
        let id = id.to_owned();
        self.read(move |conn| read(conn, &id)).await
    }

    async fn search_messages(
        &self,
        query: crate::store::search::MessageQuery,
    ) -> Result<Vec<crate::store::search::MessageSummary>> {
        use crate::store::search::{Param, Raw};
        self.read(move |conn| {
            let (sql, params) = query.sql(|n| format!("?{n}"));
            let values: Vec<rusqlite::types::Value> = params
                .into_iter()
                .map(|p| match p {
                    Param::Text(text) => rusqlite::types::Value::Text(text),
                    Param::Int(n) => rusqlite::types::Value::Integer(n),
                })
                .collect();
            let raw = conn
                .prepare_cached(&sql)?
                .query_map(rusqlite::params_from_iter(values), |r| {
                    Ok(Raw {
                        id: r.get(0)?,
                        status: r.get(1)?,
                        status_reason: r.get(2)?,
                        channel: r.get(3)?,
                        recipient: r.get(4)?,
                        customer_id: r.get(5)?,
                        category: r.get(6)?,
                        campaign: r.get(7)?,
                        delivered_by: r.get(8)?,
                        delivered_channel: r.get(9)?,
                        created_at: r.get(10)?,
                        updated_at: r.get(11)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            raw.into_iter()
                .map(|r| r.check().map_err(StoreError::Corrupt))
                .collect()
        })
        .await
    }

    async fn claim_key(&self, key: &str, expires_at: i64) -> Result<bool> {
        let key = key.to_owned();
        self.write(move |conn| {
            Ok(conn
                .prepare_cached(
                    "INSERT INTO idempotency_keys (key, request_hash, response, expires_at)
                     VALUES (?1, '', '', ?2) ON CONFLICT (key) DO NOTHING",
                )?
                .execute(params![key, expires_at])?
                == 1)
        })
        .await
    }

    async fn release_key(&self, key: &str) -> Result<()> {
        let key = key.to_owned();
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM idempotency_keys WHERE key = ?1")?
                .execute(params![key])?;
            Ok(())
        })
        .await
    }

    async fn apply_provider_status(&self, report: ProviderStatus) -> Result<Option<String>> {
        self.write(move |conn| apply_provider_status(conn, &report))
            .await
    }
}
