//! Consent and secrets a stranger could change, and input that broke what it
//! should not: what a third look at a running gateway found, each finding
//! pinned by a test (the PostgreSQL ones, 17 to 19, are in `nodes`; the
//! full disk, 20, is in `disk_full`).

use crate::support::{FAST_DISPATCH, TestGateway, answer, default_twilio, sendgrid_connector, sms};
use crate::suppressions::{event_key, inbound_sms, inbound_sms_as, sendgrid_events_at};
use crossgate::customer::unsubscribe::{Unsubscribe, sign};
use crossgate_tests::{ProviderSim, private_twilio};
use serde_json::{Value, json};

const PUBLIC_URL: &str = "https://gw.example.com";
const PHONE: &str = "+31612345678";

fn categories() -> &'static str {
    "[categories.transactional]\nconsent = \"opt-out\"\n[categories.marketing]\nconsent = \"opt-in\"\n"
}

/// SMS and email against the simulator, webhooks signed for `PUBLIC_URL`.
async fn gateway(sim: &ProviderSim, extra: &str) -> TestGateway {
    TestGateway::start(&format!(
        "[server]\npublic_url = \"{PUBLIC_URL}\"\n{FAST_DISPATCH}{}{}{}{extra}",
        categories(),
        default_twilio(&sim.url()),
        sendgrid_connector("sendgrid", &sim.url()),
    ))
    .await
}

/// The customer's stored consent on `channel` in `category`, if any.
async fn consent(gw: &TestGateway, customer: &str, channel: &str, category: &str) -> Value {
    gw.customer(customer).await["consent"][channel][category].clone()
}

/// A POST of `body` to `/u/{token}`, as a mail client's one-click sends it.
async fn one_click(gw: &TestGateway, token: &str) -> u16 {
    gw.client
        .post(format!("{}/u/{token}", gw.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn link(secret: &str, customer: &str, category: &str) -> String {
    let who = Unsubscribe {
        customer_id: customer.into(),
        category: category.into(),
        expires_at: jiff::Timestamp::now().as_millisecond() + 3_600_000,
    };
    sign(secret.as_bytes(), &who)
}

/// Finding 1: a secret this repository ships never guards a gateway others
/// can reach, and a default install signs its links with a key of its own.
#[tokio::test]
async fn shipped_secrets_guard_nothing_a_stranger_can_reach() {
    let sim = ProviderSim::start().await.unwrap();
    let keys = "[server]\napi_keys = [\"a-key-of-this-test-only\"]\n";
    let shipped = format!(
        "{keys}[unsubscribe]\nsecret = \"local-development-unsubscribe-secret\"\n{}",
        default_twilio(&sim.url())
    );
    let refused = crossgate::config::parse("shipped.toml", &shipped, &|_| None)
        .expect_err("shipped secrets with API keys")
        .to_string();
    for key in ["unsubscribe.secret", "connectors[0].config.auth_token"] {
        assert!(refused.contains(key), "{key} not refused:\n{refused}");
    }
    assert!(
        refused.contains("shipped in Crossgate's repository"),
        "{refused}"
    );
    // Off loopback it is the same (and keys are needed anyway).
    let open = format!(
        "[server]\nlisten = \"0.0.0.0:8080\"\napi_keys = [\"a-key-of-this-test-only\"]\n{}",
        default_twilio(&sim.url())
    );
    assert!(crossgate::config::parse("open.toml", &open, &|_| None).is_err());
    // Nor may a reachable gateway let a request move its clock.
    let manual = format!(
        "[server]\nlisten = \"0.0.0.0:8080\"\napi_keys = [\"a-key-of-this-test-only\"]\n[clock]\nmode = \"manual\"\n{}",
        private_twilio(&sim)
    );
    let refused = crossgate::config::parse("manual.toml", &manual, &|_| None)
        .expect_err("a manual clock off loopback")
        .to_string();
    assert!(refused.contains("clock.mode"), "{refused}");
    // A loopback gateway without keys, as `make run` starts it, may use them.
    let local = format!("{}{}", categories(), default_twilio(&sim.url()));
    assert!(crossgate::config::parse("local.toml", &local, &|_| None).is_ok());
    // With keys, credentials of one's own are fine.
    let own = format!("{keys}{}", private_twilio(&sim));
    assert!(crossgate::config::parse("own.toml", &own, &|_| None).is_ok());

    // The shipped config's own unsubscribe secret opts nobody out of a
    // default install: it made and stored its own.
    let gw = gateway(&sim, "").await;
    assert_eq!(
        gw.put_customer("ana", &json!({"addresses": {"email": "ana@example.com"}}))
            .await
            .0,
        201
    );
    let forged = link("local-development-unsubscribe-secret", "ana", "marketing");
    assert_eq!(one_click(&gw, &forged).await, 403);
    assert_eq!(consent(&gw, "ana", "email", "marketing").await, Value::Null);
    let stored: String = rusqlite::Connection::open(&gw.db_path)
        .unwrap()
        .query_row(
            "SELECT value FROM gateway_state WHERE name = 'unsubscribe'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored.len(), 64, "32 random bytes, hex");
    // Kept across restarts: a link in a mail sent before still works.
    let gw = gw.restart().await;
    let genuine = link(&stored, "ana", "marketing");
    assert_eq!(one_click(&gw, &genuine).await, 200);
    assert_eq!(
        consent(&gw, "ana", "email", "marketing").await["status"],
        "opted_out"
    );
}

/// Finding 2: "Yes" answers what was asked and grants nothing; START undoes
/// what STOP withdrew and grants nothing either.
#[tokio::test]
async fn a_reply_never_grants_consent_and_start_only_undoes_stop() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim, "").await;
    gw.put_customer("bo", &json!({"addresses": {"phone": PHONE}}))
        .await;

    let (status, applied) = inbound_sms(&gw, PHONE, "Yes").await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(
        (
            applied["replies"].as_u64(),
            applied["consent_changes"].as_u64()
        ),
        (Some(1), Some(0))
    );
    assert_eq!(consent(&gw, "bo", "sms", "marketing").await, Value::Null);

    let (_, applied) = inbound_sms(&gw, PHONE, "STOP").await;
    assert_eq!(applied["consent_changes"], 1, "{applied}");
    for category in ["marketing", "transactional"] {
        assert_eq!(
            consent(&gw, "bo", "sms", category).await["status"],
            "opted_out"
        );
    }
    let (_, applied) = inbound_sms(&gw, PHONE, "start").await;
    assert_eq!(applied["consent_changes"], 1, "{applied}");
    // Back to each category's default: transactional goes, marketing
    // still needs the customer's own opt-in.
    assert_eq!(gw.customer("bo").await["consent"], Value::Null);
    let mut marketing =
        json!({"customer_id": "bo", "category": "marketing", "content": {"text": "Sale"}});
    let (_, refused) = gw.send(&marketing).await;
    assert_eq!(refused["status"], "suppressed", "{refused}");
    marketing["category"] = json!("transactional");
    let (status, _) = gw.send(&marketing).await;
    assert_eq!(status, 202);

    // A START never lifts what the customer or support decided.
    let patch = json!({"sms": {"transactional": {"status": "opted_out", "source": "support"}}});
    let (status, _) = answer(
        gw.client
            .patch(format!("{}/v1/customers/bo/consent", gw.url))
            .json(&patch)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let (_, applied) = inbound_sms(&gw, PHONE, "START").await;
    assert_eq!(applied["consent_changes"], 0, "{applied}");
    assert_eq!(
        consent(&gw, "bo", "sms", "transactional").await["source"],
        "support"
    );
}

/// Finding 2, what replaces it: a double opt-in. The platform asks in a
/// message; the customer's YES to it, on its channel and within its window,
/// grants the category, recorded as such. Once.
#[tokio::test]
async fn a_yes_to_a_message_that_asked_grants_consent_once() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim, "[clock]\nmode = \"manual\"\n").await;
    gw.put_customer(
        "lu",
        &json!({"addresses": {"phone": PHONE, "email": "lu@example.com"}}),
    )
    .await;
    let ask = |window: &str| {
        json!({"customer_id": "lu", "category": "transactional", "channels": ["sms"],
               "content": {"text": "Reply YES to get our offers by SMS"},
               "consent_request": {"category": "marketing", "window": window}})
    };
    // A window that has passed grants nothing.
    let late = gw.send_ok(&ask("1s")).await;
    assert_eq!(gw.settled(&late).await["status"], "sent");
    let (status, moved) = gw.post("/v1/admin/clock", &json!({"advance": "2s"})).await;
    assert_eq!(status, 200, "{moved}");
    let (_, applied) = inbound_sms(&gw, PHONE, "YES").await;
    assert_eq!(applied["consent_changes"], 0, "{applied}");

    let asked = gw.send_ok(&ask("1h")).await;
    assert_eq!(gw.settled(&asked).await["status"], "sent");
    let (_, applied) = inbound_sms(&gw, PHONE, " yes ").await;
    assert_eq!(
        (
            applied["replies"].as_u64(),
            applied["consent_changes"].as_u64()
        ),
        (Some(1), Some(1)),
        "{applied}"
    );
    let given = consent(&gw, "lu", "sms", "marketing").await;
    assert_eq!(given["status"], "opted_in");
    assert_eq!(given["source"], format!("double-opt-in {asked}"));
    let (_, applied) = inbound_sms(&gw, PHONE, "YES").await;
    assert_eq!(
        applied["consent_changes"], 0,
        "one YES per request: {applied}"
    );
    // The grant is for the channel that asked.
    assert_eq!(consent(&gw, "lu", "email", "marketing").await, Value::Null);

    for (request, what) in [
        (
            json!({"channel": "sms", "to": {"phone": PHONE}, "content": {"text": "Reply YES"},
                "consent_request": {"category": "marketing"}}),
            "an address send",
        ),
        (
            json!({"customer_id": "lu", "category": "transactional", "channels": ["email"],
                "content": {"text": "Reply YES"}, "consent_request": {"category": "marketing"}}),
            "email only",
        ),
        (
            json!({"customer_id": "lu", "category": "transactional", "content": {"text": "Reply YES"},
                "consent_request": {"category": "gossip"}}),
            "an unknown category",
        ),
        (
            json!({"customer_id": "lu", "category": "transactional", "content": {"text": "Reply YES"},
                "consent_request": {"category": "marketing", "window": "30d"}}),
            "a month",
        ),
    ] {
        let (status, answer) = gw.send(&request).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (422, Some("invalid_consent_request")),
            "{what}: {answer}"
        );
    }
}

/// Finding 3: a verified callback is applied once, and a SendGrid batch
/// signed long ago is refused.
#[tokio::test]
async fn replayed_callbacks_change_nothing() {
    let sim = ProviderSim::start().await.unwrap();
    let (signing, public) = event_key();
    let gw = gateway(&sim, &format!("event_webhook_public_key = \"{public}\"\n")).await;

    let (_, stop) = inbound_sms_as(&gw, PHONE, "STOP", "SM_stop_1").await;
    assert_eq!(stop["suppressions"], 1, "{stop}");
    let (_, start) = inbound_sms_as(&gw, PHONE, "START", "SM_start_1").await;
    assert_eq!(start["suppressions"], 1, "{start}");
    // The STOP captured and posted again: the number stays reachable.
    let (status, replayed) = inbound_sms_as(&gw, PHONE, "STOP", "SM_stop_1").await;
    assert_eq!(status, 200);
    assert_eq!(replayed["duplicate"], true, "{replayed}");
    assert_eq!(
        gw.get(&format!("/v1/suppressions/sms/{PHONE}")).await.0,
        404
    );

    let unsubscribe =
        json!([{"email": "cy@example.com", "event": "unsubscribe", "sg_event_id": "e1"}]);
    let an_hour_ago = jiff::Timestamp::now().as_second() - 3600;
    let (status, refused) = sendgrid_events_at(&gw, &signing, &unsubscribe, an_hour_ago).await;
    assert_eq!(status, 401, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("replay"),
        "{refused}"
    );
    let now = jiff::Timestamp::now().as_second();
    let (status, applied) = sendgrid_events_at(&gw, &signing, &unsubscribe, now).await;
    assert_eq!(
        (status, &applied["suppressions"]),
        (200, &json!(1)),
        "{applied}"
    );
    // Support lifts it; the same signed batch again does not put it back.
    let lifted = gw
        .client
        .delete(format!("{}/v1/suppressions/email/cy@example.com", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(lifted.status().as_u16(), 204);
    let (_, again) = sendgrid_events_at(&gw, &signing, &unsubscribe, now).await;
    assert_eq!(again["duplicate"], true, "{again}");
    assert_eq!(gw.get("/v1/suppressions/email/cy@example.com").await.0, 404);
}

/// Finding 4: a SendGrid batch far over the API's 64 KiB is taken whole.
#[tokio::test]
async fn a_large_sendgrid_batch_is_applied() {
    let sim = ProviderSim::start().await.unwrap();
    let (signing, public) = event_key();
    let gw = gateway(&sim, &format!("event_webhook_public_key = \"{public}\"\n")).await;
    let events: Vec<Value> = (0..300)
        .map(|i| {
            json!({"email": format!("reader{i}@example.com"), "event": "spamreport",
                   "sg_event_id": format!("evt-{i}"), "useragent": "x".repeat(400)})
        })
        .collect();
    let batch = Value::Array(events);
    assert!(batch.to_string().len() > 100 * 1024);
    let now = jiff::Timestamp::now().as_second();
    let (status, applied) = sendgrid_events_at(&gw, &signing, &batch, now).await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["suppressions"], 300);
    assert_eq!(
        gw.get_ok("/v1/suppressions/email/reader299@example.com")
            .await["reason"],
        "opt_out"
    );
    // The platform API keeps its own, smaller limit.
    let big = json!({"channel": "sms", "to": {"phone": PHONE}, "content": {"text": "x"},
                     "metadata_padding": "y".repeat(70 * 1024)});
    assert_eq!(gw.send(&big).await.0, 413);
}

/// Finding 5: a link to a category the gateway does not have changes nothing.
#[tokio::test]
async fn an_unsubscribe_link_for_an_unknown_category_is_not_found() {
    let sim = ProviderSim::start().await.unwrap();
    let secret = "unsubscribe-secret-of-this-test";
    let gw = gateway(&sim, &format!("[unsubscribe]\nsecret = \"{secret}\"\n")).await;
    gw.put_customer("di", &json!({"addresses": {"email": "di@example.com"}}))
        .await;
    assert_eq!(one_click(&gw, &link(secret, "di", "gossip")).await, 404);
    assert_eq!(gw.customer("di").await["consent"], Value::Null);
    assert_eq!(one_click(&gw, &link(secret, "di", "marketing")).await, 200);
}

/// Finding 6: an event is the customer's fact: stored whatever its
/// conversion value says, and never a 500.
#[tokio::test]
async fn an_event_is_stored_whatever_its_conversion_value() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(
        &sim,
        "[conversions.purchase]\nvalue = \"properties.amount\"\ncurrency = \"EUR\"\n",
    )
    .await;
    for properties in [
        json!({}),
        json!({"amount": "NaN"}),
        json!({"amount": "inf"}),
        json!({"amount": 1e308}),
        json!({"amount": "twelve"}),
    ] {
        let (status, answer) = gw
            .post(
                "/v1/events",
                &json!({"customer_id": "ed", "name": "purchase", "properties": properties}),
            )
            .await;
        assert_eq!(status, 202, "{properties}: {answer}");
        assert!(
            answer["conversion_warning"]
                .as_str()
                .is_some_and(|w| w.contains("without value")),
            "{answer}"
        );
        let id = answer["id"].as_str().unwrap();
        let conversion = gw.get_ok(&format!("/v1/conversions/{id}")).await;
        assert_eq!(
            conversion["value"],
            Value::Null,
            "recorded without value: {conversion}"
        );
    }
    let (status, answer) = gw
        .post(
            "/v1/events",
            &json!({"customer_id": "ed", "name": "purchase", "properties": {"amount": "42.50"}}),
        )
        .await;
    assert_eq!(status, 202);
    assert!(answer.get("conversion_warning").is_none(), "{answer}");
}

/// Finding 7: nothing stands beside a batch's `events` unread.
#[tokio::test]
async fn an_event_batch_with_unknown_fields_is_refused() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim, "").await;
    let one = json!({"customer_id": "fa", "name": "signed_up"});
    for body in [
        json!({"events": [one], "extra": 1}),
        json!({"events": [one], "customer_id": "fa", "name": "signed_up"}),
    ] {
        let (status, answer) = gw.post("/v1/events", &body).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some("invalid_json")),
            "{body}: {answer}"
        );
    }
    assert_eq!(
        gw.post("/v1/events", &json!({"events": [one]})).await.0,
        202
    );
}

/// Finding 8: a segment too large to count is refused when defined.
#[tokio::test]
async fn a_segment_with_too_many_filters_is_refused() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim, "").await;
    let did: Vec<Value> = (0..1000)
        .map(|i| json!({"event": format!("e{i}"), "within": "30d"}))
        .collect();
    let (status, answer) = gw.put("/v1/segments/huge", &json!({"did": did})).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(gw.get("/v1/segments/huge").await.0, 404);
    let did: Vec<Value> = (0..32)
        .map(|i| json!({"event": format!("e{i}"), "within": "30d"}))
        .collect();
    assert_eq!(
        gw.put("/v1/segments/most", &json!({"did": did})).await.0,
        201
    );
    assert_eq!(gw.get_ok("/v1/segments/most/count").await["count"], 0);
}

/// Finding 9: a report covers a bounded period.
#[tokio::test]
async fn a_report_covers_at_most_a_year_and_a_day() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim, "").await;
    let (status, answer) = gw
        .get("/v1/reports/channels?from=2000-01-01T00:00:00Z&to=2026-01-01T00:00:00Z")
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (422, Some("invalid_range"))
    );
    assert_eq!(
        gw.get("/v1/reports/channels?from=2025-01-01T00:00:00Z&to=2026-01-01T00:00:00Z")
            .await
            .0,
        200
    );
}

/// Finding 10: campaigns need their own scope and stay under the operator's
/// rate; a broadcast is its creator's to cancel; callers cannot post the
/// gateway's own events or reach its keys.
#[tokio::test]
async fn a_send_key_cannot_run_campaigns_or_reach_the_gateways_own_keys() {
    let sim = ProviderSim::start().await.unwrap();
    let (sender, marketer, other) = (
        "sender-key-0123456789ab",
        "marketer-key-0123456789a",
        "other-marketer-0123456789",
    );
    let gw = TestGateway::start(&format!(
        r#"[server]
api_keys = [
  {{ name = "shop", key = "{sender}", scopes = ["send", "read"] }},
  {{ name = "marketing", key = "{marketer}", scopes = ["campaigns", "read"] }},
  {{ name = "agency", key = "{other}", scopes = ["campaigns"] }},
]
[broadcasts]
rate_per_second = 50
[segments.everyone]
reachable = ["sms"]
{}{}"#,
        categories(),
        private_twilio(&sim)
    ))
    .await;
    let call = |key: &'static str, method: reqwest::Method, path: &str, body: Value| {
        let request = gw
            .client
            .request(method, format!("{}{path}", gw.url))
            .bearer_auth(key)
            .json(&body);
        async move { answer(request.send().await.unwrap()).await }
    };
    let broadcast = json!({"segment": "everyone", "category": "transactional",
                           "content": {"text": "Open today"}});
    let (status, answer) = call(
        sender,
        reqwest::Method::POST,
        "/v1/broadcasts",
        broadcast.clone(),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (403, Some("insufficient_scope"))
    );
    let (status, _) = call(
        sender,
        reqwest::Method::PUT,
        "/v1/segments/mine",
        json!({"reachable": ["sms"]}),
    )
    .await;
    assert_eq!(status, 403);

    let mut fast = broadcast.clone();
    fast["rate_per_second"] = json!(10_000);
    let (status, answer) = call(marketer, reqwest::Method::POST, "/v1/broadcasts", fast).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (422, Some("invalid_rate")),
        "{answer}"
    );
    let mut claimed = broadcast.clone();
    claimed["created_by"] = json!("agency");
    assert_eq!(
        call(marketer, reqwest::Method::POST, "/v1/broadcasts", claimed)
            .await
            .0,
        422
    );
    let (status, created) =
        call(marketer, reqwest::Method::POST, "/v1/broadcasts", broadcast).await;
    assert_eq!(status, 202, "{created}");
    let cancel = format!("/v1/broadcasts/{}/cancel", created["id"].as_str().unwrap());
    let (status, answer) = call(other, reqwest::Method::POST, &cancel, json!({})).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (403, Some("not_yours"))
    );
    assert_eq!(
        call(marketer, reqwest::Method::POST, &cancel, json!({}))
            .await
            .0,
        200
    );

    // The gateway's own event names and keys are not the caller's.
    for name in ["message.read", "message.received"] {
        let (status, answer) = call(
            sender,
            reqwest::Method::POST,
            "/v1/events",
            json!({"customer_id": "gi", "name": name}),
        )
        .await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (422, Some("reserved_event_name"))
        );
    }
    let (status, sent) = call(
        sender,
        reqwest::Method::POST,
        "/v1/messages",
        json!({"channel": "sms", "to": {"phone": PHONE}, "content": {"text": "hi"},
               "cancel_key": "journey:run_1"}),
    )
    .await;
    assert_eq!(status, 202, "{sent}");
    let id = sent["id"].as_str().unwrap();
    let db = rusqlite::Connection::open(&gw.db_path).unwrap();
    let stored: String = db
        .query_row("SELECT cancel_key FROM messages WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(stored, "api:shop:journey:run_1");
    let (_, shown) = call(
        sender,
        reqwest::Method::GET,
        &format!("/v1/messages/{id}"),
        Value::Null,
    )
    .await;
    assert_eq!(shown["cancel_key"], "journey:run_1");
}

/// Finding 11: without keys, a cross-site form cannot change anything, and
/// every route answers only to the gateway's own names.
#[tokio::test]
async fn without_keys_a_cross_site_post_and_a_foreign_host_are_refused() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim, "").await;
    for path in ["/v1/admin/reload", "/v1/broadcasts/bc_x/cancel"] {
        let bare = gw
            .client
            .post(format!("{}{path}", gw.url))
            .send()
            .await
            .unwrap();
        assert_eq!(bare.status().as_u16(), 415, "{path}");
        let form = gw
            .client
            .post(format!("{}{path}", gw.url))
            .header("content-type", "text/plain")
            .send()
            .await
            .unwrap();
        assert_eq!(form.status().as_u16(), 415, "{path}");
    }
    let programmatic = gw
        .client
        .post(format!("{}/v1/broadcasts/bc_x/cancel", gw.url))
        .header("x-requested-with", "platform")
        .send()
        .await
        .unwrap();
    assert_eq!(programmatic.status().as_u16(), 404);
    for path in ["/metrics", "/u/some-token", "/openapi.json"] {
        let rebound = gw
            .client
            .get(format!("{}{path}", gw.url))
            .header("host", "attacker.example")
            .send()
            .await
            .unwrap();
        assert_eq!(rebound.status().as_u16(), 421, "{path}");
    }
    let probe = gw
        .client
        .get(format!("{}/readyz", gw.url))
        .header("host", "lb-probe.internal")
        .send()
        .await
        .unwrap();
    assert_eq!(
        probe.status().as_u16(),
        200,
        "load balancers probe by any name"
    );
}

/// Finding 12: a customer's runs come a bounded page at a time.
#[tokio::test]
async fn a_customers_runs_are_paged() {
    let sim = ProviderSim::start().await.unwrap();
    let journeys: String = (0..5)
        .map(|i| {
            format!("[journeys.j{i}]\ntrigger = \"t{i}\"\n[[journeys.j{i}.steps]]\nid = \"wait\"\nwait = \"1d\"\n")
        })
        .collect();
    let gw = gateway(&sim, &journeys).await;
    gw.put_customer("hu", &json!({"addresses": {"phone": PHONE}}))
        .await;
    for i in 0..5 {
        let (status, _) = gw
            .post(
                "/v1/events",
                &json!({"customer_id": "hu", "name": format!("t{i}")}),
            )
            .await;
        assert_eq!(status, 202);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let mut seen = Vec::new();
    loop {
        seen.clear();
        let mut after = String::new();
        for _ in 0..10 {
            let page = gw
                .get_ok(&format!("/v1/customers/hu/journeys?limit=2{after}"))
                .await;
            let runs = page["runs"].as_array().unwrap();
            assert!(runs.len() <= 2);
            seen.extend(runs.iter().map(|r| r["id"].as_str().unwrap().to_owned()));
            match page["next"].as_str() {
                Some(next) => after = format!("&after={next}"),
                None => break,
            }
        }
        if seen.len() == 5 || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let unique: std::collections::HashSet<&String> = seen.iter().collect();
    assert_eq!((seen.len(), unique.len()), (5, 5), "{seen:?}");
    for bad in ["limit=0", "limit=101", "limit=x", "color=red"] {
        let (status, _) = gw.get(&format!("/v1/customers/hu/journeys?{bad}")).await;
        assert!(status == 400 || status == 422, "{bad}: {status}");
    }
}

/// Finding 13: a plugin's own requests follow `wasi:http`'s rules: no
/// `Host` of its choosing, no tunnel, a bounded body; a loop of refused
/// requests costs one log line, not thousands.
#[tokio::test]
async fn a_plugin_cannot_spoof_host_tunnel_or_upload_without_bound() {
    let sim = ProviderSim::start().await.unwrap();
    let hostile = |name: &str, mode: &str| {
        format!(
            "\n[[connectors]]\nname = \"{name}\"\nplugin = \"test_faults.wasm\"\nchannel = \"sms\"\nallowed_hosts = [\"{url}\"]\n[connectors.config]\nmode = \"{mode}\"\nurl = \"{url}/probe\"\n",
            url = sim.url()
        )
    };
    let gw = TestGateway::start(&format!(
        "[dispatch]\nmax_attempts = 1\n{}{}{}{}",
        hostile("spoof", "spoof-host"),
        hostile("tunnel", "connect"),
        hostile("upload", "huge-body"),
        default_twilio(&sim.url()),
    ))
    .await;
    let id = gw.send_ok(&sms(PHONE, "through the hostile ones")).await;
    let message = gw.settled(&id).await;
    assert_eq!(message["status"], "sent", "{message:#}");
    let attempts = message["attempts"].as_array().unwrap();
    let reasons: Vec<(&str, &str)> = attempts
        .iter()
        .take(3)
        .map(|a| {
            (
                a["error"]["code"].as_str().unwrap_or(""),
                a["error"]["message"].as_str().unwrap_or(""),
            )
        })
        .collect();
    for ((code, why), expected) in reasons.iter().zip(["Host", "CONNECT", "body over"]) {
        assert_eq!(*code, "egress_denied", "{why}");
        assert!(why.contains(expected), "{why}");
    }
    assert!(
        sim.requests().iter().all(|r| r.path != "/probe"),
        "a refused request reached the network"
    );
}

/// Findings 14 and 15: what would become a mail header is one line, the
/// unsubscribe and SendGrid headers are the gateway's, and an address no
/// mail provider here takes is refused at once.
#[tokio::test]
async fn header_injection_and_unsendable_addresses_are_refused() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim, "").await;
    let mail = |content: Value| json!({"channel": "email", "to": {"email": "jo@example.com"}, "content": content});
    let (status, answer) = gw
        .send(&mail(
            json!({"subject": "a\r\nBcc: x@example.org", "text": "hi"}),
        ))
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (422, Some("unsafe_text")),
        "{answer}"
    );
    for header in [
        "header:List-Unsubscribe",
        "header:list-unsubscribe-post",
        "header:X-SMTPAPI",
    ] {
        let (status, answer) = gw
            .send(&mail(json!({"text": "hi", "metadata": {header: "x"}})))
            .await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (422, Some("reserved_header")),
            "{header}"
        );
    }
    let (status, answer) = gw
        .send(&mail(
            json!({"text": "hi", "metadata": {"header:X-Campaign": "a\nb"}}),
        ))
        .await;
    assert_eq!(status, 422, "{answer}");
    for email in ["josé@example.com", "jo@bücher.de"] {
        let (status, answer) = gw
            .send(&json!({"channel": "email", "to": {"email": email}, "content": {"text": "hi"}}))
            .await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (422, Some("invalid_email")),
            "{email}"
        );
    }
    assert_eq!(gw.stored_messages(), 0);
    assert!(sim.requests().is_empty());
}

/// Finding 16: consent without a time is taken by both routes alike;
/// a broadcast that could send nothing is refused before it starts.
#[tokio::test]
async fn consent_times_default_alike_and_empty_broadcasts_are_refused() {
    let sim = ProviderSim::start().await.unwrap();
    let extra = format!(
        "[segments.everyone]\nreachable = [\"sms\"]\n{}",
        crate::support::clock_at("12:30")
    );
    let gw = gateway(&sim, &extra).await;
    let (status, answer) = gw
        .put_customer(
            "ka",
            &json!({"addresses": {"phone": PHONE},
                    "consent": {"sms": {"marketing": {"status": "opted_in", "source": "checkout"}}}}),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let given = consent(&gw, "ka", "sms", "marketing").await;
    assert_eq!(given["status"], "opted_in");
    // Stamped by the gateway's clock, as a PATCH without `at` is.
    let at = given["at"].as_str().unwrap_or_default();
    assert!(at.starts_with("2026-03-04T12:3"), "{given}");

    for (content, what) in [
        (json!({"text": "   "}), "empty text"),
        (json!({"text": "a\u{0}b"}), "a control character"),
        (Value::Null, "neither content nor template"),
    ] {
        let mut broadcast = json!({"segment": "everyone", "category": "marketing"});
        if !content.is_null() {
            broadcast["content"] = content;
        }
        let (status, answer) = gw.post("/v1/broadcasts", &broadcast).await;
        assert_eq!(status, 422, "{what}: {answer}");
    }
    assert_eq!(gw.get_ok("/v1/broadcasts").await["broadcasts"], json!([]));
}

/// Finding 13, the log: a plugin that keeps asking after it is refused
/// costs a line or two per call, not one per refused request.
#[tokio::test]
async fn a_plugin_refused_a_thousand_times_writes_a_line_or_two() {
    let sim = ProviderSim::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[dispatch]\nmax_attempts = 1\n\n[[connectors]]\nname = \"stubborn\"\nplugin = \"test_faults.wasm\"\nchannel = \"sms\"\nallowed_hosts = [\"{url}\"]\n[connectors.config]\nmode = \"stubborn\"\nurl = \"{url}/again\"\n{}",
        default_twilio(&sim.url()),
        url = sim.url()
    );
    let gateway = crate::support::child::ChildGateway::spawn(dir.path(), &toml).await;
    let sent = reqwest::Client::new()
        .post(format!("{}/v1/messages", gateway.url))
        .json(&sms(PHONE, "through the stubborn one"))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 202);
    // The call's summary line is written when it ends.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !gateway.log().contains("in the same call") {
        assert!(
            std::time::Instant::now() < deadline,
            "the call never ended:\n{}",
            gateway.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let log = gateway.log();
    let lines = log.lines().filter(|l| l.contains("refused")).count();
    assert!((1..=2).contains(&lines), "{lines} lines:\n{log}");
    // The rest are counted on the call's one summary line.
    assert!(
        log.contains("more outbound requests refused in the same call"),
        "{log}"
    );
}
