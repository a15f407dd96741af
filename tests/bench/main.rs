//! `make bench`: the cost of the sandbox and the gateway's throughput,
//! printed as figures. Nothing here asserts a timing.
//!
//! 0. A fixed reference workload (SHA-256 of 64 KiB): the machine's speed
//!    drifts through the day by a third or more, so the main figures are
//!    also printed in units of it, which runs from different hours can
//!    compare.
//! 1. One sandboxed instantiate+deliver, with no I/O (test-faults `ok`) and
//!    through the Twilio connector to the simulator, beside the bare
//!    provider round trip from the same host client, and beside the same
//!    Twilio request made by a native Rust connector (`native:twilio`, built
//!    with the `native-baseline` feature for the bench only); each also with
//!    instances kept between calls (`calls_per_instance`).
//! 2. What templates and SMS shaping add to an accept, in process: one
//!    channel rendered from a template, SMS segments counted, an
//!    unsubscribe link signed.
//! 3. End to end: the `crossgate` binary as a child process, messages
//!    posted over HTTP at fixed concurrency until all reach the simulator;
//!    accepted/s, delivered/s, accept latency and the gateway's peak RSS;
//!    once more through the native connector, for the WASM/native ratio,
//!    and once with kept instances.
//!    Then journeys: events accepted/s, and steps executed/s of a
//!    two-message journey on 10,000 customers, and events folded into open
//!    digests per second. Then a broadcast to 100,000
//!    customers: members planned/s and sent/s, and the accept latency of
//!    transactional sends at a steady rate before and during the fan-out.
//!    Then purging a backlog of history past `[retention]`, and a message
//!    insert's latency meanwhile. Then 2,000 live feed streams: from a
//!    send's accept to its item on the customer's stream, and the memory
//!    each open stream costs the gateway. Then message search in a store
//!    of 1,000,000 messages: a customer's newest page, a day's, and a page
//!    further on. Last, the experiment report on 100,000 customers.
//!    Before those, per store: the store's share of a message in process (accept,
//!    lease, record; `store_path`).
//!    Once on SQLite, and once on PostgreSQL when `CROSSGATE_TEST_POSTGRES_URL`
//!    names a server (`make bench` starts one on loopback).

mod experiments;
mod retention;
mod search;
mod store_path;
mod streams;

use base64::Engine as _;
use crossgate::config;
use crossgate::message::{Channel, Content};
use crossgate::plugins::{Outgoing, PluginHost};
use crossgate_tests::{
    DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, ProviderSim, default_twilio, fault_connector,
    twilio_connector, with_calls_per_instance,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const REFERENCE_RUNS: usize = 2_000;
const SANDBOX_CALLS: usize = 5_000;
const ROUND_TRIPS: usize = 2_000;
const E2E_MESSAGES: usize = 20_000;
const CONCURRENCY: usize = 64;
const JOURNEY_CUSTOMERS: usize = 10_000;
/// Customers whose comments the digest part folds, and comments each.
const DIGEST_CUSTOMERS: usize = 1_000;
const DIGEST_EVENTS_EACH: usize = 20;
const BROADCAST_CUSTOMERS: usize = 100_000;
/// Transactional sends per second while a broadcast fans out.
const TRANSACTIONAL_PER_SEC: u64 = 200;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(name: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let median = percentile(&samples, 0.5);
    println!(
        "{name:<48} median {:>9.1} µs   p99 {:>9.1} µs   (n={})",
        median.as_secs_f64() * 1e6,
        percentile(&samples, 0.99).as_secs_f64() * 1e6,
        samples.len()
    );
    median
}

/// The machine's speed at the time of the run: the median time of one
/// fixed piece of CPU work, which figures are also given in.
#[derive(Clone, Copy)]
struct Reference {
    micros: f64,
}

impl Reference {
    /// SHA-256 over the same 64 KiB, single-threaded, as a median of many.
    fn measure() -> Reference {
        use sha2::Digest as _;
        let buffer: Vec<u8> = (0..64 * 1024).map(|i| (i * 31 % 251) as u8).collect();
        let mut samples = Vec::with_capacity(REFERENCE_RUNS);
        for _ in 0..REFERENCE_RUNS {
            let start = Instant::now();
            std::hint::black_box(sha2::Sha256::digest(std::hint::black_box(&buffer)));
            samples.push(start.elapsed());
        }
        let median = summary("reference: SHA-256 of 64 KiB (= 1 R)", samples);
        Reference {
            micros: median.as_secs_f64() * 1e6,
        }
    }

    /// A duration in microseconds, in reference units.
    fn of(&self, micros: f64) -> String {
        format!("{:.2} R", micros / self.micros)
    }

    /// A rate per second, as how many fit in one reference unit's time ×1000
    /// (so a rate twice as high reads twice as high, whatever the hour).
    fn rate(&self, per_sec: f64) -> String {
        format!("{:.1} per 1000 R", per_sec * self.micros / 1e3)
    }
}

/// The text every benchmark message carries.
fn content() -> Content {
    Content {
        text: "benchmark message".into(),
        ..Content::default()
    }
}

/// Attempt `i` of the benchmark, as the dispatcher would hand it over.
fn message<'a>(id: &'a str, content: &'a Content) -> Outgoing<'a> {
    Outgoing {
        message_id: id,
        attempt: 1,
        channel: Channel::Sms,
        to: "+31612345678",
        content,
        sender: None,
    }
}

/// The mean cost of `f` over `n` calls: these take microseconds or less,
/// below what one clock reading per call can resolve.
fn per_call(name: &str, n: usize, mut f: impl FnMut()) {
    for _ in 0..n / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    let mean = start.elapsed() / n as u32;
    println!(
        "{name:<48} mean {:>9.2} µs   (n={n})",
        mean.as_secs_f64() * 1e6
    );
}

/// Every region's example mobile number from the numbering plan the gateway
/// validates against, in E.164.
fn world_mobile_numbers() -> Vec<String> {
    let database = &phonenumber::metadata::DATABASE;
    let mut numbers = Vec::new();
    for code in 1..1000u16 {
        // Non-geographic codes (+800, +882) have no region of their own.
        for region in database.region(&code).unwrap_or_default() {
            if region == "001" {
                continue;
            }
            let example = database
                .by_id(region)
                .and_then(|meta| meta.descriptors().mobile())
                .and_then(|mobile| mobile.example());
            if let Some(national) = example {
                numbers.push(format!("+{code}{national}"));
            }
        }
    }
    numbers
}

/// What a connector's circuit costs each delivery: the admission before
/// the call and the count after it (closed, the usual case), and the
/// planner's read of the open circuits, with six connectors counted.
fn circuits() {
    use crossgate::health::Health;
    let health = Health::new(crossgate::config::HealthConfig::default(), "bench");
    let names = ["twilio", "vonage", "sendgrid", "fcm", "webpush", "whatsapp"];
    let mut i = 0usize;
    per_call("circuit: admit + record one attempt", 200_000, || {
        let name = names[i % names.len()];
        i += 1;
        let admitted = health.admit(name);
        health.record(name, Some(!i.is_multiple_of(10)), false, (i / 1000) as i64);
        std::hint::black_box(admitted);
    });
    per_call("circuit: the open connectors, for a plan", 200_000, || {
        std::hint::black_box(health.unhealthy());
    });
}

/// The accept path's new per-send work, with the shipped templates.
fn templates_and_sms() {
    use crossgate::locale;
    use crossgate::templates::Extras;
    let categories = ["transactional", "marketing"].map(String::from).into();
    let templates = crossgate::templates::load(&repo_root().join("config/templates"), &categories)
        .expect("the shipped templates load");
    let data = serde_json::json!({"name": "Ada", "order_id": "A-1001", "total": "€42.50"});
    let data = data.as_object().unwrap();
    let chain = locale::chain(Some("nl-BE"), "en");
    let extras = Extras::default();
    let render = |channel| {
        templates
            .render("order_confirmation", channel, &chain, data, &extras)
            .unwrap()
    };
    per_call("template: SMS variant (nl-BE -> nl)", 20_000, || {
        std::hint::black_box(render(Channel::Sms));
    });
    per_call("template: email, text made from its HTML", 5_000, || {
        std::hint::black_box(render(Channel::Email));
    });
    let text = "Hoi Ada, bestelling A-1001 (€42.50) is bevestigd. ".repeat(3);
    per_call("SMS segments, 153 GSM-7 characters", 100_000, || {
        std::hint::black_box(crossgate::sms::segments(std::hint::black_box(&text)));
    });
    let typed = "Don\u{2019}t miss it \u{2013} \u{201C}20% off\u{201D}".repeat(4);
    per_call("SMS smart encoding, 128 characters", 100_000, || {
        std::hint::black_box(crossgate::sms::smart_encode(std::hint::black_box(&typed)));
    });
    per_call(
        "phone number checked and normalised (E.164)",
        50_000,
        || {
            std::hint::black_box(crossgate::phone::e164(std::hint::black_box("+31612345678")).ok());
        },
    );
    // A gateway's traffic goes to many countries: every region's example
    // mobile number in turn, so no country's patterns stay warm by luck.
    let numbers = world_mobile_numbers();
    let before = status_kib(std::process::id(), "VmRSS");
    let mut next = numbers.iter().cycle();
    per_call(
        &format!("phone numbers of {} regions in turn (E.164)", numbers.len()),
        50_000,
        || {
            let number = next.next().expect("cycle");
            std::hint::black_box(crossgate::phone::e164(number).ok());
        },
    );
    if let (Some(before), Some(after)) = (before, status_kib(std::process::id(), "VmRSS")) {
        println!(
            "  their numbering plans compiled: {:.1} MiB resident",
            after.saturating_sub(before) as f64 / 1024.0
        );
    }
    let who = crossgate::customer::unsubscribe::Unsubscribe {
        customer_id: "customer-42".into(),
        category: "marketing".into(),
        expires_at: 1_900_000_000_000,
    };
    per_call("unsubscribe link signed", 100_000, || {
        std::hint::black_box(crossgate::customer::unsubscribe::sign(
            b"a secret of some length",
            &who,
        ));
    });
}

async fn sandbox(sim_url: &str, work: &Path, reference: Reference) {
    // `CROSSGATE_BENCH_CALLS=<n>` makes the loops longer, for a profiler.
    let round_trips = std::env::var("CROSSGATE_BENCH_CALLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(ROUND_TRIPS);
    let toml = format!(
        r#"
[plugins]
dir = "{}"
cache_dir = "{}"
{}{}{}{}{}"#,
        repo_root()
            .join("plugins/target/wasm32-wasip2/release")
            .display(),
        work.join("cache").display(),
        fault_connector("noop", "ok", ""),
        kept(&fault_connector("noop_kept", "ok", "")),
        default_twilio(sim_url),
        kept(&twilio_connector(
            "twilio_kept",
            sim_url,
            DEFAULT_ACCOUNT_SID,
            DEFAULT_AUTH_TOKEN
        )),
        native_twilio(sim_url, "twilio_native"),
    );
    let config = config::parse("bench.toml", &toml, &|_| None).expect("bench config");
    let host = PluginHost::load(&config).await.expect("plugins load");
    let text = content();

    for i in 0..200 {
        let _ = host
            .deliver("noop", message(&format!("msg_bench_{i}"), &text))
            .await;
        for connector in ["noop_kept", "twilio", "twilio_kept", "twilio_native"] {
            let _ = host
                .deliver(connector, message(&format!("msg_bench_{i}"), &text))
                .await;
        }
    }
    #[cfg(feature = "native-baseline")]
    phases(&host, &text).await;
    let noop = timed_deliveries(&host, "noop", 0, SANDBOX_CALLS, &text).await;
    summary("instantiate+deliver, no I/O", noop);
    let noop_kept = timed_deliveries(&host, "noop_kept", 0, SANDBOX_CALLS, &text).await;
    summary("deliver, no I/O, calls_per_instance = 1000", noop_kept);

    let bare_request = BareRequest::new(sim_url);
    let host = Arc::new(host);
    let [twilio, twilio_kept, native, bare_samples] = four_ways(
        host.clone(),
        text.clone(),
        bare_request.clone(),
        round_trips,
    )
    .await;
    let with_plugin = summary("instantiate+deliver via Twilio plugin", twilio);
    let with_kept = summary("Twilio plugin, calls_per_instance = 1000", twilio_kept);
    let native = summary("the same request, native Rust connector", native);
    let bare = summary("bare provider round trip (same client)", bare_samples);
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{:<48} median {:>9.1} µs",
        "sandbox cost beside the round trip",
        micros(with_plugin) - micros(bare)
    );
    println!(
        "{:<48} {:>6.2}x   (target <= 1.25x: {})",
        "WASM call / bare round trip",
        micros(with_plugin) / micros(bare),
        met(micros(with_plugin) <= 1.25 * micros(bare))
    );
    println!(
        "{:<48} {:>6.2}x   (target <= 1.25x: {})",
        "WASM call, kept instances / bare round trip",
        micros(with_kept) / micros(bare),
        met(micros(with_kept) <= 1.25 * micros(bare))
    );
    println!(
        "{:<48} {:>6.2}x",
        "WASM call / native connector call",
        micros(with_plugin) / micros(native)
    );
    println!(
        "{:<48} WASM call {}, native {}, bare {}",
        "in reference units",
        reference.of(micros(with_plugin)),
        reference.of(micros(native)),
        reference.of(micros(bare))
    );

    // The same again from a runtime worker, where the gateway's deliveries
    // run: the provider client's connection task is then woken on the same
    // thread instead of through another one, which shortens the bare round
    // trip far more than a sandboxed call (2026-12-07's sandbox note).
    let on_worker = tokio::spawn(four_ways(host, text, bare_request, round_trips / 2));
    let [twilio, twilio_kept, native, bare] = on_worker.await.expect("calls on a worker");
    let [twilio, twilio_kept, native, bare] =
        [twilio, twilio_kept, native, bare].map(|mut calls| {
            calls.sort();
            percentile(&calls, 0.5)
        });
    println!(
        "{:<48} fresh {:.1}, kept {:.1}, native {:.1}, bare {:.1} µs: {:.2}x and {:.2}x",
        "the same four from a runtime worker (medians)",
        micros(twilio),
        micros(twilio_kept),
        micros(native),
        micros(bare),
        micros(twilio) / micros(bare),
        micros(twilio_kept) / micros(bare),
    );
}

/// The bare provider request the sandboxed calls are compared with: the
/// Twilio connector's, sent by the gateway's own client outside any sandbox.
#[derive(Clone)]
struct BareRequest {
    client: crossgate::outbound::OutboundClient,
    url: String,
    auth: String,
}

impl BareRequest {
    fn new(sim_url: &str) -> BareRequest {
        BareRequest {
            client: crossgate::outbound::OutboundClient::new(),
            url: format!("{sim_url}/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages.json"),
            auth: format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{DEFAULT_ACCOUNT_SID}:{DEFAULT_AUTH_TOKEN}"))
            ),
        }
    }

    async fn round_trip(&self) -> Duration {
        let start = Instant::now();
        let request = http::Request::post(&self.url)
            .header("authorization", &self.auth)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(http_body_util::Full::new(bytes::Bytes::from_static(
                b"To=%2B31612345678&From=%2B15005550006&Body=benchmark+message",
            )))
            .unwrap();
        let (status, _) = self.client.send(request).await.expect("bare round trip");
        assert_eq!(status, 201);
        start.elapsed()
    }
}

/// The four ways of making the same request (fresh instance, kept instance,
/// native connector, bare), taking turns call by call: the machine's speed
/// drifts within seconds, and each ratio should compare calls made in the
/// same moments.
async fn four_ways(
    host: Arc<PluginHost>,
    text: Content,
    bare: BareRequest,
    rounds: usize,
) -> [Vec<Duration>; 4] {
    let connectors = ["twilio", "twilio_kept", "twilio_native"];
    let mut samples: [Vec<Duration>; 4] = Default::default();
    for i in 0..rounds {
        for (connector, samples) in connectors.iter().zip(&mut samples) {
            samples.extend(timed_deliveries(&host, connector, i, 1, &text).await);
        }
        samples[3].push(bare.round_trip().await);
    }
    samples
}

/// Where the Twilio call's time goes (`crossgate::plugins::phases`), fresh
/// and kept: the sandbox's lifecycle and glue against #36's 30 µs. Only
/// the `native-baseline` feature (which `make bench` turns on) keeps the clock.
#[cfg(feature = "native-baseline")]
async fn phases(host: &PluginHost, text: &Content) {
    use crossgate::plugins::phases;
    for (connector, how) in [
        ("twilio", "fresh instance"),
        ("twilio_kept", "kept instances"),
    ] {
        phases::take();
        let calls = timed_deliveries(host, connector, 0, SANDBOX_CALLS / 5, text).await;
        let b = phases::take();
        let whole = calls.iter().sum::<Duration>().as_secs_f64() * 1e6 / calls.len() as f64;
        println!(
            "{:<48} setup {:.1}, instantiate {:.1}, guest + glue {:.1}, provider request {:.1}, teardown {:.1} µs (n={}; whole call {:.1})",
            format!("Twilio call's phases, {how} (mean)"),
            b.setup,
            b.instantiate,
            b.guest_and_glue,
            b.provider,
            b.teardown,
            b.calls,
            whole
        );
        println!(
            "{:<48} {:>9.1} µs   (target <= 30 µs: {})",
            format!("sandbox lifecycle + glue, {how}"),
            b.lifecycle_and_glue(),
            met(b.lifecycle_and_glue() <= 30.0)
        );
    }
}

/// A connector's TOML with instances kept for 1,000 calls.
fn kept(connector: &str) -> String {
    with_calls_per_instance(connector, 1000)
}

/// `n` deliveries through `connector` (message ids from `first` on), one
/// after another, each timed.
async fn timed_deliveries(
    host: &PluginHost,
    connector: &str,
    first: usize,
    n: usize,
    text: &Content,
) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(n);
    for i in first..first + n {
        let start = Instant::now();
        let delivered = host
            .deliver(connector, message(&format!("msg_bench_{i}"), text))
            .await;
        if let Err(failure) = delivered.result {
            panic!("{connector} did not deliver: {failure:?}");
        }
        samples.push(start.elapsed());
    }
    samples
}

fn met(yes: bool) -> &'static str {
    if yes { "met" } else { "not met" }
}

/// The Twilio connector served outside the sandbox: the same settings as
/// the WASM one, `plugin = "native:twilio"`.
fn native_twilio(sim_url: &str, name: &str) -> String {
    crossgate_tests::twilio_connector(name, sim_url, DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN)
        .replace("\"sms_twilio.wasm\"", "\"native:twilio\"")
}

/// CPU seconds (user + system) a process has used, from `/proc`.
fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Some(ticks as f64 / per_sec as f64)
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM")
}

/// A `kB` field of the process's `/proc/<pid>/status` (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| {
            l.strip_prefix(field)
                .is_some_and(|rest| rest.starts_with(':'))
        })?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `dispatch` is the gateway's `dispatch.concurrency`: connector calls in
/// flight. The simulator answers in about 0.1 ms, so 64 already keeps up;
/// 256 (the shipped default, sized for real providers' 100+ ms) lets delivery
/// take CPU from accepting while both run.
async fn end_to_end(
    sim: &ProviderSim,
    work: &Path,
    dispatch: usize,
    store: &Store,
    through: Through,
    reference: Reference,
    round: usize,
) -> Throughput {
    let database = store
        .url(work, &format!("e2e_{dispatch}_{}_{round}", through.slug()))
        .await;
    let connector = match through {
        Through::Wasm => default_twilio(&sim.url()),
        Through::Kept => kept(&default_twilio(&sim.url())),
        Through::Native => native_twilio(&sim.url(), "twilio"),
    };
    let (mut child, base, client) = spawn_gateway(
        work,
        &database,
        &format!("[dispatch]\nconcurrency = {dispatch}\n{connector}"),
    )
    .await;
    let before = sim.request_count();
    let wal_before = store.wal_position().await;
    let gateway_pid = child.id().to_string();
    let cpu_before = (cpu_secs(&gateway_pid), cpu_secs("self"));

    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let client = client.clone();
        let next = next.clone();
        let url = format!("{base}/v1/messages");
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= E2E_MESSAGES {
                    return latencies;
                }
                let body = serde_json::json!({"channel": "sms", "to": {"phone": "+31612345678"}, "content": {"text": format!("bench {i}")}});
                let start = Instant::now();
                let response = client.post(&url).json(&body).send().await.expect("POST");
                assert_eq!(response.status().as_u16(), 202);
                latencies.push(start.elapsed());
            }
        }));
    }
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    let accepted_in = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(300);
    while sim.request_count() - before < E2E_MESSAGES && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let delivered_in = started.elapsed();
    let delivered = sim.request_count() - before;
    let cpu_after = (cpu_secs(&gateway_pid), cpu_secs("self"));
    let wal_after = store.wal_position().await;
    let paced = paced_accepts(
        &client,
        &format!("{base}/v1/messages"),
        1000,
        Duration::from_secs(5),
    )
    .await;
    let rss = peak_rss_kib(child.id());
    let _ = child.kill();
    let _ = child.wait();

    println!(
        "end to end on {}, {E2E_MESSAGES} messages posted at concurrency {CONCURRENCY}, dispatch.concurrency = {dispatch}, {} Twilio connector:",
        store.name(),
        through.name()
    );
    let delivered_per_sec = delivered as f64 / delivered_in.as_secs_f64();
    println!(
        "  accepted/s   {:>10.0}",
        E2E_MESSAGES as f64 / accepted_in.as_secs_f64()
    );
    println!(
        "  delivered/s  {:>10.0}   ({delivered} delivered; {})",
        delivered_per_sec,
        reference.rate(delivered_per_sec)
    );
    latencies.sort();
    println!(
        "  accept latency p50 {:.2} ms, p99 {:.2} ms",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3
    );
    let mut paced = paced;
    paced.sort();
    let steady_p99 = percentile(&paced, 0.99);
    println!(
        "  accept latency at a steady 1000 msg/s: p50 {:.2} ms, p99 {:.2} ms (n={})",
        percentile(&paced, 0.5).as_secs_f64() * 1e3,
        steady_p99.as_secs_f64() * 1e3,
        paced.len()
    );
    let per_message = |before: Option<f64>, after: Option<f64>| {
        Some((after? - before?) * 1e6 / E2E_MESSAGES as f64)
    };
    let show = |micros: Option<f64>| match micros {
        Some(micros) => format!("{micros:.0} µs ({})", reference.of(micros)),
        None => "unavailable (no /proc)".to_owned(),
    };
    let gateway_cpu = per_message(cpu_before.0, cpu_after.0);
    println!(
        "  CPU per message: gateway {}, load generator + simulator {}",
        show(gateway_cpu),
        show(per_message(cpu_before.1, cpu_after.1))
    );
    if let Some(micros) = gateway_cpu {
        println!(
            "  target: gateway CPU per delivered message <= 120 µs: {}",
            met(micros <= 120.0)
        );
    }
    println!(
        "  target: accept p99 at a steady 1000 msg/s < 5 ms: {}",
        met(steady_p99 < Duration::from_millis(5))
    );
    if let (Some(before), Some(after)) = (wal_before, wal_after) {
        println!(
            "  PostgreSQL WAL written per message: {:.0} bytes",
            after.saturating_sub(before) as f64 / E2E_MESSAGES as f64
        );
    }
    match rss {
        Some(kib) => println!("  gateway peak RSS {:.1} MiB", kib as f64 / 1024.0),
        None => println!("  gateway peak RSS unavailable (no /proc)"),
    }
    Throughput {
        delivered_per_sec,
        gateway_cpu,
        steady_p99_ms: steady_p99.as_secs_f64() * 1e3,
    }
}

/// Which Twilio connector an end-to-end run delivers through.
#[derive(Clone, Copy)]
enum Through {
    Wasm,
    /// WASM with `calls_per_instance = 1000`.
    Kept,
    Native,
}

impl Through {
    /// For database names.
    fn slug(self) -> &'static str {
        match self {
            Through::Wasm => "wasm",
            Through::Kept => "kept",
            Through::Native => "native",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Through::Wasm => "WASM",
            Through::Kept => "WASM (calls_per_instance = 1000)",
            Through::Native => "native",
        }
    }
}

/// What one end-to-end run measured, for the WASM/native comparison.
struct Throughput {
    delivered_per_sec: f64,
    /// µs of the gateway's CPU per message, where `/proc` says.
    gateway_cpu: Option<f64>,
    /// Accept latency p99 at a steady 1,000/s, in ms.
    steady_p99_ms: f64,
}

/// Several rounds of the same runs, summed up: single runs on a shared
/// machine move by a fifth within minutes, so only medians over rounds run
/// one after another say whether a change moved anything.
fn summarize(store: &Store, rounds: &[[Throughput; 4]]) {
    // `unit` follows each figure as written ("x", " µs"), shown to `digits`.
    let spread = |mut values: Vec<f64>, unit: &str, digits: usize| {
        values.sort_by(f64::total_cmp);
        let mid = values.len() / 2;
        let median = if values.len().is_multiple_of(2) {
            (values[mid - 1] + values[mid]) / 2.0
        } else {
            values[mid]
        };
        let (low, high) = (values[0], values[values.len() - 1]);
        format!("median {median:.digits$}{unit} ({low:.digits$}–{high:.digits$}{unit})")
    };
    println!(
        "end to end on {}, {} rounds, each WASM 64, WASM 256, native 64, kept 64 one after another:",
        store.name(),
        rounds.len()
    );
    for (i, name) in [
        "WASM, dispatch 64",
        "WASM, dispatch 256",
        "native, dispatch 64",
        "WASM, calls_per_instance = 1000, dispatch 64",
    ]
    .iter()
    .enumerate()
    {
        let runs = || rounds.iter().map(|round| &round[i]);
        println!("  {name}:");
        println!(
            "    delivered/s {}",
            spread(runs().map(|r| r.delivered_per_sec).collect(), "", 0)
        );
        println!(
            "    gateway CPU per message {}",
            spread(runs().filter_map(|r| r.gateway_cpu).collect(), " µs", 0)
        );
        println!(
            "    accept p99 at a steady 1000 msg/s {}, under 5 ms in {} of {}",
            spread(runs().map(|r| r.steady_p99_ms).collect(), " ms", 2),
            runs().filter(|r| r.steady_p99_ms < 5.0).count(),
            rounds.len()
        );
    }
    // Ratios of two of each round's runs (indices into the round).
    let ratios = |what: &str, (top, bottom): (usize, usize)| {
        let of = |f: fn(&Throughput) -> Option<f64>| -> Vec<f64> {
            rounds
                .iter()
                .filter_map(|round| Some(f(&round[top])? / f(&round[bottom])?))
                .collect()
        };
        let delivered = of(|r| Some(r.delivered_per_sec));
        println!(
            "  {what} (dispatch 64), per round: delivered/s {}",
            spread(delivered, "x", 2)
        );
        let cpu = of(|r| r.gateway_cpu);
        if !cpu.is_empty() {
            println!("    gateway CPU per message {}", spread(cpu, "x", 2));
        }
    };
    ratios("WASM / native", (0, 2));
    ratios("kept / fresh instances", (3, 0));
}

/// The sandbox's price end to end: the same run through both connectors.
fn compare(store: &Store, wasm: &Throughput, native: &Throughput) {
    println!(
        "end to end on {}, WASM / native (dispatch 64): delivered/s {:.2}x",
        store.name(),
        wasm.delivered_per_sec / native.delivered_per_sec
    );
    if let (Some(wasm), Some(native)) = (wasm.gateway_cpu, native.gateway_cpu) {
        println!(
            "  gateway CPU per message {:.0} µs / {:.0} µs = {:.2}x (the sandbox's share {:.0} µs)",
            wasm,
            native,
            wasm / native,
            wasm - native
        );
    }
}

/// What keeping instances buys end to end: the same run, fresh and kept.
fn compare_kept(store: &Store, fresh: &Throughput, kept: &Throughput) {
    println!(
        "end to end on {}, kept instances / fresh (dispatch 64): delivered/s {:.2}x",
        store.name(),
        kept.delivered_per_sec / fresh.delivered_per_sec
    );
    if let (Some(kept), Some(fresh)) = (kept.gateway_cpu, fresh.gateway_cpu) {
        println!(
            "  gateway CPU per message {kept:.0} µs / {fresh:.0} µs = {:.2}x",
            kept / fresh
        );
    }
}

/// The `crossgate` binary as a child process on `database` with `extra`
/// configuration, once it answers; with a client for it.
async fn spawn_gateway(
    work: &Path,
    database: &str,
    extra: &str,
) -> (std::process::Child, String, reqwest::Client) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config_path = work.join(format!("gateway-{port}.toml"));
    std::fs::write(
        &config_path,
        format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
max_body_bytes = 65536
max_connections = 8192
[storage]
url = "{database}"
[plugins]
dir = "{}"
cache_dir = "{}"
{extra}"#,
            repo_root()
                .join("plugins/target/wasm32-wasip2/release")
                .display(),
            work.join("cache").display(),
        ),
    )
    .unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_crossgate"))
        .args(["serve", "--config"])
        .arg(&config_path)
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("start crossgate");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "gateway did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, base, client)
}

/// `count` requests at concurrency [`CONCURRENCY`], each made by `request(i)`
/// and expected to answer `status`; returns how long they took.
async fn at_concurrency(
    count: usize,
    status: u16,
    request: impl Fn(usize) -> reqwest::RequestBuilder + Send + Sync + 'static,
) -> Duration {
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let request = Arc::new(request);
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (next, request) = (next.clone(), request.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    return;
                }
                let response = request(i).send().await.expect("request");
                assert_eq!(response.status().as_u16(), status);
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    started.elapsed()
}

/// A two-message journey on [`JOURNEY_CUSTOMERS`] customers: events
/// accepted/s over HTTP, then journey steps executed/s until every run's
/// second SMS reached the simulator.
async fn journeys(sim: &ProviderSim, work: &Path, store: &Store) {
    let database = store.url(work, "journeys").await;
    let journey = format!(
        r#"
[journey_runner]
tick_ms = 100
[journeys.bench]
trigger = "signed_up"
[[journeys.bench.steps]]
id = "hello"
send = {{ category = "transactional", text = "Welcome", channels = ["sms"] }}
[[journeys.bench.steps]]
id = "a_second"
wait = "1s"
[[journeys.bench.steps]]
id = "nudge"
send = {{ category = "transactional", text = "Still there?", channels = ["sms"] }}
[journeys.digest]
trigger = "commented"
[[journeys.digest.steps]]
id = "bundle"
digest = {{ window = "1h", key = "{{{{ event.thread }}}}", max = 1000 }}
[[journeys.digest.steps]]
id = "tell"
send = {{ category = "transactional", text = "{{{{ digest.count }}}} new comments", channels = ["sms"] }}
{}"#,
        default_twilio(&sim.url())
    );
    let (mut child, base, client) = spawn_gateway(work, &database, &journey).await;
    let id = |i: usize| format!("bench-{i}");
    let (customers_client, customers_base) = (client.clone(), base.clone());
    at_concurrency(JOURNEY_CUSTOMERS, 201, move |i| {
        customers_client
            .put(format!("{customers_base}/v1/customers/{}", id(i)))
            .json(&serde_json::json!({"addresses": {"phone": format!("+3161{i:07}")}}))
    })
    .await;
    let before = sim.request_count();
    let gateway_pid = child.id().to_string();
    let cpu_before = cpu_secs(&gateway_pid);
    let started = Instant::now();
    let (events_client, events_base) = (client.clone(), base.clone());
    let accepted_in = at_concurrency(JOURNEY_CUSTOMERS, 202, move |i| {
        events_client
            .post(format!("{events_base}/v1/events"))
            .json(&serde_json::json!({"customer_id": id(i), "name": "signed_up"}))
    })
    .await;
    let expected = 2 * JOURNEY_CUSTOMERS;
    let deadline = Instant::now() + Duration::from_secs(300);
    while sim.request_count() - before < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let done_in = started.elapsed();
    let cpu_after = cpu_secs(&gateway_pid);
    // Each run: start, send, wait, wake, send, complete.
    let steps = 6 * JOURNEY_CUSTOMERS;
    println!(
        "journeys on {}, {JOURNEY_CUSTOMERS} customers, send + 1 s wait + send:",
        store.name()
    );
    println!(
        "  events accepted/s       {:>8.0}",
        JOURNEY_CUSTOMERS as f64 / accepted_in.as_secs_f64()
    );
    println!(
        "  journey steps/s         {:>8.0}   ({} of {expected} SMS sent in {:.1} s, the 1 s wait included)",
        steps as f64 / done_in.as_secs_f64(),
        sim.request_count() - before,
        done_in.as_secs_f64()
    );
    if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
        println!(
            "  gateway CPU per run     {:>8.0} µs (two messages delivered)",
            (after - before) * 1e6 / JOURNEY_CUSTOMERS as f64
        );
    }
    digests(&mut child, &base, &client).await;
}

/// Comments on two threads per customer, [`DIGEST_EVENTS_EACH`] a customer
/// in one batch: each opens its thread's digest or joins it. Events folded
/// per second, until the runner has applied them all.
async fn digests(child: &mut std::process::Child, base: &str, client: &reqwest::Client) {
    let gateway_pid = child.id().to_string();
    let cpu_before = cpu_secs(&gateway_pid);
    let started = Instant::now();
    let (events_client, events_base) = (client.clone(), base.to_owned());
    at_concurrency(DIGEST_CUSTOMERS, 202, move |i| {
        let events: Vec<serde_json::Value> = (0..DIGEST_EVENTS_EACH)
            .map(|n| {
                serde_json::json!({"customer_id": format!("bench-{i}"), "name": "commented",
                                   "properties": {"thread": n % 2, "author": format!("a{n}")}})
            })
            .collect();
        events_client
            .post(format!("{events_base}/v1/events"))
            .json(&serde_json::json!({ "events": events }))
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let work: serde_json::Value = client
            .get(format!("{base}/v1/admin/work"))
            .send()
            .await
            .expect("GET /v1/admin/work")
            .json()
            .await
            .expect("its JSON");
        if work["due"]["events"] == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let done_in = started.elapsed();
    let cpu_after = cpu_secs(&gateway_pid);
    let _ = child.kill();
    let _ = child.wait();
    let events = DIGEST_CUSTOMERS * DIGEST_EVENTS_EACH;
    println!(
        "  digest events folded/s  {:>8.0}   ({events} events, {} customers x 2 threads, accepted and applied in {:.1} s)",
        events as f64 / done_in.as_secs_f64(),
        DIGEST_CUSTOMERS,
        done_in.as_secs_f64()
    );
    if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
        println!(
            "  gateway CPU per event   {:>8.0} µs (folded into a digest)",
            (after - before) * 1e6 / events as f64
        );
    }
}

/// A broadcast to [`BROADCAST_CUSTOMERS`]: members planned/s and sent/s,
/// and transactional accept latency at a steady rate, alone and then while
/// the broadcast fans out.
async fn broadcasts(sim: &ProviderSim, work: &Path, store: &Store) {
    let database = store.url(work, "broadcasts").await;
    let extra = format!(
        r#"
[categories.news]
consent = "opt-out"
[segments.everyone]
reachable = ["sms"]
[broadcasts]
rate_per_second = 10000
{}"#,
        default_twilio(&sim.url())
    );
    let (mut child, base, client) = spawn_gateway(work, &database, &extra).await;
    let (customers_client, customers_base) = (client.clone(), base.clone());
    let stored_in = at_concurrency(BROADCAST_CUSTOMERS, 201, move |i| {
        customers_client
            .put(format!("{customers_base}/v1/customers/b{i:06}"))
            .json(&serde_json::json!({"addresses": {"phone": format!("+3162{i:07}")}}))
    })
    .await;
    let messages_url = format!("{base}/v1/messages");
    let alone = paced_accepts(
        &client,
        &messages_url,
        TRANSACTIONAL_PER_SEC,
        Duration::from_secs(5),
    )
    .await;
    // Let those go out before the broadcast starts.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let before = sim.request_count();
    let gateway_pid = child.id().to_string();
    let cpu_before = cpu_secs(&gateway_pid);
    let started = Instant::now();
    let created: serde_json::Value = client
        .post(format!("{base}/v1/broadcasts"))
        .json(
            &serde_json::json!({"segment": "everyone", "category": "news",
            "content": {"text": "Spring sale"}, "rate_per_second": 10_000}),
        )
        .send()
        .await
        .expect("POST broadcast")
        .json()
        .await
        .expect("broadcast id");
    let status_url = format!("{base}/v1/broadcasts/{}", created["id"].as_str().unwrap());
    let during = paced_accepts(
        &client,
        &messages_url,
        TRANSACTIONAL_PER_SEC,
        Duration::from_secs(10),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut planned_in = None;
    let expected = BROADCAST_CUSTOMERS + during.len();
    while Instant::now() < deadline {
        if planned_in.is_none() {
            let view: serde_json::Value = client
                .get(&status_url)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if view["status"] == "planned" {
                planned_in = Some(started.elapsed());
            }
        }
        if sim.request_count() - before >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sent_in = started.elapsed();
    let cpu_after = cpu_secs(&gateway_pid);
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "broadcast on {}, {BROADCAST_CUSTOMERS} customers (profiles stored at {:.0}/s):",
        store.name(),
        BROADCAST_CUSTOMERS as f64 / stored_in.as_secs_f64()
    );
    if let Some(planned_in) = planned_in {
        println!(
            "  members planned/s       {:>8.0}",
            BROADCAST_CUSTOMERS as f64 / planned_in.as_secs_f64()
        );
    }
    println!(
        "  members sent/s          {:>8.0}   ({} of {expected} SMS sent in {:.1} s)",
        BROADCAST_CUSTOMERS as f64 / sent_in.as_secs_f64(),
        sim.request_count() - before,
        sent_in.as_secs_f64()
    );
    summary(
        &format!("  accept at {TRANSACTIONAL_PER_SEC}/s alone"),
        alone,
    );
    summary(
        &format!("  accept at {TRANSACTIONAL_PER_SEC}/s during fan-out"),
        during,
    );
    if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
        println!(
            "  gateway CPU per member  {:>8.0} µs",
            (after - before) * 1e6 / BROADCAST_CUSTOMERS as f64
        );
    }
}

/// Where the gateway under test keeps its state.
enum Store {
    Sqlite,
    /// A server on which each run gets a new database.
    Postgres(String),
}

impl Store {
    /// Where PostgreSQL's write-ahead log stands, in bytes: what a run wrote
    /// to it is the store's write work, a figure the machine's noise leaves
    /// alone (the server is the bench's own, so nothing else writes).
    async fn wal_position(&self) -> Option<u64> {
        let client = self.server().await?;
        let row = client
            .query_one("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint", &[])
            .await
            .ok()?;
        u64::try_from(row.get::<_, i64>(0)).ok()
    }

    /// A connection to the PostgreSQL server's own database; `None` on SQLite.
    async fn server(&self) -> Option<tokio_postgres::Client> {
        let Store::Postgres(server) = self else {
            return None;
        };
        let (client, connection) = tokio_postgres::connect(server, tokio_postgres::NoTls)
            .await
            .ok()?;
        tokio::spawn(connection);
        Some(client)
    }

    fn name(&self) -> &'static str {
        match self {
            Store::Sqlite => "SQLite",
            Store::Postgres(_) => "PostgreSQL",
        }
    }

    /// A new store for one in-process part, `run` naming its file or database.
    async fn open(&self, work: &Path, run: &str) -> Arc<dyn crossgate::store::Store> {
        let url = self.url(work, run).await;
        let database = match url.strip_prefix("sqlite://") {
            Some(path) => config::Database::Sqlite(path.into()),
            None => config::Database::Postgres(url),
        };
        crossgate::store::open(&database, 16, "bench", crossgate::clock::wall_ms())
            .await
            .expect("open the bench store")
    }

    async fn url(&self, work: &Path, run: &str) -> String {
        match self {
            Store::Sqlite => format!("sqlite://{}", work.join(format!("{run}.db")).display()),
            Store::Postgres(server) => {
                // Unquoted names are folded to lower case by the server.
                let name = format!("crossgate_bench_{run}_{}", std::process::id()).to_lowercase();
                let (client, connection) = tokio_postgres::connect(server, tokio_postgres::NoTls)
                    .await
                    .expect("reach the PostgreSQL server");
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create the bench database");
                let base = server
                    .rsplit_once('/')
                    .map_or(server.as_str(), |(base, _)| base);
                format!("{base}/{name}")
            }
        }
    }
}

/// Send at a fixed rate (open loop: a slow answer does not slow the sender)
/// and return each request's latency.
async fn paced_accepts(
    client: &reqwest::Client,
    url: &str,
    per_sec: u64,
    length: Duration,
) -> Vec<Duration> {
    let total = per_sec * length.as_secs();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / per_sec));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..total {
        tick.tick().await;
        let (client, url) = (client.clone(), url.to_owned());
        requests.spawn(async move {
            let body = serde_json::json!({"channel": "sms", "to": {"phone": "+31612345678"}, "content": {"text": format!("paced {i}")}});
            let start = Instant::now();
            let response = client.post(&url).json(&body).send().await.expect("POST");
            assert_eq!(response.status().as_u16(), 202);
            start.elapsed()
        });
    }
    let mut latencies = Vec::with_capacity(total as usize);
    while let Some(latency) = requests.join_next().await {
        latencies.push(latency.expect("paced request"));
    }
    latencies
}

/// The same allocator as the `crossgate` binary, so the in-process sandbox
/// figures match what the gateway pays.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // As the gateway does: no backtrace capture on every library error.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let work = tempfile::tempdir().expect("temp dir");
        let sim = ProviderSim::start().await.expect("simulator");
        // `CROSSGATE_BENCH_ONLY=sandbox` (or `=store`, `=e2e`, `=journeys`, `=broadcasts`, `=retention`, `=streams`, `=search`, `=experiments`)
        // measures that alone.
        let only_part = std::env::var("CROSSGATE_BENCH_ONLY").ok();
        let part = |name: &str| only_part.as_deref().is_none_or(|only| only == name);
        // `CROSSGATE_BENCH_ROUNDS=<n>` repeats the end-to-end runs and sums them up.
        let rounds = std::env::var("CROSSGATE_BENCH_ROUNDS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1usize)
            .max(1);
        let reference = Reference::measure();
        if part("sandbox") {
            sandbox(&sim.url(), work.path(), reference).await;
            templates_and_sms();
            circuits();
        }
        // `CROSSGATE_BENCH_STORE=sqlite` or `=postgres` measures one only.
        let only = std::env::var("CROSSGATE_BENCH_STORE").ok();
        let mut stores = Vec::new();
        if only.as_deref() != Some("postgres") {
            stores.push(Store::Sqlite);
        }
        match std::env::var("CROSSGATE_TEST_POSTGRES_URL") {
            Ok(url) if only.as_deref() != Some("sqlite") => stores.push(Store::Postgres(url)),
            Ok(_) => {}
            Err(_) => println!(
                "PostgreSQL: not measured (set CROSSGATE_TEST_POSTGRES_URL; make bench starts a server)"
            ),
        }
        for store in &stores {
            if part("store") {
                store_path::store_path(work.path(), store).await;
            }
            if part("e2e") {
                let mut measured = Vec::with_capacity(rounds);
                for round in 0..rounds {
                    let path = work.path();
                    let wasm =
                        end_to_end(&sim, path, 64, store, Through::Wasm, reference, round).await;
                    let wide =
                        end_to_end(&sim, path, 256, store, Through::Wasm, reference, round).await;
                    let native =
                        end_to_end(&sim, path, 64, store, Through::Native, reference, round).await;
                    compare(store, &wasm, &native);
                    let kept =
                        end_to_end(&sim, path, 64, store, Through::Kept, reference, round).await;
                    compare_kept(store, &wasm, &kept);
                    measured.push([wasm, wide, native, kept]);
                }
                if rounds > 1 {
                    summarize(store, &measured);
                }
            }
            if part("journeys") {
                journeys(&sim, work.path(), store).await;
            }
            if part("broadcasts") {
                broadcasts(&sim, work.path(), store).await;
            }
            if part("retention") {
                retention::retention(work.path(), store).await;
            }
            if part("streams") {
                streams::streams(work.path(), store).await;
            }
            if part("search") {
                search::search(work.path(), store).await;
            }
            if part("experiments") {
                experiments::experiments(work.path(), store).await;
            }
        }
    });
}
