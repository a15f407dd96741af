use super::*;
use crossgate_plugin_sdk::http::Response;
use crossgate_plugin_sdk::testing::Harness;

const SID: &str = "AC00000000000000000000000000000001";

fn harness() -> Harness {
    Harness::new([
        ("account_sid", SID),
        ("auth_token", "secret"),
        ("from", "+15005550006"),
        ("base_url", "http://127.0.0.1:9/"),
        (
            "status_callback",
            "https://gw.example.com/v1/webhooks/twilio",
        ),
    ])
}

fn sms(to: &str) -> Message {
    Message::text(Channel::Sms, to, "Your code is 1234")
}

fn form_of(request: &http::Request) -> Vec<(String, String)> {
    WebhookRequest {
        body: request.body.clone(),
        ..Default::default()
    }
    .form()
}

#[test]
fn created_gives_receipt_and_request_matches_twilio_api() {
    let mut h = harness();
    h.respond(Response::new(201, r#"{"sid":"SM123","status":"queued"}"#));
    let receipt = h.deliver::<TwilioSms>(&sms("+31612345678")).unwrap();
    assert_eq!(receipt.provider_message_id, "SM123");

    let requests = h.requests();
    assert_eq!(requests.len(), 1);
    let req = &requests[0];
    assert_eq!(req.method, "POST");
    assert_eq!(
        req.url,
        format!("http://127.0.0.1:9/2010-04-01/Accounts/{SID}/Messages.json")
    );
    assert_eq!(
        req.header_value("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    // base64("AC...01:secret")
    let expected = base64::engine::general_purpose::STANDARD.encode(format!("{SID}:secret"));
    use base64::Engine as _;
    assert_eq!(
        req.header_value("authorization"),
        Some(format!("Basic {expected}").as_str())
    );
    let form = form_of(req);
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("To"), Some("+31612345678"));
    assert_eq!(get("From"), Some("+15005550006"));
    assert_eq!(get("Body"), Some("Your code is 1234"));
    assert_eq!(
        get("StatusCallback"),
        Some("https://gw.example.com/v1/webhooks/twilio?crossgate_message_id=msg_test")
    );
}

#[test]
fn rate_limit_is_retryable_with_retry_after() {
    let mut h = harness();
    h.respond(
        Response::new(429, r#"{"code":20429,"message":"Too Many Requests"}"#)
            .with_header("Retry-After", "3"),
    );
    let failure = h.deliver::<TwilioSms>(&sms("+31612345678")).unwrap_err();
    assert!(failure.retryable);
    assert_eq!(failure.retry_after_ms, Some(3000));
    assert_eq!(failure.code, "20429");
}

#[test]
fn server_error_is_retryable() {
    let mut h = harness();
    h.respond(Response::new(503, "upstream down"));
    let failure = h.deliver::<TwilioSms>(&sms("+31612345678")).unwrap_err();
    assert!(failure.retryable);
    assert_eq!(failure.code, "http_503");
}

#[test]
fn client_error_is_permanent_with_twilio_code_and_message() {
    let mut h = harness();
    h.respond(Response::new(
        400,
        r#"{"code":21211,"message":"The 'To' number is not a valid phone number.","more_info":"https://www.twilio.com/docs/errors/21211","status":400}"#,
    ));
    let failure = h.deliver::<TwilioSms>(&sms("+31612345678")).unwrap_err();
    assert!(!failure.retryable);
    assert_eq!(failure.code, "21211");
    assert_eq!(
        failure.message,
        "The 'To' number is not a valid phone number. (https://www.twilio.com/docs/errors/21211)"
    );
}

#[test]
fn an_answer_that_is_not_twilios_json_is_quoted() {
    let mut h = harness();
    h.respond(Response::new(
        422,
        "Unprocessable: body too long for carrier",
    ));
    let failure = h.deliver::<TwilioSms>(&sms("+31612345678")).unwrap_err();
    assert_eq!(failure.code, "http_422");
    assert_eq!(
        failure.message,
        "twilio answered HTTP 422: Unprocessable: body too long for carrier"
    );
}

#[test]
fn a_status_callback_must_be_a_url() {
    let h = Harness::new([
        ("account_sid", SID),
        ("auth_token", "secret"),
        ("from", "+15005550006"),
        ("status_callback", "gw.example.com/v1/webhooks/twilio"),
    ]);
    assert_eq!(
        h.validate::<TwilioSms>().unwrap_err().key,
        "status_callback"
    );
}

#[test]
fn transport_error_is_retryable() {
    let mut h = harness();
    h.fail("connection refused");
    let failure = h.deliver::<TwilioSms>(&sms("+31612345678")).unwrap_err();
    assert!(failure.retryable);
    assert_eq!(failure.code, "http_error");
}

#[test]
fn messaging_service_replaces_from() {
    let mut h = Harness::new([
        ("account_sid", SID),
        ("auth_token", "secret"),
        (
            "messaging_service_sid",
            "MG00000000000000000000000000000002",
        ),
    ]);
    h.respond(Response::new(201, r#"{"sid":"SM9"}"#));
    h.deliver::<TwilioSms>(&sms("+14155550100")).unwrap();
    let form = form_of(&h.requests()[0]);
    assert!(
        form.iter()
            .any(|(k, v)| k == "MessagingServiceSid" && v == "MG00000000000000000000000000000002")
    );
    assert!(!form.iter().any(|(k, _)| k == "From"));
    assert!(h.requests()[0].url.starts_with("https://api.twilio.com/"));
}

#[test]
fn config_errors_name_the_key() {
    let missing = Harness::new([("account_sid", SID), ("from", "+1500")]);
    assert_eq!(
        missing.validate::<TwilioSms>().unwrap_err().key,
        "auth_token"
    );
    let bad_sid = Harness::new([("account_sid", "XY1"), ("auth_token", "t"), ("from", "+1")]);
    assert_eq!(
        bad_sid.validate::<TwilioSms>().unwrap_err().key,
        "account_sid"
    );
    let no_sender = Harness::new([("account_sid", SID), ("auth_token", "t")]);
    assert_eq!(no_sender.validate::<TwilioSms>().unwrap_err().key, "from");
}

#[test]
fn non_sms_message_is_refused_without_a_request() {
    let mut h = harness();
    let failure = h
        .deliver::<TwilioSms>(&Message::text(Channel::Email, "a@b.c", "x"))
        .unwrap_err();
    assert_eq!(failure.code, "unsupported_channel");
    assert!(h.requests().is_empty());
}

fn signed(url: &str, params: &[(&str, &str)], token: &str) -> WebhookRequest {
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(url.as_bytes());
    for (k, v) in &sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let body = params
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace('+', "%2B")))
        .collect::<Vec<_>>()
        .join("&");
    WebhookRequest {
        method: "POST".into(),
        url: url.into(),
        headers: vec![("X-Twilio-Signature".into(), signature)],
        body: body.into_bytes(),
    }
}

#[test]
fn status_callback_becomes_status_event() {
    let mut h = harness();
    let req = signed(
        "https://gw.example.com/v1/webhooks/twilio",
        &[("MessageSid", "SM123"), ("MessageStatus", "delivered")],
        "secret",
    );
    let events = h.handle_webhook::<TwilioSms>(&req).unwrap();
    assert_eq!(
        events,
        vec![InboundEvent::Status(crossgate_plugin_sdk::StatusEvent {
            provider_message_id: "SM123".into(),
            state: crossgate_plugin_sdk::DeliveryState::Delivered,
            code: None,
            description: Some("delivered".into()),
        })]
    );
}

#[test]
fn inbound_stop_is_opt_out() {
    let mut h = harness();
    let req = signed(
        "https://gw.example.com/v1/webhooks/twilio",
        &[
            ("MessageSid", "SM7"),
            ("From", "+31612345678"),
            ("Body", " stop "),
        ],
        "secret",
    );
    let events = h.handle_webhook::<TwilioSms>(&req).unwrap();
    assert_eq!(events, vec![InboundEvent::OptOut("+31612345678".into())]);
}

#[test]
fn forged_webhook_is_rejected() {
    let mut h = harness();
    let req = signed(
        "https://gw.example.com/v1/webhooks/twilio",
        &[("From", "+31612345678"), ("Body", "STOP")],
        "not-the-token",
    );
    match h.handle_webhook::<TwilioSms>(&req).unwrap_err() {
        WebhookError::Unauthorized(why) => assert!(why.contains("does not match"), "{why}"),
        other => panic!("a forged signature is unauthorized, not {other:?}"),
    }
}

#[test]
fn an_inbound_message_that_is_no_keyword_is_a_reply() {
    let mut h = harness();
    let req = signed(
        "https://gw.example.com/v1/webhooks/twilio",
        &[
            ("MessageSid", "SM9f00"),
            ("SmsStatus", "received"),
            ("From", "+31612345678"),
            ("To", "+15005550006"),
            ("Body", "Can I change the delivery day?"),
        ],
        "secret",
    );
    let events = h.handle_webhook::<TwilioSms>(&req).unwrap();
    assert_eq!(
        events,
        vec![InboundEvent::Message(
            crossgate_plugin_sdk::InboundMessage {
                from: "+31612345678".into(),
                text: "Can I change the delivery day?".into(),
                provider_message_id: "SM9f00".into(),
                in_reply_to: None,
            }
        )]
    );
}
