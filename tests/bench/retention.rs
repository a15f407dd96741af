//! What purging history past `[retention]` costs: a backlog of sent
//! messages (each with its delivery, attempt and status history) purged
//! the way the gateway does it, and how long a message insert takes
//! meanwhile against the same store idle. In process, on the store alone.

use crate::{Store as BenchStore, percentile};
use crossgate::clock::wall_ms;
use crossgate::config::RetentionConfig;
use crossgate::message::{Channel, Content};
use crossgate::store::{Lease, NewDelivery, NewMessage, Store};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Sent messages older than retention when the purge starts.
const HISTORY: usize = 20_000;
/// Messages stored (then leased and recorded sent) per write while seeding.
const SEED_PAGE: usize = 500;
/// A message insert every this long, idle and during the purge.
const PROBE_EVERY: Duration = Duration::from_millis(5);
const IDLE_PROBES: usize = 400;
const DAY_MS: i64 = 86_400_000;

pub async fn retention(work: &Path, bench_store: &BenchStore) {
    let store = bench_store.open(work, "retention").await;
    let retention = RetentionConfig::default();
    let long_ago = wall_ms() - retention.messages - 30 * DAY_MS;
    seed(&*store, long_ago).await;

    let idle = probe(&store, "idle", IDLE_PROBES, &|| false).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let purging = {
        let store = store.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let purged =
                crossgate::retention::purge_history(&*store, &retention, wall_ms(), &stopped)
                    .await
                    .expect("purge");
            (purged, start.elapsed())
        })
    };
    let during = probe(&store, "during", usize::MAX, &|| purging.is_finished()).await;
    let (purged, took) = purging.await.expect("purge task");
    drop(stop);
    assert_eq!(purged.messages, HISTORY, "the whole backlog is purged");

    println!(
        "retention on {}, {HISTORY} sent messages past retention:",
        bench_store.name()
    );
    println!(
        "  purged in {:>6.2} s        {:>8.0} messages/s (500 per write, with their deliveries, attempts, history)",
        took.as_secs_f64(),
        HISTORY as f64 / took.as_secs_f64()
    );
    let (p50, p99) = quantiles(idle);
    let (d50, d99) = quantiles(during);
    println!(
        "  a message insert meanwhile p50 {:>6.2} ms  p99 {:>6.2} ms  (idle: p50 {:.2} ms, p99 {:.2} ms)",
        ms(d50),
        ms(d99),
        ms(p50),
        ms(p99)
    );
}

/// `HISTORY` messages created at `at`, each leased and recorded sent.
async fn seed(store: &dyn Store, at: i64) {
    for page in 0..HISTORY / SEED_PAGE {
        let messages = (0..SEED_PAGE)
            .map(|i| message(format!("old-{page}-{i}"), at))
            .collect();
        store.insert_messages(messages).await.expect("seed");
        let leased = store
            .lease_due(Lease::new(wall_ms(), SEED_PAGE, 60_000))
            .await
            .expect("lease");
        let sent = crate::store_path::sent(leased, at);
        for recorded in store.record_attempts(sent).await {
            recorded.expect("record");
        }
    }
}

/// Insert a new message every `PROBE_EVERY`, `count` times or until
/// `done`; each insert's latency.
async fn probe(
    store: &Arc<dyn Store>,
    label: &str,
    count: usize,
    done: &dyn Fn() -> bool,
) -> Vec<Duration> {
    let mut latencies = Vec::new();
    let mut tick = tokio::time::interval(PROBE_EVERY);
    for i in 0..count {
        if done() {
            break;
        }
        tick.tick().await;
        let id = format!("probe-{label}-{i}");
        let start = Instant::now();
        store
            .insert_message(message(id, wall_ms()))
            .await
            .expect("probe insert");
        latencies.push(start.elapsed());
    }
    latencies
}

/// A sent-to-be SMS of one delivery (the store path's messages too).
pub(crate) fn message(id: String, created_at: i64) -> NewMessage {
    NewMessage {
        recipient: "+31612345678".into(),
        scope: "phone:+31612345678".into(),
        content: Content {
            text: format!("history {id}"),
            ..Content::default()
        },
        id,
        channel: Channel::Sms,
        created_at,
        send_at: None,
        expires_at: None,
        cancel_key: None,
        dedup: None,
        idempotency: None,
        callback_url: None,
        customer_id: None,
        category: None,
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
            cost: Some(0.07),
            escalate_after: None,
            ends_on_delivery: false,
        }],
    }
}

fn quantiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    (percentile(&samples, 0.5), percentile(&samples, 0.99))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
