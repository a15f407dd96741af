//! Live feed streams: [`STREAMS`] customers each with their feed's stream
//! open (Server-Sent Events, one connection each), then one inbox message
//! sent to each over HTTP. Figures: from each send's `202` to its item
//! arriving on its customer's stream (p50/p99), and the gateway's memory
//! per open stream (its resident set before and with the streams open).

use crate::{CONCURRENCY, Store, at_concurrency, percentile, spawn_gateway, status_kib};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const STREAMS: usize = 2_000;
const SECRET: &str = "the bench's own inbox secret";

fn token(customer: &str) -> String {
    crossgate_tests::feed_token(SECRET, customer, crossgate::clock::wall_ms() + 3_600_000)
}

pub async fn streams(work: &Path, store: &Store) {
    let database = store.url(work, "streams").await;
    let extra = format!(
        "[routing]\ndefault = [\"inbox\"]\n\
         [categories.transactional]\nconsent = \"opt-out\"\n\
         [inbox]\nsecret = \"{SECRET}\"\nmax_streams = {}\n",
        STREAMS * 2
    );
    let (mut child, base, client) = spawn_gateway(work, &database, &extra).await;
    let customers: Vec<String> = (0..STREAMS).map(|i| format!("s{i}")).collect();
    {
        let (base, client, customers) = (base.clone(), client.clone(), customers.clone());
        at_concurrency(STREAMS, 201, move |i| {
            client
                .put(format!("{base}/v1/customers/{}", customers[i]))
                .json(&serde_json::json!({"locale": "en"}))
        })
        .await;
    }
    let before = status_kib(child.id(), "VmRSS");

    // One connection per stream, as devices have.
    let arrived: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let (opened, mut all_open) = tokio::sync::mpsc::channel::<()>(STREAMS);
    let mut readers = Vec::with_capacity(STREAMS);
    let streaming = reqwest::Client::new();
    for customer in &customers {
        let url = format!("{base}/v1/inbox/stream?token={}", token(customer));
        let (arrived, opened) = (arrived.clone(), opened.clone());
        let (customer, streaming) = (customer.clone(), streaming.clone());
        readers.push(tokio::spawn(async move {
            let mut stream = streaming.get(url).send().await.expect("open a stream");
            assert_eq!(stream.status(), 200);
            let mut seen = String::new();
            let mut announced = false;
            while let Ok(Some(chunk)) = stream.chunk().await {
                seen.push_str(&String::from_utf8_lossy(&chunk));
                if !announced && seen.contains("event: counts") {
                    announced = true;
                    let _ = opened.send(()).await;
                }
                if seen.contains("event: item") {
                    arrived.lock().unwrap().insert(customer, Instant::now());
                    return;
                }
            }
        }));
    }
    let opening = Instant::now();
    for _ in 0..STREAMS {
        tokio::time::timeout(Duration::from_secs(120), all_open.recv())
            .await
            .expect("every stream opens");
    }
    let open_secs = opening.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let with_streams = status_kib(child.id(), "VmRSS");

    // One message each; accept times as the platform sees them.
    let accepted: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut senders = Vec::new();
    for _ in 0..CONCURRENCY {
        let (next, accepted, customers) = (next.clone(), accepted.clone(), customers.clone());
        let (client, base) = (client.clone(), base.clone());
        senders.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= STREAMS {
                    return;
                }
                let response = client
                    .post(format!("{base}/v1/messages"))
                    .json(&serde_json::json!({"customer_id": customers[i], "category": "transactional",
                                              "content": {"subject": "Hello", "text": "Your order shipped"}}))
                    .send()
                    .await
                    .expect("send");
                let at = Instant::now();
                assert_eq!(response.status().as_u16(), 202);
                accepted.lock().unwrap().insert(customers[i].clone(), at);
            }
        }));
    }
    for sender in senders {
        sender.await.unwrap();
    }
    for reader in readers {
        tokio::time::timeout(Duration::from_secs(120), reader)
            .await
            .expect("every item arrives")
            .unwrap();
    }
    let (accepted, arrived) = (accepted.lock().unwrap(), arrived.lock().unwrap());
    let mut latencies: Vec<Duration> = customers
        .iter()
        .map(|c| arrived[c].saturating_duration_since(accepted[c]))
        .collect();
    latencies.sort();
    println!(
        "{}: {STREAMS} live feed streams opened in {open_secs:.1} s; accept to item on the stream   p50 {:>7.1} ms   p99 {:>7.1} ms",
        store.name(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );
    if let (Some(before), Some(with)) = (before, with_streams) {
        println!(
            "{}: gateway memory per open stream   {:.1} KiB   (RSS {} MiB without, {} MiB with {STREAMS})",
            store.name(),
            with.saturating_sub(before) as f64 / STREAMS as f64,
            before / 1024,
            with / 1024,
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}
