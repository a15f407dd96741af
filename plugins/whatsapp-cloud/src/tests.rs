use super::*;
use crossgate_plugin_sdk::ProviderTemplate;
use crossgate_plugin_sdk::http::Response;
use crossgate_plugin_sdk::testing::Harness;

fn harness() -> Harness {
    Harness::new([
        ("access_token", "token-1"),
        ("phone_number_id", "106540352242922"),
        ("base_url", "http://127.0.0.1:9"),
        ("app_secret", "app-secret"),
    ])
}

fn message() -> Message {
    Message::text(Channel::Whatsapp, "+5511987654321", "Olá!")
}

fn sent_body(request: &http::Request) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

#[test]
fn free_text_is_sent_with_bearer_auth() {
    let mut h = harness();
    h.respond(Response::new(
        200,
        r#"{"messaging_product":"whatsapp","contacts":[{"input":"5511987654321","wa_id":"5511987654321"}],"messages":[{"id":"wamid.ABC"}]}"#,
    ));
    let receipt = h.deliver::<WhatsappCloud>(&message()).unwrap();
    assert_eq!(receipt.provider_message_id, "wamid.ABC");
    let request = &h.requests()[0];
    assert_eq!(
        request.url,
        "http://127.0.0.1:9/v21.0/106540352242922/messages"
    );
    assert_eq!(
        request.header_value("authorization"),
        Some("Bearer token-1")
    );
    let body = sent_body(request);
    assert_eq!(body["messaging_product"], "whatsapp");
    assert_eq!(body["to"], "5511987654321");
    assert_eq!(body["type"], "text");
    assert_eq!(body["text"]["body"], "Olá!");
}

#[test]
fn a_provider_template_is_sent_as_a_template() {
    let mut h = harness();
    h.respond(Response::new(200, r#"{"messages":[{"id":"wamid.T"}]}"#));
    let mut msg = message();
    msg.template = Some(ProviderTemplate {
        name: "order_shipped".into(),
        language: "pt_BR".into(),
        parameters: vec!["42".into()],
    });
    h.deliver::<WhatsappCloud>(&msg).unwrap();
    let body = sent_body(&h.requests()[0]);
    assert_eq!(body["type"], "template");
    assert_eq!(body["template"]["name"], "order_shipped");
    assert_eq!(body["template"]["language"]["code"], "pt_BR");
    assert_eq!(
        body["template"]["components"][0]["parameters"][0]["text"],
        "42"
    );

    // A template without variables sends no components, not an empty list.
    let mut plain = message();
    plain.template = Some(ProviderTemplate {
        name: "hello_world".into(),
        language: "en_US".into(),
        parameters: Vec::new(),
    });
    h.respond(Response::new(200, r#"{"messages":[{"id":"wamid.U"}]}"#));
    h.deliver::<WhatsappCloud>(&plain).unwrap();
    let body = sent_body(&h.requests()[1]);
    assert!(body["template"].get("components").is_none(), "{body}");
}

#[test]
fn outside_the_24_hour_window_is_permanent_with_a_routable_code() {
    let mut h = harness();
    h.respond(Response::new(
        400,
        r#"{"error":{"message":"Re-engagement message","type":"OAuthException","code":131047,"fbtrace_id":"x"}}"#,
    ));
    let failure = h.deliver::<WhatsappCloud>(&message()).unwrap_err();
    assert!(!failure.retryable);
    assert_eq!(failure.code, REENGAGEMENT_REQUIRED);
}

#[test]
fn rate_limits_and_outages_are_retryable() {
    for (status, body) in [
        (
            400,
            r#"{"error":{"message":"Rate limit hit","code":130429}}"#,
        ),
        (
            503,
            r#"{"error":{"message":"Service unavailable","code":131016}}"#,
        ),
        (500, "oops"),
    ] {
        let mut h = harness();
        h.respond(Response::new(status, body));
        let failure = h.deliver::<WhatsappCloud>(&message()).unwrap_err();
        assert!(failure.retryable, "{status} {body}");
    }
}

#[test]
fn bad_token_is_permanent() {
    let mut h = harness();
    h.respond(Response::new(
        401,
        r#"{"error":{"message":"Invalid OAuth access token","code":190}}"#,
    ));
    let failure = h.deliver::<WhatsappCloud>(&message()).unwrap_err();
    assert!(!failure.retryable);
    assert_eq!(failure.code, "190");
}

/// A webhook as Meta signs it with the app secret.
fn signed(body: &[u8]) -> WebhookRequest {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"app-secret").unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    WebhookRequest {
        method: "POST".into(),
        url: "https://gw/v1/webhooks/whatsapp".into(),
        headers: vec![("X-Hub-Signature-256".into(), format!("sha256={hex}"))],
        body: body.to_vec(),
    }
}

#[test]
fn signed_status_webhooks_become_events() {
    let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"statuses":[{"id":"wamid.ABC","status":"delivered","timestamp":"1","recipient_id":"5511987654321"}]}}]}]}"#;
    let mut req = signed(body);
    let mut h = harness();
    let events = h.handle_webhook::<WhatsappCloud>(&req).unwrap();
    assert!(
        matches!(&events[..], [InboundEvent::Status(s)] if s.provider_message_id == "wamid.ABC")
    );
    req.body.push(b' ');
    assert!(
        h.handle_webhook::<WhatsappCloud>(&req).is_err(),
        "a changed body must not verify"
    );
}

#[test]
fn customers_messages_are_replies_or_keywords() {
    let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","contacts":[{"profile":{"name":"Ana"},"wa_id":"5511987654321"}],"messages":[
        {"from":"5511987654321","id":"wamid.R1","timestamp":"1","type":"text","text":{"body":"Does it come in blue?"},"context":{"from":"15550001111","id":"wamid.ABC"}},
        {"from":"5511987654321","id":"wamid.R2","timestamp":"2","type":"button","button":{"text":"Yes please","payload":"yes"}},
        {"from":"5511987654321","id":"wamid.R3","timestamp":"3","type":"sticker","sticker":{"id":"1"}},
        {"from":"5511987654321","id":"wamid.R4","timestamp":"4","type":"text","text":{"body":"STOP"}}
    ]}}]}]}"#;
    let events = harness()
        .handle_webhook::<WhatsappCloud>(&signed(body))
        .unwrap();
    let reply = |id: &str, text: &str, context: Option<&str>| {
        InboundEvent::Message(crossgate_plugin_sdk::InboundMessage {
            from: "+5511987654321".into(),
            text: text.into(),
            provider_message_id: id.into(),
            in_reply_to: context.map(str::to_owned),
        })
    };
    assert_eq!(
        events,
        vec![
            reply("wamid.R1", "Does it come in blue?", Some("wamid.ABC")),
            reply("wamid.R2", "Yes please", None),
            InboundEvent::OptOut("+5511987654321".into()),
        ]
    );
}
