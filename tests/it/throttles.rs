//! A journey's throttle: at most `max` of its messages to one customer per
//! window, counted across their runs; a send over it is recorded as
//! `throttled` and skipped, or waits until the customer is under it again.

use crate::support::runs::{advance, post_events, runs_of, sms_customer, texts_settle_at};
use crate::support::{FAST_DISPATCH, TestGateway, clock_at, default_twilio};
use crossgate_tests::ProviderSim;
use serde_json::json;

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

async fn event(gw: &TestGateway, name: &str, item: &str) {
    let body = json!({"customer_id": "ada", "name": name, "properties": {"item": item}});
    post_events(gw, &body).await;
    gw.quiesce().await;
}

#[tokio::test]
async fn a_throttled_journey_skips_or_waits_past_its_limit() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&config(&sim)).await;
    sms_customer(&gw, "ada", "+31612345678").await;

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
    let scarf = runs_of(&gw, "ada", "price_drop")
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
    let coat = runs_of(&gw, "ada", "back_in_stock")
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
