//! Several gateway processes on one PostgreSQL database: they share the
//! queue, a node killed with `kill -9` has its work finished by the others
//! once its leases run out, and a node started later joins with nothing
//! configured but the database URL.

use crate::support::child::ChildGateway;
use crate::support::{default_twilio, postgres, sms};
use crossgate_tests::{
    Behaviour, DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, ProviderSim, twilio_connector,
};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MESSAGES: usize = 3_000;
const SENDERS: usize = 6;
/// Short, so the test waits seconds, not a minute, for the takeover.
const LEASE_MS: u64 = 3_000;
/// The slow account node-1's connector uses.
const SLOW_SID: &str = "AC11111111111111111111111111111111";

/// Texts the simulator received, with how often.
fn received(sim: &ProviderSim) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for request in sim.requests() {
        if let Some(body) = request.field("Body") {
            *counts.entry(body.to_owned()).or_default() += 1;
        }
    }
    counts
}

/// Send `texts` through whichever node answers, as a load balancer would:
/// a node that is gone (or refuses) passes the message to the next one. A
/// platform retries with its idempotency key: a node killed after its commit
/// but before its `202` must not make the retry a second message.
async fn send_all(nodes: Arc<Mutex<Vec<String>>>, texts: Vec<String>) -> Vec<(String, String)> {
    let client = reqwest::Client::new();
    let mut accepted = Vec::new();
    for (i, text) in texts.into_iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(30);
        'next: loop {
            let urls = nodes.lock().unwrap().clone();
            for k in 0..urls.len() {
                let url = &urls[(i + k) % urls.len()];
                let Ok(response) = client
                    .post(format!("{url}/v1/messages"))
                    .header("idempotency-key", text.replace(' ', "-"))
                    .json(&sms("+31612345678", &text))
                    .send()
                    .await
                else {
                    continue;
                };
                if response.status().as_u16() == 202 {
                    let answer: Value = response.json().await.unwrap();
                    accepted.push((answer["id"].as_str().unwrap().to_owned(), text.clone()));
                    break 'next;
                }
            }
            assert!(Instant::now() < deadline, "no node accepted {text}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    accepted
}

/// `SENDERS` concurrent senders, each with every `SENDERS`-th text.
fn spawn_senders(
    nodes: &Arc<Mutex<Vec<String>>>,
    texts: &[String],
) -> Vec<tokio::task::JoinHandle<Vec<(String, String)>>> {
    (0..SENDERS)
        .map(|s| {
            let mine = texts.iter().skip(s).step_by(SENDERS).cloned().collect();
            tokio::spawn(send_all(nodes.clone(), mine))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_the_work_and_finish_a_killed_nodes_after_its_lease() {
    let Some(url) = postgres::fresh_database("nodes::three_nodes_share_the_work").await else {
        return;
    };
    let sim = ProviderSim::start().await.unwrap();
    // A slow provider keeps attempts in flight on every node; node-1 is
    // given a slower account of its own, so that it certainly has attempts
    // in flight when it is killed.
    sim.add_account(
        DEFAULT_ACCOUNT_SID,
        DEFAULT_AUTH_TOKEN,
        Behaviour::Stall(Duration::from_millis(30)),
    );
    sim.add_account(
        SLOW_SID,
        DEFAULT_AUTH_TOKEN,
        Behaviour::Stall(Duration::from_secs(2)),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = |name: &str, connector: &str| {
        format!("{name}\n[dispatch]\nconcurrency = 16\nlease_ms = {LEASE_MS}\n{connector}")
    };
    let mut started = Vec::new();
    for n in 1..=3 {
        let node_dir = dir.path().join(format!("node-{n}"));
        std::fs::create_dir_all(&node_dir).unwrap();
        let connector = match n {
            1 => twilio_connector("twilio", &sim.url(), SLOW_SID, DEFAULT_AUTH_TOKEN),
            _ => default_twilio(&sim.url()),
        };
        let toml = config(&format!("node_name = \"node-{n}\""), &connector);
        started.push(ChildGateway::spawn_on(&node_dir, &toml, &url).await);
    }
    let nodes = Arc::new(Mutex::new(
        started.iter().map(|g| g.url.clone()).collect::<Vec<_>>(),
    ));

    let texts: Vec<String> = (0..MESSAGES).map(|i| format!("node test {i}")).collect();
    let (first_half, second_half) = texts.split_at(MESSAGES / 2);
    let mut senders = spawn_senders(&nodes, first_half);
    // Kill node-1 while it has attempts in flight.
    let deadline = Instant::now() + Duration::from_secs(60);
    while received(&sim).len() < MESSAGES / 8 {
        assert!(Instant::now() < deadline, "nothing was delivered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started[0].kill_hard();
    let killed_at = Instant::now();
    nodes.lock().unwrap().remove(0);

    // A fourth node joins with only the shared URL: no name, nothing else.
    let late_dir = dir.path().join("node-late");
    std::fs::create_dir_all(&late_dir).unwrap();
    let late =
        ChildGateway::spawn_on(&late_dir, &config("", &default_twilio(&sim.url())), &url).await;
    nodes.lock().unwrap().push(late.url.clone());
    senders.extend(spawn_senders(&nodes, second_half));
    let mut accepted = Vec::new();
    for sender in senders {
        accepted.extend(sender.await.unwrap());
    }
    assert_eq!(
        accepted.len(),
        MESSAGES,
        "every message was accepted by some node"
    );

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let got = received(&sim);
        let missing = texts.iter().filter(|t| !got.contains_key(*t)).count();
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} messages never reached the provider"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Every message reached the provider; once no node has work due, all
    // is recorded.
    started[1].quiesce().await;

    let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let statuses: Vec<(String, i64)> = db
        .query("SELECT status, COUNT(*) FROM messages GROUP BY status", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(statuses, [("sent".to_owned(), MESSAGES as i64)]);
    // Who attempted what: every node worked, the killed node's cut-short
    // attempts were taken over by the others, after its lease ran out.
    let attempts: Vec<(String, String, Option<String>)> = db
        .query("SELECT message_id, outcome, node FROM attempts", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let by_node = |node: &str| {
        attempts
            .iter()
            .filter(|a| a.2.as_deref() == Some(node))
            .count()
    };
    for node in ["node-2", "node-3"] {
        assert!(by_node(node) > 0, "{node} made no attempt");
    }
    // node-1's provider answers in 2 s, so it died with attempts in flight:
    // the others recorded those as interrupted (checked below).
    let late_node = attempts
        .iter()
        .filter_map(|a| a.2.as_deref())
        .find(|n| !n.starts_with("node-"));
    assert!(late_node.is_some(), "the late node made no attempt");
    let interrupted: HashSet<&str> = attempts
        .iter()
        .filter(|a| a.1 == "interrupted")
        .map(|a| a.0.as_str())
        .collect();
    assert!(
        !interrupted.is_empty(),
        "node-1 had nothing in flight when killed"
    );
    // Each cut-short attempt is put down to the node that made it (the
    // killed one), not to the node that took its lease over.
    assert!(
        attempts
            .iter()
            .filter(|a| a.1 == "interrupted")
            .all(|a| a.2.as_deref() == Some("node-1")),
        "an interrupted attempt named a node that did not make it"
    );
    assert!(killed_at.elapsed() >= Duration::from_millis(LEASE_MS));

    // At least once, and twice only for what was in flight at the kill.
    let got = received(&sim);
    let mut resent = 0;
    for (id, text) in &accepted {
        let times = got[text];
        if times > 1 {
            resent += 1;
            assert!(interrupted.contains(id.as_str()), "{id} sent {times} times");
            assert_eq!(times, 2, "{text} sent more than twice");
        }
    }
    println!(
        "nodes test: {MESSAGES} messages over 3 nodes and a late one; {} attempts cut short by kill -9, {resent} re-sent",
        interrupted.len()
    );
}

/// A TCP relay to the database that the test can cut, as a network
/// partition or a database restart looks to a node: open connections
/// break and new ones are refused until it is restored.
struct Relay {
    addr: std::net::SocketAddr,
    up: Arc<std::sync::atomic::AtomicBool>,
    links: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Relay {
    async fn start(target: String) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay = Relay {
            addr: listener.local_addr().unwrap(),
            up: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            links: Arc::default(),
        };
        let (up, links) = (relay.up.clone(), relay.links.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                let target = target.clone();
                links.lock().unwrap().push(tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                }));
            }
        });
        relay
    }

    fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_database_is_unreachable_sends_get_503_and_nothing_accepted_is_lost() {
    let Some(url) = postgres::fresh_database("nodes::while_the_database_is_unreachable").await
    else {
        return;
    };
    let (relay, relayed) = through_relay(&url).await;

    let sim = ProviderSim::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gateway = ChildGateway::spawn_on(dir.path(), &default_twilio(&sim.url()), &relayed).await;
    let client = reqwest::Client::new();
    let send = |text: &str| {
        client
            .post(format!("{}/v1/messages", gateway.url))
            .header("idempotency-key", text.replace(' ', "-"))
            .json(&sms("+31612345678", text))
            .send()
    };
    let mut before = Vec::new();
    for i in 0..20 {
        let accepted = send(&format!("before {i}")).await.unwrap();
        assert_eq!(accepted.status(), 202);
        before.push(accepted.json::<Value>().await.unwrap()["id"].clone());
    }
    // Nothing in flight at the cut: what an outage does to attempts in
    // flight is the lease's business, tested above.
    let deadline = Instant::now() + Duration::from_secs(30);
    for id in before.iter().map(|id| id.as_str().unwrap()) {
        loop {
            let url = format!("{}/v1/messages/{id}", gateway.url);
            let message: Value = client.get(url).send().await.unwrap().json().await.unwrap();
            if message["status"] == "sent" {
                break;
            }
            assert!(Instant::now() < deadline, "not sent: {message}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    relay.cut();
    let refused = send("during").await.unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "store_unavailable", "{body}");
    let ready = client
        .get(format!("{}/readyz", gateway.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);

    relay.restore();
    // The platform retries the refused send with its key until it is taken.
    let deadline = Instant::now() + Duration::from_secs(30);
    while send("during").await.unwrap().status() != 202 {
        assert!(Instant::now() < deadline, "the node never recovered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ready = client
        .get(format!("{}/readyz", gateway.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    let texts: Vec<String> = (0..20)
        .map(|i| format!("before {i}"))
        .chain(["during".to_owned()])
        .collect();
    each_delivered_once(&sim, &texts).await;
}

/// Wait (a minute at most) until the provider has every one of `texts`,
/// and each once.
async fn each_delivered_once(sim: &ProviderSim, texts: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = received(sim);
        if texts.iter().all(|t| got.contains_key(t)) {
            assert!(texts.iter().all(|t| got[t] == 1), "{got:?}");
            return;
        }
        assert!(Instant::now() < deadline, "not all delivered: {got:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A relay in front of the database `url`, and the URL through it.
async fn through_relay(url: &str) -> (Relay, String) {
    // postgres://user@HOST:PORT/db: the node reaches HOST:PORT through the relay.
    let (scheme_user, rest) = url.split_once('@').unwrap();
    let (server, database) = rest.split_once('/').unwrap();
    let relay = Relay::start(server.to_owned()).await;
    let relayed = format!("{scheme_user}@{}/{database}", relay.addr);
    (relay, relayed)
}

/// Finding 17: a database that closes the gateway's connections (an
/// administrator's restart, 57P01) makes a send `503` with `Retry-After`
/// and a reason, never `500`; nothing accepted is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_the_server_closes_are_503_never_500() {
    let Some(url) = postgres::fresh_database("nodes::connections_the_server_closes").await else {
        return;
    };
    let sim = ProviderSim::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gateway = ChildGateway::spawn_on(dir.path(), &default_twilio(&sim.url()), &url).await;
    let (admin, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let client = reqwest::Client::new();
    let mut accepted = Vec::new();
    let mut refused = 0;
    for i in 0..40 {
        // What a restart does to every open connection: the server ends it.
        admin
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap();
        let text = format!("through restarts {i}");
        let response = client
            .post(format!("{}/v1/messages", gateway.url))
            .json(&sms("+31612345678", &text))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let retry_after = response.headers().get("retry-after").cloned();
        let body: Value = response.json().await.unwrap();
        match status {
            202 => accepted.push(text),
            503 => {
                refused += 1;
                assert!(retry_after.is_some(), "{body}");
                assert_eq!(body["error"]["code"], "store_unavailable", "{body}");
            }
            _ => panic!("{status}: {body}"),
        }
    }
    println!(
        "closed connections: {} sends taken, {refused} answered 503",
        accepted.len()
    );
    each_delivered_once(&sim, &accepted).await;
}

/// Finding 18: an attempt that finished while the database was away for a
/// moment is recorded once it is back, not sent again a lease later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_is_recorded_when_the_database_is_back() {
    let Some(url) = postgres::fresh_database("nodes::an_attempt_is_recorded").await else {
        return;
    };
    let (relay, relayed) = through_relay(&url).await;
    let sim = ProviderSim::start().await.unwrap();
    // Each attempt takes a second at the provider: the database goes away
    // while they are in flight and is back before they could be recorded again.
    sim.add_account(
        DEFAULT_ACCOUNT_SID,
        DEFAULT_AUTH_TOKEN,
        Behaviour::Stall(Duration::from_millis(1000)),
    );
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[dispatch]\nlease_ms = 60000\n{}",
        default_twilio(&sim.url())
    );
    let gateway = ChildGateway::spawn_on(dir.path(), &toml, &relayed).await;
    let client = reqwest::Client::new();
    let texts: Vec<String> = (0..5).map(|i| format!("in flight {i}")).collect();
    for text in &texts {
        let accepted = client
            .post(format!("{}/v1/messages", gateway.url))
            .json(&sms("+31612345678", text))
            .send()
            .await
            .unwrap();
        assert_eq!(accepted.status(), 202);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while sim.request_count() < texts.len() {
        assert!(Instant::now() < deadline, "attempts never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    relay.cut();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    relay.restore();

    // Recorded within seconds of the database's return, far inside the
    // 60 s lease after which the old gateway sent each again.
    let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let sent: i64 = db
            .query_one("SELECT COUNT(*) FROM messages WHERE status = 'sent'", &[])
            .await
            .unwrap()
            .get(0);
        if sent == texts.len() as i64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{sent} of {} recorded after the database came back",
            texts.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = received(&sim);
    assert!(texts.iter().all(|t| got.get(t) == Some(&1)), "{got:?}");
    let interrupted: i64 = db
        .query_one(
            "SELECT COUNT(*) FROM attempts WHERE outcome = 'interrupted'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(interrupted, 0);
}
