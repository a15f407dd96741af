//! The feed channels end to end: an inbox item delivered, streamed, read
//! (and the message `read`); a feed nobody opens is not chosen; escalation
//! to email when unread in time, and none when read; in-app messages that
//! go unseen fall back; tokens and origins that must be refused.

use crate::support::{FAST_DISPATCH, TestGateway, answer, clock_at, sendgrid_connector};
use crossgate_tests::ProviderSim;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

pub const SECRET: &str = "an inbox secret for the tests only";
pub const PAGE: &str = "http://shop.test:8000";

pub use crossgate_tests::feed_token as token_with;

/// A token for `customer` valid for a day from the pinned clock's start.
pub fn token(customer: &str) -> String {
    let start = crate::support::pinned("12:30").as_millisecond();
    token_with(SECRET, customer, start + 86_400_000)
}

pub fn inbox_config(extra: &str) -> String {
    format!(
        "{FAST_DISPATCH}{}\n[inbox]\nsecret = \"{SECRET}\"\nallowed_origins = [\"{PAGE}\"]\n{extra}",
        clock_at("12:30")
    )
}

async fn gateway(sim: &ProviderSim, routing: &str) -> TestGateway {
    let toml = format!(
        "{}\n[routing]\ndefault = [\"inbox\", \"email\", \"sms\"]\n{routing}\n\
         [categories.marketing]\nconsent = \"opt-out\"\n{}",
        inbox_config(""),
        sendgrid_connector("sendgrid", &sim.url()),
    );
    TestGateway::start(&toml).await
}

/// `GET`/`POST` on the feed API with a customer's token.
async fn feed(gw: &TestGateway, method: &str, path: &str, token: &str) -> (u16, Value) {
    let request = match method {
        "GET" => gw.client.get(format!("{}{path}", gw.url)),
        _ => gw
            .client
            .post(format!("{}{path}", gw.url))
            .header("content-type", "application/json"),
    };
    answer(request.bearer_auth(token).send().await.unwrap()).await
}

async fn customer_with_feed(gw: &TestGateway, id: &str) {
    let profile = json!({"addresses": {"email": format!("{id}@example.com")}});
    assert_eq!(gw.put_customer(id, &profile).await.0, 201);
    // Opening the feed makes it a channel the planner may pick.
    let (status, listed) = feed(gw, "GET", "/v1/inbox/items", &token(id)).await;
    assert_eq!(status, 200, "{listed}");
}

fn offer(customer: &str, text: &str) -> Value {
    json!({
        "customer_id": customer,
        "category": "marketing",
        "content": {
            "subject": "Spring sale",
            "text": text,
            "inbox": {"metadata": {"action_url": "https://shop.example/sale", "data:sku": "A-1"}}
        }
    })
}

/// Poll until the message has `status`.
async fn until_status(gw: &TestGateway, id: &str, status: &str) -> Value {
    let deadline = Instant::now() + crate::support::SETTLE_TIMEOUT;
    loop {
        let message = gw.message(id).await;
        if message["status"] == status {
            return message;
        }
        assert!(
            Instant::now() < deadline,
            "message never became {status}: {message}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn emails(sim: &ProviderSim) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.path == "/v3/mail/send")
        .count()
}

/// Wait (bounded) until the simulator has `n` emails; `what` says why one is due.
async fn until_emails(sim: &ProviderSim, n: usize, what: &str) {
    let deadline = Instant::now() + crate::support::SETTLE_TIMEOUT;
    while emails(sim) < n {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_inbox_item_is_delivered_streamed_and_read() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim, "").await;
    customer_with_feed(&gw, "ada").await;

    // A live stream first: it says the counts at once, then the new item.
    let mut stream = gw
        .client
        .get(format!("{}/v1/inbox/stream?token={}", gw.url, token("ada")))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, "event: counts").await;
    assert!(seen.contains(r#""unseen":0"#), "{seen}");

    let id = gw.send_ok(&offer("ada", "20% off everything")).await;
    let message = until_status(&gw, &id, "delivered").await;
    assert_eq!(message["delivered_by"], "inbox");
    let plan = &message["plan"]["channels"];
    assert_eq!(plan[0]["channel"], "inbox");
    assert_eq!(plan[0]["decision"], "chosen");
    assert_eq!(plan[0]["cost"], 0.0);

    read_until(&mut stream, &mut seen, "event: item").await;
    read_until(&mut stream, &mut seen, r#""unread":1"#).await;
    assert!(seen.contains(&format!(r#""id":"{id}""#)), "{seen}");

    let (status, counts) = feed(&gw, "GET", "/v1/inbox/counts", &token("ada")).await;
    assert_eq!((status, &counts), (200, &json!({"unseen": 1, "unread": 1})));
    let (_, listed) = feed(&gw, "GET", "/v1/inbox/items", &token("ada")).await;
    let item = &listed["items"][0];
    assert_eq!(item["id"], id);
    assert_eq!(item["title"], "Spring sale");
    assert_eq!(item["body"], "20% off everything");
    assert_eq!(item["action_url"], "https://shop.example/sale");
    assert_eq!(item["data"], json!({"sku": "A-1"}));
    assert_eq!(item["category"], "marketing");
    assert_eq!(item["status"], "unseen");

    let (status, read) = feed(
        &gw,
        "POST",
        &format!("/v1/inbox/items/{id}/read"),
        &token("ada"),
    )
    .await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["status"], "read");
    let message = until_status(&gw, &id, "read").await;
    assert_eq!(message["events"][0]["state"], "read", "{message}");
    read_until(&mut stream, &mut seen, r#""unread":0"#).await;
    // The customer's own `message.read` event, as a provider's read would be.
    let conn = rusqlite::Connection::open(&gw.db_path).unwrap();
    let events: Vec<String> = conn
        .prepare("SELECT name FROM events WHERE customer_id = 'ada'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        events.contains(&"message.read".to_owned()),
        "no message.read event: {events:?}"
    );
    // Reading again changes nothing.
    let (status, _) = feed(
        &gw,
        "POST",
        &format!("/v1/inbox/items/{id}/read"),
        &token("ada"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(emails(&sim), 0, "nothing but the inbox went");
}

/// Read the stream into `seen` until it holds `wanted` (bounded: 5 s).
pub async fn read_until(stream: &mut reqwest::Response, seen: &mut String, wanted: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !seen.contains(wanted) {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, stream.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {wanted:?} within 5 s; the stream said:\n{seen}"))
            .expect("stream read")
            .expect("stream still open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn a_feed_nobody_opened_is_not_chosen() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim, "").await;
    let profile = json!({"addresses": {"email": "bo@example.com"}});
    assert_eq!(gw.put_customer("bo", &profile).await.0, 201);
    let id = gw.send_ok(&offer("bo", "hello")).await;
    let message = gw.settled(&id).await;
    assert_eq!(message["delivered_by"], "sendgrid", "{message}");
    let plan = &message["plan"]["channels"];
    assert_eq!(plan[0]["channel"], "inbox");
    assert_eq!(plan[0]["decision"], "unreachable");
    assert_eq!(plan[1]["channel"], "email");
    assert_eq!(plan[1]["decision"], "chosen");
}

async fn advance(gw: &TestGateway, by: &str) {
    let (status, now) = gw.post("/v1/admin/clock", &json!({"advance": by})).await;
    assert_eq!(status, 200, "{now}");
}

#[tokio::test]
async fn an_unread_inbox_item_escalates_to_email_and_a_read_one_does_not() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim, "escalate_after = { inbox = \"2h\" }").await;
    customer_with_feed(&gw, "cy").await;

    let unread = gw.send_ok(&offer("cy", "first offer")).await;
    let read = gw.send_ok(&offer("cy", "second offer")).await;
    until_status(&gw, &unread, "delivered").await;
    until_status(&gw, &read, "delivered").await;
    let message = gw.message(&unread).await;
    assert_eq!(message["plan"]["channels"][0]["escalate_after"], "2h");
    let (status, _) = feed(
        &gw,
        "POST",
        &format!("/v1/inbox/items/{read}/read"),
        &token("cy"),
    )
    .await;
    assert_eq!(status, 200);
    until_status(&gw, &read, "read").await;

    // Not yet: an hour in, nothing escalates.
    advance(&gw, "1h").await;
    gw.quiesce().await;
    assert_eq!(emails(&sim), 0);

    advance(&gw, "61m").await;
    until_emails(&sim, 1, "the unread offer never escalated").await;
    gw.quiesce().await;
    assert_eq!(emails(&sim), 1, "only the unread one went by email");
    let sent: Value = serde_json::from_slice(
        &sim.requests()
            .iter()
            .find(|r| r.path == "/v3/mail/send")
            .unwrap()
            .body,
    )
    .unwrap();
    assert!(sent.to_string().contains("first offer"), "{sent}");
    let escalated = gw.message(&unread).await;
    let channels: Vec<&str> = escalated["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["inbox", "email"], "{escalated}");
    let kept = gw.message(&read).await;
    assert_eq!(kept["attempts"].as_array().unwrap().len(), 1, "{kept}");
}

#[tokio::test]
async fn an_in_app_message_unseen_in_its_ttl_falls_back_and_a_seen_one_does_not() {
    let sim = ProviderSim::start().await.unwrap();
    let toml = format!(
        "{}\n[routing]\ndefault = [\"in_app\", \"email\"]\n\
         [categories.marketing]\nconsent = \"opt-out\"\n{}",
        inbox_config("in_app_ttl = \"1h\"\n"),
        sendgrid_connector("sendgrid", &sim.url()),
    );
    let gw = TestGateway::start(&toml).await;
    customer_with_feed(&gw, "di").await;
    let unseen = gw.send_ok(&offer("di", "banner one")).await;
    let seen = gw.send_ok(&offer("di", "banner two")).await;
    // Sent, not delivered: an in-app message counts only once seen.
    until_status(&gw, &unseen, "sent").await;
    until_status(&gw, &seen, "sent").await;
    let (status, item) = feed(
        &gw,
        "POST",
        &format!("/v1/inbox/items/{seen}/seen"),
        &token("di"),
    )
    .await;
    assert_eq!(status, 200, "{item}");
    assert_eq!(item["channel"], "in_app");
    until_status(&gw, &seen, "delivered").await;

    advance(&gw, "61m").await;
    until_emails(&sim, 1, "the unseen banner never fell back").await;
    gw.quiesce().await;
    assert_eq!(emails(&sim), 1);
    // Gone from the feed once its time is up.
    let (_, listed) = feed(&gw, "GET", "/v1/inbox/items?status=all", &token("di")).await;
    assert_eq!(listed["items"], json!([]), "{listed}");
}

#[tokio::test]
async fn feed_tokens_and_origins_are_checked() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim, "").await;
    customer_with_feed(&gw, "ann").await;
    customer_with_feed(&gw, "ben").await;
    let bens = gw.send_ok(&offer("ben", "for ben only")).await;
    until_status(&gw, &bens, "delivered").await;

    // Ann's token sees nothing of Ben's and cannot mark it.
    let (_, listed) = feed(&gw, "GET", "/v1/inbox/items", &token("ann")).await;
    assert_eq!(listed["items"], json!([]));
    let (status, _) = feed(
        &gw,
        "POST",
        &format!("/v1/inbox/items/{bens}/read"),
        &token("ann"),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(gw.message(&bens).await["status"], "delivered");

    let start = crate::support::pinned("12:30").as_millisecond();
    let refused = [
        ("expired", token_with(SECRET, "ben", start - 1_000)),
        (
            "another secret",
            token_with("someone else's secret", "ben", start + 60_000),
        ),
        ("not a token", "ben".to_owned()),
        (
            "too long-lived",
            token_with(SECRET, "ben", start + 400 * 86_400_000),
        ),
    ];
    for (why, bad) in refused {
        let (status, body) = feed(&gw, "GET", "/v1/inbox/items", &bad).await;
        assert_eq!(status, 401, "{why}: {body}");
        assert_eq!(body["error"]["code"], "invalid_token", "{why}");
    }
    let (status, _) = answer(
        gw.client
            .get(format!("{}/v1/inbox/counts", gw.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401, "no token at all");

    // A page of an allowed origin may call; any other origin is refused.
    let from = |origin: &str| {
        gw.client
            .get(format!("{}/v1/inbox/counts", gw.url))
            .bearer_auth(token("ben"))
            .header("origin", origin)
            .send()
    };
    let allowed = from(PAGE).await.unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(allowed.headers()["access-control-allow-origin"], PAGE);
    let other = from("https://evil.example").await.unwrap();
    assert_eq!(other.status(), 403);
    let preflight = gw
        .client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/v1/inbox/items/{bens}/read", gw.url),
        )
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 403);
    let preflight = gw
        .client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/v1/inbox/items/{bens}/read", gw.url),
        )
        .header("origin", PAGE)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert!(
        preflight.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
}

#[tokio::test]
async fn a_cancel_ends_the_escalation_of_a_message_already_in_the_inbox() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim, "escalate_after = { inbox = \"2h\" }").await;
    customer_with_feed(&gw, "eli").await;
    let mut reminder = offer("eli", "your cart misses you");
    reminder["cancel_key"] = json!("cart-7");
    let id = gw.send_ok(&reminder).await;
    until_status(&gw, &id, "delivered").await;
    // The purchase: the platform cancels; the item is in the feed already,
    // but the email that would follow must not go.
    let (status, answer) = gw
        .post(
            "/v1/cancellations",
            &json!({"customer_id": "eli", "cancel_key": "cart-7"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["cancelled"], 0);
    assert_eq!(answer["escalations_cancelled"], json!([id]));
    advance(&gw, "3h").await;
    gw.quiesce().await;
    assert_eq!(emails(&sim), 0, "the escalation was cancelled");
}
