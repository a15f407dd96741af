//! A journey's throttle: at most `max` of its messages to one customer per
//! window, counted across their runs; a send over it is recorded as
//! `throttled` and skipped, or waits until the customer is under it again.

use crate::support::{FAST_DISPATCH, TestGateway, clock_at, default_twilio};
use crossgate_tests::ProviderSim;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const RUNNER_TIMEOUT: Duration = Duration::from_secs(15);

fn config(sim: &ProviderSim) -> String {
    format!(
        r#"{FAST_DISPATCH}
[journey_runner]
tick_ms = 25
{clock}
[routing]
default = ["sms"]

[categories.alerts]
consent = "opt-out"

[journeys.price_drop]
trigger = "price_dropped"
entry = "1m"
throttle = {{ max = 2, per = "1d" }}
[[journeys.price_drop.steps]]
id = "tell"
send = {{ category = "alerts", text = "Price drop on {{{{ event.item }}}}" }}

[journeys.back_in_stock]
trigger = "restocked"
entry = "1m"
throttle = {{ max = 1, per = "1h", then = "wait" }}
[[journeys.back_in_stock.steps]]
id = "tell"
send = {{ category = "alerts", text = "Back in stock: {{{{ event.item }}}}" }}
{twilio}"#,
        clock = clock_at("12:30"),
        twilio = default_twilio(&sim.url()),
    )
}

fn texts(sim: &ProviderSim) -> Vec<String> {
    sim.requests()
        .iter()
        .filter(|r| r.path.contains("/Accounts/"))
        .map(|r| r.field("Body").unwrap_or_default().to_owned())
        .collect()
}

async fn texts_settle_at(gw: &TestGateway, sim: &ProviderSim, n: usize) -> Vec<String> {
    let deadline = Instant::now() + RUNNER_TIMEOUT;
    while texts(sim).len() < n {
        assert!(Instant::now() < deadline, "texts: {:?}", texts(sim));
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    gw.quiesce().await;
    texts(sim)
}

async fn event(gw: &TestGateway, name: &str, item: &str) {
    let body = json!({"customer_id": "ada", "name": name, "properties": {"item": item}});
    let (status, answer) = gw.post("/v1/events", &body).await;
    assert_eq!(status, 202, "{answer}");
    gw.quiesce().await;
}

async fn advance(gw: &TestGateway, by: &str) {
    let (status, answer) = gw.post("/v1/admin/clock", &json!({"advance": by})).await;
    assert_eq!(status, 200, "{answer}");
}

async fn runs_of(gw: &TestGateway, journey: &str) -> Vec<Value> {
    let all = gw.get_ok("/v1/customers/ada/journeys").await["runs"]
        .as_array()
        .unwrap()
        .clone();
    all.into_iter()
        .filter(|r| r["journey"] == journey)
        .collect()
}

#[tokio::test]
async fn a_throttled_journey_skips_or_waits_past_its_limit() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&config(&sim)).await;
    let profile = json!({"addresses": {"phone": "+31612345678"}, "timezone": "UTC"});
    assert_eq!(gw.put_customer("ada", &profile).await.0, 201);

    // Three price drops two minutes apart (past the one-minute entry
    // cool-down): two messages, the third run records `throttled`.
    for item in ["boots", "coat", "scarf"] {
        event(&gw, "price_dropped", item).await;
        advance(&gw, "2m").await;
    }
    assert_eq!(
        texts_settle_at(&gw, &sim, 2).await,
        ["Price drop on boots", "Price drop on coat"]
    );
    let scarf = runs_of(&gw, "price_drop")
        .await
        .into_iter()
        .find(|r| r["event"]["item"] == "scarf")
        .unwrap();
    assert_eq!(scarf["status"], "completed", "{scarf:#}");
    assert_eq!(scarf["steps"]["tell"]["skipped"], "throttled", "{scarf:#}");

    // One restock message an hour: the second waits for the hour, then goes.
    event(&gw, "restocked", "boots").await;
    advance(&gw, "2m").await;
    event(&gw, "restocked", "coat").await;
    assert_eq!(texts_settle_at(&gw, &sim, 3).await.len(), 3);
    let coat = runs_of(&gw, "back_in_stock")
        .await
        .into_iter()
        .find(|r| r["event"]["item"] == "coat")
        .unwrap();
    assert_eq!(coat["waiting"]["throttled"], true, "{coat:#}");
    advance(&gw, "1h").await;
    assert_eq!(
        texts_settle_at(&gw, &sim, 4).await[2..],
        ["Back in stock: boots", "Back in stock: coat"]
    );
}
