//! Plugins built against an older released contract keep working.

use crate::support::{FAST_DISPATCH, TestGateway, repo_root, sms, twilio_connector};
use crate::webhooks::{PUBLIC_URL, twilio_callback};
use crossgate_tests::{DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, ProviderSim};

/// A connector entry for the frozen Twilio plugin built against `contract`.
fn released_entry(sim: &ProviderSim, contract: &str, name: &str) -> String {
    let released = repo_root().join(format!(
        "tests/fixtures/plugins/contract-{contract}/sms_twilio.wasm"
    ));
    twilio_connector(name, &sim.url(), DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN).replace(
        "plugin = \"sms_twilio.wasm\"",
        &format!("plugin = {:?}", released.display().to_string()),
    )
}

/// A gateway whose only SMS connector is the frozen Twilio plugin of `contract`.
async fn released_twilio(sim: &ProviderSim, contract: &str, name: &str) -> TestGateway {
    let entry = released_entry(sim, contract, name);
    TestGateway::start(&format!(
        "[server]\npublic_url = \"{PUBLIC_URL}\"\n{FAST_DISPATCH}{entry}"
    ))
    .await
}

#[tokio::test]
async fn plugins_built_for_contracts_0_1_to_0_3_still_load_and_deliver() {
    for (contract, name) in [
        ("0.1.0", "twilio-0-1"),
        ("0.2.0", "twilio-0-2"),
        ("0.3.0", "twilio-0-3"),
    ] {
        let sim = ProviderSim::start().await.unwrap();
        let gw = released_twilio(&sim, contract, name).await;
        let id = gw.send_ok(&sms("+31612345678", "still here")).await;
        let message = gw.settled(&id).await;
        assert_eq!(message["status"], "sent", "{contract}: {message}");
        assert_eq!(message["delivered_by"], name);
        let requests = sim.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].field("Body"), Some("still here"));
        gw.stop().await;
    }
}

#[tokio::test]
async fn a_0_2_plugins_webhooks_are_read_through_the_0_3_host() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = released_twilio(&sim, "0.2.0", "twilio").await;
    let id = gw.send_ok(&sms("+31612345678", "report back")).await;
    let sid = gw.settled(&id).await["provider_message_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, applied) = twilio_callback(
        &gw,
        &[("MessageSid", &sid), ("MessageStatus", "delivered")],
        DEFAULT_AUTH_TOKEN,
    )
    .await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["matched_messages"], 1);
    assert_eq!(gw.message(&id).await["status"], "delivered");
    // Contract 0.2.0 knows no replies: a plain answer is not one.
    let (status, applied) = twilio_callback(
        &gw,
        &[
            ("MessageSid", "SM1"),
            ("From", "+31612345678"),
            ("Body", "thanks"),
        ],
        DEFAULT_AUTH_TOKEN,
    )
    .await;
    assert_eq!((status, &applied["replies"]), (200, &serde_json::json!(0)));
    gw.stop().await;
}

#[tokio::test]
async fn the_host_reads_each_plugins_contract_version() {
    let sim = ProviderSim::start().await.unwrap();
    let entries: String = [("0.1.0", "old"), ("0.2.0", "mid"), ("0.3.0", "last")]
        .iter()
        .map(|(contract, name)| released_entry(&sim, contract, name))
        .chain([twilio_connector(
            "new",
            &sim.url(),
            DEFAULT_ACCOUNT_SID,
            DEFAULT_AUTH_TOKEN,
        )])
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let config = crate::support::test_config(&entries, &dir.path().join("db"));
    let host = crossgate::plugins::PluginHost::load(&config)
        .await
        .unwrap_or_else(|e| panic!("plugins load: {e:?}"));
    let versions: std::collections::BTreeMap<_, _> = host
        .connectors()
        .map(|(name, info)| (name.to_owned(), info.contract_version.clone()))
        .collect();
    assert_eq!(versions["old"], "0.1.0");
    assert_eq!(versions["mid"], "0.2.0");
    assert_eq!(versions["last"], "0.3.0");
    assert_eq!(versions["new"], crossgate_plugin_sdk::CONTRACT_VERSION);
    assert_eq!(crossgate_plugin_sdk::CONTRACT_VERSION, "0.4.0");
    // 0.3.0 declared its settings: they are still checked.
    let typo = released_entry(&sim, "0.3.0", "typo").replace("base_url =", "bse_url =");
    let config = crate::support::test_config(&typo, &dir.path().join("db2"));
    let refused = match crossgate::plugins::PluginHost::load(&config).await {
        Ok(_) => panic!("a misspelled key of a 0.3.0 plugin loaded"),
        Err(errors) => errors
            .iter()
            .map(|e| format!("{}: {}\n", e.key, e.message))
            .collect::<String>(),
    };
    assert!(refused.contains("did you mean \"base_url\"?"), "{refused}");
}

#[tokio::test]
async fn a_0_3_plugins_replies_and_refusals_are_read_through_the_0_4_host() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = released_twilio(&sim, "0.3.0", "twilio").await;
    let id = gw.send_ok(&sms("+31612345678", "report back")).await;
    let sid = gw.settled(&id).await["provider_message_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, applied) = twilio_callback(
        &gw,
        &[("MessageSid", &sid), ("MessageStatus", "delivered")],
        DEFAULT_AUTH_TOKEN,
    )
    .await;
    assert_eq!(
        (status, &applied["matched_messages"]),
        (200, &serde_json::json!(1))
    );
    assert_eq!(gw.message(&id).await["status"], "delivered");
    // 0.3.0 introduced replies: a plain answer is one.
    let (status, applied) = twilio_callback(
        &gw,
        &[
            ("MessageSid", "SM-reply-1"),
            ("From", "+31612345678"),
            ("Body", "thanks"),
        ],
        DEFAULT_AUTH_TOKEN,
    )
    .await;
    assert_eq!((status, &applied["replies"]), (200, &serde_json::json!(1)));
    // Its refusal was a prefixed string; the host still reads the kind.
    let (status, _) = twilio_callback(
        &gw,
        &[("MessageSid", &sid), ("MessageStatus", "delivered")],
        "not-the-token",
    )
    .await;
    assert_eq!(status, 401);
    gw.stop().await;
}
