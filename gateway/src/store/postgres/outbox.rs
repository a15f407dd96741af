//! The status-callback outbox on PostgreSQL: written in the transaction of
//! the change it reports, drained by whichever node leases a row first.

use super::PostgresStore;
use super::{Sql, count};
use crate::store::Callback;
use crate::store::OutboxStore;
use crate::store::{Lease, Result};
use async_trait::async_trait;
use std::sync::LazyLock;

/// The callback body, from a row of `messages` after its change; `at` is
/// the SQL of the time (milliseconds) the change happened.
pub fn payload_sql(at: &str) -> String {
    format!(
        "json_build_object('id', id, 'sequence', event_seq, 'status', status,
             'status_reason', status_reason, 'channel', channel,
             'delivered_by', delivered_by, 'provider_message_id', provider_message_id,
             'at', to_char(to_timestamp({at}::bigint / 1000.0) AT TIME ZONE 'UTC',
                           'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'))::text"
    )
}

/// Queue a status callback for the message's current status, if it has a
/// callback URL: numbering and payload in one statement.
pub async fn report_status(tx: &impl Sql, message_id: &str, now: i64) -> Result<()> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "WITH m AS (
                 UPDATE messages SET event_seq = event_seq + 1
                 WHERE id = $1 AND callback_url IS NOT NULL
                 RETURNING *)
             INSERT INTO callbacks_outbox (message_id, url, payload, due_at)
             SELECT id, callback_url, {}, $2 FROM m",
            payload_sql("$2")
        )
    });
    tx.exec(&SQL, &[&message_id, &now]).await?;
    Ok(())
}

/// Queue a callback whose payload the caller wrote (a customer's reply).
pub async fn enqueue(tx: &impl Sql, about: &str, url: &str, payload: &str, now: i64) -> Result<()> {
    tx.exec(
        "INSERT INTO callbacks_outbox (message_id, url, payload, due_at) VALUES ($1, $2, $3, $4)",
        &[&about, &url, &payload, &now],
    )
    .await?;
    Ok(())
}

/// Callbacks not yet delivered nor abandoned, on every node.
pub async fn depth(db: &impl Sql) -> Result<u64> {
    let row = db
        .one(
            "SELECT COUNT(*) FROM callbacks_outbox WHERE state IN ('pending', 'leased')",
            &[],
        )
        .await?;
    Ok(u64::from(count(&row, 0)))
}

pub async fn lease(db: &impl Sql, lease: Lease) -> Result<Vec<Callback>> {
    let (now, limit, lease_until) = (lease.now, lease.limit, lease.until());
    let rows = db
        .rows(
            "WITH due AS (
                 SELECT id FROM callbacks_outbox
                 WHERE (state = 'pending' AND due_at <= $2)
                    OR (state = 'leased' AND lease_until <= $2)
                 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
             UPDATE callbacks_outbox c SET state = 'leased', lease_until = $1
             WHERE c.id = ANY (ARRAY (SELECT id FROM due))
             RETURNING c.id, c.message_id, c.url, c.payload, c.attempts",
            &[&lease_until, &now, &(limit as i64)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Callback {
            id: r.get(0),
            message_id: r.get(1),
            url: r.get(2),
            payload: r.get(3),
            attempts: count(r, 4),
        })
        .collect())
}

pub async fn finish(db: &impl Sql, id: i64, retry_at: Option<i64>, give_up: bool) -> Result<()> {
    if give_up {
        db.exec(
            "UPDATE callbacks_outbox SET state = 'abandoned', lease_until = NULL,
                 attempts = attempts + 1 WHERE id = $1",
            &[&id],
        )
        .await?;
    } else if let Some(at) = retry_at {
        db.exec(
            "UPDATE callbacks_outbox SET state = 'pending', lease_until = NULL, due_at = $2,
                 attempts = attempts + 1 WHERE id = $1",
            &[&id, &at],
        )
        .await?;
    } else {
        db.exec("DELETE FROM callbacks_outbox WHERE id = $1", &[&id])
            .await?;
    }
    Ok(())
}

#[async_trait]
impl OutboxStore for PostgresStore {
    async fn callbacks_of(
        &self,
        message_id: &str,
    ) -> Result<Vec<crate::store::outbox::CallbackRecord>> {
        Ok(self
            .client()
            .await?
            .rows(crate::store::outbox::OF_MESSAGE, &[&message_id])
            .await?
            .iter()
            .map(|r| crate::store::outbox::CallbackRecord {
                url: r.get(0),
                payload: r.get(1),
                state: r.get(2),
                attempts: u32::try_from(r.get::<_, i64>(3)).unwrap_or(0),
                due_at: r.get(4),
            })
            .collect())
    }

    async fn lease_callbacks(&self, lease: Lease) -> Result<Vec<Callback>> {
        self::lease(&self.client().await?, lease).await
    }

    async fn finish_callback(&self, id: i64, retry_at: Option<i64>, give_up: bool) -> Result<()> {
        finish(&self.client().await?, id, retry_at, give_up).await
    }
}
