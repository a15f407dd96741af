//! Fault containment: each misbehaving plugin costs one failed attempt with
//! its reason, and the same gateway keeps delivering.

use crate::support::{TestGateway, default_twilio, fault_connector, sms, twilio_connector};
use crossgate_tests::{Behaviour, ProviderSim};
use std::time::Duration;

#[tokio::test]
async fn each_fault_costs_one_attempt_and_the_gateway_keeps_delivering() {
    let sim = ProviderSim::start().await.unwrap();
    let stalling = "AC0000000000000000000000000000057a";
    sim.add_account(
        stalling,
        "stall-token",
        Behaviour::Stall(Duration::from_secs(5)),
    );
    // Connectors of one channel are tried in order: every message meets each
    // fault once before the healthy connector delivers it.
    let toml = format!(
        r#"
[plugins]
memory_limit_mb = 16
cpu_budget_ms = 50
timeout_ms = 1000

[dispatch]
max_attempts = 1
{}{}{}{}{}{}"#,
        fault_connector("loop", "loop", ""),
        fault_connector("memory", "memory", ""),
        fault_connector("trap", "trap", ""),
        fault_connector(
            "forbidden",
            "forbidden-host",
            &format!("url = \"{}/leak\"", sim.url())
        ),
        twilio_connector("stall", &sim.url(), stalling, "stall-token"),
        default_twilio(&sim.url()),
    );
    let gw = TestGateway::start(&toml).await;

    let first = gw
        .send_ok(&sms("+31612345678", "through the gauntlet"))
        .await;
    let message = gw.settled(&first).await;
    assert_eq!(message["status"], "sent", "{message:#}");
    assert_eq!(message["delivered_by"], "twilio");

    let attempts = message["attempts"].as_array().unwrap();
    let summary: Vec<(String, String, String)> = attempts
        .iter()
        .map(|a| {
            (
                a["connector"].as_str().unwrap().to_owned(),
                a["outcome"].as_str().unwrap().to_owned(),
                a["error"]["code"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let expected = [
        ("loop", "permanent", "plugin_cpu_budget"),
        ("memory", "permanent", "plugin_memory_limit"),
        ("trap", "permanent", "plugin_trap"),
        ("forbidden", "permanent", "egress_denied"),
        ("stall", "retryable", "provider_timeout"),
        ("twilio", "sent", ""),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(summary, expected, "{message:#}");

    let reason = |i: usize| attempts[i]["error"]["message"].as_str().unwrap().to_owned();
    assert!(reason(0).contains("CPU budget of 50 ms"), "{}", reason(0));
    assert!(reason(1).contains("16 MiB memory limit"), "{}", reason(1));
    assert!(reason(2).contains("trapping on purpose"), "{}", reason(2));
    let leak_origin = sim.url();
    assert!(
        reason(3).contains(&leak_origin) && reason(3).contains("allowed_hosts"),
        "{}",
        reason(3)
    );
    // The connector's one request got no answer within 80% of the call's
    // 1000 ms: the host says so, rather than the connector guessing.
    assert!(reason(4).contains("800 ms"), "{}", reason(4));
    assert!(
        !sim.requests().iter().any(|r| r.path == "/leak"),
        "the forbidden request reached the network"
    );

    // The same gateway keeps serving and delivering.
    let second = gw.send_ok(&sms("+31612345679", "still alive")).await;
    let message = gw.settled(&second).await;
    assert_eq!(message["status"], "sent", "{message:#}");
    assert_eq!(message["attempts"].as_array().unwrap().len(), 6);
    let health = gw
        .client
        .get(format!("{}/healthz", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    gw.stop().await;
}

/// Finding 4: a plugin's requests per call are bounded, and what it returns
/// or logs is bounded and cannot forge log lines.
#[tokio::test]
async fn a_plugins_requests_and_words_are_bounded() {
    let sim = ProviderSim::start().await.unwrap();
    let chatty = format!(
        r#"
[[connectors]]
name = "chatty"
plugin = "test_faults.wasm"
channel = "sms"
allowed_hosts = ["{}"]
[connectors.config]
mode = "chatty"
url = "{}/chatty"
"#,
        sim.url(),
        sim.url()
    );
    let toml = format!(
        "[plugins]\nmax_requests_per_call = 5\n[dispatch]\nmax_attempts = 1\n{chatty}{}{}",
        fault_connector("noisy", "noisy", ""),
        default_twilio(&sim.url())
    );
    let gw = TestGateway::start(&toml).await;
    let id = gw.send_ok(&sms("+31612345678", "hello")).await;
    let message = gw.settled(&id).await;
    assert_eq!(message["delivered_by"], "twilio", "{message:#}");

    let chatty = &message["attempts"][0];
    assert_eq!(chatty["error"]["code"], "egress_denied", "{chatty}");
    let why = chatty["error"]["message"].as_str().unwrap();
    assert!(why.contains("max_requests_per_call"), "{why}");
    let calls = sim
        .requests()
        .iter()
        .filter(|r| r.path == "/chatty")
        .count();
    assert_eq!(calls, 5, "one call made more requests than allowed");

    let noisy = &message["attempts"][1];
    assert_eq!(noisy["error"]["code"], "badcode");
    let words = noisy["error"]["message"].as_str().unwrap();
    assert!(words.len() <= 2048, "{} bytes kept", words.len());
    assert!(
        !words.chars().any(char::is_control),
        "control characters kept"
    );
    let served = gw
        .client
        .get(format!("{}/v1/messages/{id}", gw.url))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(
        served.len() < 16 * 1024,
        "GET served {} bytes",
        served.len()
    );
}

/// A provider answer larger than `plugins.max_response_bytes` is cut off by
/// the host (the connector hears "too large"), and costs one attempt.
#[tokio::test]
async fn an_answer_larger_than_allowed_is_refused_by_the_host() {
    let sim = ProviderSim::start().await.unwrap();
    let toml = format!(
        "[plugins]\nmax_response_bytes = 64\n[dispatch]\nmax_attempts = 1\n{}",
        default_twilio(&sim.url())
    );
    let gw = TestGateway::start(&toml).await;
    let id = gw.send_ok(&sms("+31612345678", "hello")).await;
    let message = gw.settled(&id).await;
    let attempt = &message["attempts"][0];
    let why = attempt["error"]["message"].as_str().unwrap_or_default();
    assert!(
        why.contains("larger than the gateway allows"),
        "{message:#}"
    );
    assert_eq!(sim.requests().len(), 1, "the request went out once");
    gw.stop().await;
}
