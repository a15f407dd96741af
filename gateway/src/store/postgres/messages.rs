//! Messages on PostgreSQL: accepting them (keys unique across nodes),
//! ending them, provider reports, cancellation, and reading them back.
//!
//! Rows are locked deliveries first, then their message, in every
//! transaction that takes both (leasing, recording, cancelling, expiring):
//! one order, so nodes working on the same message wait for each other
//! instead of deadlocking.

use super::PostgresStore;
use super::outbox::report_status;
use super::{Sql, count};
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
use std::sync::LazyLock;
use tokio_postgres::Row;

static CLOSE_UNSTARTED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE deliveries SET state = $2 WHERE message_id = $1 AND state IN {}",
        DeliveryState::sql_list(DeliveryState::is_unstarted)
    )
});

/// Keys are checked first (a replay or duplicate costs one read), then
/// claimed last, on insert: a node that loses a race for a key conflicts,
/// and its transaction runs again and finds the winner's message.
pub async fn insert(tx: &impl Sql, m: &NewMessage) -> Result<Inserted> {
    let now = m.created_at;
    if let Some(idem) = &m.idempotency {
        let earlier = tx
            .opt(
                "SELECT request_hash, response FROM idempotency_keys
                 WHERE key = $1 AND expires_at > $2",
                &[&idem.key, &now],
            )
            .await?;
        if let Some(row) = earlier {
            return Ok(if row.get::<_, &str>(0) == idem.request_hash {
                Inserted::Replayed {
                    response: row.get(1),
                }
            } else {
                Inserted::KeyReused
            });
        }
    }
    if let Some(dedup) = &m.dedup {
        let earlier = tx
            .opt(
                "SELECT m.id, m.status FROM dedup_keys d JOIN messages m ON m.id = d.message_id
                 WHERE d.scope = $1 AND d.key = $2 AND d.expires_at > $3",
                &[&m.scope, &dedup.key, &now],
            )
            .await?;
        if let Some(row) = earlier {
            return Ok(Inserted::Duplicate {
                message_id: row.get(0),
                status: row.get::<_, &str>(1).parse().map_err(StoreError::Corrupt)?,
            });
        }
    }

    insert_rows(tx, &[m]).await?;
    if let Some(dedup) = &m.dedup {
        claim(
            tx,
            "INSERT INTO dedup_keys (scope, key, message_id, expires_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (scope, key) DO UPDATE
                 SET message_id = EXCLUDED.message_id, expires_at = EXCLUDED.expires_at
                 WHERE dedup_keys.expires_at <= $5",
            &[&m.scope, &dedup.key, &m.id, &dedup.expires_at, &now],
        )
        .await?;
    }
    if let Some(idem) = &m.idempotency {
        claim(
            tx,
            "INSERT INTO idempotency_keys (key, request_hash, response, expires_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (key) DO UPDATE
                 SET request_hash = EXCLUDED.request_hash, response = EXCLUDED.response,
                     expires_at = EXCLUDED.expires_at
                 WHERE idempotency_keys.expires_at <= $5",
            &[
                &idem.key,
                &idem.request_hash,
                &idem.response,
                &idem.expires_at,
                &now,
            ],
        )
        .await?;
    }
    if m.callback_url.is_some() {
        report_status(tx, &m.id, now).await?;
    }
    Ok(Inserted::New)
}

/// Whether storing `m` takes more than its rows: keys to claim, or a
/// callback to queue with them. Without, one statement stores it.
pub fn needs_transaction(m: &NewMessage) -> bool {
    m.idempotency.is_some() || m.dedup.is_some() || m.callback_url.is_some()
}

/// Messages without keys or callbacks, written in batches (see
/// [`super::batch`]).
pub struct Inserts;

#[async_trait::async_trait]
impl super::batch::Batch for Inserts {
    type Item = NewMessage;
    type Out = ();

    fn key(m: &NewMessage) -> &str {
        &m.id
    }

    async fn write(
        &self,
        db: &deadpool_postgres::Object,
        messages: &[&NewMessage],
    ) -> Result<Vec<()>> {
        insert_rows(db, messages).await?;
        Ok(vec![(); messages.len()])
    }
}

/// Messages and their deliveries in one statement: each message's first
/// delivery is due, the rest wait behind it (none for a suppressed one).
pub async fn insert_rows(db: &impl Sql, batch: &[&NewMessage]) -> Result<()> {
    let mut m = MessageColumns::default();
    let mut d = DeliveryColumns::default();
    for message in batch {
        m.push(message)?;
        if message.suppressed.is_none() {
            d.push(message)?;
        }
    }
    db.exec(
        "WITH m AS (
             INSERT INTO messages (id, status, status_reason, channel, recipient, scope, content,
                 created_at, updated_at, send_at, expires_at, cancel_key, dedup_key, callback_url,
                 customer_id, category, plan, template, campaign, region)
             SELECT id, status, status_reason, channel, recipient, scope, content,
                    created_at, created_at, send_at, expires_at, cancel_key, dedup_key,
                    callback_url, customer_id, category, plan, template, campaign, region
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                         $7::text[], $8::bigint[], $9::bigint[], $10::bigint[], $11::text[],
                         $12::text[], $13::text[], $14::text[], $15::text[], $16::text[],
                         $24::text[], $25::text[], $26::text[])
                 AS m (id, status, status_reason, channel, recipient, scope, content,
                       created_at, send_at, expires_at, cancel_key, dedup_key, callback_url,
                       customer_id, category, plan, template, campaign, region))
         INSERT INTO deliveries (message_id, seq, channel, connector, address, content, state,
                                 due_at, cost, escalate_after, escalate_ends)
         SELECT message_id, seq, channel, connector, address, content,
                CASE WHEN seq = 0 THEN 'pending' ELSE 'waiting' END, due_at, cost, escalate_after,
                escalate_ends
         FROM unnest($17::text[], $18::bigint[], $19::text[], $20::text[], $21::text[],
                     $22::text[], $23::bigint[], $27::float8[], $28::bigint[], $29::text[])
             AS d (message_id, seq, channel, connector, address, content, due_at, cost,
                   escalate_after, escalate_ends)",
        &[
            &m.id,
            &m.status,
            &m.status_reason,
            &m.channel,
            &m.recipient,
            &m.scope,
            &m.content,
            &m.created_at,
            &m.send_at,
            &m.expires_at,
            &m.cancel_key,
            &m.dedup_key,
            &m.callback_url,
            &m.customer_id,
            &m.category,
            &m.plan,
            &d.message_id,
            &d.seq,
            &d.channel,
            &d.connector,
            &d.address,
            &d.content,
            &d.due_at,
            &m.template,
            &m.campaign,
            &m.region,
            &d.cost,
            &d.escalate_after,
            &d.escalate_ends,
        ],
    )
    .await?;
    Ok(())
}

/// Messages as one array per column, as `unnest` takes them.
#[derive(Default)]
struct MessageColumns<'a> {
    id: Vec<&'a str>,
    status: Vec<&'static str>,
    status_reason: Vec<Option<&'a str>>,
    channel: Vec<&'static str>,
    recipient: Vec<&'a str>,
    scope: Vec<&'a str>,
    content: Vec<String>,
    created_at: Vec<i64>,
    send_at: Vec<Option<i64>>,
    expires_at: Vec<Option<i64>>,
    cancel_key: Vec<Option<&'a str>>,
    dedup_key: Vec<Option<&'a str>>,
    callback_url: Vec<Option<&'a str>>,
    customer_id: Vec<Option<&'a str>>,
    category: Vec<Option<&'a str>>,
    plan: Vec<Option<&'a str>>,
    template: Vec<Option<&'a str>>,
    campaign: Vec<Option<&'a str>>,
    region: Vec<Option<&'a str>>,
}

impl<'a> MessageColumns<'a> {
    fn push(&mut self, m: &'a NewMessage) -> Result<()> {
        self.id.push(&m.id);
        self.status.push(m.initial_status().as_str());
        self.status_reason.push(m.suppressed.as_deref());
        self.channel.push(m.channel.as_str());
        self.recipient.push(&m.recipient);
        self.scope.push(&m.scope);
        self.content.push(json(&m.content)?);
        self.created_at.push(m.created_at);
        self.send_at.push(m.send_at);
        self.expires_at.push(m.expires_at);
        self.cancel_key.push(m.cancel_key.as_deref());
        self.dedup_key
            .push(m.dedup.as_ref().map(|d| d.key.as_str()));
        self.callback_url.push(m.callback_url.as_deref());
        self.customer_id.push(m.customer_id.as_deref());
        self.category.push(m.category.as_deref());
        self.plan.push(m.plan.as_deref());
        self.template.push(m.template.as_deref());
        self.campaign.push(m.campaign.as_deref());
        self.region.push(m.region.as_deref());
        Ok(())
    }
}

/// Deliveries as one array per column.
#[derive(Default)]
struct DeliveryColumns<'a> {
    message_id: Vec<&'a str>,
    seq: Vec<i64>,
    channel: Vec<&'static str>,
    connector: Vec<&'a str>,
    address: Vec<&'a str>,
    content: Vec<Option<String>>,
    due_at: Vec<i64>,
    cost: Vec<Option<f64>>,
    escalate_after: Vec<Option<i64>>,
    escalate_ends: Vec<Option<&'static str>>,
}

impl<'a> DeliveryColumns<'a> {
    fn push(&mut self, m: &'a NewMessage) -> Result<()> {
        let due_at = m.send_at.unwrap_or(m.created_at).max(m.created_at);
        for (seq, d) in m.deliveries.iter().enumerate() {
            self.message_id.push(&m.id);
            self.seq.push(seq as i64);
            self.channel.push(d.channel.as_str());
            self.connector.push(&d.connector);
            self.address.push(&d.address);
            self.content.push(d.content.as_ref().map(json).transpose()?);
            self.due_at.push(due_at);
            self.cost.push(d.cost);
            self.escalate_after.push(d.escalate_after);
            self.escalate_ends
                .push(d.ends_on_delivery.then_some("delivered"));
        }
        Ok(())
    }
}

/// Take a unique key; someone else holding it unexpired is a conflict.
async fn claim(tx: &impl Sql, sql: &str, params: super::Params<'_>) -> Result<()> {
    if tx.exec(sql, params).await? == 0 {
        return Err(StoreError::Conflict(
            "another node took the key first".into(),
        ));
    }
    Ok(())
}

pub fn json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("cannot encode: {e}")))
}

/// Move an open message to a final status and report it; a message that is
/// already final keeps its status. Returns whether it moved.
pub async fn finish(
    tx: &impl Sql,
    message_id: &str,
    status: MessageStatus,
    reason: Option<&str>,
    now: i64,
) -> Result<bool> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "UPDATE messages SET status = $2, status_reason = $3, updated_at = $4
             WHERE id = $1 AND status IN {}
             RETURNING callback_url IS NOT NULL",
            *OPEN
        )
    });
    let changed = tx
        .opt(&SQL, &[&message_id, &status.as_str(), &reason, &now])
        .await?
        .map(|r| r.get::<_, bool>(0));
    if changed == Some(true) {
        report_status(tx, message_id, now).await?;
    }
    Ok(changed.is_some())
}

/// End what is still open of a message: its unstarted deliveries and the
/// message take `status` with `reason`.
pub async fn close(
    tx: &impl Sql,
    message_id: &str,
    status: MessageStatus,
    reason: &str,
    now: i64,
) -> Result<()> {
    tx.exec(
        &CLOSE_UNSTARTED,
        &[&message_id, &DeliveryState::closed_as(status).as_str()],
    )
    .await?;
    finish(tx, message_id, status, Some(reason), now).await?;
    Ok(())
}

/// Cancel what has not reached a provider yet. The messages' deliveries
/// are locked first, so a node leasing one right now either finishes its
/// lease before this reads it (and the message is reported in flight) or
/// finds it cancelled.
pub async fn cancel(tx: &impl Sql, scope: &str, key: &str, now: i64) -> Result<CancelReport> {
    tx.exec(
        "SELECT d.id FROM deliveries d JOIN messages m ON m.id = d.message_id
         WHERE m.scope = $1 AND m.cancel_key = $2 ORDER BY d.id FOR UPDATE OF d",
        &[&scope, &key],
    )
    .await?;
    let messages = tx
        .rows(
            "SELECT id, status,
                    EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.state = 'leased'),
                    EXISTS (SELECT 1 FROM deliveries d
                            WHERE d.message_id = m.id AND d.state IN ('waiting', 'pending'))
             FROM messages m WHERE scope = $1 AND cancel_key = $2 ORDER BY created_at, id",
            &[&scope, &key],
        )
        .await?;
    let mut report = CancelReport::default();
    for row in messages {
        let id: String = row.get(0);
        let status: MessageStatus = row.get::<_, &str>(1).parse().map_err(StoreError::Corrupt)?;
        if !crate::store::may_cancel(status, row.get::<_, bool>(2)) {
            if crate::store::ends_escalation_on_cancel(status, row.get::<_, bool>(3)) {
                tx.exec(&crate::store::messages::END_ESCALATION, &[&id])
                    .await?;
                report.escalation_ended.push(id.clone());
            }
            report.not_cancelled.push((id, status));
            continue;
        }
        close(
            tx,
            &id,
            MessageStatus::Cancelled,
            "cancelled by cancel_key",
            now,
        )
        .await?;
        report.cancelled.push(id);
    }
    Ok(report)
}

/// Forward-only: a report the message's status may not move to is kept as
/// history but changes nothing.
pub async fn apply_provider_status(tx: &impl Sql, r: &ProviderStatus) -> Result<Option<String>> {
    let (row, whole) = match part_report(tx, r).await? {
        Some(found) => found,
        None => (
            tx.opt(
                "SELECT id, status FROM messages WHERE delivered_by = $1 AND provider_message_id = $2
                 FOR UPDATE",
                &[&r.connector, &r.provider_message_id],
            )
            .await?,
            Some(r.clone()),
        ),
    };
    let Some(row) = row else {
        return Ok(None);
    };
    let id: String = row.get(0);
    let status: MessageStatus = row.get::<_, &str>(1).parse().map_err(StoreError::Corrupt)?;
    tx.exec(
        "INSERT INTO status_events (message_id, at, state, code, description)
         VALUES ($1, $2, $3, $4, $5)",
        &[&id, &r.at, &r.state, &r.code, &r.description],
    )
    .await?;
    if let Some((next, reason)) = whole.and_then(|whole| whole.moves(status)) {
        tx.exec(
            "UPDATE messages SET status = $2, status_reason = COALESCE($3, status_reason),
                 updated_at = $4
             WHERE id = $1",
            &[&id, &next.as_str(), &reason, &r.at],
        )
        .await?;
        report_status(tx, &id, r.at).await?;
        if r.ends_escalation(next) {
            tx.exec(&crate::store::messages::END_ESCALATION, &[&id])
                .await?;
        } else if next == MessageStatus::Delivered {
            tx.exec(&crate::store::messages::END_ON_DELIVERY, &[&id])
                .await?;
        }
    }
    Ok(Some(id))
}

/// A report on one part of a split message ([`crate::store::parts`]):
/// the message's row (`id, status`), locked first, so two parts' reports
/// at once are applied one after the other; the part moved forward; and the
/// report the message gets from its parts together. `None` outside: the id
/// names no part.
async fn part_report(
    tx: &impl Sql,
    r: &ProviderStatus,
) -> Result<Option<(Option<tokio_postgres::Row>, Option<ProviderStatus>)>> {
    let Some(part) = tx
        .opt(
            "SELECT message_id FROM provider_parts
             WHERE connector = $1 AND provider_message_id = $2",
            &[&r.connector, &r.provider_message_id],
        )
        .await?
    else {
        return Ok(None);
    };
    let id: String = part.get(0);
    let message = tx
        .opt(
            "SELECT id, status FROM messages WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await?;
    let parts: Vec<(String, String)> = tx
        .rows(
            "SELECT provider_message_id, state FROM provider_parts WHERE message_id = $1",
            &[&id],
        )
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let (moves, whole) = parts::report(&parts, r);
    if moves {
        tx.exec(
            "UPDATE provider_parts SET state = $3 WHERE connector = $1 AND provider_message_id = $2",
            &[&r.connector, &r.provider_message_id, &r.state],
        )
        .await?;
    }
    Ok(Some((message, whole)))
}

/// The first `limit` expired keys of each kind, by their expiry index.
pub async fn purge_expired_keys(db: &impl Sql, now: i64, limit: usize) -> Result<Purged> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let idempotency = db
        .exec(
            "DELETE FROM idempotency_keys WHERE key IN (
                 SELECT key FROM idempotency_keys WHERE expires_at <= $1 LIMIT $2)",
            &[&now, &limit],
        )
        .await?;
    let dedup = db
        .exec(
            "DELETE FROM dedup_keys WHERE (scope, key) IN (
                 SELECT scope, key FROM dedup_keys WHERE expires_at <= $1 LIMIT $2)",
            &[&now, &limit],
        )
        .await?;
    let consent_requests = db
        .exec(
            "DELETE FROM consent_requests WHERE message_id IN (
                 SELECT message_id FROM consent_requests WHERE open_until <= $1 LIMIT $2)",
            &[&now, &limit],
        )
        .await?;
    Ok(Purged {
        idempotency_keys: usize::try_from(idempotency).unwrap_or(usize::MAX),
        dedup_keys: usize::try_from(dedup).unwrap_or(usize::MAX),
        consent_requests: usize::try_from(consent_requests).unwrap_or(usize::MAX),
        ..Purged::default()
    })
}

/// The oldest finished messages with their deliveries, attempts and
/// status history (no foreign keys here: one statement deletes them all),
/// the oldest applied events, and what goes with each; `limit` of each.
pub async fn purge_history(db: &impl Sql, before: Horizon, limit: usize) -> Result<Purged> {
    let (messages_before, events_before) = (before.messages, before.events);
    static MESSAGES: LazyLock<String> = LazyLock::new(|| {
        format!(
            "WITH gone AS (
                 DELETE FROM messages WHERE id IN (
                     SELECT id FROM messages WHERE created_at < $1 AND status NOT IN {}
                     ORDER BY created_at LIMIT $2)
                 RETURNING id),
             deliveries AS (DELETE FROM deliveries WHERE message_id IN (SELECT id FROM gone)),
             attempts AS (DELETE FROM attempts WHERE message_id IN (SELECT id FROM gone)),
             history AS (DELETE FROM status_events WHERE message_id IN (SELECT id FROM gone)),
             parts AS (DELETE FROM provider_parts WHERE message_id IN (SELECT id FROM gone))
             SELECT COUNT(*) FROM gone",
            *OPEN
        )
    });
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let messages: i64 = db
        .rows(&MESSAGES, &[&messages_before, &limit])
        .await?
        .first()
        .map_or(0, |r| r.get(0));
    // Each statement deletes the `limit` oldest rows before its horizon.
    let oldest = async |sql: &str, before: i64| -> Result<usize> {
        let deleted = db.exec(sql, &[&before, &limit]).await?;
        Ok(usize::try_from(deleted).unwrap_or(usize::MAX))
    };
    Ok(Purged {
        messages: usize::try_from(messages).unwrap_or(0),
        feed_items: oldest(crate::store::feed::PURGE, messages_before).await?,
        events: oldest(
            "DELETE FROM events WHERE id IN (
                 SELECT id FROM events WHERE received_at < $1 AND handled
                 ORDER BY received_at LIMIT $2)",
            events_before,
        )
        .await?,
        callbacks: oldest(
            "DELETE FROM callbacks_outbox WHERE id IN (
                 SELECT id FROM callbacks_outbox WHERE state = 'abandoned' AND due_at < $1
                 ORDER BY due_at LIMIT $2)",
            messages_before,
        )
        .await?,
        conversions: oldest(
            "DELETE FROM conversions WHERE event_id IN (
                 SELECT event_id FROM conversions WHERE occurred_at < $1
                 ORDER BY occurred_at LIMIT $2)",
            events_before,
        )
        .await?,
        refusals: oldest(
            "DELETE FROM refusals WHERE (campaign, customer_id) IN (
                 SELECT campaign, customer_id FROM refusals WHERE refused_at < $1
                 ORDER BY refused_at LIMIT $2)",
            messages_before,
        )
        .await?,
        journey_runs: oldest(
            "DELETE FROM journey_runs WHERE id IN (
                 SELECT id FROM journey_runs
                 WHERE superseded AND status <> 'active' AND updated_at < $1
                 ORDER BY updated_at LIMIT $2)",
            events_before,
        )
        .await?,
        experiment_arms: oldest(crate::store::journeys::PURGE_ARMS, events_before).await?,
        ..Purged::default()
    })
}

pub async fn recent(db: &impl Sql, scope: &str, category: &str, since: i64) -> Result<u32> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT COUNT(*) FROM messages
             WHERE scope = $1 AND category = $2 AND created_at >= $3 AND status IN {}",
            crate::store::counted_by_caps()
        )
    });
    let row = db.one(&SQL, &[&scope, &category, &since]).await?;
    Ok(count(&row, 0))
}

/// [`recent`] when there is a cap to count for, else 0.
pub async fn recent_under(db: &impl Sql, scope: &str, cap: Option<&(String, i64)>) -> Result<u32> {
    match cap {
        Some((category, since)) => recent(db, scope, category, *since).await,
        None => Ok(0),
    }
}

pub async fn read(db: &impl Sql, id: &str) -> Result<Option<MessageRecord>> {
    let Some(r) = db
        .opt(
            "SELECT status, status_reason, channel, recipient, created_at, updated_at,
                    delivered_by, provider_message_id, send_at, expires_at, cancel_key, dedup_key,
                    delivered_channel, customer_id, category, plan, template, campaign
             FROM messages WHERE id = $1",
            &[&id],
        )
        .await?
    else {
        return Ok(None);
    };
    let attempts = db
        .rows(
            "SELECT number, connector, channel, started_at, finished_at, outcome,
                    provider_message_id, error_code, error_message, retry_at, node
             FROM attempts WHERE message_id = $1 ORDER BY number",
            &[&id],
        )
        .await?
        .iter()
        .map(attempt)
        .collect::<Result<Vec<_>, _>>()?;
    let events = db
        .rows(
            "SELECT at, state, code, description FROM status_events
             WHERE message_id = $1 ORDER BY at, id",
            &[&id],
        )
        .await?
        .iter()
        .map(|e| StatusEventRecord {
            at: e.get(0),
            state: e.get(1),
            code: e.get(2),
            description: e.get(3),
        })
        .collect();
    let parse = |s: &str| s.parse().map_err(StoreError::Corrupt);
    Ok(Some(MessageRecord {
        id: id.to_owned(),
        status: parse(r.get(0))?,
        status_reason: r.get(1),
        channel: r.get::<_, &str>(2).parse().map_err(StoreError::Corrupt)?,
        recipient: r.get(3),
        created_at: r.get(4),
        updated_at: r.get(5),
        delivered_by: r.get(6),
        provider_message_id: r.get(7),
        send_at: r.get(8),
        expires_at: r.get(9),
        cancel_key: r.get(10),
        dedup_key: r.get(11),
        delivered_channel: r
            .get::<_, Option<&str>>(12)
            .map(str::parse)
            .transpose()
            .map_err(StoreError::Corrupt)?,
        customer_id: r.get(13),
        category: r.get(14),
        plan: r.get(15),
        template: r.get(16),
        campaign: r.get(17),
        attempts,
        events,
    }))
}

fn attempt(r: &Row) -> Result<AttemptRecord> {
    Ok(AttemptRecord {
        number: count(r, 0),
        connector: r.get(1),
        channel: r.get::<_, &str>(2).parse().map_err(StoreError::Corrupt)?,
        started_at: r.get(3),
        finished_at: r.get(4),
        outcome: r.get::<_, &str>(5).parse().map_err(StoreError::Corrupt)?,
        provider_message_id: r.get(6),
        error_code: r.get(7),
        error_message: r.get(8),
        retry_at: r.get(9),
        node: r.get(10),
    })
}

#[async_trait]
impl MessageStore for PostgresStore {
    async fn insert_message(&self, message: NewMessage) -> Result<Inserted> {
        if !needs_transaction(&message) {
            self.messages.submit(message).await?;
            return Ok(Inserted::New);
        }
        transaction!(self, |tx| insert(&tx, &message).await)
    }

    async fn cancel(&self, scope: &str, cancel_key: &str, now: i64) -> Result<CancelReport> {
        transaction!(self, |tx| cancel(&tx, scope, cancel_key, now).await)
    }

    async fn message(&self, id: &str) -> Result<Option<MessageRecord>> {
        read(&self.client().await?, id).await
    }

    async fn search_messages(
        &self,
        query: crate::store::search::MessageQuery,
    ) -> Result<Vec<crate::store::search::MessageSummary>> {
        use crate::store::search::{Param, Raw};
        let (sql, params) = query.sql(|n| format!("${n}"));
        let values: Vec<Box<dyn tokio_postgres::types::ToSql + Sync + Send>> = params
            .into_iter()
            .map(|p| -> Box<dyn tokio_postgres::types::ToSql + Sync + Send> {
                match p {
                    Param::Text(text) => Box::new(text),
                    Param::Int(n) => Box::new(n),
                }
            })
            .collect();
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            values.iter().map(|v| &**v as _).collect();
        self.client()
            .await?
            .rows(&sql, &refs)
            .await?
            .iter()
            .map(|r| {
                Raw {
                    id: r.get(0),
                    status: r.get(1),
                    status_reason: r.get(2),
                    channel: r.get(3),
                    recipient: r.get(4),
                    customer_id: r.get(5),
                    category: r.get(6),
                    campaign: r.get(7),
                    delivered_by: r.get(8),
                    delivered_channel: r.get(9),
                    created_at: r.get(10),
                    updated_at: r.get(11),
                }
                .check()
                .map_err(StoreError::Corrupt)
            })
            .collect()
    }

    async fn claim_key(&self, key: &str, expires_at: i64) -> Result<bool> {
        let taken = self
            .client()
            .await?
            .exec(
                "INSERT INTO idempotency_keys (key, request_hash, response, expires_at)
                 VALUES ($1, '', '', $2) ON CONFLICT (key) DO NOTHING",
                &[&key, &expires_at],
            )
            .await?;
        Ok(taken == 1)
    }

    async fn release_key(&self, key: &str) -> Result<()> {
        self.client()
            .await?
            .exec("DELETE FROM idempotency_keys WHERE key = $1", &[&key])
            .await?;
        Ok(())
    }

    async fn apply_provider_status(&self, report: ProviderStatus) -> Result<Option<String>> {
        transaction!(self, |tx| apply_provider_status(&tx, &report).await)
    }
}
