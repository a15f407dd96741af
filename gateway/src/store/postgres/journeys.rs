//! Events, journey versions and runs in PostgreSQL. Leases take rows with
//! `FOR UPDATE SKIP LOCKED`, so nodes claiming at once never share work.

use super::{PostgresStore, Sql as _};
use crate::store::journeys::{
    ArmRecord, ArmTotals, EventInserted, EventRecord, JourneyStore, JourneyVersion, NewEvent,
    RunRecord,
};
use crate::store::replies::{Answered, NewReply, ReplyRecorded};
use crate::store::{Lease, Result};
use async_trait::async_trait;
use tokio_postgres::Row;

use crate::store::journeys::RUN_COLUMNS;

fn run_row(r: &Row) -> RunRecord {
    RunRecord {
        id: r.get(0),
        journey: r.get(1),
        version: r.get(2),
        customer_id: r.get(3),
        status: r.get(4),
        state: r.get(5),
        wake_at: r.get(6),
        revision: r.get(7),
        started_at: r.get(8),
        updated_at: r.get(9),
    }
}

fn event_row(r: &Row) -> EventRecord {
    EventRecord {
        id: r.get(0),
        customer_id: r.get(1),
        name: r.get(2),
        properties: r.get(3),
        occurred_at: r.get(4),
        received_at: r.get(5),
    }
}

/// Each event stored, or the one stored before under its idempotency key.
async fn insert_events(tx: &impl super::Sql, events: &[NewEvent]) -> Result<Vec<EventInserted>> {
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        let inserted = tx
            .exec(
                "INSERT INTO events (id, customer_id, name, properties, occurred_at,
                                     received_at, idempotency_key)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (idempotency_key) DO NOTHING",
                &[
                    &e.id,
                    &e.customer_id,
                    &e.name,
                    &e.properties,
                    &e.occurred_at,
                    &e.received_at,
                    &e.idempotency_key,
                ],
            )
            .await?;
        out.push(if inserted == 1 {
            EventInserted::New
        } else {
            let first = tx
                .one(
                    "SELECT id FROM events WHERE idempotency_key = $1",
                    &[&e.idempotency_key],
                )
                .await?;
            EventInserted::Duplicate { id: first.get(0) }
        });
    }
    Ok(out)
}

/// See [`crate::store::replies`]: claim the reply's id, then write.
pub(super) async fn record_reply(tx: &impl super::Sql, reply: &NewReply) -> Result<ReplyRecorded> {
    let claimed = tx
        .exec(
            "INSERT INTO dedup_keys (scope, key, message_id, expires_at)
             VALUES ('reply', $1, '', $2) ON CONFLICT (scope, key) DO NOTHING",
            &[
                &reply.dedup_key(),
                &(reply.received_at + crate::store::replies::REMEMBERED_FOR_MS),
            ],
        )
        .await?;
    if claimed == 0 {
        return Ok(ReplyRecorded {
            duplicate: true,
            ..ReplyRecorded::default()
        });
    }
    let answered = match &reply.in_reply_to {
        Some(provider_id) => tx
            .opt(
                "SELECT id, customer_id, callback_url FROM messages
                 WHERE delivered_by = $1 AND provider_message_id = $2",
                &[&reply.connector, provider_id],
            )
            .await?
            .map(|r| Answered {
                message_id: r.get(0),
                customer_id: r.get(1),
                callback_url: r.get(2),
            }),
        None => None,
    };
    let owners = super::customers::owners(tx, reply.channel, &reply.address).await?;
    let writes = crate::store::replies::writes(reply, answered, owners);
    insert_events(tx, &writes.events).await?;
    if let Some((about, url, payload)) = &writes.callback {
        super::outbox::enqueue(tx, about, url, payload, reply.received_at).await?;
    }
    Ok(writes.recorded)
}

#[async_trait]
impl JourneyStore for PostgresStore {
    async fn record_events(&self, events: Vec<NewEvent>) -> Result<Vec<EventInserted>> {
        transaction!(self, |tx| insert_events(&tx, &events).await)
    }

    async fn claim_events(&self, lease: Lease) -> Result<Vec<EventRecord>> {
        let rows = self
            .client()
            .await?
            .rows(
                "WITH customers AS (
                     SELECT DISTINCT customer_id FROM (
                         SELECT customer_id FROM events
                         WHERE NOT handled AND (lease_until IS NULL OR lease_until <= $1)
                         ORDER BY received_at LIMIT $2
                         FOR UPDATE SKIP LOCKED) oldest)
                 UPDATE events SET lease_until = $3
                 WHERE NOT handled AND (lease_until IS NULL OR lease_until <= $1)
                   AND customer_id IN (SELECT customer_id FROM customers)
                 RETURNING id, customer_id, name, properties, occurred_at, received_at",
                &[&lease.now, &lease.limit_sql(), &lease.until()],
            )
            .await?;
        let mut events: Vec<EventRecord> = rows.iter().map(event_row).collect();
        crate::store::journeys::in_applying_order(&mut events);
        Ok(events)
    }

    async fn events_handled(&self, ids: Vec<String>) -> Result<()> {
        self.client()
            .await?
            .exec(
                "UPDATE events SET handled = TRUE, lease_until = NULL WHERE id = ANY($1)",
                &[&ids],
            )
            .await?;
        Ok(())
    }

    async fn count_events(&self, customer_id: &str, name: &str, since: i64) -> Result<u64> {
        let row = self
            .client()
            .await?
            .one(
                "SELECT COUNT(*) FROM events
                 WHERE customer_id = $1 AND name = $2 AND occurred_at >= $3",
                &[&customer_id, &name, &since],
            )
            .await?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    async fn first_event_since(
        &self,
        customer_id: &str,
        name: &str,
        since: i64,
        except: &str,
    ) -> Result<Option<(String, i64)>> {
        Ok(self
            .client()
            .await?
            .opt(
                crate::store::journeys::FIRST_EVENT_SINCE,
                &[&customer_id, &name, &since, &except],
            )
            .await?
            .map(|row| (row.get(0), row.get(1))))
    }

    async fn record_arm(&self, arm: ArmRecord) -> Result<()> {
        self.client()
            .await?
            .exec(
                crate::store::journeys::RECORD_ARM,
                &[
                    &arm.journey,
                    &arm.step,
                    &arm.customer_id,
                    &arm.arm,
                    &arm.run_id,
                    &arm.message_id,
                    &arm.assigned_at,
                ],
            )
            .await?;
        Ok(())
    }

    async fn arm_totals(
        &self,
        journey: &str,
        step: &str,
        window_ms: i64,
    ) -> Result<Vec<ArmTotals>> {
        let count = |row: &tokio_postgres::Row, i| u64::try_from(row.get::<_, i64>(i)).unwrap_or(0);
        Ok(self
            .analyst()
            .await?
            .rows(
                crate::store::journeys::ARM_TOTALS,
                &[&journey, &step, &window_ms],
            )
            .await?
            .iter()
            .map(|row| ArmTotals {
                arm: row.get(0),
                customers: count(row, 1),
                sent: count(row, 2),
                delivered: count(row, 3),
                conversions: count(row, 4),
                cost: row.get(5),
            })
            .collect())
    }

    async fn put_journey_version(&self, version: JourneyVersion) -> Result<()> {
        self.client()
            .await?
            .exec(
                "INSERT INTO journey_versions (version, journey, config, created_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (version) DO NOTHING",
                &[
                    &version.version,
                    &version.journey,
                    &version.config,
                    &version.created_at,
                ],
            )
            .await?;
        Ok(())
    }

    async fn journey_version(&self, version: &str) -> Result<Option<JourneyVersion>> {
        Ok(self
            .client()
            .await?
            .opt(
                "SELECT version, journey, config, created_at FROM journey_versions WHERE version = $1",
                &[&version],
            )
            .await?
            .map(|r| JourneyVersion {
                version: r.get(0),
                journey: r.get(1),
                config: r.get(2),
                created_at: r.get(3),
            }))
    }

    /// A new run supersedes the customer's earlier runs of the journey (in
    /// the same statement; the update cannot see the new row, nor needs to).
    async fn insert_run(&self, run: RunRecord) -> Result<bool> {
        let inserted = self
            .client()
            .await?
            .rows(
                &format!(
                    "WITH new AS (
                         INSERT INTO journey_runs ({RUN_COLUMNS})
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                         ON CONFLICT (id) DO NOTHING
                         RETURNING customer_id, journey),
                     earlier AS (
                         UPDATE journey_runs r SET superseded = TRUE FROM new
                         WHERE r.customer_id = new.customer_id AND r.journey = new.journey
                           AND NOT r.superseded)
                     SELECT COUNT(*) FROM new"
                ),
                &[
                    &run.id,
                    &run.journey,
                    &run.version,
                    &run.customer_id,
                    &run.status,
                    &run.state,
                    &run.wake_at,
                    &run.revision,
                    &run.started_at,
                    &run.updated_at,
                ],
            )
            .await?
            .first()
            .map_or(0, |r| r.get::<_, i64>(0));
        Ok(inserted == 1)
    }

    async fn update_run(&self, run: RunRecord, read_at: i64) -> Result<bool> {
        let updated = self
            .client()
            .await?
            .exec(
                "UPDATE journey_runs
                 SET status = $2, state = $3, wake_at = $4, revision = $5, updated_at = $6,
                     lease_until = NULL
                 WHERE id = $1 AND revision = $7",
                &[
                    &run.id,
                    &run.status,
                    &run.state,
                    &run.wake_at,
                    &run.revision,
                    &run.updated_at,
                    &read_at,
                ],
            )
            .await?;
        Ok(updated == 1)
    }

    async fn run(&self, id: &str) -> Result<Option<RunRecord>> {
        Ok(self
            .client()
            .await?
            .opt(
                &format!("SELECT {RUN_COLUMNS} FROM journey_runs WHERE id = $1"),
                &[&id],
            )
            .await?
            .as_ref()
            .map(run_row))
    }

    async fn customer_runs(&self, customer_id: &str) -> Result<Vec<RunRecord>> {
        Ok(self
            .client()
            .await?
            .rows(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM journey_runs WHERE customer_id = $1
                     ORDER BY started_at DESC, id DESC"
                ),
                &[&customer_id],
            )
            .await?
            .iter()
            .map(run_row)
            .collect())
    }

    async fn run_counts(&self, journey: &str) -> Result<Vec<(String, u64)>> {
        Ok(self
            .analyst()
            .await?
            .rows(crate::store::journeys::RUN_COUNTS, &[&journey])
            .await?
            .iter()
            .map(|r| (r.get(0), u64::try_from(r.get::<_, i64>(1)).unwrap_or(0)))
            .collect())
    }

    async fn customer_runs_page(
        &self,
        customer_id: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Vec<RunRecord>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .client()
            .await?
            .rows(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM journey_runs WHERE customer_id = $1
                     AND ($2::text IS NULL OR (started_at, id) < (SELECT started_at, id
                          FROM journey_runs WHERE id = $2 AND customer_id = $1))
                     ORDER BY started_at DESC, id DESC LIMIT $3"
                ),
                &[&customer_id, &after, &limit],
            )
            .await?
            .iter()
            .map(run_row)
            .collect())
    }

    async fn lease_due_runs(&self, lease: Lease) -> Result<Vec<RunRecord>> {
        Ok(self
            .client()
            .await?
            .rows(
                &format!(
                    "UPDATE journey_runs SET lease_until = $3
                     WHERE id = ANY(ARRAY(
                         SELECT id FROM journey_runs
                         WHERE status = 'active' AND wake_at <= $1
                           AND (lease_until IS NULL OR lease_until <= $1)
                         ORDER BY wake_at LIMIT $2
                         FOR UPDATE SKIP LOCKED))
                     RETURNING {RUN_COLUMNS}"
                ),
                &[&lease.now, &lease.limit_sql(), &lease.until()],
            )
            .await?
            .iter()
            .map(run_row)
            .collect())
    }
}
