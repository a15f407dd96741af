//! An experiment on a journey's send step: customers split between two
//! variants and a holdout that gets nothing, each keeping their arm across
//! runs; the report's counts and arithmetic checked against a hand count
//! of the runs, the messages and the purchases, the holdout's conversions
//! included. On both stores.

use crate::support::postgres;
use crate::support::runs::{RUNNER_TIMEOUT, advance, post_events, runs, sms_customer, texts};
use crate::support::{FAST_DISPATCH, TestGateway, clock_at, default_twilio};
use crossgate_tests::ProviderSim;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const CUSTOMERS: usize = 60;

fn config(sim: &ProviderSim) -> String {
    format!(
        r#"{FAST_DISPATCH}
[journey_runner]
tick_ms = 25
{clock}
[routing]
default = ["sms"]

[categories.offers]
consent = "opt-out"

[conversions.purchase]
value = "properties.amount"
currency = "EUR"
window = "7d"

[journeys.promo]
trigger = "browsed"
entry = "1m"
[[journeys.promo.steps]]
id = "offer"
send = {{ category = "offers", text = "10% off", holdout = "20%", variants = [{{ name = "ten", weight = 1 }}, {{ name = "free_shipping", weight = 1, text = "Free shipping" }}] }}
{twilio}"#,
        clock = clock_at("12:30"),
        twilio = default_twilio(&sim.url()),
    )
}

#[tokio::test]
async fn an_experiment_splits_sticks_and_reports_on_sqlite() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&config(&sim)).await;
    experiment(&gw, &sim).await;
}

#[tokio::test]
async fn an_experiment_splits_sticks_and_reports_on_postgres() {
    let Some(url) = postgres::migrated_database("experiments::on_postgres").await else {
        return;
    };
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start_on_postgres(&config(&sim), &url).await;
    experiment(&gw, &sim).await;
}

fn who(i: usize) -> String {
    format!("c{i:03}")
}

fn phone(i: usize) -> String {
    format!("+316100{i:05}")
}

async fn events(gw: &TestGateway, events: Vec<Value>) {
    post_events(gw, &json!({ "events": events })).await;
}

/// The customer's runs of `promo`, once each has made its step.
async fn promo_runs(gw: &TestGateway, customer: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + RUNNER_TIMEOUT;
    loop {
        let runs = runs(gw, customer).await;
        if runs.len() == n && runs.iter().all(|r| r["steps"]["offer"]["arm"].is_string()) {
            return runs;
        }
        assert!(Instant::now() < deadline, "{customer}: {runs:#?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn experiment(gw: &TestGateway, sim: &ProviderSim) {
    for i in 0..CUSTOMERS {
        sms_customer(gw, &who(i), &phone(i)).await;
    }
    events(
        gw,
        (0..CUSTOMERS)
            .map(|i| json!({"customer_id": who(i), "name": "browsed"}))
            .collect(),
    )
    .await;

    // The hand count: each customer's arm and message.
    let mut arm_of = BTreeMap::new();
    let mut message_of = BTreeMap::new();
    for i in 0..CUSTOMERS {
        let run = promo_runs(gw, &who(i), 1).await.remove(0);
        let step = &run["steps"]["offer"];
        let arm = step["arm"].as_str().unwrap().to_owned();
        if arm == "holdout" {
            assert_eq!(step["skipped"], "holdout", "{run:#}");
            assert!(step["message_id"].is_null());
        } else {
            message_of.insert(i, step["message_id"].as_str().unwrap().to_owned());
        }
        arm_of.insert(i, arm);
    }
    let in_arm = |arm: &str| arm_of.values().filter(|a| *a == arm).count();
    for arm in ["holdout", "ten", "free_shipping"] {
        assert!(in_arm(arm) > 0, "{arm} is empty: {arm_of:?}");
    }
    let sent_to: Vec<String> = {
        for id in message_of.values() {
            gw.settled(id).await;
        }
        sim.requests()
            .iter()
            .filter(|r| r.path.contains("/Accounts/"))
            .map(|r| r.field("To").unwrap_or_default().to_owned())
            .collect()
    };
    for (i, arm) in &arm_of {
        assert_eq!(
            sent_to.contains(&phone(*i)),
            arm != "holdout",
            "{} ({arm})",
            who(*i)
        );
    }
    let texts = texts(sim);
    assert_eq!(
        texts
            .iter()
            .filter(|t| t.starts_with("Free shipping"))
            .count(),
        in_arm("free_shipping")
    );

    // Simulation deals the same arms.
    for i in 0..6 {
        let (status, simulated) = gw
            .post(
                "/v1/journeys/promo/simulate",
                &json!({"customer_id": who(i)}),
            )
            .await;
        assert_eq!(status, 200, "{simulated}");
        assert_eq!(
            simulated["steps"]["offer"]["arm"], arm_of[&i],
            "{simulated:#}"
        );
    }

    // Sticky: a second run, a few minutes on, deals the same arm.
    advance(gw, "5m").await;
    events(
        gw,
        (0..10)
            .map(|i| json!({"customer_id": who(i), "name": "browsed"}))
            .collect(),
    )
    .await;
    for i in 0..10 {
        for run in promo_runs(gw, &who(i), 2).await {
            assert_eq!(run["steps"]["offer"]["arm"], arm_of[&i], "{}", who(i));
        }
    }

    // Every third customer buys, holdout or not.
    let buyers: Vec<usize> = (0..CUSTOMERS).step_by(3).collect();
    events(
        gw,
        buyers
            .iter()
            .map(|i| json!({"customer_id": who(*i), "name": "purchase", "properties": {"amount": 20}}))
            .collect(),
    )
    .await;
    gw.quiesce().await;

    let report = gw
        .get_ok("/v1/reports/experiments?journey=promo&step=offer")
        .await;
    assert_eq!(report["window"], "7d");
    let arms = report["arms"].as_array().unwrap();
    assert_eq!(arms.len(), 3, "{report:#}");
    let row = |name: &str| arms.iter().find(|a| a["arm"] == name).unwrap().clone();
    let holdout = row("holdout");
    let holdout_rate =
        buyers.iter().filter(|i| arm_of[*i] == "holdout").count() as f64 / in_arm("holdout") as f64;
    for arm in ["holdout", "ten", "free_shipping"] {
        let r = row(arm);
        let customers = in_arm(arm);
        let converted = buyers.iter().filter(|i| arm_of[*i] == arm).count();
        let delivered = {
            let mut n = 0;
            for (i, id) in &message_of {
                let status = gw.message(id).await["status"].clone();
                if arm_of[i] == arm && (status == "delivered" || status == "read") {
                    n += 1;
                }
            }
            n
        };
        assert_eq!(r["customers"], customers, "{r:#}");
        assert_eq!(r["conversions"], converted, "{r:#}");
        let sent = if arm == "holdout" { 0 } else { customers };
        assert_eq!(r["sent"], sent, "{r:#}");
        assert_eq!(r["delivered"], delivered, "{r:#}");
        let rate = converted as f64 / customers as f64;
        let reported = r["conversion_rate"]["rate"].as_f64().unwrap();
        assert!((reported - rate).abs() < 1e-9, "{r:#}");
        let (low, high) = (
            r["conversion_rate"]["low"].as_f64().unwrap(),
            r["conversion_rate"]["high"].as_f64().unwrap(),
        );
        assert!(low <= rate && rate <= high, "{r:#}");
        if arm == "holdout" {
            assert!(r["uplift"].is_null());
        } else {
            let uplift = r["uplift"]["rate"].as_f64().unwrap();
            assert!((uplift - (rate - holdout_rate)).abs() < 1e-9, "{r:#}");
        }
    }
    assert_eq!(holdout["cost"], 0.0);

    let csv = gw
        .client
        .get(format!(
            "{}/v1/reports/experiments?journey=promo&step=offer&format=csv",
            gw.url
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("arm,customers,sent,delivered,conversions,"));
    assert_eq!(lines.len(), 4, "{csv}");
    let (status, answer) = gw.get("/v1/reports/experiments?journey=promo").await;
    assert_eq!(
        (status, answer["error"]["field"].clone()),
        (422, json!("step"))
    );
}

/// `[experiments] control_group`: its customers get no message of the
/// categories it names, from any send, and every other message as before.
#[tokio::test]
async fn the_global_control_group_gets_no_marketing() {
    let sim = ProviderSim::start().await.unwrap();
    let toml = format!(
        r#"{FAST_DISPATCH}
[routing]
default = ["sms"]
[categories.offers]
consent = "opt-out"
[experiments]
control_group = "30%"
categories = ["offers"]
{twilio}"#,
        twilio = default_twilio(&sim.url())
    );
    let gw = TestGateway::start(&toml).await;
    let group = crossgate::routing::control::ControlGroup::new(
        &crossgate::routing::control::ExperimentsConfig {
            control_group: Some(3_000),
            categories: vec!["offers".into()],
            ..Default::default()
        },
    );
    let mut held = 0;
    for i in 0..40 {
        let profile = json!({"addresses": {"phone": phone(i)}});
        assert_eq!(gw.put_customer(&who(i), &profile).await.0, 201);
        let (status, offer) = gw
            .send(&json!({"customer_id": who(i), "category": "offers", "content": {"text": "Spring sale"}}))
            .await;
        assert_eq!(status, 202, "{offer}");
        let offer = offer["id"].as_str().unwrap().to_owned();
        let news = gw
            .send_ok(&json!({"customer_id": who(i), "category": "transactional", "content": {"text": "Your order shipped"}}))
            .await;
        assert_eq!(
            gw.settled(&news).await["status"],
            "sent",
            "transactional goes to all"
        );
        if group.holds(&who(i)) {
            held += 1;
            let offer = gw.message(&offer).await;
            assert_eq!(offer["status"], "suppressed", "{offer:#}");
            let reason = offer["status_reason"].as_str().unwrap_or_default();
            assert!(
                reason.starts_with("control_group: in the global control group (30%"),
                "{reason}"
            );
        } else {
            let offer = gw.settled(&offer).await;
            assert_eq!(offer["status"], "sent", "{offer:#}");
        }
    }
    assert!((2..=25).contains(&held), "{held} of 40 held out");
}
