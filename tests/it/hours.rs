//! Quiet hours at pinned hours. Each gateway's clock starts where the test
//! says ([`clock_at`]), so what must hold at 03:30, 12:30 or 22:30 UTC, and
//! across midnight in the customer's zone, is checked on every run,
//! whatever the hour the suite runs at. Moving the clock on releases what
//! was held: the dispatcher reads the same clock as the planner.

use crate::support::{FAST_DISPATCH, TestGateway, clock_at, default_twilio};
use crossgate_tests::ProviderSim;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Marketing SMS, held from 21:00 to 08:00 in the customer's zone.
fn config(sim: &ProviderSim, utc: &str) -> String {
    format!(
        r#"{FAST_DISPATCH}
[routing]
default = ["sms"]

[categories.marketing]
consent = "opt-out"
quiet_hours = "21:00-08:00"
{}{}"#,
        default_twilio(&sim.url()),
        clock_at(utc)
    )
}

/// A customer in `zone`, sent a marketing SMS: the message as the API shows
/// it right after.
async fn marketing_sms(gw: &TestGateway, customer: &str, phone: &str, zone: &str) -> Value {
    let profile = json!({"addresses": {"phone": phone}, "timezone": zone});
    assert_eq!(gw.put_customer(customer, &profile).await.0, 201);
    let (status, accepted) = gw
        .send(&json!({"customer_id": customer, "category": "marketing",
                      "content": {"text": format!("Spring sale, {customer}")}}))
        .await;
    assert_eq!(status, 202, "{accepted}");
    gw.message(accepted["id"].as_str().unwrap()).await
}

fn held_until(message: &Value) -> jiff::Timestamp {
    assert_eq!(message["status"], "scheduled", "{message}");
    message["send_at"].as_str().unwrap().parse().unwrap()
}

fn at(utc: &str) -> jiff::Timestamp {
    utc.parse().unwrap()
}

/// Waits until the simulator has an SMS to `phone`.
async fn sms_reaches(sim: &ProviderSim, phone: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !sim.requests().iter().any(|r| r.field("To") == Some(phone)) {
        assert!(Instant::now() < deadline, "no SMS to {phone}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn sms_to(sim: &ProviderSim, phone: &str) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.field("To") == Some(phone))
        .count()
}

#[tokio::test]
async fn at_0330_utc_london_waits_for_its_morning_and_tokyo_gets_it_now() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&config(&sim, "03:30")).await;
    let london = marketing_sms(&gw, "london", "+447911123456", "Europe/London").await;
    assert_eq!(held_until(&london), at("2026-03-04T08:00:00Z"));
    let tokyo = marketing_sms(&gw, "tokyo", "+819012345678", "Asia/Tokyo").await;
    gw.settled(tokyo["id"].as_str().unwrap()).await;
    assert_eq!(sms_to(&sim, "+819012345678"), 1);
    assert_eq!(sms_to(&sim, "+447911123456"), 0, "held by quiet hours");
    gw.stop().await;
}

#[tokio::test]
async fn at_1230_utc_london_gets_it_now_and_los_angeles_waits_for_its_morning() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&config(&sim, "12:30")).await;
    let london = marketing_sms(&gw, "london", "+447911123456", "Europe/London").await;
    gw.settled(london["id"].as_str().unwrap()).await;
    assert_eq!(sms_to(&sim, "+447911123456"), 1);
    // 04:30 in Los Angeles (PST, UTC-8): 08:00 there is 16:00 UTC.
    let la = marketing_sms(&gw, "la", "+13105550101", "America/Los_Angeles").await;
    assert_eq!(held_until(&la), at("2026-03-04T16:00:00Z"));
    gw.stop().await;
}

/// 22:30 in London: held until 08:00 the next day, and sent once the clock
/// gets there.
#[tokio::test]
async fn at_2230_utc_london_waits_until_the_next_morning_and_then_gets_it() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&config(&sim, "22:30")).await;
    let london = marketing_sms(&gw, "london", "+447911123456", "Europe/London").await;
    assert_eq!(held_until(&london), at("2026-03-05T08:00:00Z"));
    // 11:30 the next day in Auckland (NZDT, UTC+13): not quiet there.
    let auckland = marketing_sms(&gw, "auckland", "+64211234567", "Pacific/Auckland").await;
    gw.settled(auckland["id"].as_str().unwrap()).await;
    assert_eq!(sms_to(&sim, "+447911123456"), 0, "held by quiet hours");

    let (status, answer) = gw.post("/v1/admin/clock", &json!({"advance": "10h"})).await;
    assert_eq!(status, 200, "{answer}");
    sms_reaches(&sim, "+447911123456").await;
    let sent = gw.settled(london["id"].as_str().unwrap()).await;
    assert_eq!(sent["status"], "sent", "{sent}");
    gw.stop().await;
}

/// At 10:30 UTC it is 23:30 on the 4th in Auckland and 00:30 on the 5th in
/// Kiritimati (UTC+14): both nights end at 08:00 on the 5th, their time.
#[tokio::test]
async fn a_night_across_midnight_in_the_customers_zone_ends_the_next_morning_there() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&config(&sim, "10:30")).await;
    let before = marketing_sms(&gw, "auckland", "+64211234567", "Pacific/Auckland").await;
    assert_eq!(held_until(&before), at("2026-03-04T19:00:00Z"));
    let after = marketing_sms(&gw, "kiritimati", "+68675012345", "Pacific/Kiritimati").await;
    assert_eq!(held_until(&after), at("2026-03-04T18:00:00Z"));
    gw.stop().await;
}
