//! SMS through the Twilio connector, end to end.

use crate::provider_specs;
use crate::support::{FAST_DISPATCH, TestGateway, default_twilio, sms, twilio_connector};
use crossgate_tests::{Behaviour, DEFAULT_ACCOUNT_SID, ProviderSim};

async fn gateway(sim: &ProviderSim) -> TestGateway {
    let toml = format!("{FAST_DISPATCH}{}", default_twilio(&sim.url()));
    TestGateway::start(&toml).await
}

#[tokio::test]
async fn sms_is_delivered_and_the_request_matches_twilios_spec() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim).await;

    let id = gw.send_ok(&sms("+31612345678", "Your code is 1234")).await;
    let message = gw.settled(&id).await;

    assert_eq!(message["status"], "sent", "{message}");
    assert_eq!(message["delivered_by"], "twilio");
    let sid = message["provider_message_id"].as_str().unwrap();
    assert!(sid.starts_with("SM") && sid.len() == 34, "{sid}");
    let attempts = message["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["outcome"], "sent");
    assert_eq!(attempts[0]["connector"], "twilio");
    assert_eq!(attempts[0]["provider_message_id"], sid);

    let requests = sim.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.field("To"), Some("+31612345678"));
    assert_eq!(request.field("From"), Some("+15005550006"));
    assert_eq!(request.field("Body"), Some("Your code is 1234"));
    provider_specs::assert_valid_create_message(&request.path, &request.form);
    gw.stop().await;
}

#[tokio::test]
async fn retryable_failures_are_retried_until_sent() {
    let sim = ProviderSim::start().await.unwrap();
    sim.script(
        DEFAULT_ACCOUNT_SID,
        [
            Behaviour::Fail,
            Behaviour::RateLimit {
                retry_after_secs: 1,
            },
        ],
    );
    let gw = gateway(&sim).await;

    let id = gw.send_ok(&sms("+14155550100", "retry me")).await;
    let message = gw.settled(&id).await;

    assert_eq!(message["status"], "sent", "{message}");
    let attempts = message["attempts"].as_array().unwrap();
    let outcomes: Vec<_> = attempts
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["retryable", "retryable", "sent"]);
    assert_eq!(attempts[0]["error"]["code"], "20500");
    assert_eq!(attempts[1]["error"]["code"], "20429");
    // Retry-After: 1 is honoured: the third attempt starts at least a second after the second.
    let second_end: jiff::Timestamp = attempts[1]["finished_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let third_start: jiff::Timestamp = attempts[2]["started_at"].as_str().unwrap().parse().unwrap();
    let waited = third_start.as_millisecond() - second_end.as_millisecond();
    assert!(waited >= 1000, "Retry-After ignored: waited {waited} ms");
    assert_eq!(sim.requests().len(), 3);
}

#[tokio::test]
async fn retries_are_bounded() {
    let sim = ProviderSim::start().await.unwrap();
    sim.script(
        DEFAULT_ACCOUNT_SID,
        [
            Behaviour::Fail,
            Behaviour::Fail,
            Behaviour::Fail,
            Behaviour::Fail,
        ],
    );
    let gw = gateway(&sim).await;

    let id = gw.send_ok(&sms("+14155550100", "doomed")).await;
    let message = gw.settled(&id).await;

    assert_eq!(message["status"], "failed");
    assert_eq!(
        message["attempts"].as_array().unwrap().len(),
        3,
        "{message}"
    );
    let reason = message["status_reason"].as_str().unwrap();
    assert!(reason.contains("gave up after 3 attempts"), "{reason}");
    assert_eq!(sim.requests().len(), 3);
}

#[tokio::test]
async fn permanent_rejection_fails_with_twilios_code_and_message() {
    let sim = ProviderSim::start().await.unwrap();
    sim.script(
        DEFAULT_ACCOUNT_SID,
        [Behaviour::Reject {
            code: 21610,
            message: "Attempt to send to unsubscribed recipient".into(),
        }],
    );
    let gw = gateway(&sim).await;

    let id = gw.send_ok(&sms("+14155550100", "hello")).await;
    let message = gw.settled(&id).await;

    assert_eq!(message["status"], "failed");
    let attempts = message["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["outcome"], "permanent");
    assert_eq!(attempts[0]["error"]["code"], "21610");
    assert_eq!(
        attempts[0]["error"]["message"],
        "Attempt to send to unsubscribed recipient (https://www.twilio.com/docs/errors/21610)"
    );
    assert!(message["status_reason"].as_str().unwrap().contains("21610"));
}

#[tokio::test]
async fn second_connector_takes_over_when_the_first_fails_for_good() {
    let sim = ProviderSim::start().await.unwrap();
    let backup_sid = "AC00000000000000000000000000000002";
    sim.add_account(backup_sid, "backup-token", Behaviour::Accept);
    sim.script(
        DEFAULT_ACCOUNT_SID,
        [Behaviour::Reject {
            code: 21612,
            message: "not reachable".into(),
        }],
    );
    let toml = format!(
        "{FAST_DISPATCH}{}{}",
        default_twilio(&sim.url()),
        twilio_connector("twilio-backup", &sim.url(), backup_sid, "backup-token"),
    );
    let gw = TestGateway::start(&toml).await;

    let id = gw.send_ok(&sms("+14155550100", "failover")).await;
    let message = gw.settled(&id).await;

    assert_eq!(message["status"], "sent", "{message}");
    assert_eq!(message["delivered_by"], "twilio-backup");
    let connectors: Vec<_> = message["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["connector"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(connectors, ["twilio", "twilio-backup"]);
}

#[tokio::test]
async fn many_messages_are_all_delivered_once() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim).await;
    let mut ids = Vec::new();
    for i in 0..50 {
        ids.push(gw.send_ok(&sms("+14155550100", &format!("bulk {i}"))).await);
    }
    for id in &ids {
        assert_eq!(gw.settled(id).await["status"], "sent");
    }
    let mut bodies: Vec<_> = sim
        .requests()
        .iter()
        .map(|r| r.field("Body").unwrap().to_owned())
        .collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), 50);
    assert_eq!(sim.requests().len(), 50);
}
