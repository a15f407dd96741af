//! Events, journey versions and runs in SQLite.

use super::SqliteStore;
use crate::store::journeys::{
    ArmRecord, ArmTotals, EventInserted, EventRecord, JourneyStore, JourneyVersion, NewEvent,
    RunRecord,
};
use crate::store::replies::{Answered, NewReply, ReplyRecorded};
use crate::store::{Lease, Result};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension as _, Row, params};

use crate::store::journeys::RUN_COLUMNS;

/// A new run's customer's earlier runs of its journey: sought by customer
/// and journey (schema step 21), never by walking the journey's runs.
const SUPERSEDE_EARLIER: &str = "UPDATE journey_runs SET superseded = TRUE
     WHERE customer_id = ?1 AND journey = ?2 AND id <> ?3 AND NOT superseded";

fn run_row(r: &Row<'_>) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        id: r.get(0)?,
        journey: r.get(1)?,
        version: r.get(2)?,
        customer_id: r.get(3)?,
        status: r.get(4)?,
        state: r.get(5)?,
        wake_at: r.get(6)?,
        revision: r.get(7)?,
        started_at: r.get(8)?,
        updated_at: r.get(9)?,
    })
}

fn event_row(r: &Row<'_>) -> rusqlite::Result<EventRecord> {
    Ok(EventRecord {
        id: r.get(0)?,
        customer_id: r.get(1)?,
        name: r.get(2)?,
        properties: r.get(3)?,
        occurred_at: r.get(4)?,
        received_at: r.get(5)?,
    })
}

fn record_events(conn: &Connection, events: &[NewEvent]) -> Result<Vec<EventInserted>> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO events (id, customer_id, name, properties, occurred_at, received_at,
                             idempotency_key)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (idempotency_key) DO NOTHING",
    )?;
    let mut first = conn.prepare_cached("SELECT id FROM events WHERE idempotency_key = ?1")?;
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        let inserted = insert.execute(params![
            e.id,
            e.customer_id,
            e.name,
            e.properties,
            e.occurred_at,
            e.received_at,
            e.idempotency_key
        ])?;
        out.push(if inserted == 1 {
            EventInserted::New
        } else {
            EventInserted::Duplicate {
                id: first.query_row(params![e.idempotency_key], |r| r.get(0))?,
            }
        });
    }
    Ok(out)
}

/// See [`crate::store::replies`]: claim the reply's id, then write.
pub(super) fn record_reply(conn: &Connection, reply: &NewReply) -> Result<ReplyRecorded> {
    let claimed = conn
        .prepare_cached(
            "INSERT INTO dedup_keys (scope, key, message_id, expires_at)
             VALUES ('reply', ?1, '', ?2) ON CONFLICT (scope, key) DO NOTHING",
        )?
        .execute(params![
            reply.dedup_key(),
            reply.received_at + crate::store::replies::REMEMBERED_FOR_MS
        ])?;
    if claimed == 0 {
        return Ok(ReplyRecorded {
            duplicate: true,
            ..ReplyRecorded::default()
        });
    }
    let answered = match &reply.in_reply_to {
        Some(provider_id) => conn
            .prepare_cached(
                "SELECT id, customer_id, callback_url FROM messages
                 WHERE delivered_by = ?1 AND provider_message_id = ?2",
            )?
            .query_row(params![reply.connector, provider_id], |r| {
                Ok(Answered {
                    message_id: r.get(0)?,
                    customer_id: r.get(1)?,
                    callback_url: r.get(2)?,
                })
            })
            .optional()?,
        None => None,
    };
    let owners = super::customers::owners(conn, reply.channel, &reply.address)?;
    let writes = crate::store::replies::writes(reply, answered, owners);
    record_events(conn, &writes.events)?;
    if let Some((about, url, payload)) = &writes.callback {
        super::outbox::enqueue(conn, about, url, payload, reply.received_at)?;
    }
    Ok(writes.recorded)
}

fn claim_events(conn: &Connection, lease: Lease) -> Result<Vec<EventRecord>> {
    let mut events = conn
        .prepare_cached(
            "UPDATE events SET lease_until = ?3
             WHERE NOT handled AND (lease_until IS NULL OR lease_until <= ?1)
               AND customer_id IN (
                   SELECT customer_id FROM events
                   WHERE NOT handled AND (lease_until IS NULL OR lease_until <= ?1)
                   ORDER BY received_at LIMIT ?2)
             RETURNING id, customer_id, name, properties, occurred_at, received_at",
        )?
        .query_map(
            params![lease.now, lease.limit_sql(), lease.until()],
            event_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    crate::store::journeys::in_applying_order(&mut events);
    Ok(events)
}

#[async_trait]
impl JourneyStore for SqliteStore {
    async fn record_events(&self, events: Vec<NewEvent>) -> Result<Vec<EventInserted>> {
        self.write(move |conn| record_events(conn, &events)).await
    }

    async fn claim_events(&self, lease: Lease) -> Result<Vec<EventRecord>> {
        // A lease is worth nothing after a restart (events are then claimed
        // again): no fsync, as for deliveries.
        self.write_as(super::Durability::ProcessCrashSafe, move |conn| {
            claim_events(conn, lease)
        })
        .await
    }

    async fn events_handled(&self, ids: Vec<String>) -> Result<()> {
        self.write(move |conn| {
            let mut done = conn.prepare_cached(
                "UPDATE events SET handled = 1, lease_until = NULL WHERE id = ?1",
            )?;
            for id in &ids {
                done.execute(params![id])?;
            }
            Ok(())
        })
        .await
    }

    async fn count_events(&self, customer_id: &str, name: &str, since: i64) -> Result<u64> {
        let (customer_id, name) = (customer_id.to_owned(), name.to_owned());
        self.read(move |conn| {
            let n: i64 = conn
                .prepare_cached(
                    "SELECT COUNT(*) FROM events
                     WHERE customer_id = ?1 AND name = ?2 AND occurred_at >= ?3",
                )?
                .query_row(params![customer_id, name, since], |r| r.get(0))?;
            Ok(n as u64)
        })
        .await
    }

    async fn first_event_since(
        &self,
        customer_id: &str,
        name: &str,
        since: i64,
        except: &str,
    ) -> Result<Option<(String, i64)>> {
        let (customer_id, name, except) =
            (customer_id.to_owned(), name.to_owned(), except.to_owned());
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(crate::store::journeys::FIRST_EVENT_SINCE)?
                .query_row(params![customer_id, name, since, except], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?)
        })
        .await
    }

    async fn record_arm(&self, arm: ArmRecord) -> Result<()> {
        self.write(move |conn| {
            conn.prepare_cached(crate::store::journeys::RECORD_ARM)?
                .execute(params![
                    arm.journey,
                    arm.step,
                    arm.customer_id,
                    arm.arm,
                    arm.run_id,
                    arm.message_id,
                    arm.assigned_at
                ])?;
            Ok(())
        })
        .await
    }

    async fn arm_totals(
        &self,
        journey: &str,
        step: &str,
        window_ms: i64,
    ) -> Result<Vec<ArmTotals>> {
        let (journey, step) = (journey.to_owned(), step.to_owned());
        self.analyze(move |conn| {
            // `?3` where the shared text says `$3`: SQLite numbers `$`
            // parameters by where they first appear, and `$3` comes first.
            let sql = crate::store::journeys::ARM_TOTALS.replace('$', "?");
            let rows = conn
                .prepare_cached(&sql)?
                .query_map(params![journey, step, window_ms], |r| {
                    let count = |i| r.get::<_, i64>(i).map(|n| u64::try_from(n).unwrap_or(0));
                    Ok(ArmTotals {
                        arm: r.get(0)?,
                        customers: count(1)?,
                        sent: count(2)?,
                        delivered: count(3)?,
                        conversions: count(4)?,
                        cost: r.get(5)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn put_journey_version(&self, version: JourneyVersion) -> Result<()> {
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO journey_versions (version, journey, config, created_at)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (version) DO NOTHING",
            )?
            .execute(params![
                version.version,
                version.journey,
                version.config,
                version.created_at
            ])?;
            Ok(())
        })
        .await
    }

    async fn journey_version(&self, version: &str) -> Result<Option<JourneyVersion>> {
        let version = version.to_owned();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT version, journey, config, created_at FROM journey_versions WHERE version = ?1",
                )?
                .query_row(params![version], |r| {
                    Ok(JourneyVersion {
                        version: r.get(0)?,
                        journey: r.get(1)?,
                        config: r.get(2)?,
                        created_at: r.get(3)?,
                    })
                })
                .optional()?)
        })
        .await
    }

    async fn insert_run(&self, run: RunRecord) -> Result<bool> {
        self.write(move |conn| {
            let inserted = conn
                .prepare_cached(&format!(
                    "INSERT INTO journey_runs ({RUN_COLUMNS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                     ON CONFLICT (id) DO NOTHING"
                ))?
                .execute(params![
                    run.id,
                    run.journey,
                    run.version,
                    run.customer_id,
                    run.status,
                    run.state,
                    run.wake_at,
                    run.revision,
                    run.started_at,
                    run.updated_at
                ])?;
            if inserted == 1 {
                conn.prepare_cached(SUPERSEDE_EARLIER)?.execute(params![
                    run.customer_id,
                    run.journey,
                    run.id
                ])?;
            }
            Ok(inserted == 1)
        })
        .await
    }

    async fn update_run(&self, run: RunRecord, read_at: i64) -> Result<bool> {
        self.write(move |conn| {
            let updated = conn
                .prepare_cached(
                    "UPDATE journey_runs
                     SET status = ?2, state = ?3, wake_at = ?4, revision = ?5, updated_at = ?6,
                         lease_until = NULL
                     WHERE id = ?1 AND revision = ?7",
                )?
                .execute(params![
                    run.id,
                    run.status,
                    run.state,
                    run.wake_at,
                    run.revision,
                    run.updated_at,
                    read_at
                ])?;
            Ok(updated == 1)
        })
        .await
    }

    async fn run(&self, id: &str) -> Result<Option<RunRecord>> {
        let id = id.to_owned();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {RUN_COLUMNS} FROM journey_runs WHERE id = ?1"
                ))?
                .query_row(params![id], run_row)
                .optional()?)
        })
        .await
    }

    async fn customer_runs(&self, customer_id: &str) -> Result<Vec<RunRecord>> {
        let customer_id = customer_id.to_owned();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {RUN_COLUMNS} FROM journey_runs WHERE customer_id = ?1
                     ORDER BY started_at DESC, id DESC"
                ))?
                .query_map(params![customer_id], run_row)?
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn run_counts(&self, journey: &str) -> Result<Vec<(String, u64)>> {
        let journey = journey.to_owned();
        self.analyze(move |conn| {
            let rows = conn
                .prepare_cached(crate::store::journeys::RUN_COUNTS)?
                .query_map(params![journey], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows
                .into_iter()
                .map(|(status, n)| (status, u64::try_from(n).unwrap_or(0)))
                .collect())
        })
        .await
    }

    async fn customer_runs_page(
        &self,
        customer_id: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Vec<RunRecord>> {
        let customer_id = customer_id.to_owned();
        let after = after.map(str::to_owned);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {RUN_COLUMNS} FROM journey_runs WHERE customer_id = ?1
                     AND (?2 IS NULL OR (started_at, id) < (SELECT started_at, id
                          FROM journey_runs WHERE id = ?2 AND customer_id = ?1))
                     ORDER BY started_at DESC, id DESC LIMIT ?3"
                ))?
                .query_map(params![customer_id, after, limit], run_row)?
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn lease_due_runs(&self, lease: Lease) -> Result<Vec<RunRecord>> {
        self.write_as(super::Durability::ProcessCrashSafe, move |conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "UPDATE journey_runs SET lease_until = ?3
                     WHERE id IN (
                         SELECT id FROM journey_runs
                         WHERE status = 'active' AND wake_at <= ?1
                           AND (lease_until IS NULL OR lease_until <= ?1)
                         ORDER BY wake_at LIMIT ?2)
                     RETURNING {RUN_COLUMNS}"
                ))?
                .query_map(
                    params![lease.now, lease.limit_sql(), lease.until()],
                    run_row,
                )?
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a new database, with no statistics to go by, superseding seeks
    /// the customer's runs of the journey: a plan on the journey's own index
    /// walked all its runs at every start (quadratic in its customers).
    #[tokio::test]
    async fn superseding_seeks_the_customers_runs_of_the_journey() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db"), "test", 0).unwrap();
        let plan = store
            .read(|conn| {
                let mut plan = conn.prepare(&format!("EXPLAIN QUERY PLAN {SUPERSEDE_EARLIER}"))?;
                let steps = plan
                    .query_map(params!["customer", "journey", "run"], |r| {
                        r.get::<_, String>(3)
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(steps.join("\n"))
            })
            .await
            .unwrap();
        assert!(
            plan.contains("USING INDEX journey_runs_by_customer_journey"),
            "{plan}"
        );
    }
}
