//! The send API's contract: bad input gets a clear 4xx and stores nothing.

use crate::support::{TestGateway, answer, default_twilio, sms};
use crossgate_tests::{Behaviour, DEFAULT_ACCOUNT_SID, ProviderSim};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn gateway(sim: &ProviderSim, extra: &str) -> TestGateway {
    let toml = format!("{extra}{}", default_twilio(&sim.url()));
    TestGateway::start(&toml).await
}

async fn post_raw(gw: &TestGateway, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let response = gw
        .client
        .post(format!("{}/v1/messages", gw.url))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    answer(response).await
}

#[tokio::test]
async fn bad_requests_get_a_json_error_naming_the_problem_and_store_nothing() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim, "[server]\nmax_body_bytes = 2048\n").await;

    let cases: Vec<(&str, reqwest::Body, u16, &str, Option<&str>)> = vec![
        ("malformed JSON", "{\"channel\": \"sms\",".into(), 400, "invalid_json", None),
        (
            "unknown field",
            json!({"channel": "sms", "to": {"phone": "+31612345678"}, "content": {"text": "x"}, "priority": 1}).to_string().into(),
            400,
            "invalid_json",
            None,
        ),
        (
            "missing phone",
            json!({"channel": "sms", "to": {}, "content": {"text": "x"}}).to_string().into(),
            422,
            "missing_phone",
            Some("to.phone"),
        ),
        (
            "phone without country code",
            sms("0612345678", "x").to_string().into(),
            422,
            "invalid_phone",
            Some("to.phone"),
        ),
        (
            "impossible phone",
            sms("+3161", "x").to_string().into(),
            422,
            "invalid_phone",
            Some("to.phone"),
        ),
        (
            "letters in phone",
            sms("+31abc", "x").to_string().into(),
            422,
            "invalid_phone",
            Some("to.phone"),
        ),
        (
            "unknown channel",
            json!({"channel": "fax", "to": {"phone": "+31612345678"}, "content": {"text": "x"}}).to_string().into(),
            422,
            "unknown_channel",
            Some("channel"),
        ),
        (
            "channel without connector",
            json!({"channel": "whatsapp", "to": {"phone": "+31612345678"}, "content": {"text": "x"}}).to_string().into(),
            422,
            "channel_unavailable",
            Some("channel"),
        ),
        (
            "empty text",
            sms("+31612345678", "  ").to_string().into(),
            422,
            "empty_text",
            Some("content.text"),
        ),
        (
            "oversized body",
            sms("+31612345678", &"x".repeat(4096)).to_string().into(),
            413,
            "body_too_large",
            None,
        ),
    ];
    for (name, body, status, code, field) in cases {
        let (got, answer) = post_raw(&gw, body).await;
        assert_eq!(got, status, "{name}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{name}: {answer}");
        assert!(
            !answer["error"]["message"].as_str().unwrap_or("").is_empty(),
            "{name}: no message"
        );
        if let Some(field) = field {
            assert_eq!(answer["error"]["field"], field, "{name}: {answer}");
        }
    }
    let (_, answer) = post_raw(
        &gw,
        json!({"channel": "sms", "to": {"phone": "+31612345678"}, "content": {"text": "x"}, "priority": 1}).to_string(),
    )
    .await;
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("priority"),
        "{answer}"
    );

    assert_eq!(gw.stored_messages(), 0);
    assert!(sim.requests().is_empty());
}

#[tokio::test]
async fn unknown_message_is_404() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim, "").await;
    let response = gw
        .client
        .get(format!("{}/v1/messages/msg_nope", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn api_keys_are_required_when_configured() {
    let sim = ProviderSim::start().await.unwrap();
    let key = "test-key-0123456789abcdef";
    let gw = TestGateway::start(&format!(
        "[server]\napi_keys = [\"{key}\"]\n{}",
        crossgate_tests::private_twilio(&sim)
    ))
    .await;
    let url = format!("{}/v1/messages", gw.url);
    let body = sms("+31612345678", "hi");

    let missing = gw.client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(missing.status().as_u16(), 401);
    let answer: Value = missing.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "unauthorized");

    let wrong = gw
        .client
        .post(&url)
        .bearer_auth("test-key-0123456789abcdeX")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);

    let right = gw
        .client
        .post(&url)
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status().as_u16(), 202);

    let health = gw
        .client
        .get(format!("{}/healthz", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200, "health checks need no key");
    assert_eq!(gw.stored_messages(), 1);
}

#[tokio::test]
async fn past_max_backlog_new_messages_get_429_until_delivery_catches_up() {
    let sim = ProviderSim::start().await.unwrap();
    // One call at a time, and the first one stalls: whatever is sent next waits.
    sim.script(
        DEFAULT_ACCOUNT_SID,
        [Behaviour::Stall(Duration::from_secs(3))],
    );
    let gw = gateway(
        &sim,
        "[server]\nmax_backlog = 3\n[dispatch]\nconcurrency = 1\n",
    )
    .await;
    let mut accepted = Vec::new();
    for i in 0..3 {
        accepted.push(
            gw.send_ok(&sms("+31612345678", &format!("before {i}")))
                .await,
        );
    }

    // The backlog is counted every 250 ms; until then a few more get in.
    let mut refused = None;
    for i in 0..40 {
        let response = gw
            .client
            .post(format!("{}/v1/messages", gw.url))
            .json(&sms("+31612345678", &format!("during {i}")))
            .send()
            .await
            .unwrap();
        let retry_after = response.headers().get("retry-after").cloned();
        let (status, body) = answer(response).await;
        match status {
            202 => accepted.push(body["id"].as_str().unwrap().to_owned()),
            429 => {
                refused = Some((retry_after, body));
                break;
            }
            other => panic!("unexpected {other}: {body}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (retry_after, body) = refused.expect("a 429 once the backlog passed max_backlog");
    assert_eq!(
        retry_after.as_ref().and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert_eq!(body["error"]["code"], "backlog_full", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("server.max_backlog = 3"),
        "{body}"
    );
    // A refused message was not stored; every accepted one is delivered.
    assert_eq!(gw.stored_messages(), accepted.len() as i64);
    for id in &accepted {
        assert_eq!(gw.settled(id).await["status"], "sent");
    }

    // Caught up: the door is open again (after the next count).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = gw.send(&sms("+31612345678", "after")).await;
        if status == 202 {
            break;
        }
        assert_eq!(status, 429, "{body}");
        assert!(Instant::now() < deadline, "still refused after catching up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Keys have names and scopes, and one caller's idempotency key is not another's.
#[tokio::test]
async fn keys_have_scopes_and_their_own_idempotency_keys() {
    let sim = ProviderSim::start().await.unwrap();
    let (shop, support, other_shop) = (
        "shop-key-0123456789abcdef",
        "support-key-0123456789abc",
        "other-shop-0123456789abcd",
    );
    let gw = TestGateway::start(&format!(
        r#"[server]
api_keys = [
  {{ name = "shop", key = "{shop}", scopes = ["send"] }},
  {{ name = "support", key = "{support}", scopes = ["read", "admin"] }},
  {{ name = "other-shop", key = "{other_shop}", scopes = ["send", "read"] }},
]
{}"#,
        crossgate_tests::private_twilio(&sim)
    ))
    .await;
    let send = |key: &'static str, idempotency: &'static str| {
        let client = gw.client.clone();
        let url = format!("{}/v1/messages", gw.url);
        async move {
            let response = client
                .post(url)
                .bearer_auth(key)
                .header("idempotency-key", idempotency)
                .json(&sms("+31612345678", "your code is 1234"))
                .send()
                .await
                .unwrap();
            let replayed = response.headers().contains_key("idempotent-replayed");
            let (status, body) = answer(response).await;
            (
                status,
                body["id"].as_str().unwrap_or("").to_owned(),
                replayed,
            )
        }
    };
    let (status, first, _) = send(shop, "order-1").await;
    assert_eq!(status, 202);
    let (_, again, replayed) = send(shop, "order-1").await;
    assert_eq!((again.as_str(), replayed), (first.as_str(), true));
    let (status, theirs, replayed) = send(other_shop, "order-1").await;
    assert_eq!(status, 202);
    assert!(
        !replayed && theirs != first,
        "another caller's key is its own"
    );

    // The status one key gets for one request.
    let status_of = |method: reqwest::Method, key: &'static str, path: String| {
        let request = gw
            .client
            .request(method, format!("{}{path}", gw.url))
            .bearer_auth(key);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let get = |key, path| status_of(reqwest::Method::GET, key, path);
    assert_eq!(
        get(shop, format!("/v1/messages/{first}")).await,
        403,
        "send only"
    );
    assert_eq!(get(support, format!("/v1/messages/{first}")).await, 200);
    let (status, _, _) = send(support, "order-2").await;
    assert_eq!(status, 403, "support cannot send");
    // Reporting what a customer did is sending's work, not admin's.
    let event = |key: &'static str| {
        let request = gw
            .client
            .post(format!("{}/v1/events", gw.url))
            .bearer_auth(key)
            .json(&serde_json::json!({"customer_id": "c-1", "name": "signed_up"}));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(event(shop).await, 202);
    assert_eq!(event(support).await, 403);
    let suppress = |key| {
        status_of(
            reqwest::Method::PUT,
            key,
            "/v1/suppressions/sms/+31612345670".into(),
        )
    };
    assert_eq!(
        suppress(other_shop).await,
        403,
        "changing the list is admin"
    );
    assert_eq!(suppress(support).await, 201);
}
