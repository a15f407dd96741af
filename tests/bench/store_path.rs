//! The store's share of one message, in process: accepting it (an insert,
//! 64 at once as the API's requests arrive), leasing its delivery and
//! recording its attempt (in batches of 64, as the dispatcher and its
//! recorder do). CPU time is this process's (on SQLite that is all of the
//! store's work, its writer thread included; on PostgreSQL the server's is
//! not, and the write-ahead log it wrote per message is printed instead).
//! Then a shorter pass on a store of its own counts what each phase wrote
//! per message: rows, index entries added and write-ahead log, both stores.

use crate::Store as BenchStore;
use crossgate::clock::wall_ms;
use crossgate::message::Outcome;
use crossgate::store::write_counts::{self, WriteCounts};
use crossgate::store::{AttemptRecord, AttemptResult, Lease, Next, Store};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const MESSAGES: usize = 20_000;
/// The counted pass: what a message writes does not depend on how many.
const COUNTED: usize = 2_000;
const AT_ONCE: usize = 64;

/// The store's three parts of a message's way.
const PHASES: [&str; 3] = [
    "accept (insert, 64 at once)",
    "lease (batches of 64)",
    "record a sent attempt (batches of 64)",
];
const ACCEPT: usize = 0;
const LEASE: usize = 1;
const RECORD: usize = 2;

/// What a pass measures around each phase.
trait Meter {
    async fn start(&mut self);
    async fn stop(&mut self, phase: usize);
}

/// Wall and CPU time of each phase, summed.
#[derive(Default)]
struct Clocks {
    since: Option<(Instant, f64)>,
    wall: [Duration; 3],
    cpu: [f64; 3],
}

impl Meter for Clocks {
    async fn start(&mut self) {
        self.since = Some((Instant::now(), own_cpu()));
    }

    async fn stop(&mut self, phase: usize) {
        let (wall, cpu) = self.since.take().expect("a phase started");
        self.wall[phase] += wall.elapsed();
        self.cpu[phase] += own_cpu() - cpu;
    }
}

/// Rows, index entries added and write-ahead log of each phase: counted by
/// the SQLite writer (`crossgate::store::write_counts`), read from
/// PostgreSQL's own log with `pg_walinspect` over each phase's stretch of it.
enum Writes {
    Sqlite {
        at: WriteCounts,
        sums: [WriteCounts; 3],
    },
    Postgres {
        client: tokio_postgres::Client,
        at: String,
        stretches: [Vec<(String, String)>; 3],
    },
}

impl Meter for Writes {
    async fn start(&mut self) {
        match self {
            Writes::Sqlite { at, .. } => *at = write_counts::totals(),
            Writes::Postgres { client, at, .. } => *at = wal_insert_position(client).await,
        }
    }

    async fn stop(&mut self, phase: usize) {
        match self {
            Writes::Sqlite { at, sums } => {
                sums[phase] = sums[phase] + (write_counts::totals() - *at);
            }
            Writes::Postgres {
                client,
                at,
                stretches,
            } => {
                let end = wal_insert_position(client).await;
                stretches[phase].push((std::mem::take(at), end));
            }
        }
    }
}

impl Writes {
    /// Each phase's writes, summed.
    async fn sums(self) -> Result<[WriteCounts; 3], String> {
        let (client, stretches) = match self {
            Writes::Sqlite { sums, .. } => return Ok(sums),
            Writes::Postgres {
                client, stretches, ..
            } => (client, stretches),
        };
        let mut sums = [WriteCounts::default(); 3];
        for (sum, stretch) in sums.iter_mut().zip(stretches) {
            let (starts, ends): (Vec<String>, Vec<String>) = stretch.into_iter().unzip();
            // Heap records that write a row, B-tree records that add an
            // entry (a posting-list insert is one too); a stretch is cut at
            // what is flushed, which the last commit covered.
            let row = client
                .query_one(
                    "SELECT coalesce(sum(s.count) FILTER (WHERE s.kind
                                 IN ('Heap/INSERT', 'Heap/UPDATE', 'Heap/HOT_UPDATE', 'Heap/DELETE')), 0)::bigint,
                            coalesce(sum(s.count) FILTER (WHERE s.kind
                                 IN ('Btree/INSERT_LEAF', 'Btree/INSERT_POST')), 0)::bigint,
                            coalesce(sum(s.combined_size), 0)::bigint
                     FROM (SELECT w.a::pg_lsn AS a,
                                  least(w.b::pg_lsn, pg_current_wal_flush_lsn()) AS b
                           FROM unnest($1::text[], $2::text[]) AS w (a, b)
                           OFFSET 0) AS w
                     CROSS JOIN LATERAL (
                         SELECT split_part(\"resource_manager/record_type\", '+', 1) AS kind,
                                count, combined_size
                         FROM pg_get_wal_stats(w.a, w.b, true)) AS s
                     WHERE w.a < w.b",
                    &[&starts, &ends],
                )
                .await
                .map_err(|e| db_error(&e))?;
            let count = |i: usize| u64::try_from(row.get::<_, i64>(i)).unwrap_or(0);
            *sum = WriteCounts {
                rows: count(0),
                index_entries: count(1),
                wal_bytes: count(2),
            };
        }
        Ok(sums)
    }
}

/// The server's own words, which `tokio_postgres`' `Display` leaves out.
fn db_error(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map_or_else(|| e.to_string(), |db| db.message().to_owned())
}

async fn wal_insert_position(client: &tokio_postgres::Client) -> String {
    client
        .query_one("SELECT pg_current_wal_insert_lsn()::text", &[])
        .await
        .expect("read the write-ahead log's position")
        .get(0)
}

/// This process's CPU time (user + system), to the microsecond: a phase
/// of one batch takes less than `/proc`'s clock tick.
fn own_cpu() -> f64 {
    // SAFETY: `getrusage` writes the one struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// `messages` accepted, leased and recorded sent, measured by `meter`.
async fn pass(store: &Arc<dyn Store>, messages: usize, meter: &mut impl Meter) {
    meter.start().await;
    let inserting: Vec<_> = (0..AT_ONCE)
        .map(|task| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in (task..messages).step_by(AT_ONCE) {
                    store
                        .insert_message(crate::retention::message(
                            format!("msg_path_{i:06}"),
                            wall_ms(),
                        ))
                        .await
                        .expect("insert a message");
                }
            })
        })
        .collect();
    for task in inserting {
        task.await.expect("insert task");
    }
    meter.stop(ACCEPT).await;
    let mut recorded = 0;
    while recorded < messages {
        meter.start().await;
        let leased = store
            .lease_due(Lease::new(wall_ms(), AT_ONCE, 60_000))
            .await
            .expect("lease");
        meter.stop(LEASE).await;
        assert!(!leased.is_empty(), "every inserted message is due");
        recorded += leased.len();
        meter.start().await;
        for answer in store.record_attempts(sent(leased, wall_ms())).await {
            answer.expect("record an attempt");
        }
        meter.stop(RECORD).await;
    }
}

pub async fn store_path(work: &Path, bench_store: &BenchStore) {
    let store = bench_store.open(work, "store_path").await;
    let wal_before = bench_store.wal_position().await;
    let mut clocks = Clocks::default();
    pass(&store, MESSAGES, &mut clocks).await;
    println!("store path on {}, {MESSAGES} messages:", bench_store.name());
    for (phase, what) in PHASES.iter().enumerate() {
        println!(
            "  {what:<44} {:>6.1} µs wall, {:>6.1} µs CPU per message",
            clocks.wall[phase].as_secs_f64() * 1e6 / MESSAGES as f64,
            clocks.cpu[phase] * 1e6 / MESSAGES as f64
        );
    }
    if let (Some(before), Some(after)) = (wal_before, bench_store.wal_position().await) {
        println!(
            "  write-ahead log written per message: {} bytes",
            (after - before) / MESSAGES as u64
        );
    }
    drop(store);
    match count_writes(work, bench_store).await {
        Ok(sums) => {
            println!("  written per message (a further {COUNTED}, counted):");
            let total = sums
                .iter()
                .fold(WriteCounts::default(), |all, &sum| all + sum);
            let names = PHASES
                .iter()
                .map(|what| what.split(' ').next().unwrap_or(what));
            for (what, sum) in names.chain(["in all"]).zip(sums.into_iter().chain([total])) {
                let per = |n: u64| n as f64 / COUNTED as f64;
                println!(
                    "    {what:<8} {:>5.2} rows, {:>5.2} index entries added, {:>7.0} bytes of write-ahead log",
                    per(sum.rows),
                    per(sum.index_entries),
                    per(sum.wal_bytes)
                );
            }
        }
        Err(why) => println!("  writes per message not counted: {why}"),
    }
}

/// A second, shorter pass on a store of its own, its writes counted: on
/// SQLite the writer's hook costs CPU, which the timed pass is spared.
async fn count_writes(work: &Path, bench_store: &BenchStore) -> Result<[WriteCounts; 3], String> {
    let server = bench_store.server().await;
    if let Some(client) = &server {
        client
            .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
            .await
            .map_err(|e| format!("pg_walinspect is not available ({})", db_error(&e)))?;
    }
    write_counts::set_counting(server.is_none());
    let store = bench_store.open(work, "store_counted").await;
    write_counts::set_counting(false);
    let mut writes = match server {
        None => Writes::Sqlite {
            at: WriteCounts::default(),
            sums: Default::default(),
        },
        Some(client) => Writes::Postgres {
            client,
            at: String::new(),
            stretches: Default::default(),
        },
    };
    pass(&store, COUNTED, &mut writes).await;
    writes.sums().await
}

/// Each leased delivery's attempt, sent at `now` (retention's seeding too).
pub(crate) fn sent(leased: Vec<crossgate::store::LeasedDelivery>, now: i64) -> Vec<AttemptResult> {
    leased
        .into_iter()
        .map(|d| AttemptResult {
            delivery_id: d.delivery_id,
            lease_until: d.lease_until,
            attempt: AttemptRecord {
                number: 1,
                connector: d.connector,
                channel: d.channel,
                started_at: now,
                finished_at: now,
                outcome: Outcome::Sent,
                provider_message_id: Some(format!("SM{}", d.message_id)),
                error_code: None,
                error_message: None,
                retry_at: None,
                node: None,
            },
            next: Next::Sent {
                parts: Vec::new(),
                provider_message_id: format!("SM{}", d.message_id),
                delivered: false,
                escalate_at: None,
            },
            message_id: d.message_id,
        })
        .collect()
}
