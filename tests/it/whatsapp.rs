//! WhatsApp through the Cloud API connector, end to end.

use crate::support::{FAST_DISPATCH, TestGateway, outcomes, whatsapp_connector};
use crossgate_tests::{Behaviour, DEFAULT_WHATSAPP_PHONE_NUMBER_ID, ProviderSim};
use serde_json::{Value, json};

fn whatsapp(text: &str) -> Value {
    json!({"channel": "whatsapp", "to": {"phone": "+5511987654321"}, "content": {"text": text}})
}

#[tokio::test]
async fn whatsapp_is_delivered_retried_or_failed_as_meta_answers() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&format!(
        "{FAST_DISPATCH}{}",
        whatsapp_connector("whatsapp", &sim.url())
    ))
    .await;

    let id = gw.send_ok(&whatsapp("Olá! Seu pedido saiu.")).await;
    let message = gw.settled(&id).await;
    assert_eq!(message["status"], "sent", "{message:#}");
    assert!(
        message["provider_message_id"]
            .as_str()
            .unwrap()
            .starts_with("wamid.")
    );
    let request = &sim.requests()[0];
    assert_eq!(
        request.path,
        format!("/v21.0/{DEFAULT_WHATSAPP_PHONE_NUMBER_ID}/messages")
    );
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["to"], "5511987654321");
    assert_eq!(body["text"]["body"], "Olá! Seu pedido saiu.");

    // Meta's temporary error is retried, then the message goes.
    sim.script(DEFAULT_WHATSAPP_PHONE_NUMBER_ID, [Behaviour::Fail]);
    let message = gw.settled(&gw.send_ok(&whatsapp("retry")).await).await;
    assert_eq!(message["status"], "sent", "{message:#}");
    assert_eq!(outcomes(&message), ["retryable", "sent"]);

    // Outside the 24-hour window free text is refused for good, with Meta's code.
    sim.script(
        DEFAULT_WHATSAPP_PHONE_NUMBER_ID,
        [Behaviour::Reject {
            code: 131047,
            message: "Re-engagement message".into(),
        }],
    );
    let message = gw.settled(&gw.send_ok(&whatsapp("too late")).await).await;
    assert_eq!(message["status"], "failed", "{message:#}");
    assert_eq!(outcomes(&message), ["permanent"]);
    assert_eq!(message["attempts"][0]["error"]["code"], "131047");
    gw.stop().await;
}

#[tokio::test]
async fn a_whatsapp_template_and_metadata_reach_the_connector() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&format!(
        "{FAST_DISPATCH}{}",
        whatsapp_connector("whatsapp", &sim.url())
    ))
    .await;
    let request = json!({
        "channel": "whatsapp",
        "to": {"phone": "+5511987654321"},
        "content": {
            "text": "Seu pedido 1042 saiu para entrega",
            "whatsapp": {"template": {"name": "order_shipped", "language": "pt_BR", "parameters": ["1042"]}}
        }
    });
    let message = gw.settled(&gw.send_ok(&request).await).await;
    assert_eq!(message["status"], "sent", "{message:#}");
    let body: Value = serde_json::from_slice(&sim.requests()[0].body).unwrap();
    assert_eq!(body["type"], "template");
    assert_eq!(body["template"]["name"], "order_shipped");
    assert_eq!(body["template"]["language"]["code"], "pt_BR");
    assert_eq!(
        body["template"]["components"][0]["parameters"][0]["text"],
        "1042"
    );

    let bad = json!({
        "channel": "whatsapp",
        "to": {"phone": "+5511987654321"},
        "content": {"text": "x", "metadata": {"not ok": "v"}, "whatsapp": {"template": {"name": "t", "language": "??"}}}
    });
    let (status, answer) = gw.send(&bad).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (422, Some("invalid_metadata")),
        "{answer}"
    );
    gw.stop().await;
}
