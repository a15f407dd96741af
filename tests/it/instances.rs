//! Sandbox instances: a fresh one for every call, unless the operator lets a
//! healthy one serve a few calls in a row (`calls_per_instance`); never one
//! whose call failed.

use crate::support::{TestGateway, fault_connector, metric, sms, with_calls_per_instance};

/// A `test-faults` connector in `count` mode: its receipts count the
/// deliveries its instance has made.
fn counting(calls_per_instance: Option<u32>) -> String {
    let counter = fault_connector("counter", "count", "");
    let counter = match calls_per_instance {
        Some(n) => with_calls_per_instance(&counter, n),
        None => counter,
    };
    format!("\n[dispatch]\nmax_attempts = 1\n{counter}")
}

/// `crossgate_plugin_instances_kept` for the `counter` connector, if shown.
async fn kept_now(gw: &TestGateway) -> Option<f64> {
    metric(
        &gw.metrics().await,
        "crossgate_plugin_instances_kept",
        &[("connector", "counter")],
    )
}

/// Send each text in turn, each delivered before the next is sent, and
/// return the settled messages.
async fn one_by_one(gw: &TestGateway, texts: &[&str]) -> Vec<serde_json::Value> {
    let mut settled = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let id = gw.send_ok(&sms(&format!("+3161234{i:04}"), text)).await;
        settled.push(gw.settled(&id).await);
    }
    settled
}

/// The delivery count in a `count-N` receipt.
fn count(message: &serde_json::Value) -> u32 {
    assert_eq!(message["status"], "sent", "{message:#}");
    let receipt = message["provider_message_id"].as_str().unwrap();
    receipt
        .strip_prefix("count-")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a count receipt: {receipt}"))
}

#[tokio::test]
async fn every_call_gets_a_fresh_instance_by_default() {
    let gw = TestGateway::start(&counting(None)).await;
    let counts: Vec<u32> = one_by_one(&gw, &["a", "b", "c", "d"])
        .await
        .iter()
        .map(count)
        .collect();
    assert_eq!(counts, [1, 1, 1, 1]);
    assert_eq!(
        kept_now(&gw).await,
        None,
        "a connector that keeps none shows none"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_kept_instance_serves_at_most_its_calls_and_never_after_a_trap() {
    let gw = TestGateway::start(&counting(Some(4))).await;
    // Loading the plugin calls it too (describe, settings, validate-config),
    // so the first instance may have fewer deliveries left; every later one
    // serves four calls, then makes way.
    let texts = ["a"; 8];
    let counts: Vec<u32> = one_by_one(&gw, &texts).await.iter().map(count).collect();
    for pair in counts.windows(2) {
        assert!(
            pair[1] == pair[0] + 1 || pair[1] == 1,
            "an instance was skipped or shared: {counts:?}"
        );
    }
    assert_eq!(counts.iter().max(), Some(&4), "{counts:?}");
    assert!(
        counts.windows(4).any(|run| run == [1, 2, 3, 4]),
        "no instance served its four calls: {counts:?}"
    );

    // An instance that trapped is dropped: the next call gets a fresh one.
    // A fault in a fresh instance is the plugin's own (permanent); one in a
    // kept instance may be an earlier call's doing, so it is worth another
    // attempt (retryable).
    let messages = one_by_one(&gw, &["panic", "panic", "a", "panic", "a"]).await;
    let trap = |i: usize| {
        let message = &messages[i];
        assert_eq!(message["status"], "failed", "{message:#}");
        let attempt = &message["attempts"][0];
        assert_eq!(attempt["error"]["code"], "plugin_trap", "{message:#}");
        let reason = attempt["error"]["message"].as_str().unwrap().to_owned();
        (attempt["outcome"].as_str().unwrap().to_owned(), reason)
    };
    let (outcome, reason) = trap(1);
    assert_eq!(outcome, "permanent", "{reason}");
    assert!(
        reason.contains("panicking on delivery 1 as asked"),
        "{reason}"
    );
    assert!(!reason.contains("kept"), "{reason}");
    assert_eq!(count(&messages[2]), 1, "a trapped instance was used again");
    let (outcome, reason) = trap(3);
    assert_eq!(outcome, "retryable", "{reason}");
    // Only the panic's own line is quoted, not what earlier calls wrote.
    assert!(
        reason.contains("panicking on delivery 2 as asked (in an instance kept after 1 call)"),
        "{reason}"
    );
    assert!(!reason.contains("delivery 1 of this instance"), "{reason}");
    assert_eq!(count(&messages[4]), 1, "a trapped instance was used again");
    // The instance that made that last delivery waits for the next call.
    assert_eq!(kept_now(&gw).await, Some(1.0));
    gw.stop().await;
}
