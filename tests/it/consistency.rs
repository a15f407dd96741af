//! Delivery you can trust, through the HTTP API: idempotency, dedup,
//! cancellation, scheduling, expiry, stable message ids.

use crate::support::{FAST_DISPATCH, TestGateway, default_twilio, sms};
use crossgate_tests::{Behaviour, DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, ProviderSim};
use serde_json::{Value, json};

async fn gateway(sim: &ProviderSim) -> TestGateway {
    TestGateway::start(&format!("{FAST_DISPATCH}{}", default_twilio(&sim.url()))).await
}

async fn post_with_key(gw: &TestGateway, key: &str, body: &Value) -> (u16, Option<String>, Value) {
    let response = gw
        .client
        .post(format!("{}/v1/messages", gw.url))
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .map(|v| v.to_str().unwrap().to_owned());
    (
        status,
        replayed,
        response.json().await.unwrap_or(Value::Null),
    )
}

fn in_secs(secs: f64) -> String {
    let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs_f64(secs);
    at.to_string()
}

#[tokio::test]
async fn the_same_idempotency_key_and_body_return_the_first_answer() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim).await;
    let body = sms("+31612345678", "once only");

    let (status, replayed, first) = post_with_key(&gw, "order-42", &body).await;
    assert_eq!((status, replayed), (202, None), "{first}");
    let (status, replayed, second) = post_with_key(&gw, "order-42", &body).await;
    assert_eq!((status, replayed.as_deref()), (202, Some("true")));
    assert_eq!(first, second);

    // The key in the body means the same thing as the header.
    let mut with_field = body.clone();
    with_field["idempotency_key"] = json!("order-43");
    let (_, a) = gw.send(&with_field).await;
    let (_, b) = gw.send(&with_field).await;
    assert_eq!(a["id"], b["id"]);

    // A different request under a used key is refused.
    let (status, _, answer) =
        post_with_key(&gw, "order-42", &sms("+31612345678", "other text")).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["code"], "idempotency_key_reused");

    gw.settled(first["id"].as_str().unwrap()).await;
    assert_eq!(gw.stored_messages(), 2);
    gw.quiesce().await;
    assert_eq!(sim.requests().len(), 2, "each key sent exactly one message");
}

#[tokio::test]
async fn concurrent_retries_with_one_key_store_one_message() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim).await;
    let body = sms("+31612345678", "racing retries");
    let attempts = (0..16).map(|_| post_with_key(&gw, "burst-1", &body));
    let answers = futures::future::join_all(attempts).await;

    let mut ids = Vec::new();
    for (status, _, answer) in &answers {
        match status {
            202 => ids.push(answer["id"].as_str().unwrap().to_owned()),
            409 => assert_eq!(answer["error"]["code"], "idempotency_in_progress"),
            other => panic!("unexpected {other}: {answer}"),
        }
    }
    ids.dedup();
    assert_eq!(
        ids.len(),
        1,
        "every accepted answer names the same message: {ids:?}"
    );
    assert_eq!(gw.stored_messages(), 1);
}

#[tokio::test]
async fn a_dedup_key_lets_one_message_through_per_recipient() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim).await;
    let mut offer = sms("+31612345678", "10% off today");
    offer["dedup_key"] = json!("spring-offer");

    let first = gw.send_ok(&offer).await;
    let mut again = sms("+31612345678", "25% off today");
    again["dedup_key"] = json!("spring-offer");
    let (status, answer) = gw.send(&again).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["id"], first.as_str());
    assert_eq!(answer["duplicate"], true);

    // Another recipient is another scope.
    let mut other = offer.clone();
    other["to"]["phone"] = json!("+31612345679");
    let second = gw.send_ok(&other).await;

    gw.settled(&first).await;
    gw.settled(&second).await;
    let bodies: Vec<String> = sim
        .requests()
        .iter()
        .map(|r| r.field("Body").unwrap().to_owned())
        .collect();
    assert_eq!(bodies.len(), 2);
    assert!(
        !bodies.iter().any(|b| b.contains("25%")),
        "the duplicate was sent: {bodies:?}"
    );
    assert_eq!(gw.stored_messages(), 2);
}

#[tokio::test]
async fn cancellation_stops_pending_messages_and_reports_the_rest() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim).await;

    let mut sent = sms("+31612345678", "your cart misses you");
    sent["cancel_key"] = json!("cart-7");
    let sent = gw.send_ok(&sent).await;
    assert_eq!(gw.settled(&sent).await["status"], "sent");

    let mut reminder = sms("+31612345678", "still thinking about it?");
    reminder["cancel_key"] = json!("cart-7");
    reminder["send_at"] = json!(in_secs(3600.0));
    let (status, answer) = gw.send(&reminder).await;
    assert_eq!(status, 202);
    assert_eq!(answer["status"], "scheduled");
    let scheduled = answer["id"].as_str().unwrap().to_owned();

    let (status, report) = gw
        .post(
            "/v1/cancellations",
            &json!({"cancel_key": "cart-7", "to": {"phone": "+31612345678"}}),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["cancelled"], 1);
    assert_eq!(report["cancelled_ids"], json!([scheduled]));
    assert_eq!(report["not_cancelled"][0]["id"], sent.as_str());
    assert!(
        report["not_cancelled"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("not recalled")
    );

    assert_eq!(gw.message(&scheduled).await["status"], "cancelled");
    // Another recipient's key is untouched.
    let (_, none) = gw
        .post(
            "/v1/cancellations",
            &json!({"cancel_key": "cart-7", "to": {"phone": "+31612345679"}}),
        )
        .await;
    assert_eq!(none["cancelled"], 0);
    assert_eq!(sim.requests().len(), 1);
}

#[tokio::test]
async fn scheduled_messages_wait_and_survive_a_restart() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim).await;
    let send_at = in_secs(1.5);
    let mut later = sms("+31612345678", "see you soon");
    later["send_at"] = json!(send_at);
    let (status, answer) = gw.send(&later).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (202, Some("scheduled"))
    );
    let id = answer["id"].as_str().unwrap().to_owned();
    assert_eq!(gw.message(&id).await["status"], "scheduled");

    let gw = gw.restart().await;
    let message = gw.settled(&id).await;
    assert_eq!(message["status"], "sent", "{message}");
    let started: jiff::Timestamp = message["attempts"][0]["started_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let due: jiff::Timestamp = send_at.parse().unwrap();
    assert!(
        started >= due - jiff::SignedDuration::from_millis(1),
        "sent early: {started} < {due}"
    );
}

#[tokio::test]
async fn a_message_not_delivered_within_its_ttl_expires() {
    let sim = ProviderSim::start().await.unwrap();
    sim.add_account(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, Behaviour::Fail);
    let gw = TestGateway::start(&format!(
        "[dispatch]\nmax_attempts = 100\nbackoff_base_ms = 100\nbackoff_max_ms = 200\n{}",
        default_twilio(&sim.url())
    ))
    .await;
    let mut urgent = sms("+31612345678", "code 1234, valid one minute");
    urgent["ttl"] = json!("1s");
    let id = gw.send_ok(&urgent).await;
    let message = gw.settled(&id).await;
    assert_eq!(message["status"], "expired", "{message}");
    assert!(message["status_reason"].as_str().unwrap().contains("ttl"));
    assert!(!message["attempts"].as_array().unwrap().is_empty());

    let (status, answer) = gw
        .send(&{
            let mut bad = sms("+31612345678", "x");
            bad["ttl"] = json!("soon");
            bad
        })
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (422, Some("invalid_ttl"))
    );
}

#[tokio::test]
async fn retries_carry_the_same_message_id_to_the_provider() {
    let sim = ProviderSim::start().await.unwrap();
    sim.script(DEFAULT_ACCOUNT_SID, [Behaviour::Fail, Behaviour::Fail]);
    let toml = format!(
        "{FAST_DISPATCH}{}status_callback = \"https://gw.example.com/v1/webhooks/twilio\"\n",
        default_twilio(&sim.url())
    );
    let gw = TestGateway::start(&toml).await;
    let id = gw.send_ok(&sms("+31612345678", "steady id")).await;
    assert_eq!(gw.settled(&id).await["status"], "sent");
    let callbacks: Vec<String> = sim
        .requests()
        .iter()
        .map(|r| r.field("StatusCallback").unwrap().to_owned())
        .collect();
    assert_eq!(callbacks.len(), 3);
    assert!(
        callbacks
            .iter()
            .all(|c| c.ends_with(&format!("crossgate_message_id={id}"))),
        "{callbacks:?}"
    );
}
