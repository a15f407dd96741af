//! Connectors' circuits against the simulator: Vonage, the EU's first SMS
//! connector, fails half its requests; its circuit opens within the
//! window and EU traffic moves to Twilio without touching Vonage; once
//! Vonage recovers, probes close the circuit and EU traffic returns.

use crate::support::{FAST_DISPATCH, TestGateway, answer, sms_plan};
use crossgate_tests::vonage::DEFAULT_API_KEY;
use crossgate_tests::{Behaviour, ProviderSim, vonage_connector};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn circuit(gw: &TestGateway, name: &str) -> Value {
    let (status, body) = answer(
        gw.client
            .get(format!("{}/v1/connectors", gw.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no connector {name}: {body}"))["health"]
        .clone()
}

/// Polls `/v1/connectors` (bounded: at most 50 reads, for at most
/// `within`) until `name`'s circuit is `state`.
async fn until_circuit(gw: &TestGateway, name: &str, state: &str, within: Duration) -> Value {
    let start = Instant::now();
    for _ in 0..50 {
        let health = circuit(gw, name).await;
        if health["state"] == state || start.elapsed() > within {
            return health;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    circuit(gw, name).await
}

fn vonage_requests(sim: &ProviderSim) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.path == "/sms/json")
        .count()
}

#[tokio::test]
async fn a_failing_provider_is_skipped_until_probes_find_it_well() {
    let sim = ProviderSim::start().await.unwrap();
    let vonage = vonage_connector("vonage", &sim.url(), "sig").replace(
        "channel = \"sms\"\n",
        "channel = \"sms\"\nregions = [\"EU\"]\n",
    );
    let gw = TestGateway::start(&format!(
        "{FAST_DISPATCH}
[health]
window = \"20s\"
min_attempts = 6
open_at = 0.4
open_for = \"1s\"
probes = 2
sync_ms = 100
[regions]
EU = [\"NL\"]
[routing.connectors.EU]
sms = [\"vonage\", \"twilio\"]
{}{vonage}",
        crossgate_tests::default_twilio(&sim.url())
    ))
    .await;
    gw.put_customer(
        "eu",
        &json!({"country": "NL", "addresses": {"phone": "+31612345678"}}),
    )
    .await;
    let send = json!({"customer_id": "eu", "category": "transactional", "content": {"text": "Your code is 1234"}});
    assert_eq!(circuit(&gw, "vonage").await["state"], "closed");

    // Every other request fails (a 500): each message takes two attempts.
    sim.script(
        DEFAULT_API_KEY,
        (0..20).flat_map(|_| [Behaviour::Fail, Behaviour::Accept]),
    );
    let mut sent_while_closed = 0;
    for _ in 0..8 {
        let message = gw.settled(&gw.send_ok(&send).await).await;
        assert_eq!(message["status"], "sent", "{message}");
        sent_while_closed += 1;
        if until_circuit(&gw, "vonage", "open", Duration::from_millis(500)).await["state"] == "open"
        {
            break;
        }
    }
    let health = circuit(&gw, "vonage").await;
    assert_eq!(
        health["state"], "open",
        "after {sent_while_closed} messages: {health}"
    );
    assert!(
        sent_while_closed <= 4,
        "6 attempts, 3 failed, open it: {sent_while_closed} messages"
    );
    assert!(
        health["reason"]
            .as_str()
            .unwrap()
            .contains("attempts failed within 20s"),
        "{health}"
    );

    // Open: EU traffic goes through Twilio, and Vonage hears nothing.
    let before = vonage_requests(&sim);
    let message = gw.settled(&gw.send_ok(&send).await).await;
    assert_eq!(message["delivered_by"], "twilio", "{message}");
    let sms = sms_plan(&message);
    assert_eq!(sms["connectors"], json!(["twilio", "vonage"]), "{sms}");
    assert_eq!(sms["unhealthy"], json!(["vonage"]), "{sms}");
    assert_eq!(vonage_requests(&sim), before);
    let metrics = gw
        .client
        .get(format!("{}/metrics", gw.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("crossgate_connector_circuit_state{connector=\"vonage\"} 2"),
        "{metrics}"
    );

    // Vonage recovers: after open_for, probes go through and close it.
    sim.unscript(DEFAULT_API_KEY);
    let health = until_circuit(&gw, "vonage", "half_open", Duration::from_secs(4)).await;
    assert_eq!(health["state"], "half_open", "{health}");
    for _ in 0..6 {
        gw.settled(&gw.send_ok(&send).await).await;
        if until_circuit(&gw, "vonage", "closed", Duration::from_millis(500)).await["state"]
            == "closed"
        {
            break;
        }
    }
    let health = circuit(&gw, "vonage").await;
    assert_eq!(health["state"], "closed", "{health}");
    let message = gw.settled(&gw.send_ok(&send).await).await;
    assert_eq!(message["delivered_by"], "vonage", "{message}");
    gw.stop().await;
}
