//! Plugins built against an older released contract keep working.

use crate::support::{FAST_DISPATCH, TestGateway, repo_root, sms, twilio_connector};
use crossgate_tests::{DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, ProviderSim};

#[tokio::test]
async fn a_plugin_built_for_contract_0_1_0_still_loads_and_delivers() {
    let sim = ProviderSim::start().await.unwrap();
    let released = repo_root().join("tests/fixtures/plugins/contract-0.1.0/sms_twilio.wasm");
    let entry = twilio_connector(
        "twilio-0-1",
        &sim.url(),
        DEFAULT_ACCOUNT_SID,
        DEFAULT_AUTH_TOKEN,
    )
    .replace(
        "plugin = \"sms_twilio.wasm\"",
        &format!("plugin = {:?}", released.display().to_string()),
    );
    let gw = TestGateway::start(&format!("{FAST_DISPATCH}{entry}")).await;

    let id = gw.send_ok(&sms("+31612345678", "still here")).await;
    let message = gw.settled(&id).await;
    assert_eq!(message["status"], "sent", "{message}");
    assert_eq!(message["delivered_by"], "twilio-0-1");
    let requests = sim.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].field("Body"), Some("still here"));
    gw.stop().await;
}

#[tokio::test]
async fn the_host_reads_each_plugins_contract_version() {
    let sim = ProviderSim::start().await.unwrap();
    let released = repo_root().join("tests/fixtures/plugins/contract-0.1.0/sms_twilio.wasm");
    let old = twilio_connector("old", &sim.url(), DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN).replace(
        "plugin = \"sms_twilio.wasm\"",
        &format!("plugin = {:?}", released.display().to_string()),
    );
    let new = twilio_connector("new", &sim.url(), DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let config = crate::support::test_config(&format!("{old}{new}"), &dir.path().join("db"));
    let host = crossgate::plugins::PluginHost::load(&config)
        .await
        .unwrap_or_else(|e| panic!("plugins load: {e:?}"));
    let versions: std::collections::BTreeMap<_, _> = host
        .connectors()
        .map(|(name, info)| (name.to_owned(), info.contract_version.clone()))
        .collect();
    assert_eq!(versions["old"], "0.1.0");
    assert_eq!(versions["new"], crossgate_plugin_sdk::CONTRACT_VERSION);
}
