//! Finding messages in a store of [`MESSAGES`]: a customer's newest page,
//! a day's newest page, and the page after it, as `GET /v1/messages` asks
//! the store. In process, on the store alone.

use crate::{Store as BenchStore, percentile};
use crossgate::clock::wall_ms;
use crossgate::message::{Channel, Content};
use crossgate::store::reports::ReportKey;
use crossgate::store::search::MessageQuery;
use crossgate::store::{NewDelivery, NewMessage};
use std::path::Path;
use std::time::{Duration, Instant};

const MESSAGES: usize = 1_000_000;
const CUSTOMERS: usize = 20_000;
/// Messages stored per write while seeding.
const SEED_PAGE: usize = 2_000;
const SEARCHES: usize = 500;
const DAY_MS: i64 = 86_400_000;
/// The seeded messages spread over this many days back from now.
const DAYS: i64 = 60;

fn message(i: usize, now: i64) -> NewMessage {
    let customer = format!("c{}", i % CUSTOMERS);
    let created_at = now - (i as i64 * DAYS * DAY_MS / MESSAGES as i64);
    NewMessage {
        id: format!("msg_{i:08}"),
        channel: Channel::Sms,
        recipient: format!("+3161{:07}", i % CUSTOMERS),
        scope: format!("customer:{customer}"),
        content: Content {
            text: "Your order shipped".into(),
            ..Content::default()
        },
        created_at,
        send_at: None,
        expires_at: None,
        cancel_key: None,
        dedup: None,
        idempotency: None,
        callback_url: None,
        customer_id: Some(customer),
        category: Some("transactional".into()),
        plan: None,
        template: None,
        campaign: None,
        region: None,
        // Stored as decided, with no delivery: the queue stays empty.
        suppressed: Some("bench".into()),
        deliveries: vec![NewDelivery {
            channel: Channel::Sms,
            connector: "twilio".into(),
            address: "+31612345678".into(),
            content: None,
            cost: None,
            escalate_after: None,
            ends_on_delivery: false,
        }],
    }
}

pub async fn search(work: &Path, bench_store: &BenchStore) {
    let store = bench_store.open(work, "search").await;
    let now = wall_ms();
    let seeding = Instant::now();
    for page in 0..MESSAGES / SEED_PAGE {
        let batch = (page * SEED_PAGE..(page + 1) * SEED_PAGE)
            .map(|i| message(i, now))
            .collect();
        for inserted in store.insert_messages(batch).await.expect("seed") {
            assert_eq!(inserted, crossgate::store::Inserted::New);
        }
    }
    let seeded = seeding.elapsed();
    let timed = async |query: &dyn Fn(usize) -> MessageQuery| {
        let mut samples = Vec::with_capacity(SEARCHES);
        for i in 0..SEARCHES {
            let q = query(i);
            let started = Instant::now();
            let found = store.search_messages(q).await.expect("search");
            samples.push(started.elapsed());
            assert!(!found.is_empty(), "every search finds a page");
        }
        samples.sort();
        samples
    };
    let by_customer = timed(&|i| MessageQuery {
        customer_id: Some(format!("c{}", (i * 7_919) % CUSTOMERS)),
        from: now - 400 * DAY_MS,
        to: now + 1,
        limit: 50,
        ..MessageQuery::default()
    })
    .await;
    let by_day = timed(&|i| {
        let to = now - (i as i64 % DAYS) * DAY_MS;
        MessageQuery {
            from: to - DAY_MS,
            to,
            limit: 50,
            ..MessageQuery::default()
        }
    })
    .await;
    let next_page = timed(&|i| {
        let to = now - (i as i64 % DAYS) * DAY_MS;
        MessageQuery {
            from: to - 31 * DAY_MS,
            to,
            before: Some((to - DAY_MS / 2, "msg_99999999".into())),
            limit: 50,
            ..MessageQuery::default()
        }
    })
    .await;
    let line = |name: &str, samples: &[Duration]| {
        println!(
            "  {name:<38} p50 {:>7.2} ms   p99 {:>7.2} ms",
            percentile(samples, 0.5).as_secs_f64() * 1e3,
            percentile(samples, 0.99).as_secs_f64() * 1e3,
        );
    };
    println!(
        "message search on {}, {MESSAGES} messages of {CUSTOMERS} customers (seeded in {:.0} s), pages of 50:",
        bench_store.name(),
        seeded.as_secs_f64()
    );
    line("a customer's newest", &by_customer);
    line("a day's newest", &by_day);
    line("a page further on (cursor), 31 days", &next_page);
    // The console's report page: by channel over a month, first with no
    // day summed yet (each is counted and kept), then over its default
    // week and a month again, from the kept days.
    let report = async |days: i64| {
        let started = Instant::now();
        store
            .channel_report(now - days * DAY_MS, now + 1, vec![ReportKey::Channel], now)
            .await
            .expect("report");
        started.elapsed()
    };
    let first = report(30).await;
    line("the channel report, 30 days, first", &[first]);
    for days in [7, 30] {
        let mut samples = Vec::new();
        for _ in 0..5 {
            samples.push(report(days).await);
        }
        samples.sort();
        line(
            &format!("the channel report, last {days} days (n=5)"),
            &samples,
        );
    }
}
