//! The embedded store: one SQLite file in WAL mode.
//!
//! All writes go through one writer thread that commits them in batches
//! (group commit): a burst of requests shares one fsync instead of paying one
//! each, and every caller is answered only after its batch is on disk.
//! Reads use their own connections and never wait for the writer.

use super::schema::{PRAGMAS, SCHEMA};
use super::{
    AttemptRecord, AttemptResult, LeasedDelivery, MessageRecord, NewMessage, Next, Store,
    StoreError,
};
use crate::message::{Content, MessageStatus};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// Writes waiting beyond this share the next batch.
const MAX_BATCH: usize = 512;
const READERS: usize = 4;

enum Write {
    Insert(NewMessage, oneshot::Sender<Result<(), StoreError>>),
    Lease {
        now: i64,
        limit: usize,
        lease_ms: u64,
        reply: oneshot::Sender<Result<Vec<LeasedDelivery>, StoreError>>,
    },
    Record(AttemptResult, oneshot::Sender<Result<(), StoreError>>),
}

pub struct SqliteStore {
    writes: mpsc::UnboundedSender<Write>,
    readers: Arc<Mutex<Vec<Connection>>>,
    path: Arc<Path>,
}

impl SqliteStore {
    /// Open (creating if needed) the database file and start the writer.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Corrupt(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let writer = connect(path)?;
        writer.execute_batch(SCHEMA)?;
        // One process owns an SQLite file, so every lease in it belongs to a
        // process that is gone: its deliveries are due again now, under the
        // same message id, so providers that deduplicate can.
        let recovered = writer.execute(
            "UPDATE deliveries SET state = 'pending', lease_until = NULL WHERE state = 'leased'",
            [],
        )?;
        if recovered > 0 {
            tracing::warn!(
                recovered,
                "re-queued deliveries whose attempt was cut short"
            );
        }
        let readers = (0..READERS)
            .map(|_| connect(path))
            .collect::<Result<Vec<_>, _>>()?;
        let (writes, queue) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("crossgate-sqlite-writer".into())
            .spawn(move || write_loop(writer, queue))
            .map_err(|e| StoreError::Corrupt(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore {
            writes,
            readers: Arc::new(Mutex::new(readers)),
            path: Arc::from(path),
        })
    }

    async fn write<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Write,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.writes
            .send(make(reply))
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let readers = self.readers.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = readers.lock().map_err(|_| StoreError::Closed)?.pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => connect(&path)?,
            };
            let result = f(&conn);
            if let Ok(mut pool) = readers.lock() {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }
}

fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.execute_batch(PRAGMAS)?;
    Ok(conn)
}

/// The writer: take what is queued, apply it in one transaction, commit,
/// then answer everyone in the batch.
fn write_loop(mut conn: Connection, mut queue: mpsc::UnboundedReceiver<Write>) {
    while let Some(first) = queue.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        apply_batch(&mut conn, batch);
    }
}

/// Each write runs in its own savepoint, so one failing write is reported to
/// its caller without undoing the others in the batch.
fn apply_batch(conn: &mut Connection, batch: Vec<Write>) {
    enum Done {
        Unit(
            oneshot::Sender<Result<(), StoreError>>,
            Result<(), StoreError>,
        ),
        Leased(
            oneshot::Sender<Result<Vec<LeasedDelivery>, StoreError>>,
            Result<Vec<LeasedDelivery>, StoreError>,
        ),
    }
    let tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(e) => {
            let message = e.to_string();
            for write in batch {
                let err = || StoreError::Corrupt(format!("cannot begin transaction: {message}"));
                match write {
                    Write::Insert(_, reply) | Write::Record(_, reply) => {
                        let _ = reply.send(Err(err()));
                    }
                    Write::Lease { reply, .. } => {
                        let _ = reply.send(Err(err()));
                    }
                }
            }
            return;
        }
    };
    let mut done = Vec::with_capacity(batch.len());
    let mut tx = tx;
    for write in batch {
        match write {
            Write::Insert(message, reply) => {
                let result = in_savepoint(&mut tx, |sp| insert(sp, &message));
                done.push(Done::Unit(reply, result));
            }
            Write::Lease {
                now,
                limit,
                lease_ms,
                reply,
            } => {
                let result = in_savepoint(&mut tx, |sp| lease(sp, now, limit, lease_ms));
                done.push(Done::Leased(reply, result));
            }
            Write::Record(result, reply) => {
                let outcome = in_savepoint(&mut tx, |sp| record(sp, &result));
                done.push(Done::Unit(reply, outcome));
            }
        }
    }
    let committed = tx.commit().map_err(|e| e.to_string());
    for item in done {
        let failed = |e: &String| StoreError::Corrupt(format!("commit failed: {e}"));
        match item {
            Done::Unit(reply, result) => {
                let _ = reply.send(committed.as_ref().map_err(failed).and(result));
            }
            Done::Leased(reply, result) => {
                let _ = reply.send(match &committed {
                    Ok(()) => result,
                    Err(e) => Err(failed(e)),
                });
            }
        }
    }
}

fn in_savepoint<T>(
    tx: &mut Transaction<'_>,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let sp = tx.savepoint()?;
    let result = f(&sp);
    if result.is_ok() {
        sp.commit()?;
    }
    // Dropping an uncommitted savepoint rolls it back.
    result
}

fn insert(tx: &Connection, m: &NewMessage) -> Result<(), StoreError> {
    let content = serde_json::to_string(&m.content)
        .map_err(|e| StoreError::Corrupt(format!("content: {e}")))?;
    tx.execute(
        "INSERT INTO messages (id, status, channel, recipient, content, created_at, updated_at)
         VALUES (?1, 'queued', ?2, ?3, ?4, ?5, ?5)",
        params![m.id, m.channel.as_str(), m.recipient, content, m.created_at],
    )?;
    let mut stmt = tx.prepare_cached(
        "INSERT INTO deliveries (message_id, seq, channel, connector, address, state, due_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for (seq, d) in m.deliveries.iter().enumerate() {
        let state = if seq == 0 { "pending" } else { "waiting" };
        stmt.execute(params![
            m.id,
            seq as i64,
            d.channel.as_str(),
            d.connector,
            d.address,
            state,
            m.created_at
        ])?;
    }
    Ok(())
}

fn lease(
    tx: &Connection,
    now: i64,
    limit: usize,
    lease_ms: u64,
) -> Result<Vec<LeasedDelivery>, StoreError> {
    let lease_until = now.saturating_add(i64::try_from(lease_ms).unwrap_or(i64::MAX));
    let mut stmt = tx.prepare_cached(
        "UPDATE deliveries SET state = 'leased', lease_until = ?1
         WHERE id IN (
             SELECT id FROM deliveries WHERE state = 'pending' AND due_at <= ?2
             UNION ALL
             SELECT id FROM deliveries WHERE state = 'leased' AND lease_until <= ?2
             LIMIT ?3)
         RETURNING id, message_id, channel, connector, address, attempts",
    )?;
    let leased = stmt
        .query_map(params![lease_until, now, limit as i64], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, u32>(5)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut start = tx.prepare_cached(
        "UPDATE messages SET status = 'sending', updated_at = ?2
         WHERE id = ?1 AND status = 'queued'
         RETURNING content, attempt_count",
    )?;
    let mut current =
        tx.prepare_cached("SELECT content, attempt_count FROM messages WHERE id = ?1")?;
    let mut out = Vec::with_capacity(leased.len());
    for (delivery_id, message_id, channel, connector, address, attempts) in leased {
        let row = match start
            .query_row(params![message_id, now], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
        {
            Some(row) => row,
            None => current.query_row(params![message_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?))
            })?,
        };
        let (content, message_attempts): (String, u32) = row;
        out.push(LeasedDelivery {
            delivery_id,
            channel: channel.parse().map_err(StoreError::Corrupt)?,
            content: serde_json::from_str::<Content>(&content)
                .map_err(|e| StoreError::Corrupt(format!("content of {message_id}: {e}")))?,
            message_id,
            connector,
            address,
            attempts,
            message_attempts,
            lease_until,
        });
    }
    Ok(out)
}

fn record(tx: &Connection, r: &AttemptResult) -> Result<(), StoreError> {
    let a = &r.attempt;
    let number: u32 = tx.query_row(
        "UPDATE messages SET attempt_count = attempt_count + 1, updated_at = ?2
         WHERE id = ?1 RETURNING attempt_count",
        params![r.message_id, a.finished_at],
        |row| row.get(0),
    )?;
    tx.prepare_cached(
        "INSERT INTO attempts (message_id, number, delivery_id, connector, channel, started_at,
             finished_at, outcome, provider_message_id, error_code, error_message, retry_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        r.message_id,
        number,
        r.delivery_id,
        a.connector,
        a.channel.as_str(),
        a.started_at,
        a.finished_at,
        a.outcome.as_str(),
        a.provider_message_id,
        a.error_code,
        a.error_message,
        a.retry_at,
    ])?;

    // Only the holder of the current lease moves the delivery on; an attempt
    // that outlived its lease is history, not a decision.
    let (state, due_at) = match &r.next {
        Next::Sent { .. } => ("sent", None),
        Next::RetryAt(at) => ("pending", Some(*at)),
        Next::GiveUp { .. } => ("failed", None),
    };
    let moved = tx.execute(
        "UPDATE deliveries SET state = ?1, due_at = COALESCE(?2, due_at), lease_until = NULL,
             attempts = attempts + 1
         WHERE id = ?3 AND state = 'leased' AND lease_until = ?4",
        params![state, due_at, r.delivery_id, r.lease_until],
    )?;
    if moved == 0 {
        return Ok(());
    }
    match &r.next {
        Next::Sent {
            provider_message_id,
        } => {
            tx.execute(
                "UPDATE messages SET status = 'sent', status_reason = NULL, delivered_by = ?2,
                     provider_message_id = ?3
                 WHERE id = ?1",
                params![r.message_id, a.connector, provider_message_id],
            )?;
        }
        Next::RetryAt(_) => {}
        Next::GiveUp { reason } => {
            let next = tx.execute(
                "UPDATE deliveries SET state = 'pending', due_at = ?2
                 WHERE id = (SELECT id FROM deliveries
                             WHERE message_id = ?1 AND state = 'waiting'
                             ORDER BY seq LIMIT 1)",
                params![r.message_id, a.finished_at],
            )?;
            if next == 0 {
                tx.execute(
                    "UPDATE messages SET status = 'failed', status_reason = ?2 WHERE id = ?1",
                    params![r.message_id, reason],
                )?;
            }
        }
    }
    Ok(())
}

fn load_message(conn: &Connection, id: &str) -> Result<Option<MessageRecord>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT status, status_reason, channel, recipient, created_at, updated_at,
                    delivered_by, provider_message_id
             FROM messages WHERE id = ?1",
        )?
        .query_row(params![id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, Option<String>>(7)?,
            ))
        })
        .optional()?;
    let Some((status, status_reason, channel, recipient, created_at, updated_at, by, pid)) = row
    else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT number, connector, channel, started_at, finished_at, outcome,
                provider_message_id, error_code, error_message, retry_at
         FROM attempts WHERE message_id = ?1 ORDER BY number",
    )?;
    let attempts = stmt
        .query_map(params![id], |r| {
            Ok((
                r.get::<_, u32>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, Option<String>>(7)?,
                r.get::<_, Option<String>>(8)?,
                r.get::<_, Option<i64>>(9)?,
            ))
        })?
        .map(|row| {
            let (
                number,
                connector,
                channel,
                started_at,
                finished_at,
                outcome,
                pid,
                code,
                msg,
                retry,
            ) = row?;
            Ok(AttemptRecord {
                number,
                connector,
                channel: channel.parse().map_err(StoreError::Corrupt)?,
                started_at,
                finished_at,
                outcome: outcome.parse().map_err(StoreError::Corrupt)?,
                provider_message_id: pid,
                error_code: code,
                error_message: msg,
                retry_at: retry,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Some(MessageRecord {
        id: id.to_owned(),
        status: status
            .parse::<MessageStatus>()
            .map_err(StoreError::Corrupt)?,
        status_reason,
        channel: channel.parse().map_err(StoreError::Corrupt)?,
        recipient,
        created_at,
        updated_at,
        delivered_by: by,
        provider_message_id: pid,
        attempts,
    }))
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert_message(&self, message: NewMessage) -> Result<(), StoreError> {
        self.write(|reply| Write::Insert(message, reply)).await
    }

    async fn message(&self, id: &str) -> Result<Option<MessageRecord>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| load_message(conn, &id)).await
    }

    async fn lease_due(
        &self,
        now: i64,
        limit: usize,
        lease_ms: u64,
    ) -> Result<Vec<LeasedDelivery>, StoreError> {
        self.write(|reply| Write::Lease {
            now,
            limit,
            lease_ms,
            reply,
        })
        .await
    }

    async fn record_attempt(&self, result: AttemptResult) -> Result<(), StoreError> {
        self.write(|reply| Write::Record(result, reply)).await
    }

    async fn next_due_at(&self) -> Result<Option<i64>, StoreError> {
        self.read(|conn| {
            Ok(conn.query_row(
                "SELECT MIN(t) FROM (
                     SELECT MIN(due_at) AS t FROM deliveries WHERE state = 'pending'
                     UNION ALL
                     SELECT MIN(lease_until) FROM deliveries WHERE state = 'leased')",
                [],
                |r| r.get::<_, Option<i64>>(0),
            )?)
        })
        .await
    }
}
