//! The status-callback outbox: a callback row is written in the same
//! transaction as the status change it reports, so a callback is never lost
//! nor sent for a change that did not happen.

use super::{Durability, SqliteStore};
use crate::store::Callback;
use crate::store::OutboxStore;
use crate::store::{Lease, Result};
use async_trait::async_trait;
use rusqlite::{Connection, params};

/// Queue a status callback for the message's current status, if it has a callback URL.
pub fn report_status(conn: &Connection, message_id: &str, now: i64) -> Result<()> {
    let numbered = conn
        .prepare_cached(
            "UPDATE messages SET event_seq = event_seq + 1
             WHERE id = ?1 AND callback_url IS NOT NULL",
        )?
        .execute(params![message_id])?;
    if numbered == 0 {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO callbacks_outbox (message_id, url, payload, due_at)
         SELECT id, callback_url,
                json_object('id', id, 'sequence', event_seq, 'status', status,
                            'status_reason', status_reason, 'channel', channel,
                            'delivered_by', delivered_by,
                            'provider_message_id', provider_message_id,
                            'at', strftime('%Y-%m-%dT%H:%M:%fZ', ?2 / 1000.0, 'unixepoch')),
                ?2
         FROM messages WHERE id = ?1",
    )?
    .execute(params![message_id, now])?;
    Ok(())
}

/// Queue a callback whose payload the caller wrote (a customer's reply).
pub fn enqueue(conn: &Connection, about: &str, url: &str, payload: &str, now: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO callbacks_outbox (message_id, url, payload, due_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![about, url, payload, now])?;
    Ok(())
}

/// One process owns an SQLite file: at start, every callback lease belongs
/// to a process that is gone.
pub fn recover_leases(conn: &Connection) -> Result<()> {
    conn.execute(
        "UPDATE callbacks_outbox SET state = 'pending', lease_until = NULL WHERE state = 'leased'",
        [],
    )?;
    Ok(())
}

/// Callbacks not yet delivered nor abandoned, through `callbacks_due`.
pub fn depth(conn: &Connection) -> Result<u64> {
    let count: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM callbacks_outbox WHERE state IN ('pending', 'leased')",
        )?
        .query_row([], |r| r.get(0))?;
    Ok(u64::try_from(count).unwrap_or(0))
}

pub fn lease(conn: &Connection, lease: Lease) -> Result<Vec<Callback>> {
    let (now, limit, lease_until) = (lease.now, lease.limit, lease.until());
    let callbacks = conn
        .prepare_cached(
            "UPDATE callbacks_outbox SET state = 'leased', lease_until = ?1
             WHERE id IN (
                 SELECT id FROM callbacks_outbox
                 WHERE (state = 'pending' AND due_at <= ?2)
                    OR (state = 'leased' AND lease_until <= ?2)
                 ORDER BY id LIMIT ?3)
             RETURNING id, message_id, url, payload, attempts",
        )?
        .query_map(params![lease_until, now, limit as i64], |r| {
            Ok(Callback {
                id: r.get(0)?,
                message_id: r.get(1)?,
                url: r.get(2)?,
                payload: r.get(3)?,
                attempts: r.get(4)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(callbacks)
}

pub fn finish(conn: &Connection, id: i64, retry_at: Option<i64>, give_up: bool) -> Result<()> {
    if give_up {
        conn.prepare_cached(
            "UPDATE callbacks_outbox SET state = 'abandoned', lease_until = NULL,
                 attempts = attempts + 1 WHERE id = ?1",
        )?
        .execute(params![id])?;
    } else if let Some(at) = retry_at {
        conn.prepare_cached(
            "UPDATE callbacks_outbox SET state = 'pending', lease_until = NULL, due_at = ?2,
                 attempts = attempts + 1 WHERE id = ?1",
        )?
        .execute(params![id, at])?;
    } else {
        conn.prepare_cached("DELETE FROM callbacks_outbox WHERE id = ?1")?
            .execute(params![id])?;
    }
    Ok(())
}

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn callbacks_of(
        &self,
        message_id: &str,
    ) -> Result<Vec<crate::store::outbox::CallbackRecord>> {
        let message_id = message_id.to_owned();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(crate::store::outbox::OF_MESSAGE)?
                .query_map(params![message_id], |r| {
                    Ok(crate::store::outbox::CallbackRecord {
                        url: r.get(0)?,
                        payload: r.get(1)?,
                        state: r.get(2)?,
                        attempts: r.get(3)?,
                        due_at: r.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn lease_callbacks(&self, lease: Lease) -> Result<Vec<Callback>> {
        self.write_as(Durability::ProcessCrashSafe, move |conn| {
            self::lease(conn, lease)
        })
        .await
    }

    async fn finish_callback(&self, id: i64, retry_at: Option<i64>, give_up: bool) -> Result<()> {
        self.write(move |conn| finish(conn, id, retry_at, give_up))
            .await
    }
}
