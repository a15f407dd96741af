//! The store's share of one message, in process: accepting it (an insert,
//! 64 at once as the API's requests arrive), leasing its delivery and
//! recording its attempt (in batches of 64, as the dispatcher and its
//! recorder do). CPU time is this process's (on SQLite that is all of the
//! store's work, its writer thread included; on PostgreSQL the server's is
//! not, and the write-ahead log it wrote per message is printed instead).

use crate::Store as BenchStore;
use crossgate::clock::wall_ms;
use crossgate::message::Outcome;
use crossgate::store::{AttemptRecord, AttemptResult, Lease, Next};
use std::path::Path;
use std::time::{Duration, Instant};

const MESSAGES: usize = 20_000;
const AT_ONCE: usize = 64;

/// Wall and CPU time of one phase, per message.
struct Spent {
    wall: Duration,
    cpu: f64,
}

impl Spent {
    fn print(&self, what: &str) {
        println!(
            "  {what:<44} {:>6.1} µs wall, {:>6.1} µs CPU per message",
            self.wall.as_secs_f64() * 1e6 / MESSAGES as f64,
            self.cpu * 1e6 / MESSAGES as f64
        );
    }
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

pub async fn store_path(work: &Path, bench_store: &BenchStore) {
    let store = bench_store.open(work, "store_path").await;
    let wal_before = bench_store.wal_position().await;

    let (start, cpu) = (Instant::now(), own_cpu());
    let inserting: Vec<_> = (0..AT_ONCE)
        .map(|task| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in (task..MESSAGES).step_by(AT_ONCE) {
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
    let insert = Spent {
        wall: start.elapsed(),
        cpu: own_cpu() - cpu,
    };

    let (mut lease, mut record) = (
        Spent {
            wall: Duration::ZERO,
            cpu: 0.0,
        },
        Spent {
            wall: Duration::ZERO,
            cpu: 0.0,
        },
    );
    let mut recorded = 0;
    while recorded < MESSAGES {
        let (start, cpu) = (Instant::now(), own_cpu());
        let leased = store
            .lease_due(Lease::new(wall_ms(), AT_ONCE, 60_000))
            .await
            .expect("lease");
        lease.wall += start.elapsed();
        lease.cpu += own_cpu() - cpu;
        assert!(!leased.is_empty(), "every inserted message is due");
        recorded += leased.len();
        let (start, cpu) = (Instant::now(), own_cpu());
        for answer in store.record_attempts(sent(leased, wall_ms())).await {
            answer.expect("record an attempt");
        }
        record.wall += start.elapsed();
        record.cpu += own_cpu() - cpu;
    }
    println!("store path on {}, {MESSAGES} messages:", bench_store.name());
    insert.print("accept (insert, 64 at once)");
    lease.print("lease (batches of 64)");
    record.print("record a sent attempt (batches of 64)");
    if let (Some(before), Some(after)) = (wal_before, bench_store.wal_position().await) {
        println!(
            "  write-ahead log written per message: {} bytes",
            (after - before) / MESSAGES as u64
        );
    }
    drop(store);
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
