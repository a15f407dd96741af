//! The delivery queue: leasing what is due, recording what an attempt came
//! to, recovering leases after a crash, and expiring what ran out of time.

use super::messages;
use super::outbox::report_status;
use super::{Durability, SqliteStore, outbox};
use crate::message::{Content, MessageStatus};
use crate::store::OPEN;
use crate::store::QueueHealth;
use crate::store::QueueStore;
use crate::store::{AttemptResult, LeasedDelivery, Next, StoreError};
use crate::store::{Lease, Result};
use async_trait::async_trait;
use rusqlite::{Connection, params};
use std::sync::LazyLock;

/// One process owns an SQLite file, so at start every lease in it belongs
/// to a process that is gone: those deliveries are due again now.
pub fn recover_leases(conn: &Connection, now: i64) -> Result<()> {
    let deliveries = interrupt(conn, i64::MAX, now)?;
    if deliveries > 0 {
        tracing::warn!(
            deliveries,
            "re-queued deliveries whose attempt was cut short"
        );
    }
    Ok(())
}

/// Leases that ran out by `expired_by` go back to pending, under the same
/// message id, so providers that deduplicate can. Each gets an
/// `interrupted` attempt first: the provider may have the message already,
/// and the history says so. (The lease itself is the record that the
/// attempt started, so the hot path writes nothing extra.)
fn interrupt(conn: &Connection, expired_by: i64, now: i64) -> Result<usize> {
    type CutShort = (i64, String, String, String, Option<i64>, Option<String>);
    let cut_short: Vec<CutShort> = conn
        .prepare_cached(
            "UPDATE deliveries SET state = 'pending', lease_until = NULL
             WHERE state = 'leased' AND lease_until <= ?1
             RETURNING id, message_id, connector, channel, lease_until, leased_by",
        )?
        .query_map(params![expired_by], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    for (delivery_id, message_id, connector, channel, lease_until, leased_by) in &cut_short {
        let number: u32 = conn
            .prepare_cached(
                "UPDATE messages SET attempt_count = attempt_count + 1 WHERE id = ?1
                 RETURNING attempt_count",
            )?
            .query_row(params![message_id], |r| r.get(0))?;
        conn.prepare_cached(
            "INSERT INTO attempts (message_id, number, delivery_id, connector, channel,
                 started_at, finished_at, outcome, error_code, error_message, node)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, 'interrupted', 'interrupted', ?7, ?8)",
        )?
        .execute(params![
            message_id,
            number,
            delivery_id,
            connector,
            channel,
            now,
            crate::store::interrupted_message(*lease_until),
            // The node whose attempt was cut short; one leased before
            // leases named their node is nobody's we know.
            leased_by.as_deref(),
        ])?;
    }
    Ok(cut_short.len())
}

/// Due deliveries of messages whose `ttl` ran out end as `expired`.
fn expire_due(conn: &Connection, now: i64) -> Result<()> {
    // Driven by `messages_expiry`, whose WHERE these terms must repeat
    // (its status list is the open one, in another order: SQLite matches
    // IN lists as sets).
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT id FROM messages m
             WHERE expires_at <= ?1 AND expires_at IS NOT NULL
               AND status IN {}
               AND EXISTS (SELECT 1 FROM deliveries d
                           WHERE d.message_id = m.id AND d.state = 'pending' AND d.due_at <= ?1)",
            *OPEN
        )
    });
    let expired: Vec<String> = conn
        .prepare_cached(&SQL)?
        .query_map(params![now], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in expired {
        messages::close(
            conn,
            &id,
            MessageStatus::Expired,
            "not delivered before its ttl ran out",
            now,
        )?;
    }
    Ok(())
}

pub fn lease(conn: &Connection, lease: Lease, node: &str) -> Result<Vec<LeasedDelivery>> {
    let (now, limit, lease_until) = (lease.now, lease.limit, lease.until());
    interrupt(conn, now, now)?;
    expire_due(conn, now)?;
    let leased = conn
        .prepare_cached(
            "UPDATE deliveries SET state = 'leased', lease_until = ?1, leased_by = ?4
             WHERE id IN (
                 SELECT id FROM deliveries WHERE state = 'pending' AND due_at <= ?2
                 LIMIT ?3)
             RETURNING id, message_id, channel, connector, address, attempts, content,
                       escalate_after",
        )?
        .query_map(params![lease_until, now, limit as i64, node], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, u32>(5)?,
                row.get::<_, Option<String>>(6)?,
                row.get::<_, Option<i64>>(7)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::with_capacity(leased.len());
    for (
        delivery_id,
        message_id,
        channel,
        connector,
        address,
        attempts,
        own_content,
        escalate_after,
    ) in leased
    {
        // A first attempt starts the message: one read by key, and the
        // status written only when it changes (an `UPDATE ... RETURNING`
        // costs about twice the read and the plain update together);
        // only a message with a callback URL has the change to report.
        let (
            message_content,
            message_attempts,
            created_at,
            expires_at,
            category,
            status,
            with_callback,
        ) = conn
            .prepare_cached(
                "SELECT content, attempt_count, created_at, expires_at, category, status,
                        callback_url IS NOT NULL
                 FROM messages WHERE id = ?1",
            )?
            .query_row(params![message_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, u32>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, bool>(6)?,
                ))
            })?;
        let status: MessageStatus = status.parse().map_err(StoreError::Corrupt)?;
        if matches!(status, MessageStatus::Queued | MessageStatus::Scheduled) {
            conn.prepare_cached(
                "UPDATE OR FAIL messages SET status = 'sending', updated_at = ?2 WHERE id = ?1",
            )?
            .execute(params![message_id, now])?;
            if with_callback {
                report_status(conn, &message_id, now)?;
            }
        }
        out.push(LeasedDelivery {
            delivery_id,
            channel: channel.parse().map_err(StoreError::Corrupt)?,
            content: serde_json::from_str::<Content>(
                own_content.as_deref().unwrap_or(&message_content),
            )
            .map_err(|e| StoreError::Corrupt(format!("content of {message_id}: {e}")))?,
            message_id,
            connector,
            address,
            attempts,
            message_attempts,
            lease_until,
            created_at,
            expires_at,
            escalate_after,
            category,
        });
    }
    Ok(out)
}

/// The message's next waiting delivery becomes due `at`: its fallback, or
/// its escalation. `false` when none waits.
fn start_next(conn: &Connection, message_id: &str, at: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "UPDATE deliveries SET state = 'pending', due_at = ?2
             WHERE id = (SELECT id FROM deliveries
                         WHERE message_id = ?1 AND state = 'waiting'
                         ORDER BY seq LIMIT 1)",
        )?
        .execute(params![message_id, at])?
        > 0)
}

pub fn record(conn: &Connection, r: &AttemptResult, node: &str) -> Result<Option<MessageStatus>> {
    let a = &r.attempt;
    // Only the holder of the current lease moves the delivery on; an attempt
    // that outlived its lease is history, not a decision. (When to retry and
    // when to give up, expiry included, was decided by the dispatcher.)
    let (state, due_at) = (r.next.delivery_state().as_str(), r.next.retry_at());
    let moved = conn
        .prepare_cached(
            "UPDATE deliveries
             SET state = ?1, lease_until = NULL, attempts = attempts + 1,
                 due_at = COALESCE(?2, due_at)
             WHERE id = ?3 AND state = 'leased' AND lease_until = ?4",
        )?
        .execute(params![state, due_at, r.delivery_id, r.lease_until])?
        > 0;
    let finished = if !moved {
        None
    } else {
        match &r.next {
            Next::Sent {
                provider_message_id,
                parts,
                delivered,
                escalate_at,
            } => {
                if let Some(at) = escalate_at {
                    start_next(conn, &r.message_id, *at)?;
                }
                if !parts.is_empty() {
                    let mut insert = conn.prepare_cached(
                        "INSERT OR IGNORE INTO provider_parts
                             (connector, provider_message_id, message_id, state)
                         VALUES (?1, ?2, ?3, 'sent')",
                    )?;
                    for part in std::iter::once(provider_message_id).chain(parts) {
                        insert.execute(params![a.connector, part, r.message_id])?;
                    }
                }
                Some((
                    if *delivered {
                        MessageStatus::Delivered
                    } else {
                        MessageStatus::Sent
                    },
                    None,
                ))
            }
            Next::RetryAt(_) => None,
            Next::GiveUp { reason, ending } => {
                let next = start_next(conn, &r.message_id, a.finished_at)?;
                (!next).then_some((*ending, Some(reason.as_str())))
            }
        }
    };
    // The attempt is counted, and the message finished when this attempt
    // ends it and it is still open, in one write of the message's row, read
    // by key first: cheaper than `WHERE status IN (...) RETURNING`. A later
    // channel of a message already delivered (an escalation) answers to its
    // provider's id from now on, so that provider's reports find it.
    let (status, attempts, with_callback) = conn
        .prepare_cached(
            "SELECT status, attempt_count, callback_url IS NOT NULL FROM messages WHERE id = ?1",
        )?
        .query_row(params![r.message_id], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, u32>(1)?,
                row.get::<_, bool>(2)?,
            ))
        })?;
    let open = status
        .parse::<MessageStatus>()
        .map_err(StoreError::Corrupt)?
        .is_open();
    let ends = finished.filter(|_| open);
    let sent_by = match &r.next {
        Next::Sent {
            provider_message_id,
            ..
        } => Some((a.connector.as_str(), provider_message_id.as_str())),
        _ => None,
    };
    conn.prepare_cached(
        "UPDATE OR FAIL messages SET attempt_count = attempt_count + 1, updated_at = ?2,
             status = COALESCE(?3, status),
             status_reason = CASE WHEN ?3 IS NULL THEN status_reason ELSE ?4 END,
             delivered_by = COALESCE(?5, delivered_by),
             delivered_channel = CASE WHEN ?5 IS NULL THEN delivered_channel ELSE ?6 END,
             provider_message_id = COALESCE(?7, provider_message_id)
         WHERE id = ?1",
    )?
    .execute(params![
        r.message_id,
        a.finished_at,
        ends.map(|(status, _)| status.as_str()),
        ends.and_then(|(_, reason)| reason),
        sent_by.map(|(by, _)| by),
        a.channel.as_str(),
        sent_by.map(|(_, id)| id),
    ])?;
    if ends.is_some() && with_callback {
        report_status(conn, &r.message_id, a.finished_at)?;
    }
    let ended = ends.map(|(status, _)| status);
    let number = attempts + 1;
    conn.prepare_cached(
        "INSERT INTO attempts (message_id, number, delivery_id, connector, channel, started_at,
             finished_at, outcome, provider_message_id, error_code, error_message, retry_at, node)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
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
        node,
    ])?;
    Ok(ended)
}

/// Read whenever a lease finds nothing due, so its plan is kept: the
/// compound query's parse showed in profiles of a draining queue.
pub fn next_due_at(conn: &Connection) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached(
            "SELECT MIN(t) FROM (
                 SELECT MIN(due_at) AS t FROM deliveries WHERE state = 'pending'
                 UNION ALL
                 SELECT MIN(lease_until) FROM deliveries WHERE state = 'leased')",
        )?
        .query_row([], |r| r.get::<_, Option<i64>>(0))?)
}

/// The oldest due delivery, through the partial index of pending ones.
pub fn oldest_due(conn: &Connection, now: i64) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached(
            "SELECT MIN(due_at) FROM deliveries WHERE state = 'pending' AND due_at <= ?1",
        )?
        .query_row(params![now], |r| r.get(0))?)
}

/// Both counts come from the partial indexes of open deliveries, so they
/// cost what is waiting, not what was ever sent.
pub fn backlog(conn: &Connection, now: i64) -> Result<u64> {
    let count: i64 = conn
        .prepare_cached(
            "SELECT (SELECT COUNT(*) FROM deliveries WHERE state = 'pending' AND due_at <= ?1)
                  + (SELECT COUNT(*) FROM deliveries WHERE state = 'leased')",
        )?
        .query_row(params![now], |r| r.get(0))?;
    Ok(u64::try_from(count).unwrap_or(0))
}

#[async_trait]
impl QueueStore for SqliteStore {
    async fn lease_due(&self, lease: Lease) -> Result<Vec<LeasedDelivery>> {
        let node = self.node.clone();
        self.write_as(Durability::ProcessCrashSafe, move |conn| {
            self::lease(conn, lease, &node)
        })
        .await
    }

    async fn postpone(&self, delivery_id: i64, lease_until: i64, due_at: i64) -> Result<bool> {
        self.write_as(Durability::ProcessCrashSafe, move |conn| {
            Ok(conn
                .prepare_cached(crate::store::queue::POSTPONE)?
                .execute(params![due_at, delivery_id, lease_until])?
                == 1)
        })
        .await
    }

    async fn record_attempt(&self, result: AttemptResult) -> Result<Option<MessageStatus>> {
        let node = self.node.clone();
        self.write(move |conn| record(conn, &result, &node)).await
    }

    /// One write for all: one place in the writer's queue and one wake-up.
    /// A record fails only with the database, so they succeed or fail
    /// together (a failed one's lease runs out and it is attempted again).
    async fn record_attempts(
        &self,
        results: Vec<AttemptResult>,
    ) -> Vec<Result<Option<MessageStatus>>> {
        let (node, count) = (self.node.clone(), results.len());
        let written = self
            .write(move |conn| {
                results
                    .iter()
                    .map(|r| record(conn, r, &node))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await;
        match written {
            Ok(ended) => ended.into_iter().map(Ok).collect(),
            Err(e) => (0..count)
                .map(|_| Err(StoreError::Database(e.to_string())))
                .collect(),
        }
    }

    async fn next_due_at(&self) -> Result<Option<i64>> {
        self.read(next_due_at).await
    }

    async fn backlog(&self, now: i64) -> Result<u64> {
        self.read(move |conn| backlog(conn, now)).await
    }

    async fn queue_health(&self, now: i64) -> Result<QueueHealth> {
        self.read(move |conn| {
            Ok(QueueHealth {
                oldest_due_at: oldest_due(conn, now)?,
                outbox: outbox::depth(conn)?,
            })
        })
        .await
    }
}
