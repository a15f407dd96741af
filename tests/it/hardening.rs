//! What an attack on a running gateway found, each finding pinned by a test.

use crate::support::{TestGateway, answer, default_twilio, sms};
use crossgate_tests::ProviderSim;
use serde_json::json;

const KEY: &str = "a-test-api-key-of-some-length";

/// Finding 5: input that was accepted and should not have been.
#[tokio::test]
async fn malformed_input_is_refused_and_changes_nothing() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&format!(
        "[regions]\nEU = [\"NL\"]\n[categories.transactional]\nconsent = \"opt-out\"\n{}{}",
        default_twilio(&sim.url()),
        crate::support::sendgrid_connector("sendgrid", &sim.url())
    ))
    .await;
    let (status, _) = gw
        .put_customer(
            "c1",
            &json!({"addresses": {"phone": "+31612345678"}, "region": "EU"}),
        )
        .await;
    assert_eq!(status, 201);

    // A JSON array where an object belongs: serde would read it by position.
    let (status, body) = gw.put_customer("c1", &json!([])).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_json"))
    );
    assert_eq!(
        gw.customer("c1").await["addresses"]["phone"],
        "+31612345678"
    );
    let (status, _) = gw
        .send(&json!(["sms", {"phone": "+31612345678"}, null, null, null, {"text": "hi"}]))
        .await;
    assert_eq!(status, 400);

    // Letters are not keypad digits.
    let (status, body) = gw.send(&sms("+3161234abcd", "hi")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("invalid_phone"))
    );

    // Control and bidi-override characters never reach a provider or a log.
    for text in ["a\u{0}b", "\u{1b}[31mred", "abc\u{202E}cba"] {
        let (status, body) = gw.send(&sms("+31612345678", text)).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("unsafe_text")),
            "{text:?}"
        );
    }

    // Preview refuses the idempotency keys a send refuses.
    let mut request = sms("+31612345678", "hi");
    request["idempotency_key"] = json!("ключ");
    let (status, _) = gw.post("/v1/routes/preview", &request).await;
    assert_eq!(status, 422);

    // Profiles name only configured regions and categories; ids are not paths.
    let (status, body) = gw.put_customer("c2", &json!({"region": "MARS"})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("unknown_region"))
    );
    let consent = json!({"consent": {"sms": {"gossip": {"status": "opted_in", "at": "2026-01-01T00:00:00Z"}}}});
    let (status, body) = gw.put_customer("c2", &consent).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("unknown_category"))
    );
    let (status, _) = gw.put_customer(".hidden", &json!({})).await;
    assert_eq!(status, 422);

    // Headers the message itself sets cannot be overridden.
    let mail = json!({"channel": "sms", "to": {"phone": "+31612345678"},
                      "content": {"text": "hi", "metadata": {"header:Subject": "other"}}});
    let (status, body) = gw.send(&mail).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("reserved_header"))
    );
    // Addresses mail providers refuse are refused here, not at delivery.
    for email in ["ops@localhost", "a@[127.0.0.1]", "a@example"] {
        let mail = json!({"channel": "email", "to": {"email": email}, "content": {"text": "hi"}});
        let (status, body) = gw.send(&mail).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("invalid_email")),
            "{email}: {body}"
        );
        let (status, _) = gw
            .put_customer("c3", &json!({"addresses": {"email": email}}))
            .await;
        assert_eq!(status, 422, "{email}");
    }
    assert_eq!(gw.stored_messages(), 0);
    assert!(sim.requests().is_empty());
}

/// Finding 5: the bearer scheme is case-insensitive.
#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&format!(
        "[server]\napi_keys = [\"{KEY}\"]\n{}",
        crossgate_tests::private_twilio(&sim)
    ))
    .await;
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let response = gw
            .client
            .get(format!("{}/v1/messages/msg_none", gw.url))
            .header("authorization", format!("{scheme} {KEY}"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer(response).await.0, 404, "{scheme}");
    }
    let wrong = gw
        .client
        .get(format!("{}/v1/messages/msg_none", gw.url))
        .header("authorization", format!("Basic {KEY}"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
}

/// Finding 1: callbacks reach public addresses only (a listed origin
/// aside), and their answer is never read.
#[tokio::test]
async fn callbacks_go_only_where_allowed_and_their_answer_is_not_read() {
    use axum::body::Body;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    // Answers 200 with a body that never ends.
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                let endless = futures::stream::repeat_with(|| {
                    Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'x'; 64 * 1024]))
                });
                Body::from_stream(endless)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&format!(
        "[callbacks]\nsecret = \"callback-secret-0123456789\"\nmax_attempts = 1\ntimeout_ms = 2000\nallowed_hosts = [\"http://127.0.0.1:{port}\"]\n{}",
        default_twilio(&sim.url())
    ))
    .await;
    let outbox = |state: &str| -> i64 {
        let conn = rusqlite::Connection::open(&gw.db_path).unwrap();
        conn.query_row(
            "SELECT COUNT(*) FROM callbacks_outbox WHERE state = ?1",
            [state],
            |r| r.get(0),
        )
        .unwrap()
    };

    let mut listed = sms("+31612345678", "listed");
    listed["callback_url"] = json!(format!("http://127.0.0.1:{port}/hooks"));
    let id = gw.send_ok(&listed).await;
    gw.settled(&id).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while outbox("pending") + outbox("leased") > 0 || calls.load(Ordering::SeqCst) < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "callbacks did not drain"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        outbox("abandoned"),
        0,
        "an endless answer failed the callback"
    );

    // The same receiver by a name that resolves to loopback is not listed.
    let before = calls.load(Ordering::SeqCst);
    let mut unlisted = sms("+31612345678", "unlisted");
    unlisted["callback_url"] = json!(format!("http://localhost:{port}/hooks"));
    let id = gw.send_ok(&unlisted).await;
    gw.settled(&id).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while outbox("abandoned") < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "callbacks to localhost were not refused"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        before,
        "a refused callback reached loopback"
    );
}

/// Findings 2 and 3: slow or oversized requests are cut short, and the
/// default (no API keys) configuration is closed to cross-site posts and
/// DNS rebinding.
#[tokio::test]
async fn slow_oversized_and_cross_site_requests_are_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&format!(
        "[server]\nheader_timeout_ms = 300\n{}",
        default_twilio(&sim.url())
    ))
    .await;
    let addr = gw.url.trim_start_matches("http://").to_owned();
    // What the server wrote, and whether it closed the connection (within
    // a generous bound, so a server that never closes fails the test).
    let read_all = |mut stream: tokio::net::TcpStream| async move {
        let mut got = Vec::new();
        let closed = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_end(&mut got),
        )
        .await
        .is_ok();
        (String::from_utf8_lossy(&got).into_owned(), closed)
    };

    // A body announced far over the limit: refused before it is sent.
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(
            format!(
                "POST /v1/messages HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let (answer, _) = read_all(stream).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(!answer.contains("100 Continue"), "{answer}");

    // Headers that never finish: the connection is closed, not held.
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: ")
        .await
        .unwrap();
    let (answer, closed) = read_all(stream).await;
    assert!(
        closed,
        "a half-sent request held its connection: {answer:?}"
    );

    // A "simple" cross-site request (text/plain) and a rebinding Host.
    let plain = gw
        .client
        .post(format!("{}/v1/messages", gw.url))
        .header("content-type", "text/plain")
        .body(sms("+31612345678", "hi").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status().as_u16(), 415);
    let rebound = gw
        .client
        .get(format!("{}/v1/customers/c1", gw.url))
        .header("host", "attacker.example")
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status().as_u16(), 421);
    let own = gw
        .client
        .get(format!("{}/v1/customers/c1", gw.url))
        .header(
            "host",
            format!("localhost:{}", addr.rsplit(':').next().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(own.status().as_u16(), 404, "addressed to its own name");
    assert_eq!(gw.stored_messages(), 0);
}
