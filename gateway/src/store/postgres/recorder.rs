//! Recording attempts, in batches (see [`super::batch`]): each attempt's
//! record is one row of one statement.

use super::Sql;
use super::batch::Batch;
use crate::message::MessageStatus;
use crate::store::Result;
use crate::store::{AttemptResult, Next, StoreError};
use async_trait::async_trait;
use deadpool_postgres::Object;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

/// Whether an attempt can be recorded in a batch: a sent or retried one
/// (nearly all) needs no fallback; a give-up may start the next delivery
/// and is recorded alone, in a transaction.
pub fn batches(r: &AttemptResult) -> bool {
    !matches!(r.next, Next::GiveUp { .. })
}

/// Records this node's attempts.
pub struct Attempts {
    pub node: Arc<str>,
}

#[async_trait]
impl Batch for Attempts {
    type Item = AttemptResult;
    /// The status the attempt ended its message in, if it did.
    type Out = Option<MessageStatus>;

    fn key(r: &AttemptResult) -> &str {
        &r.message_id
    }

    async fn write(
        &self,
        db: &Object,
        rows: &[&AttemptResult],
    ) -> Result<Vec<Option<MessageStatus>>> {
        let ended = record_rows(db, rows, &self.node).await?;
        Ok(rows
            .iter()
            .zip(ended)
            .map(|(r, ended)| ended.then(|| finishing(r)).flatten())
            .collect())
    }
}

/// The status a sent attempt ends its message in.
fn finishing(r: &AttemptResult) -> Option<MessageStatus> {
    match r.next {
        Next::Sent {
            delivered: true, ..
        } => Some(MessageStatus::Delivered),
        Next::Sent { .. } => Some(MessageStatus::Sent),
        _ => None,
    }
}

/// Each row: its delivery moves on if the attempt holds its lease; its
/// message counts the attempt and, when the attempt sent it, ends as `sent`
/// (with its callback queued); the attempt joins the history. A message
/// whose delivery is leased is open (cancelling, expiring and erasing all
/// leave leased deliveries alone), so holding the lease is enough to end
/// it. Returns, in order, whether each row ended its message. Every
/// message appears once.
///
/// Deliveries are found by joining `r` alone: with `id = ANY ($1)` added,
/// the planner intersected the primary key with `deliveries_leased`, reading
/// every dead entry that leases leave there until vacuum, each time.
async fn record_rows(db: &impl Sql, rows: &[&AttemptResult], node: &str) -> Result<Vec<bool>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "WITH r AS (
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[],
                                      $5::bigint[], $6::bigint[], $7::text[], $8::text[],
                                      $9::text[], $10::text[], $11::text[], $12::bigint[],
                                      $13::text[], $14::text[], $15::text[], $16::bigint[],
                                      $18::bigint[])
                     AS r (delivery_id, lease_until, state, message_id, due_at, finished_at,
                           finishing, connector, channel, provider_id, outcome, started_at,
                           attempt_provider_id, error_code, error_message, retry_at,
                           escalate_at)),
             d AS (
                 UPDATE deliveries
                 SET state = r.state, lease_until = NULL, attempts = deliveries.attempts + 1,
                     due_at = COALESCE(r.due_at, deliveries.due_at)
                 FROM r
                 WHERE deliveries.id = r.delivery_id
                   AND deliveries.state = 'leased' AND deliveries.lease_until = r.lease_until
                 RETURNING deliveries.id),
             e AS (
                 SELECT r.*, r.delivery_id IN (SELECT id FROM d) AS took,
                        r.finishing IS NOT NULL AND r.delivery_id IN (SELECT id FROM d)
                            AND o.status IN {open} AS ends
                 FROM r JOIN messages o ON o.id = r.message_id),
             x AS (
                 UPDATE deliveries SET state = 'pending', due_at = e.escalate_at
                 FROM e
                 WHERE e.escalate_at IS NOT NULL AND e.delivery_id IN (SELECT id FROM d)
                   AND deliveries.id = (SELECT w.id FROM deliveries w
                                        WHERE w.message_id = e.message_id AND w.state = 'waiting'
                                        ORDER BY w.seq LIMIT 1)),
             m AS (
                 UPDATE messages SET attempt_count = attempt_count + 1, updated_at = e.finished_at,
                     status = CASE WHEN e.ends THEN e.finishing ELSE status END,
                     status_reason = CASE WHEN e.ends THEN NULL ELSE status_reason END,
                     -- Sent, whether it finished the message or went after it was
                     -- delivered (an escalation): the provider's reports find it by these.
                     delivered_by = CASE WHEN e.took AND e.provider_id IS NOT NULL
                                         THEN e.connector ELSE delivered_by END,
                     delivered_channel = CASE WHEN e.took AND e.provider_id IS NOT NULL
                                              THEN e.channel ELSE delivered_channel END,
                     provider_message_id = CASE WHEN e.took AND e.provider_id IS NOT NULL
                                                THEN e.provider_id ELSE provider_message_id END,
                     event_seq = event_seq + CASE WHEN e.ends AND callback_url IS NOT NULL
                                                  THEN 1 ELSE 0 END
                 FROM e
                 WHERE messages.id = ANY ($4) AND messages.id = e.message_id
                 RETURNING messages.id, messages.attempt_count, messages.callback_url,
                           messages.event_seq, messages.status, messages.status_reason,
                           messages.channel, messages.delivered_by, messages.provider_message_id,
                           e.ends, e.delivery_id, e.connector AS attempt_connector,
                           e.channel AS attempt_channel, e.started_at, e.finished_at, e.outcome,
                           e.attempt_provider_id, e.error_code, e.error_message, e.retry_at),
             a AS (
                 INSERT INTO attempts (message_id, number, delivery_id, connector, channel,
                     started_at, finished_at, outcome, provider_message_id, error_code,
                     error_message, retry_at, node)
                 SELECT id, attempt_count, delivery_id, attempt_connector, attempt_channel,
                        started_at, finished_at, outcome, attempt_provider_id, error_code,
                        error_message, retry_at, $17
                 FROM m),
             c AS (
                 INSERT INTO callbacks_outbox (message_id, url, payload, due_at)
                 SELECT id, callback_url, {payload}, finished_at FROM m
                 WHERE ends AND callback_url IS NOT NULL),
             p AS (
                 INSERT INTO provider_parts (connector, provider_message_id, message_id, state)
                 SELECT *, 'sent' FROM unnest($19::text[], $20::text[], $21::text[])
                 ON CONFLICT DO NOTHING)
             SELECT delivery_id, ends FROM m",
            payload = super::outbox::payload_sql("finished_at"),
            open = crate::store::OPEN.as_str(),
        )
    });
    let n = rows.len();
    let mut columns = Columns::with_capacity(n);
    for r in rows {
        columns.push(r)?;
    }
    let c = &columns;
    let ended: HashMap<i64, bool> = db
        .rows(
            &SQL,
            &[
                &c.delivery_id,
                &c.lease_until,
                &c.state,
                &c.message_id,
                &c.due_at,
                &c.finished_at,
                &c.finishing,
                &c.connector,
                &c.channel,
                &c.provider_id,
                &c.outcome,
                &c.started_at,
                &c.attempt_provider_id,
                &c.error_code,
                &c.error_message,
                &c.retry_at,
                &node,
                &c.escalate_at,
                &c.part_connector,
                &c.part_id,
                &c.part_message_id,
            ],
        )
        .await?
        .iter()
        .map(|row| (row.get::<_, i64>(0), row.get::<_, bool>(1)))
        .collect();
    if ended.len() != n {
        return Err(StoreError::Corrupt(format!(
            "{} of {n} attempts found their message",
            ended.len()
        )));
    }
    Ok(rows
        .iter()
        .map(|r| ended.get(&r.delivery_id).copied().unwrap_or(false))
        .collect())
}

/// The batch as one array per column, as `unnest` takes it.
struct Columns<'a> {
    delivery_id: Vec<i64>,
    lease_until: Vec<i64>,
    state: Vec<&'a str>,
    message_id: Vec<&'a str>,
    due_at: Vec<Option<i64>>,
    finished_at: Vec<i64>,
    finishing: Vec<Option<&'a str>>,
    connector: Vec<&'a str>,
    channel: Vec<&'a str>,
    provider_id: Vec<Option<&'a str>>,
    outcome: Vec<&'a str>,
    started_at: Vec<i64>,
    attempt_provider_id: Vec<Option<&'a str>>,
    error_code: Vec<Option<&'a str>>,
    error_message: Vec<Option<&'a str>>,
    retry_at: Vec<Option<i64>>,
    escalate_at: Vec<Option<i64>>,
    /// The parts of split messages, one row per part (first included).
    part_connector: Vec<&'a str>,
    part_id: Vec<&'a str>,
    part_message_id: Vec<&'a str>,
}

impl<'a> Columns<'a> {
    fn with_capacity(n: usize) -> Self {
        Columns {
            delivery_id: Vec::with_capacity(n),
            lease_until: Vec::with_capacity(n),
            state: Vec::with_capacity(n),
            message_id: Vec::with_capacity(n),
            due_at: Vec::with_capacity(n),
            finished_at: Vec::with_capacity(n),
            finishing: Vec::with_capacity(n),
            connector: Vec::with_capacity(n),
            channel: Vec::with_capacity(n),
            provider_id: Vec::with_capacity(n),
            outcome: Vec::with_capacity(n),
            started_at: Vec::with_capacity(n),
            attempt_provider_id: Vec::with_capacity(n),
            error_code: Vec::with_capacity(n),
            error_message: Vec::with_capacity(n),
            retry_at: Vec::with_capacity(n),
            escalate_at: Vec::with_capacity(n),
            part_connector: Vec::new(),
            part_id: Vec::new(),
            part_message_id: Vec::new(),
        }
    }

    fn push(&mut self, r: &'a AttemptResult) -> Result<()> {
        let a = &r.attempt;
        let (provider_id, escalate_at) = match &r.next {
            Next::Sent {
                provider_message_id,
                parts,
                escalate_at,
                ..
            } => {
                if !parts.is_empty() {
                    for part in std::iter::once(provider_message_id).chain(parts) {
                        self.part_connector.push(&a.connector);
                        self.part_id.push(part);
                        self.part_message_id.push(&r.message_id);
                    }
                }
                (Some(provider_message_id.as_str()), *escalate_at)
            }
            Next::RetryAt(_) => (None, None),
            Next::GiveUp { .. } => {
                return Err(StoreError::Corrupt(
                    "a give-up is recorded with its fallback, in a transaction".into(),
                ));
            }
        };
        let (state, due_at) = (r.next.delivery_state().as_str(), r.next.retry_at());
        self.delivery_id.push(r.delivery_id);
        self.lease_until.push(r.lease_until);
        self.state.push(state);
        self.message_id.push(&r.message_id);
        self.due_at.push(due_at);
        self.finished_at.push(a.finished_at);
        self.finishing.push(finishing(r).map(MessageStatus::as_str));
        self.connector.push(&a.connector);
        self.channel.push(a.channel.as_str());
        self.provider_id.push(provider_id);
        self.outcome.push(a.outcome.as_str());
        self.started_at.push(a.started_at);
        self.attempt_provider_id
            .push(a.provider_message_id.as_deref());
        self.error_code.push(a.error_code.as_deref());
        self.error_message.push(a.error_message.as_deref());
        self.retry_at.push(a.retry_at);
        self.escalate_at.push(escalate_at);
        Ok(())
    }
}
