//! Events and journeys, with the gateway's clock pinned and moved by the test (no
//! real week of waiting): welcome then SMS unless they bought, a cart
//! reminder a purchase cancels, one offer per group, a branch on a read
//! message, a restart in the middle of a wait.

use crate::support::runs::{RUNNER_TIMEOUT, advance, run_until, runs};
use crate::support::{FAST_DISPATCH, TestGateway, clock_at, default_twilio, sendgrid_connector};
use crate::suppressions::{event_key, sendgrid_events};
use crossgate_tests::{ProviderSim, Recorded};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Pinned at 22:30 UTC, customers in UTC: marketing's quiet hours
/// (21:00-08:00) hold a send until the next morning, across midnight.
fn config(sim: &ProviderSim) -> String {
    format!(
        r#"{FAST_DISPATCH}
[server]
public_url = "{public}"

[journey_runner]
tick_ms = 25
{clock}

[routing]
default = ["email", "sms"]

[categories.transactional]
consent = "opt-out"

[categories.marketing]
consent = "opt-out"
quiet_hours = "21:00-08:00"

[journeys.welcome]
trigger = "signed_up"
goal = "purchase"
[[journeys.welcome.steps]]
id = "welcome_email"
send = {{ category = "transactional", subject = "Welcome", text = "Welcome to the shop", channels = ["email"] }}
[[journeys.welcome.steps]]
id = "a_week"
wait = "7d"
[[journeys.welcome.steps]]
id = "nudge"
send = {{ category = "transactional", text = "Still looking? Here is 10% off", channels = ["sms"] }}

[journeys.cart]
trigger = "cart_abandoned"
entry = "1h"
exit_on = ["purchase"]
[[journeys.cart.steps]]
id = "an_hour"
wait = "1h"
[[journeys.cart.steps]]
id = "reminder"
send = {{ category = "marketing", text = "You left something in your cart", channels = ["sms"] }}

[journeys.browse_offer]
trigger = "browsed"
[[journeys.browse_offer.steps]]
id = "offer"
send = {{ category = "transactional", text = "10% off what you looked at", channels = ["email"], offer_group = "spring", offer_window = "30d" }}

[journeys.wishlist_offer]
trigger = "wishlisted"
[[journeys.wishlist_offer.steps]]
id = "offer"
send = {{ category = "transactional", text = "25% off your wishlist", channels = ["sms"], offer_group = "spring", offer_window = "30d" }}

[journeys.follow_up]
trigger = "trial_started"
[[journeys.follow_up.steps]]
id = "hello"
send = {{ category = "transactional", subject = "Your trial", text = "Your trial started", channels = ["email"] }}
[[journeys.follow_up.steps]]
id = "a_day"
wait = "1d"
[[journeys.follow_up.steps]]
id = "was_it_read"
branch = {{ if = "steps.hello.status == 'read'", then = "tips" }}
[[journeys.follow_up.steps]]
id = "resend"
send = {{ category = "transactional", text = "Did you see? Your trial started", channels = ["sms"] }}
[[journeys.follow_up.steps]]
id = "done"
branch = {{ if = "true", then = "end" }}
[[journeys.follow_up.steps]]
id = "tips"
send = {{ category = "transactional", text = "Three tips for your trial", channels = ["sms"] }}
[[journeys.follow_up.steps]]
id = "end"
wait = "1s"
{}event_webhook_public_key = "{key}"
{}"#,
        sendgrid_connector("sendgrid", &sim.url()),
        default_twilio(&sim.url()),
        public = crate::webhooks::PUBLIC_URL,
        key = event_key().1,
        clock = clock_at("22:30"),
    )
}

async fn customer(gw: &TestGateway, id: &str) {
    let profile = json!({"addresses": {"email": format!("{id}@example.com"), "phone": "+31612345678"},
                         "timezone": "UTC"});
    assert_eq!(gw.put_customer(id, &profile).await.0, 201);
}

async fn event(gw: &TestGateway, customer: &str, name: &str) -> Value {
    let (status, answer) = gw
        .post(
            "/v1/events",
            &json!({"customer_id": customer, "name": name}),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    answer
}

fn whats(run: &Value) -> Vec<(String, String)> {
    run["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["step"].as_str().unwrap().to_owned(),
                h["what"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn step(step: &str, what: &str) -> (String, String) {
    (step.to_owned(), what.to_owned())
}

fn sms_bodies(requests: &[Recorded]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.path.contains("/Accounts/"))
        .map(|r| r.field("Body").unwrap_or_default().to_owned())
        .collect()
}

async fn settle(gw: &TestGateway, run: &Value, step: &str) -> Value {
    let id = run["steps"][step]["message_id"].as_str().unwrap();
    gw.settled(id).await
}

#[tokio::test]
async fn welcome_then_an_sms_a_week_later_unless_they_bought() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&config(&sim)).await;
    customer(&gw, "ada").await;
    customer(&gw, "bob").await;
    event(&gw, "ada", "signed_up").await;
    event(&gw, "bob", "signed_up").await;
    for who in ["ada", "bob"] {
        let run = run_until(&gw, who, "welcome", |r| r["waiting"]["until"].is_string()).await;
        assert_eq!(settle(&gw, &run, "welcome_email").await["status"], "sent");
    }
    // Bob buys during the week: his run is converted and ends.
    event(&gw, "bob", "purchase").await;
    let bob = run_until(&gw, "bob", "welcome", |r| r["status"] == "converted").await;
    assert_eq!(whats(&bob).last().unwrap(), &step("a_week", "converted"));

    // Six days: nothing yet. Seven: Ada gets the SMS, Bob does not.
    advance(&gw, "6d").await;
    gw.quiesce().await;
    assert!(sms_bodies(&sim.requests()).is_empty());
    advance(&gw, "1d").await;
    let ada = run_until(&gw, "ada", "welcome", |r| r["status"] == "completed").await;
    assert_eq!(
        whats(&ada),
        [
            step("start", "started"),
            step("welcome_email", "sent"),
            step("a_week", "waiting"),
            step("a_week", "waited"),
            step("nudge", "sent"),
            step("end", "completed")
        ]
    );
    settle(&gw, &ada, "nudge").await;
    assert_eq!(
        sms_bodies(&sim.requests()),
        ["Still looking? Here is 10% off"]
    );

    // A second signed_up does not start the journey again (entry once).
    event(&gw, "ada", "signed_up").await;
    gw.quiesce().await;
    assert_eq!(runs(&gw, "ada").await.len(), 1);
    // The run is readable on its own too.
    let one = gw
        .get_ok(&format!("/v1/journey-runs/{}", ada["id"].as_str().unwrap()))
        .await;
    assert_eq!(one["status"], "completed");
}

#[tokio::test]
async fn a_purchase_cancels_the_cart_reminder_even_once_it_is_scheduled() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&config(&sim)).await;
    customer(&gw, "early").await;
    customer(&gw, "late").await;

    // During the wait: the run exits, nothing is ever sent.
    event(&gw, "early", "cart_abandoned").await;
    run_until(&gw, "early", "cart", |r| r["waiting"]["until"].is_string()).await;
    event(&gw, "early", "purchase").await;
    let early = run_until(&gw, "early", "cart", |r| r["status"] == "exited").await;
    assert_eq!(whats(&early).last().unwrap(), &step("an_hour", "exited"));

    // After the wait: the reminder is held by quiet hours (scheduled), and
    // the purchase cancels it before it goes.
    event(&gw, "late", "cart_abandoned").await;
    run_until(&gw, "late", "cart", |r| r["waiting"]["until"].is_string()).await;
    advance(&gw, "1h").await;
    let late = run_until(&gw, "late", "cart", |r| r["status"] == "completed").await;
    let reminder = late["steps"]["reminder"]["message_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(gw.message(&reminder).await["status"], "scheduled");
    event(&gw, "late", "purchase").await;
    let deadline = Instant::now() + RUNNER_TIMEOUT;
    // A completed run still cancels what it scheduled: exit_on reaches
    // runs whose messages are pending, through the run's cancel key.
    loop {
        let status = gw.message(&reminder).await["status"].clone();
        if status == "cancelled" {
            break;
        }
        assert!(Instant::now() < deadline, "still {status}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    advance(&gw, "1d").await;
    gw.quiesce().await;
    assert!(sms_bodies(&sim.requests()).is_empty(), "no reminder went");
}

#[tokio::test]
async fn one_offer_per_group_across_journeys_and_channels() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&config(&sim)).await;
    customer(&gw, "cleo").await;
    event(&gw, "cleo", "browsed").await;
    let first = run_until(&gw, "cleo", "browse_offer", |r| r["status"] == "completed").await;
    assert_eq!(settle(&gw, &first, "offer").await["status"], "sent");
    event(&gw, "cleo", "wishlisted").await;
    let second = run_until(&gw, "cleo", "wishlist_offer", |r| {
        r["status"] == "completed"
    })
    .await;
    assert_eq!(
        whats(&second),
        [
            step("start", "started"),
            step("offer", "offer_group"),
            step("end", "completed")
        ]
    );
    assert!(
        second["steps"]["offer"]["detail"]
            .as_str()
            .unwrap()
            .contains("spring")
    );
    assert!(
        sms_bodies(&sim.requests()).is_empty(),
        "25% never went by SMS"
    );
}

#[tokio::test]
async fn a_branch_reads_whether_the_welcome_email_was_read() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&config(&sim)).await;
    customer(&gw, "read").await;
    customer(&gw, "unread").await;
    for who in ["read", "unread"] {
        event(&gw, who, "trial_started").await;
    }
    let mut provider_ids = Vec::new();
    for who in ["read", "unread"] {
        let run = run_until(&gw, who, "follow_up", |r| r["waiting"]["until"].is_string()).await;
        let message = settle(&gw, &run, "hello").await;
        provider_ids.push(message["provider_message_id"].as_str().unwrap().to_owned());
    }
    // SendGrid reports the first customer's email opened (read).
    let opened = json!([{"email": "read@example.com", "event": "open",
                         "sg_message_id": format!("{}.filter0001.1.0", provider_ids[0])}]);
    let (status, answer) = sendgrid_events(&gw, &event_key().0, &opened).await;
    assert_eq!(status, 200, "{answer}");
    // The report is the customer's event too, for journeys to wait for.
    let events: i64 = rusqlite::Connection::open(&gw.db_path)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM events WHERE customer_id = 'read' AND name = 'message.read'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(events, 1);
    advance(&gw, "1d").await;
    let read = run_until(&gw, "read", "follow_up", |r| r["status"] == "completed").await;
    let unread = run_until(&gw, "unread", "follow_up", |r| r["status"] == "completed").await;
    assert!(read["steps"]["tips"]["message_id"].is_string(), "{read:#}");
    assert!(read["steps"].get("resend").is_none());
    assert!(
        unread["steps"]["resend"]["message_id"].is_string(),
        "{unread:#}"
    );
    assert!(unread["steps"].get("tips").is_none());
    let why = read["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["step"] == "was_it_read")
        .unwrap()["why"]
        .clone();
    assert!(why.as_str().unwrap().contains("is true"), "{why}");
}

#[tokio::test]
async fn a_wait_survives_a_restart() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&config(&sim)).await;
    customer(&gw, "dana").await;
    event(&gw, "dana", "signed_up").await;
    run_until(&gw, "dana", "welcome", |r| {
        r["waiting"]["until"].is_string()
    })
    .await;
    let gw = gw.restart().await;
    advance(&gw, "7d").await;
    let run = run_until(&gw, "dana", "welcome", |r| r["status"] == "completed").await;
    settle(&gw, &run, "nudge").await;
    assert_eq!(
        sms_bodies(&sim.requests()),
        ["Still looking? Here is 10% off"]
    );
    // The welcome email went once, before the restart.
    let emails = sim
        .requests()
        .iter()
        .filter(|r| r.path == "/v3/mail/send")
        .count();
    assert_eq!(emails, 1);
}

#[tokio::test]
async fn events_are_validated_idempotent_and_simulated() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&config(&sim)).await;
    let body = json!({"customer_id": "eve", "name": "signed_up", "idempotency_key": "signup-eve"});
    let (status, first) = gw.post("/v1/events", &body).await;
    assert_eq!(
        (status, &first["duplicate"]),
        (202, &json!(false)),
        "{first}"
    );
    let (_, again) = gw.post("/v1/events", &body).await;
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["id"], first["id"]);
    for (bad, field) in [
        (json!({"customer_id": "eve", "name": "has space"}), "name"),
        (json!({"customer_id": "../x", "name": "ok"}), "customer_id"),
        (
            json!({"customer_id": "eve", "name": "ok", "occurred_at": "yesterday"}),
            "occurred_at",
        ),
        (
            json!({"customer_id": "eve", "name": "ok", "properties": {"blob": "x".repeat(20_000)}}),
            "properties",
        ),
        (
            json!({"events": [{"customer_id": "eve", "name": "ok"}, {"customer_id": "eve", "name": ""}]}),
            "events[1].name",
        ),
    ] {
        let (status, answer) = gw.post("/v1/events", &bad).await;
        assert_eq!(status, 422, "{bad}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    let (status, batch) = gw
        .post(
            "/v1/events",
            &json!({"events": [{"customer_id": "eve", "name": "a"}, {"customer_id": "eve", "name": "b"}]}),
        )
        .await;
    assert_eq!(status, 202, "{batch}");
    assert_eq!(batch["events"].as_array().unwrap().len(), 2);

    // What the welcome journey would do, without waiting a week or sending.
    let (status, simulated) = gw
        .post(
            "/v1/journeys/welcome/simulate",
            &json!({"start": "2026-12-01T10:00:00Z", "timeline": [{"name": "purchase", "after": "3d"}]}),
        )
        .await;
    assert_eq!(status, 200, "{simulated}");
    assert_eq!(simulated["status"], "converted");
    let history = simulated["history"].as_array().unwrap();
    assert_eq!(history[0]["step"], "welcome_email");
    assert_eq!(history[0]["at"], "2026-12-01T10:00:00.000Z");
    assert_eq!(history.last().unwrap()["at"], "2026-12-04T10:00:00.000Z");
    let (_, without) = gw
        .post(
            "/v1/journeys/welcome/simulate",
            &json!({"start": "2026-12-01T10:00:00Z"}),
        )
        .await;
    assert_eq!(without["status"], "completed");
    assert_eq!(
        without["steps"]["nudge"]["at"], 1_796_724_000_000i64,
        "{without:#}"
    );
    assert_eq!(sim.request_count(), 0, "a simulation sends nothing");
}
