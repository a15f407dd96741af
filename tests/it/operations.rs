//! What operators see: `/metrics` after a known sequence of sends, and
//! `/readyz` when the store is gone.

use crate::support::{TestGateway, default_twilio, fault_connector, metric, sms};
use crossgate_tests::ProviderSim;

#[tokio::test]
async fn metrics_count_what_happened() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&format!(
        "[dispatch]\nmax_attempts = 1\n{}{}",
        fault_connector("trap", "trap", ""),
        default_twilio(&sim.url())
    ))
    .await;
    for text in ["one", "two"] {
        let id = gw.send_ok(&sms("+31612345678", text)).await;
        assert_eq!(gw.settled(&id).await["status"], "sent");
    }
    let suppress = gw
        .client
        .put(format!("{}/v1/suppressions/sms/+31612345679", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(suppress.status().as_u16(), 201);
    let (status, body) = gw.send(&sms("+31612345679", "three")).await;
    assert_eq!((status, body["status"].as_str()), (202, Some("suppressed")));
    // Refused before any handler (not JSON): counted all the same.
    let refused = gw
        .client
        .post(format!("{}/v1/messages", gw.url))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 415);

    // The dispatcher counts a finished message just after its status is
    // committed, so a reader may see `sent` a moment before the count.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let text = loop {
        let text = gw.metrics().await;
        let finished = metric(
            &text,
            "crossgate_messages_finished_total",
            &[("connector", "twilio"), ("status", "sent")],
        );
        if finished == Some(2.0) || std::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let sms_accepted = |status| {
        metric(
            &text,
            "crossgate_messages_accepted_total",
            &[
                ("channel", "sms"),
                ("category", "transactional"),
                ("status", status),
            ],
        )
    };
    assert_eq!(sms_accepted("queued"), Some(2.0), "{text}");
    assert_eq!(sms_accepted("suppressed"), Some(1.0), "{text}");
    let attempts = |connector, outcome| {
        metric(
            &text,
            "crossgate_attempts_total",
            &[("connector", connector), ("outcome", outcome)],
        )
    };
    assert_eq!(attempts("trap", "permanent"), Some(2.0), "{text}");
    assert_eq!(attempts("twilio", "sent"), Some(2.0), "{text}");
    assert_eq!(
        metric(
            &text,
            "crossgate_plugin_faults_total",
            &[("connector", "trap"), ("kind", "trap")]
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "crossgate_messages_finished_total",
            &[("connector", "twilio"), ("status", "sent")]
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "crossgate_attempt_duration_seconds_count",
            &[("connector", "twilio")]
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "crossgate_http_requests_total",
            &[("route", "/v1/messages"), ("status", "202")]
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "crossgate_http_requests_total",
            &[("route", "/v1/messages"), ("status", "415")]
        ),
        Some(1.0),
        "what the guard refuses is counted: {text}"
    );
    assert!(
        metric(
            &text,
            "crossgate_http_requests_total",
            &[("route", "/v1/messages/{id}")]
        )
        .is_some(),
        "routes are counted by template: {text}"
    );
    assert_eq!(
        metric(&text, "crossgate_queue_depth", &[]),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "crossgate_callback_outbox_depth", &[]),
        Some(0.0)
    );
}

#[tokio::test]
async fn readyz_fails_while_the_store_is_gone_and_healthz_stays_up() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&default_twilio(&sim.url())).await;
    let get = |path: &'static str| {
        let client = gw.client.clone();
        let url = format!("{}{path}", gw.url);
        async move { client.get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(get("/readyz").await, 200);
    for suffix in ["", "-wal", "-shm"] {
        let mut path = gw.db_path.clone().into_os_string();
        path.push(suffix);
        let _ = std::fs::remove_file(path);
    }
    assert_eq!(get("/readyz").await, 503);
    assert_eq!(get("/healthz").await, 200);
}

/// Every routed path is in `/openapi.json`, and the example sends and
/// broadcasts in docs/api.md are valid requests by it.
#[tokio::test]
async fn the_openapi_document_covers_every_route_and_the_api_docs() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&default_twilio(&sim.url())).await;
    let doc: serde_json::Value = gw
        .client
        .get(format!("{}/openapi.json", gw.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let documented: std::collections::BTreeSet<String> =
        doc["paths"].as_object().unwrap().keys().cloned().collect();

    // The routes as the router declares them.
    let router =
        std::fs::read_to_string(crate::support::repo_root().join("gateway/src/api/mod.rs"))
            .unwrap();
    let routed: std::collections::BTreeSet<String> = router
        .split(".route(")
        .skip(1)
        .filter_map(|rest| rest.trim_start().strip_prefix('"')?.split('"').next())
        .map(str::to_owned)
        .collect();
    assert!(routed.len() >= 10, "the reader found {routed:?}");
    let missing: Vec<&String> = routed.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes without documentation: {missing:?}"
    );

    // The documented `POST /v1/messages` examples, validated against SendRequest.
    let api = std::fs::read_to_string(crate::support::repo_root().join("docs/api.md")).unwrap();
    let examples: Vec<serde_json::Value> = api
        .split("```json\n")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .filter_map(|json| serde_json::from_str::<serde_json::Value>(json).ok())
        .filter(|v| v.get("content").is_some() || v.get("template").is_some())
        .collect();
    assert!(
        examples.len() >= 2,
        "found {} send examples",
        examples.len()
    );
    let validator = |name: &str| {
        let schema = serde_json::json!({
            "$ref": format!("#/components/schemas/{name}"),
            "components": doc["components"],
        });
        jsonschema::validator_for(&schema).unwrap()
    };
    let (validator, broadcasts) = (validator("SendRequest"), validator("BroadcastRequest"));
    for example in &examples {
        // A broadcast names its segment; every other example is a send.
        let by = if example.get("segment").is_some() {
            &broadcasts
        } else {
            &validator
        };
        let errors: Vec<String> = by.iter_errors(example).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{example}: {errors:?}");
    }
    let wrong = serde_json::json!({"channel": "sms", "to": {"phone": "+31612345678"}, "content": {"text": "x"}, "colour": "blue"});
    assert!(
        !validator.is_valid(&wrong),
        "unknown fields are refused by the document too"
    );
}
