//! Journeys judge events by when they occurred, not by when they arrived:
//! a purchase that happened after the cart was abandoned stops the reminder
//! whether it reached the gateway before, with or after the cart; one that
//! happened before does not; a trigger that arrives too late starts
//! nothing; an awaited event that occurred inside its window counts even
//! when it arrives after the timeout, until the run does more than wait.
//! Every case on both stores, with the clock and the arrival order set by
//! the test.

use crate::support::postgres;
use crate::support::runs::{
    advance, post_events, run_until, runs, sms_customer, texts, texts_settle_at,
};
use crate::support::{FAST_DISPATCH, TestGateway, clock_at, default_twilio, pinned};
use crossgate_tests::ProviderSim;
use serde_json::{Value, json};

fn config(sim: &ProviderSim) -> String {
    format!(
        r#"{FAST_DISPATCH}
[journey_runner]
tick_ms = 25
max_event_delay = "1d"
{clock}
[routing]
default = ["sms"]

[categories.transactional]
consent = "opt-out"

[journeys.cart]
trigger = "cart_abandoned"
exit_on = ["purchase"]
[[journeys.cart.steps]]
id = "an_hour"
wait = "1h"
[[journeys.cart.steps]]
id = "reminder"
send = {{ category = "transactional", text = "You left something in your cart" }}

[journeys.onboarding]
trigger = "signed_up"
[[journeys.onboarding.steps]]
id = "read"
wait_for = {{ event = "opened", timeout = "1h" }}
[[journeys.onboarding.steps]]
id = "grace"
wait = "30m"
[[journeys.onboarding.steps]]
id = "was_it_read"
branch = {{ if = "steps.read.came == 'opened'", then = "thanks" }}
[[journeys.onboarding.steps]]
id = "nudge"
send = {{ category = "transactional", text = "Did you see our email?" }}
[[journeys.onboarding.steps]]
id = "skip_thanks"
branch = {{ if = "true", then = "end" }}
[[journeys.onboarding.steps]]
id = "thanks"
send = {{ category = "transactional", text = "Glad you are here" }}
[[journeys.onboarding.steps]]
id = "end"
wait = "1s"
{twilio}"#,
        clock = clock_at("12:30"),
        twilio = default_twilio(&sim.url()),
    )
}

#[tokio::test]
async fn events_are_judged_by_when_they_occurred_on_sqlite() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&config(&sim)).await;
    the_rules(&gw, &sim).await;
}

#[tokio::test]
async fn events_are_judged_by_when_they_occurred_on_postgres() {
    let Some(url) = postgres::migrated_database("event_time::on_postgres").await else {
        return;
    };
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start_on_postgres(&config(&sim), &url).await;
    the_rules(&gw, &sim).await;
}

async fn the_rules(gw: &TestGateway, sim: &ProviderSim) {
    cart_reminders(gw, sim).await;
    late_opens(gw, sim).await;
}

/// `hh:mm` on the pinned day, as the API writes times.
fn at(hh_mm: &str) -> String {
    pinned(hh_mm).to_string()
}

fn event(customer: &str, name: &str, occurred_at: &str) -> Value {
    json!({"customer_id": customer, "name": name, "occurred_at": occurred_at})
}

/// The cart was abandoned at 12:00; the purchase happened at 12:10 and
/// reaches the gateway before, with (either side of it in one batch) or
/// after the cart: the reminder never goes. A purchase at 11:50 is an
/// earlier one, and does not stop it, whichever arrives first.
async fn cart_reminders(gw: &TestGateway, sim: &ProviderSim) {
    let (cart, bought, bought_before) = (at("12:00"), at("12:10"), at("11:50"));
    for who in [
        "purchase_first",
        "batch_purchase_first",
        "batch_cart_first",
        "cart_first",
        "earlier_purchase_last",
        "earlier_purchase_first",
        "late_cart",
    ] {
        sms_customer(gw, who, "+31612345678").await;
    }

    post_events(gw, &event("purchase_first", "purchase", &bought)).await;
    gw.quiesce().await;
    post_events(gw, &event("purchase_first", "cart_abandoned", &cart)).await;

    let batch = |who: &str, purchase_first: bool| {
        let (c, p) = (
            event(who, "cart_abandoned", &cart),
            event(who, "purchase", &bought),
        );
        json!({"events": if purchase_first { [p, c] } else { [c, p] }})
    };
    post_events(gw, &batch("batch_purchase_first", true)).await;
    post_events(gw, &batch("batch_cart_first", false)).await;

    post_events(gw, &event("cart_first", "cart_abandoned", &cart)).await;
    run_until(gw, "cart_first", "cart", |r| r["waiting"].is_object()).await;
    post_events(gw, &event("cart_first", "purchase", &bought)).await;

    post_events(gw, &event("earlier_purchase_last", "cart_abandoned", &cart)).await;
    gw.quiesce().await;
    post_events(
        gw,
        &event("earlier_purchase_last", "purchase", &bought_before),
    )
    .await;
    post_events(
        gw,
        &event("earlier_purchase_first", "purchase", &bought_before),
    )
    .await;
    gw.quiesce().await;
    post_events(
        gw,
        &event("earlier_purchase_first", "cart_abandoned", &cart),
    )
    .await;

    // Two days old when it arrives: stored, but it starts nothing.
    let late = post_events(
        gw,
        &event("late_cart", "cart_abandoned", "2026-03-02T12:00:00Z"),
    )
    .await;
    let warning = late["late_warning"].as_str().unwrap_or_default();
    assert!(
        warning.contains("max_event_delay (1d)") && warning.contains("starts no journey"),
        "{late}"
    );

    for who in [
        "purchase_first",
        "batch_purchase_first",
        "batch_cart_first",
        "cart_first",
    ] {
        let run = run_until(gw, who, "cart", |r| r["status"] != "active").await;
        assert_eq!(run["status"], "exited", "{who}: {run:#}");
        let last = run["history"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["what"], "exited", "{who}: {run:#}");
        assert!(
            last["why"].as_str().unwrap().contains(&bought),
            "{who}: the exit says when the purchase occurred: {last}"
        );
    }
    for who in ["earlier_purchase_last", "earlier_purchase_first"] {
        let run = run_until(gw, who, "cart", |r| r["waiting"].is_object()).await;
        assert_eq!(run["status"], "active", "{who}: {run:#}");
    }
    gw.quiesce().await;
    assert!(runs(gw, "late_cart").await.is_empty());

    advance(gw, "1h").await;
    assert_eq!(
        texts_settle_at(gw, sim, 2).await,
        [
            "You left something in your cart",
            "You left something in your cart"
        ],
        "only the two whose purchase came before the cart are reminded"
    );
    for who in ["earlier_purchase_last", "earlier_purchase_first"] {
        run_until(gw, who, "cart", |r| r["status"] == "completed").await;
    }
}

/// `read` waits an hour for `opened`, then `grace` waits half an hour
/// before the branch reads `steps.read`: an open that occurred in the hour
/// but arrives during the grace still counts.
async fn late_opens(gw: &TestGateway, sim: &ProviderSim) {
    let before = texts(sim).len();
    for who in ["opened_late", "opened_after_window", "opened_too_late"] {
        sms_customer(gw, who, "+31612345678").await;
        post_events(gw, &json!({"customer_id": who, "name": "signed_up"})).await;
    }
    let mut windows = Vec::new();
    for who in ["opened_late", "opened_after_window", "opened_too_late"] {
        let run = run_until(gw, who, "onboarding", |r| r["waiting"]["event"] == "opened").await;
        let until: jiff::Timestamp = run["waiting"]["until"].as_str().unwrap().parse().unwrap();
        windows.push(until);
    }
    advance(gw, "1h").await;
    for who in ["opened_late", "opened_after_window", "opened_too_late"] {
        run_until(gw, who, "onboarding", |r| {
            r["steps"]["read"]["came"] == "timeout" && r["waiting"]["until"].is_string()
        })
        .await;
    }

    // Twenty minutes into the grace, two opens arrive: one that occurred
    // ten minutes before the timeout counts; one that occurred ten minutes
    // after it is outside the window.
    advance(gw, "20m").await;
    let ten_before = windows[0] - jiff::SignedDuration::from_mins(10);
    post_events(gw, &event("opened_late", "opened", &ten_before.to_string())).await;
    let ten_after = windows[1] + jiff::SignedDuration::from_mins(10);
    post_events(
        gw,
        &event("opened_after_window", "opened", &ten_after.to_string()),
    )
    .await;
    let run = run_until(gw, "opened_late", "onboarding", |r| {
        r["steps"]["read"]["came"] == "opened"
    })
    .await;
    assert_eq!(run["steps"]["read"]["late"], true, "{run:#}");
    gw.quiesce().await;
    let run = &runs(gw, "opened_after_window").await[0];
    assert_eq!(run["steps"]["read"]["came"], "timeout", "{run:#}");

    advance(gw, "11m").await;
    for who in ["opened_late", "opened_after_window", "opened_too_late"] {
        run_until(gw, who, "onboarding", |r| r["status"] == "completed").await;
    }
    // The grace is over and the branch has run: now nothing changes it.
    let in_window = windows[2] - jiff::SignedDuration::from_mins(10);
    post_events(
        gw,
        &event("opened_too_late", "opened", &in_window.to_string()),
    )
    .await;
    gw.quiesce().await;
    let run = &runs(gw, "opened_too_late").await[0];
    assert_eq!(run["steps"]["read"]["came"], "timeout", "{run:#}");
    assert!(run["steps"]["nudge"]["status"].is_string(), "{run:#}");

    let mut sent = texts_settle_at(gw, sim, before + 3).await.split_off(before);
    sent.sort();
    assert_eq!(
        sent,
        [
            "Did you see our email?",
            "Did you see our email?",
            "Glad you are here"
        ]
    );
}
