//! What happens to the process must not happen to messages: `kill -9`
//! mid-flight, SIGTERM, and status callbacks.

use crate::support::child::ChildGateway;
use crate::support::{TestGateway, default_twilio, sms};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use crossgate_tests::{Behaviour, DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, ProviderSim};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CRASH_MESSAGES: usize = 400;

/// Messages (by body) the simulator received, with how often.
fn received(sim: &ProviderSim) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for request in sim.requests() {
        if let Some(body) = request.field("Body") {
            *counts.entry(body.to_owned()).or_default() += 1;
        }
    }
    counts
}

/// Message ids whose delivery was leased (an attempt in flight) in the database.
fn in_flight(db: &std::path::Path) -> HashSet<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT message_id FROM deliveries WHERE state = 'leased'")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_202_survives_kill_9_and_only_in_flight_attempts_are_resent() {
    let sim = ProviderSim::start().await.unwrap();
    // A slow provider keeps many attempts in flight when the process dies.
    sim.add_account(
        DEFAULT_ACCOUNT_SID,
        DEFAULT_AUTH_TOKEN,
        Behaviour::Stall(Duration::from_millis(40)),
    );
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[dispatch]\nconcurrency = 32\n{}",
        default_twilio(&sim.url())
    );
    let mut gateway = ChildGateway::spawn(dir.path(), &toml).await;
    let client = reqwest::Client::new();

    // Accept messages from 8 concurrent senders; kill the process halfway.
    let accepted: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut senders = Vec::new();
    for sender in 0..8 {
        let (client, url, accepted) = (client.clone(), gateway.url.clone(), accepted.clone());
        senders.push(tokio::spawn(async move {
            for i in 0..CRASH_MESSAGES / 8 + 1 {
                let text = format!("crash {sender}-{i}");
                let Ok(response) = client
                    .post(format!("{url}/v1/messages"))
                    .json(&sms("+31612345678", &text))
                    .send()
                    .await
                else {
                    return; // the process is gone
                };
                if response.status().as_u16() != 202 {
                    return;
                }
                let Ok(answer) = response.json::<Value>().await else {
                    return;
                };
                let id = answer["id"].as_str().unwrap().to_owned();
                accepted.lock().unwrap().push((id, text));
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while accepted.lock().unwrap().len() < CRASH_MESSAGES * 2 / 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    gateway.kill_hard();
    for sender in senders {
        sender.await.unwrap();
    }
    let accepted = accepted.lock().unwrap().clone();
    let interrupted = in_flight(&dir.path().join("crossgate.db"));
    let before_restart = received(&sim);

    let gateway = gateway.restart().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let texts: HashSet<&String> = accepted.iter().map(|(_, text)| text).collect();
    loop {
        let got = received(&sim);
        if texts.iter().all(|t| got.contains_key(*t)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "accepted messages never reached the provider: {}",
            texts.iter().filter(|t| !got.contains_key(**t)).count()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Once nothing is due any more, count re-sends.
    gateway.quiesce().await;
    let got = received(&sim);
    let resent: Vec<&(String, String)> = accepted
        .iter()
        .filter(|(_, text)| got.get(text).copied().unwrap_or(0) > 1)
        .collect();
    for (id, text) in &resent {
        assert!(
            interrupted.contains(id),
            "{id} ({text}) was sent twice but its attempt was not in flight at the crash"
        );
        assert_eq!(got[text], 2, "{text} sent more than twice");
        assert_eq!(before_restart.get(text), Some(&1));
    }
    // Every attempt cut short says so in the history, ahead of its retry:
    // the provider may have the message twice.
    for id in interrupted
        .iter()
        .filter(|id| accepted.iter().any(|(a, _)| a == *id))
    {
        let message: serde_json::Value = reqwest::get(format!("{}/v1/messages/{id}", gateway.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let attempts = message["attempts"].as_array().unwrap();
        let cut = attempts
            .iter()
            .find(|a| a["outcome"] == "interrupted")
            .unwrap_or_else(|| panic!("no interrupted attempt: {message}"));
        let why = cut["error"]["message"].as_str().unwrap();
        assert!(why.contains("may have the message"), "{why}");
    }
    println!(
        "crash test: {} accepted before kill -9, {} attempts in flight at the crash, {} re-sent after restart",
        accepted.len(),
        interrupted.len(),
        resent.len()
    );
    assert!(accepted.len() >= CRASH_MESSAGES * 2 / 3);
    drop(gateway);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_attempts_in_flight_and_leaves_the_rest_queued() {
    let sim = ProviderSim::start().await.unwrap();
    sim.add_account(
        DEFAULT_ACCOUNT_SID,
        DEFAULT_AUTH_TOKEN,
        Behaviour::Stall(Duration::from_millis(400)),
    );
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[dispatch]\nconcurrency = 2\n{}",
        default_twilio(&sim.url())
    );
    let mut gateway = ChildGateway::spawn(dir.path(), &toml).await;
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for i in 0..10 {
        let response = client
            .post(format!("{}/v1/messages", gateway.url))
            .json(&sms("+31612345678", &format!("graceful {i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 202);
        ids.push(
            response.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // Wait until two attempts are waiting on the slow provider.
    let deadline = Instant::now() + Duration::from_secs(10);
    while sim.requests().len() < 2 {
        assert!(Instant::now() < deadline, "no attempt started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let status = gateway.terminate(Duration::from_secs(10));
    assert!(status.success(), "gateway exited with {status}");

    let db = dir.path().join("crossgate.db");
    assert!(
        in_flight(&db).is_empty(),
        "attempts were cut off instead of finishing"
    );
    let conn = rusqlite::Connection::open(&db).unwrap();
    let statuses: Vec<String> = ids
        .iter()
        .map(|id| {
            conn.query_row("SELECT status FROM messages WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .unwrap()
        })
        .collect();
    let sent = statuses.iter().filter(|s| *s == "sent").count();
    let waiting = statuses.iter().filter(|s| *s == "queued").count();
    assert!(sent >= 2, "in-flight attempts did not finish: {statuses:?}");
    assert_eq!(sent + waiting, ids.len(), "{statuses:?}");
    assert!(
        waiting > 0,
        "shutdown did not stop taking new work: {statuses:?}"
    );
    assert_eq!(sim.requests().len(), sent);

    // The next start picks up the rest.
    let gateway = gateway.restart().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while sim.requests().len() < ids.len() {
        assert!(
            Instant::now() < deadline,
            "queued messages were not picked up after restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        received(&sim).values().copied().max(),
        Some(1),
        "a message was sent twice"
    );
    drop(gateway);
}

/// A platform endpoint that records callbacks and fails the first one.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    calls: Arc<Mutex<usize>>,
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    let mut calls = receiver.calls.lock().unwrap();
    *calls += 1;
    if *calls == 1 {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    receiver.got.lock().unwrap().push((headers, body));
    StatusCode::NO_CONTENT
}

/// The documented recipe: HMAC-SHA256 of "<t>.<body>" with the secret, hex, compared to v1.
fn verify(secret: &str, header: &str, body: &str) -> bool {
    use hmac::{Hmac, Mac};
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value),
            Some(("v1", value)) => v1 = Some(value),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    expected == v1
}

#[tokio::test]
async fn status_changes_are_posted_signed_and_retried() {
    let receiver = Receiver::default();
    let app = axum::Router::new()
        .route("/hooks", axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_origin = format!("http://{}", listener.local_addr().unwrap());
    let hook_url = format!("{hook_origin}/hooks");
    tokio::spawn(async move { axum::serve(listener, app).await });

    let sim = ProviderSim::start().await.unwrap();
    let secret = "callback-secret-0123456789";
    // Loopback is not public: the test's receiver is listed.
    let gw = TestGateway::start(&format!(
        "[callbacks]\nsecret = \"{secret}\"\nbackoff_base_ms = 50\nallowed_hosts = [\"{hook_origin}\"]\n{}",
        default_twilio(&sim.url())
    ))
    .await;
    let mut body = sms("+31612345678", "tell me how it went");
    body["callback_url"] = json!(hook_url);
    let id = gw.send_ok(&body).await;
    assert_eq!(gw.settled(&id).await["status"], "sent");

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let statuses: Vec<String> = receiver
            .got
            .lock()
            .unwrap()
            .iter()
            .map(|(_, body)| {
                serde_json::from_str::<Value>(body).unwrap()["status"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        if statuses.contains(&"sent".to_owned()) && statuses.len() >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "callbacks missing: {statuses:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = receiver.got.lock().unwrap().clone();
    let mut events: Vec<Value> = got
        .iter()
        .map(|(_, b)| serde_json::from_str(b).unwrap())
        .collect();
    events.sort_by_key(|e| e["sequence"].as_u64());
    let statuses: Vec<&str> = events
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["queued", "sending", "sent"]);
    assert!(events.iter().all(|e| e["id"] == id.as_str()));
    assert_eq!(events[2]["delivered_by"], "twilio");
    for (headers, body) in &got {
        let signature = headers
            .get("crossgate-signature")
            .unwrap()
            .to_str()
            .unwrap();
        assert!(verify(secret, signature, body), "bad signature {signature}");
        assert!(!verify("another-secret-0123456789", signature, body));
        // Standard Webhooks: HMAC-SHA256 over "<id>.<t>.<body>", base64, "v1,".
        let header = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
        let (webhook_id, t) = (header("webhook-id"), header("webhook-timestamp"));
        let mut mac =
            <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(secret.as_bytes()).unwrap();
        hmac::Mac::update(&mut mac, format!("{webhook_id}.{t}.{body}").as_bytes());
        let expected =
            base64::engine::general_purpose::STANDARD.encode(hmac::Mac::finalize(mac).into_bytes());
        assert_eq!(header("webhook-signature"), format!("v1,{expected}"));
    }
    assert!(
        *receiver.calls.lock().unwrap() > got.len(),
        "the refused callback was not retried"
    );

    // Loopback, link-local and credentials are refused up front unless listed.
    for refused in [
        "http://127.0.0.1:9/hooks".to_owned(),
        "http://[::1]:9/hooks".to_owned(),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        hook_url.replace("http://", "http://user:pw@"),
    ] {
        let mut body = sms("+31612345678", "x");
        body["callback_url"] = json!(refused);
        let (status, answer) = gw.send(&body).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (422, Some("invalid_callback_url")),
            "{refused}: {answer}"
        );
    }

    // Without a secret, callbacks are refused up front.
    let plain = TestGateway::start(&default_twilio(&sim.url())).await;
    let (status, answer) = plain.send(&body).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (422, Some("callbacks_disabled"))
    );
}
