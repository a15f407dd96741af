//! The store's share of one message, in process: accepting it (an insert,
//! 64 at once as the API's requests arrive), leasing its delivery and
//! recording its attempt (in batches of 64, as the dispatcher and its
//! recorder do). CPU time is this process's (on SQLite that is all of the
//! store's work, its writer thread included; on PostgreSQL the server's is
//! not, and the write-ahead log it wrote per message is printed instead).

use crate::Store as BenchStore;
use crossgate::clock::wall_ms;
use crossgate::config::Database;
use crossgate::message::{Channel, Content, Outcome};
use crossgate::store::{AttemptRecord, AttemptResult, Lease, NewDelivery, NewMessage, Next};
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
    let url = bench_store.url(work, "store_path").await;
    let database = match url.strip_prefix("sqlite://") {
        Some(path) => Database::Sqlite(path.into()),
        None => Database::Postgres(url),
    };
    let store = crossgate::store::open(&database, 16, "bench", wall_ms())
        .await
        .expect("open the bench store");
    let wal_before = bench_store.wal_position().await;

    let (start, cpu) = (Instant::now(), own_cpu());
    let inserting: Vec<_> = (0..AT_ONCE)
        .map(|task| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in (task..MESSAGES).step_by(AT_ONCE) {
                    store
                        .insert_message(message(i))
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
        for answer in store.record_attempts(sent(leased)).await {
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

fn sent(leased: Vec<crossgate::store::LeasedDelivery>) -> Vec<AttemptResult> {
    let now = wall_ms();
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

fn message(i: usize) -> NewMessage {
    NewMessage {
        id: format!("msg_path_{i:06}"),
        channel: Channel::Sms,
        recipient: "+31612345678".into(),
        scope: "phone:+31612345678".into(),
        content: Content {
            text: "benchmark message".into(),
            ..Content::default()
        },
        created_at: wall_ms(),
        send_at: None,
        expires_at: None,
        cancel_key: None,
        dedup: None,
        idempotency: None,
        callback_url: None,
        customer_id: None,
        category: Some("transactional".into()),
        plan: None,
        template: None,
        campaign: None,
        region: None,
        suppressed: None,
        deliveries: vec![NewDelivery {
            channel: Channel::Sms,
            connector: "twilio".into(),
            address: "+31612345678".into(),
            content: None,
            cost: Some(0.0079),
            escalate_after: None,
            ends_on_delivery: false,
        }],
    }
}
