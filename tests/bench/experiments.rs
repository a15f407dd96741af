//! The experiment report (`GET /v1/reports/experiments`' store query) on
//! [`CUSTOMERS`] customers dealt into two variants and a holdout, each
//! with their message, a tenth of them converting. In process, on the
//! store alone.

use crate::{Store as BenchStore, percentile};
use crossgate::clock::wall_ms;
use crossgate::message::{Channel, Content};
use crossgate::store::journeys::ArmRecord;
use crossgate::store::reports::NewConversion;
use crossgate::store::{NewDelivery, NewMessage};
use futures::stream::{self, StreamExt as _};
use std::path::Path;
use std::time::Instant;

const CUSTOMERS: usize = 100_000;
/// Messages stored per write while seeding.
const SEED_PAGE: usize = 2_000;
/// Arms and conversions written at once while seeding.
const SEED_CONCURRENCY: usize = 64;
const REPORTS: usize = 5;
const WINDOW_MS: i64 = 7 * 86_400_000;

fn arm(i: usize) -> &'static str {
    match i % 10 {
        0 => "holdout",
        1..=5 => "a",
        _ => "b",
    }
}

fn message(i: usize, now: i64) -> NewMessage {
    NewMessage {
        id: format!("msg_x{i:07}"),
        channel: Channel::Sms,
        recipient: format!("+3163{i:07}"),
        scope: format!("customer:x{i}"),
        content: Content {
            text: "10% off".into(),
            ..Content::default()
        },
        created_at: now,
        send_at: None,
        expires_at: None,
        cancel_key: None,
        dedup: None,
        idempotency: None,
        callback_url: None,
        customer_id: Some(format!("x{i}")),
        category: Some("offers".into()),
        plan: None,
        template: None,
        campaign: Some("journey:promo".into()),
        region: None,
        // Stored as decided, with no delivery: the queue stays empty.
        suppressed: Some("bench".into()),
        deliveries: vec![NewDelivery {
            channel: Channel::Sms,
            connector: "twilio".into(),
            address: format!("+3163{i:07}"),
            content: None,
            cost: Some(0.07),
            escalate_after: None,
            ends_on_delivery: false,
        }],
    }
}

pub async fn experiments(work: &Path, bench_store: &BenchStore) {
    let store = bench_store.open(work, "experiments").await;
    let now = wall_ms();
    let seeding = Instant::now();
    let sent: Vec<usize> = (0..CUSTOMERS).filter(|i| arm(*i) != "holdout").collect();
    for page in sent.chunks(SEED_PAGE) {
        let batch = page.iter().map(|i| message(*i, now)).collect();
        store.insert_messages(batch).await.expect("seed messages");
    }
    stream::iter(0..CUSTOMERS)
        .map(|i| {
            let store = store.clone();
            async move {
                store
                    .record_arm(ArmRecord {
                        journey: "promo".into(),
                        step: "offer".into(),
                        customer_id: format!("x{i}"),
                        arm: arm(i).into(),
                        run_id: format!("run_x{i}"),
                        message_id: (arm(i) != "holdout").then(|| format!("msg_x{i:07}")),
                        assigned_at: now,
                    })
                    .await
                    .expect("seed an arm");
                if i % 10 == 3 || i % 20 == 0 {
                    store
                        .record_conversion(NewConversion {
                            event_id: format!("evt_x{i}"),
                            customer_id: format!("x{i}"),
                            name: "purchase".into(),
                            value: Some(20.0),
                            currency: Some("EUR".into()),
                            occurred_at: now + 3_600_000,
                            window_ms: WINDOW_MS,
                        })
                        .await
                        .expect("seed a conversion");
                }
            }
        })
        .buffer_unordered(SEED_CONCURRENCY)
        .collect::<()>()
        .await;
    let seeded = seeding.elapsed();
    let mut samples = Vec::with_capacity(REPORTS);
    for _ in 0..REPORTS {
        let started = Instant::now();
        let totals = store
            .arm_totals("promo", "offer", WINDOW_MS)
            .await
            .expect("report");
        samples.push(started.elapsed());
        assert_eq!(totals.len(), 3, "three arms");
    }
    samples.sort();
    println!(
        "the experiment report on {}, {CUSTOMERS} customers in 3 arms (seeded in {:.0} s):",
        bench_store.name(),
        seeded.as_secs_f64()
    );
    println!(
        "  {:<38} p50 {:>7.2} ms   max {:>7.2} ms (n={REPORTS})",
        "arms counted with their conversions",
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        percentile(&samples, 1.0).as_secs_f64() * 1e3,
    );
}
