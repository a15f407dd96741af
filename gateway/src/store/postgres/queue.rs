//! The delivery queue on PostgreSQL: taking over leases that ran out,
//! expiring, leasing with `SKIP LOCKED`, and recording attempts.

use super::messages;
use super::outbox::report_status;
use super::{PostgresStore, outbox, recorder};
use super::{Sql, count};
use crate::message::{Content, MessageStatus};
use crate::store::OPEN;
use crate::store::QueueHealth;
use crate::store::QueueStore;
use crate::store::{AttemptResult, LeasedDelivery, Next, StoreError};
use crate::store::{Lease, Result};
use async_trait::async_trait;
use std::sync::LazyLock;

/// Leases that ran out go back to pending under the same message id, each
/// with an `interrupted` attempt: its node died or stalled mid-attempt and
/// the provider may have the message. Rows another node is taking over
/// right now are skipped.
async fn take_over_expired(tx: &impl Sql, now: i64) -> Result<()> {
    let cut_short = tx
        .rows(
            "WITH cut AS (
                 SELECT id, lease_until, leased_by FROM deliveries
                 WHERE state = 'leased' AND lease_until <= $1
                 ORDER BY id LIMIT 1000 FOR UPDATE SKIP LOCKED)
             UPDATE deliveries d SET state = 'pending', lease_until = NULL
             FROM cut WHERE d.id = cut.id AND d.id = ANY (ARRAY (SELECT id FROM cut))
             RETURNING d.id, d.message_id, d.connector, d.channel, cut.lease_until, cut.leased_by",
            &[&now],
        )
        .await?;
    for row in &cut_short {
        let message_id: &str = row.get(1);
        let number = tx
            .one(
                "UPDATE messages SET attempt_count = attempt_count + 1 WHERE id = $1
                 RETURNING attempt_count",
                &[&message_id],
            )
            .await?
            .get::<_, i64>(0);
        tx.exec(
            "INSERT INTO attempts (message_id, number, delivery_id, connector, channel,
                 started_at, finished_at, outcome, error_code, error_message, node)
             VALUES ($1, $2, $3, $4, $5, $6, $6, 'interrupted', 'interrupted', $7, $8)",
            &[
                &message_id,
                &number,
                &row.get::<_, i64>(0),
                &row.get::<_, &str>(2),
                &row.get::<_, &str>(3),
                &now,
                &crate::store::interrupted_message(row.get(4)),
                // The node whose attempt was cut short, not this one.
                &row.get::<_, Option<&str>>(5),
            ],
        )
        .await?;
    }
    if !cut_short.is_empty() {
        tracing::warn!(
            deliveries = cut_short.len(),
            "took over deliveries whose lease ran out"
        );
    }
    Ok(())
}

/// Due deliveries of messages whose `ttl` ran out end as `expired`.
async fn expire_due(tx: &impl Sql, now: i64) -> Result<()> {
    // Driven by `messages_open_expiry` (nearly always empty): left to
    // itself, the planner would walk every due delivery (the whole backlog)
    // and check its message.
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "WITH expired AS MATERIALIZED (
                 SELECT id FROM messages
                 WHERE expires_at <= $1 AND expires_at IS NOT NULL AND status IN {})
             SELECT d.message_id FROM expired JOIN deliveries d ON d.message_id = expired.id
             WHERE d.state = 'pending' AND d.due_at <= $1
             FOR UPDATE OF d SKIP LOCKED",
            *OPEN
        )
    });
    for row in tx.rows(&SQL, &[&now]).await? {
        messages::close(
            tx,
            row.get(0),
            MessageStatus::Expired,
            "not delivered before its ttl ran out",
            now,
        )
        .await?;
    }
    Ok(())
}

pub async fn lease(tx: &impl Sql, lease: Lease, node: &str) -> Result<Vec<LeasedDelivery>> {
    let (now, limit, lease_until) = (lease.now, lease.limit, lease.until());
    // Sent together (tokio-postgres pipelines them): one round trip.
    tokio::try_join!(take_over_expired(tx, now), expire_due(tx, now))?;
    // Lease, start the messages of first attempts, and read what the
    // attempts need, in one statement (the final SELECT reads messages as
    // they were before it, which is all it needs: content and counts).
    // `id = ANY (ARRAY (...))` finds the rows by primary key; written as a
    // join `FROM due`, the planner scanned the whole table for every lease.
    // Whether a message has a callback is read from an array built once:
    // joined to `s` (a CTE it expects one row from), the planner rescanned
    // `s` for every leased row.
    let leased = tx
        .rows(
            "WITH due AS (
                 SELECT id FROM deliveries WHERE state = 'pending' AND due_at <= $2
                 ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED),
             l AS (
                 UPDATE deliveries d SET state = 'leased', lease_until = $1, leased_by = $4
                 WHERE d.id = ANY (ARRAY (SELECT id FROM due))
                 RETURNING d.id, d.message_id, d.channel, d.connector, d.address, d.attempts,
                           d.content, d.escalate_after),
             s AS (
                 UPDATE messages SET status = 'sending', updated_at = $2
                 WHERE id IN (SELECT message_id FROM l) AND status IN ('queued', 'scheduled')
                 RETURNING id, callback_url IS NOT NULL AS callback)
             SELECT l.id, l.message_id, l.channel, l.connector, l.address, l.attempts,
                    COALESCE(l.content, m.content), m.attempt_count, m.created_at, m.expires_at,
                    l.message_id = ANY (ARRAY (SELECT id FROM s WHERE callback)),
                    l.escalate_after, m.category
             FROM l JOIN messages m ON m.id = l.message_id",
            &[&lease_until, &now, &(limit as i64), &node],
        )
        .await?;
    let mut out = Vec::with_capacity(leased.len());
    for row in leased {
        let message_id: String = row.get(1);
        // Only a message with a callback URL has its start to report.
        if row.get::<_, bool>(10) {
            report_status(tx, &message_id, now).await?;
        }
        out.push(LeasedDelivery {
            delivery_id: row.get(0),
            channel: row.get::<_, &str>(2).parse().map_err(StoreError::Corrupt)?,
            content: serde_json::from_str::<Content>(row.get(6))
                .map_err(|e| StoreError::Corrupt(format!("content of {message_id}: {e}")))?,
            connector: row.get(3),
            address: row.get(4),
            attempts: count(&row, 5),
            message_attempts: count(&row, 7),
            lease_until,
            created_at: row.get(8),
            expires_at: row.get(9),
            escalate_after: row.get(11),
            category: row.get(12),
            message_id,
        });
    }
    Ok(out)
}

/// A give-up: the delivery fails, and the message's next delivery becomes
/// due, or the message ends when there is none. (Sent and retried attempts
/// are recorded in batches: see [`super::recorder`].) Only the holder of
/// the current lease moves anything on; a stale attempt is history. A
/// message whose delivery is leased is open, so holding the lease is
/// enough to end it.
pub async fn record_give_up(
    tx: &impl Sql,
    r: &AttemptResult,
    node: &str,
) -> Result<Option<MessageStatus>> {
    let Next::GiveUp { reason, ending } = &r.next else {
        return Err(StoreError::Corrupt(
            "only a give-up is recorded in its own transaction".into(),
        ));
    };
    let a = &r.attempt;
    let moved = tx
        .exec(
            "UPDATE deliveries SET state = 'failed', lease_until = NULL, attempts = attempts + 1
             WHERE id = $1 AND state = 'leased' AND lease_until = $2",
            &[&r.delivery_id, &r.lease_until],
        )
        .await?
        > 0;
    let ends = moved
        && tx
            .exec(
                "UPDATE deliveries SET state = 'pending', due_at = $2
                 WHERE id = (SELECT id FROM deliveries
                             WHERE message_id = $1 AND state = 'waiting'
                             ORDER BY seq LIMIT 1)",
                &[&r.message_id, &a.finished_at],
            )
            .await?
            == 0;
    let row = tx
        .one(
            "UPDATE messages SET attempt_count = attempt_count + 1, updated_at = $2,
                 status = CASE WHEN $3 THEN $4 ELSE status END,
                 status_reason = CASE WHEN $3 THEN $5 ELSE status_reason END
             WHERE id = $1
             RETURNING attempt_count, callback_url IS NOT NULL",
            &[
                &r.message_id,
                &a.finished_at,
                &ends,
                &ending.as_str(),
                &reason.as_str(),
            ],
        )
        .await?;
    if ends && row.get::<_, bool>(1) {
        report_status(tx, &r.message_id, a.finished_at).await?;
    }
    tx.exec(
        "INSERT INTO attempts (message_id, number, delivery_id, connector, channel, started_at,
             finished_at, outcome, provider_message_id, error_code, error_message, retry_at, node)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        &[
            &r.message_id,
            &row.get::<_, i64>(0),
            &r.delivery_id,
            &a.connector,
            &a.channel.as_str(),
            &a.started_at,
            &a.finished_at,
            &a.outcome.as_str(),
            &a.provider_message_id,
            &a.error_code,
            &a.error_message,
            &a.retry_at,
            &node,
        ],
    )
    .await?;
    Ok(ends.then_some(*ending))
}

pub async fn next_due_at(db: &impl Sql) -> Result<Option<i64>> {
    Ok(db
        .one(
            "SELECT LEAST((SELECT MIN(due_at) FROM deliveries WHERE state = 'pending'),
                          (SELECT MIN(lease_until) FROM deliveries WHERE state = 'leased'))",
            &[],
        )
        .await?
        .get(0))
}

pub async fn oldest_due(db: &impl Sql, now: i64) -> Result<Option<i64>> {
    Ok(db
        .one(
            "SELECT MIN(due_at) FROM deliveries WHERE state = 'pending' AND due_at <= $1",
            &[&now],
        )
        .await?
        .get(0))
}

/// Over every node: the database holds one queue.
pub async fn backlog(db: &impl Sql, now: i64) -> Result<u64> {
    let row = db
        .one(
            "SELECT (SELECT COUNT(*) FROM deliveries WHERE state = 'pending' AND due_at <= $1)
                  + (SELECT COUNT(*) FROM deliveries WHERE state = 'leased')",
            &[&now],
        )
        .await?;
    Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
}

#[async_trait]
impl QueueStore for PostgresStore {
    async fn lease_due(&self, lease: Lease) -> Result<Vec<LeasedDelivery>> {
        transaction!(self, |tx| super::queue::lease(&tx, lease, &self.node).await)
    }

    async fn postpone(&self, delivery_id: i64, lease_until: i64, due_at: i64) -> Result<bool> {
        let moved = self
            .client()
            .await?
            .exec(
                crate::store::queue::POSTPONE,
                &[&due_at, &delivery_id, &lease_until],
            )
            .await?;
        Ok(moved == 1)
    }

    async fn record_attempt(&self, result: AttemptResult) -> Result<Option<MessageStatus>> {
        if recorder::batches(&result) {
            return self.attempts.submit(result).await;
        }
        transaction!(self, |tx| record_give_up(&tx, &result, &self.node).await)
    }

    async fn next_due_at(&self) -> Result<Option<i64>> {
        next_due_at(&self.client().await?).await
    }

    async fn backlog(&self, now: i64) -> Result<u64> {
        backlog(&self.client().await?, now).await
    }

    async fn queue_health(&self, now: i64) -> Result<QueueHealth> {
        let client = self.client().await?;
        Ok(QueueHealth {
            oldest_due_at: oldest_due(&client, now).await?,
            outbox: outbox::depth(&client).await?,
        })
    }
}
