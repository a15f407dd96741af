//! Reloading routing, categories and connectors while messages flow: a
//! valid file takes effect, an invalid one changes nothing, and every
//! accepted message is delivered once. What only a restart applies is named.

use crate::support::{TestGateway, default_twilio, file_config, sms, twilio_connector};
use crossgate_tests::ProviderSim;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const SENDS: usize = 120;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_under_traffic_loses_nothing_and_sends_nothing_twice() {
    let sim = ProviderSim::start().await.unwrap();
    let backup_sid = "AC00000000000000000000000000000b4c";
    sim.add_account(
        backup_sid,
        "backup-token",
        crossgate_tests::Behaviour::Accept,
    );
    let before = format!(
        "[categories.transactional]\nconsent = \"opt-out\"\n{}",
        default_twilio(&sim.url())
    );
    let (gw, path) = TestGateway::start_from_file(&before).await;
    let db_path = gw.db_path.clone();

    // Messages flow while the file changes twice.
    let mut ids = Vec::new();
    for i in 0..SENDS {
        ids.push(gw.send_ok(&sms("+31612345678", &format!("flow {i}"))).await);
        if i == SENDS / 3 {
            // Valid: a new category and a second SMS connector behind the first.
            let after = format!(
                "[categories.transactional]\nconsent = \"opt-out\"\n[categories.alerts]\nconsent = \"opt-out\"\n{}{}",
                default_twilio(&sim.url()),
                twilio_connector("backup", &sim.url(), backup_sid, "backup-token")
            );
            std::fs::write(&path, file_config(&after, &db_path)).unwrap();
            let (status, answer) = gw.post("/v1/admin/reload", &serde_json::json!({})).await;
            assert_eq!(status, 200, "{answer}");
            assert_eq!(
                answer["connectors"],
                serde_json::json!(["backup", "twilio"])
            );
            assert_eq!(answer["restart_needed"], serde_json::json!([]), "{answer}");
        }
        if i == 2 * SENDS / 3 {
            // Invalid: refused with its errors; the running configuration stays.
            std::fs::write(&path, "[server]\nlisten = \"nowhere\"\n").unwrap();
            let (status, answer) = gw.post("/v1/admin/reload", &serde_json::json!({})).await;
            assert_eq!(status, 422, "{answer}");
            assert!(
                answer["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("server.listen"),
                "{answer}"
            );
        }
    }
    // The reloaded category is in force.
    let mut alert = sms("+31612345678", "an alert");
    alert["category"] = serde_json::json!("alerts");
    ids.push(gw.send_ok(&alert).await);

    let deadline = Instant::now() + Duration::from_secs(60);
    for id in &ids {
        let message = gw.settled(id).await;
        assert_eq!(message["status"], "sent", "{message}");
        assert!(Instant::now() < deadline, "messages did not settle");
    }
    let mut received: HashMap<String, usize> = HashMap::new();
    for request in sim.requests() {
        if let Some(body) = request.field("Body") {
            *received.entry(body.to_owned()).or_default() += 1;
        }
    }
    for i in 0..SENDS {
        assert_eq!(received.get(&format!("flow {i}")), Some(&1), "flow {i}");
    }
    assert_eq!(received.get("an alert"), Some(&1));
}

/// A reload applies what it can and names the file's changes that wait for
/// a restart, until the file and the running gateway agree again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_names_the_changes_that_wait_for_a_restart() {
    let sim = ProviderSim::start().await.unwrap();
    let running = default_twilio(&sim.url());
    let (gw, path) = TestGateway::start_from_file(&running).await;
    // A new category takes effect; the dispatcher's concurrency and the
    // connector's pacing were set up at start.
    let edited = format!(
        "[categories.alerts]\nconsent = \"opt-out\"\n[dispatch]\nconcurrency = 4\n{}",
        running.replace(
            "channel = \"sms\"\n",
            "channel = \"sms\"\nrate = \"10/s\"\n"
        )
    );
    std::fs::write(&path, file_config(&edited, &gw.db_path)).unwrap();
    let (status, answer) = gw.post("/v1/admin/reload", &serde_json::json!({})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["restart_needed"],
        serde_json::json!(["connectors.twilio.rate", "dispatch"]),
        "{answer}"
    );
    let mut alert = sms("+31612345678", "an alert");
    alert["category"] = serde_json::json!("alerts");
    let id = gw.send_ok(&alert).await;
    assert_eq!(gw.settled(&id).await["status"], "sent");

    // The file as the gateway started from it: nothing waits any more.
    std::fs::write(&path, file_config(&running, &gw.db_path)).unwrap();
    let (status, answer) = gw.post("/v1/admin/reload", &serde_json::json!({})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["restart_needed"], serde_json::json!([]), "{answer}");
}
