//! Failover on silence: Vonage, the EU's first SMS connector, expects a
//! delivery report within 2 s. A message it sent and nobody reported goes
//! on to Twilio; one reported delivered in time does not; a category that
//! must not send twice turns it off.

use crate::support::{FAST_DISPATCH, TestGateway, sms_plan};
use crate::vonage::{by_get, signed};
use crossgate_tests::{ProviderSim, vonage_connector};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const SECRET: &str = "silence-test-signature-secret";

fn twilio_requests(sim: &ProviderSim) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.path.ends_with("/Messages.json"))
        .count()
}

/// A signed Vonage receipt by GET: delivered.
async fn delivered(gw: &TestGateway, provider_id: &str) -> (u16, Value) {
    let receipt = signed(
        &[
            ("messageId", provider_id),
            ("msisdn", "31612345678"),
            ("status", "delivered"),
            ("err-code", "0"),
        ],
        SECRET,
    );
    by_get(gw, &receipt).await
}

#[tokio::test]
async fn a_send_nobody_reports_moves_on_and_a_reported_one_does_not() {
    let sim = ProviderSim::start().await.unwrap();
    let vonage = vonage_connector("vonage", &sim.url(), SECRET).replace(
        "channel = \"sms\"\n",
        "channel = \"sms\"\nregions = [\"EU\"]\nexpect_report_within = \"2s\"\n",
    );
    let gw = TestGateway::start(&format!(
        "{FAST_DISPATCH}
[regions]
EU = [\"NL\"]
[routing.connectors.EU]
sms = [\"vonage\", \"twilio\"]
[categories.transactional]
consent = \"opt-out\"
[categories.codes]
consent = \"opt-out\"
failover_on_silence = false
{}{vonage}",
        crossgate_tests::default_twilio(&sim.url())
    ))
    .await;
    gw.put_customer(
        "eu",
        &json!({"country": "NL", "addresses": {"phone": "+31612345678"}}),
    )
    .await;
    let send = |category: &str| json!({"customer_id": "eu", "category": category, "content": {"text": "Your code is 1234"}});

    // Nobody reports: after 2 s the message goes on to Twilio.
    let silent = gw.send_ok(&send("transactional")).await;
    let message = gw.settled(&silent).await;
    assert_eq!(message["delivered_by"], "vonage", "{message}");
    let sms = sms_plan(&message);
    assert_eq!(sms["failover_on_silence"], json!({"vonage": "2s"}), "{sms}");
    let start = Instant::now();
    let mut message = message;
    while message["delivered_by"] != "twilio" && start.elapsed() < Duration::from_secs(8) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        message = gw.message(&silent).await;
    }
    assert_eq!(message["delivered_by"], "twilio", "{message}");
    assert_eq!(
        message["attempts"][1]["why"], "no delivery report from vonage within 2s",
        "{message}"
    );
    assert!(message["attempts"][0].get("why").is_none());
    assert!(
        start.elapsed() >= Duration::from_millis(1_000),
        "not before its time"
    );
    assert_eq!(twilio_requests(&sim), 1);

    // Reported delivered in time: nothing more goes.
    let reported = gw.send_ok(&send("transactional")).await;
    let message = gw.settled(&reported).await;
    let provider_id = message["provider_message_id"].as_str().unwrap().to_owned();
    let (status, applied) = delivered(&gw, &provider_id).await;
    assert_eq!(
        (status, &applied["matched_messages"]),
        (200, &json!(1)),
        "{applied}"
    );
    // The category that must not send twice: no failover at all.
    let code = gw.send_ok(&send("codes")).await;
    let message = gw.settled(&code).await;
    assert!(
        message["plan"]["channels"][0]
            .get("failover_on_silence")
            .is_none(),
        "{message}"
    );
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    gw.quiesce().await;
    assert_eq!(twilio_requests(&sim), 1, "neither went on to Twilio");
    let reported = gw.message(&reported).await;
    assert_eq!(
        (&reported["status"], &reported["delivered_by"]),
        (&json!("delivered"), &json!("vonage")),
        "{reported}"
    );
    assert_eq!(gw.message(&code).await["delivered_by"], "vonage");
    gw.stop().await;
}
