//! Provider callbacks: delivery progress and STOP keywords, verified by the
//! connector, applied by the gateway.

use crate::support::{FAST_DISPATCH, TestGateway, answer, default_twilio};
use base64::Engine as _;
use crossgate_tests::{DEFAULT_AUTH_TOKEN, ProviderSim};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

pub(crate) const PUBLIC_URL: &str = "https://gw.example.com";

/// Twilio's signature: base64 HMAC-SHA1 over the URL and the sorted parameters.
pub(crate) fn twilio_signature(url: &str, params: &[(&str, &str)], token: &str) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

pub(crate) async fn twilio_callback(
    gw: &TestGateway,
    params: &[(&str, &str)],
    token: &str,
) -> (u16, Value) {
    let url = format!("{PUBLIC_URL}/v1/webhooks/twilio");
    let body = params
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace('+', "%2B")))
        .collect::<Vec<_>>()
        .join("&");
    let response = gw
        .client
        .post(format!("{}/v1/webhooks/twilio", gw.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", twilio_signature(&url, params, token))
        .body(body)
        .send()
        .await
        .unwrap();
    answer(response).await
}

#[tokio::test]
async fn delivery_reports_and_stop_keywords_are_applied() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&format!(
        "[server]\npublic_url = \"{PUBLIC_URL}\"\n{FAST_DISPATCH}
[categories.transactional]
consent = \"opt-out\"
[categories.marketing]
consent = \"opt-in\"
{}",
        default_twilio(&sim.url())
    ))
    .await;
    let (status, _) = gw
        .put_customer("c-9", &json!({"addresses": {"phone": "+31612345678"}}))
        .await;
    assert_eq!(status, 201);
    let id = gw
        .send_ok(&json!({"customer_id": "c-9", "category": "transactional", "content": {"text": "hello"}}))
        .await;
    let message = gw.settled(&id).await;
    let sid = message["provider_message_id"].as_str().unwrap().to_owned();

    let (status, answer) = twilio_callback(
        &gw,
        &[("MessageSid", &sid), ("MessageStatus", "delivered")],
        DEFAULT_AUTH_TOKEN,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["matched_messages"], 1);
    // A late "sent" report does not move the status back.
    twilio_callback(
        &gw,
        &[("MessageSid", &sid), ("MessageStatus", "sent")],
        DEFAULT_AUTH_TOKEN,
    )
    .await;
    let message = gw.message(&id).await;
    assert_eq!(message["status"], "delivered", "{message}");
    let states: Vec<&str> = message["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["delivered", "sent"]);

    // STOP from the customer's phone opts them out of SMS in every category.
    let (status, answer) = twilio_callback(
        &gw,
        &[
            ("From", "+31612345678"),
            ("Body", "STOP"),
            ("MessageSid", "SM_inbound"),
        ],
        DEFAULT_AUTH_TOKEN,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["consent_changes"], 1);
    let profile = gw.customer("c-9").await;
    assert_eq!(
        profile["consent"]["sms"]["transactional"]["status"],
        "opted_out"
    );
    assert_eq!(
        profile["consent"]["sms"]["marketing"]["status"],
        "opted_out"
    );
    assert_eq!(
        profile["consent"]["sms"]["transactional"]["source"],
        "twilio opt-out"
    );
    let (_, after) = gw
        .send(&json!({"customer_id": "c-9", "category": "transactional", "content": {"text": "again"}}))
        .await;
    assert_eq!(after["status"], "suppressed", "{after}");

    // A forged callback changes nothing; an unknown connector is 404.
    let (status, answer) = twilio_callback(
        &gw,
        &[("From", "+31612345678"), ("Body", "START")],
        "not-the-auth-token",
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (401, Some("webhook_unauthorized"))
    );
    assert_eq!(
        gw.customer("c-9").await["consent"]["sms"]["transactional"]["status"],
        "opted_out",
        "the forged START changed nothing"
    );
    let unknown = gw
        .client
        .post(format!("{}/v1/webhooks/nobody", gw.url))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
}
