//! Queries that change nothing.

use crate::message::MessageStatus;
use crate::store::{AttemptRecord, CustomerRecord, MessageRecord, StatusEventRecord, StoreError};
use rusqlite::{Connection, OptionalExtension, Row, params};

pub fn message(conn: &Connection, id: &str) -> Result<Option<MessageRecord>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT status, status_reason, channel, recipient, created_at, updated_at,
                    delivered_by, provider_message_id, send_at, expires_at, cancel_key, dedup_key,
                    delivered_channel, customer_id, category, plan
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
            })
        })
        .optional()?;
    let Some(row) = row else {
        return Ok(None);
    };
    let attempts = conn
        .prepare_cached(
            "SELECT number, connector, channel, started_at, finished_at, outcome,
                    provider_message_id, error_code, error_message, retry_at
             FROM attempts WHERE message_id = ?1 ORDER BY number",
        )?
        .query_map(params![id], attempt)?
        .map(|attempt| attempt?)
        .collect::<Result<Vec<_>, StoreError>>()?;
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
}

/// A row of `attempts`; the outer error is SQLite's, the inner one bad data.
fn attempt(r: &Row<'_>) -> rusqlite::Result<Result<AttemptRecord, StoreError>> {
    let channel: String = r.get(2)?;
    let outcome: String = r.get(5)?;
    let (number, connector, started_at, finished_at) = (r.get(0)?, r.get(1)?, r.get(3)?, r.get(4)?);
    let (provider_message_id, error_code, error_message, retry_at) =
        (r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?);
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
        })
    })())
}

pub fn next_due_at(conn: &Connection) -> Result<Option<i64>, StoreError> {
    Ok(conn.query_row(
        "SELECT MIN(t) FROM (
             SELECT MIN(due_at) AS t FROM deliveries WHERE state = 'pending'
             UNION ALL
             SELECT MIN(lease_until) FROM deliveries WHERE state = 'leased')",
        [],
        |r| r.get::<_, Option<i64>>(0),
    )?)
}

/// Both counts come from the partial indexes of open deliveries, so they
/// cost what is waiting, not what was ever sent.
pub fn backlog(conn: &Connection, now: i64) -> Result<u64, StoreError> {
    let count: i64 = conn
        .prepare_cached(
            "SELECT (SELECT COUNT(*) FROM deliveries WHERE state = 'pending' AND due_at <= ?1)
                  + (SELECT COUNT(*) FROM deliveries WHERE state = 'leased')",
        )?
        .query_row(params![now], |r| r.get(0))?;
    Ok(u64::try_from(count).unwrap_or(0))
}

pub fn customer(conn: &Connection, id: &str) -> Result<Option<CustomerRecord>, StoreError> {
    let row = conn
        .prepare_cached("SELECT profile, created_at, updated_at FROM customers WHERE id = ?1")?
        .query_row(params![id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .optional()?;
    row.map(|(profile, created_at, updated_at)| {
        Ok(CustomerRecord {
            profile: serde_json::from_str(&profile)
                .map_err(|e| StoreError::Corrupt(format!("profile of {id}: {e}")))?,
            created_at,
            updated_at,
        })
    })
    .transpose()
}

pub fn recent_messages(
    conn: &Connection,
    customer_id: &str,
    category: &str,
    since: i64,
) -> Result<u32, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT COUNT(*) FROM messages
             WHERE customer_id = ?1 AND category = ?2 AND created_at >= ?3
               AND status IN ('scheduled', 'queued', 'sending', 'sent')",
        )?
        .query_row(params![customer_id, category, since], |r| r.get(0))?)
}
