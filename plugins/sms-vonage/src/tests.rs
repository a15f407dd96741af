//! The connector natively, against scripted answers in Vonage's format,
//! and signatures computed independently (Python's hashlib and hmac).

use super::*;
use crate::signature::{self, Method};
use crossgate_plugin_sdk::http::Response;
use crossgate_plugin_sdk::testing::Harness;
use crossgate_plugin_sdk::{DeliveryState, StatusEvent};

fn harness() -> Harness {
    Harness::new([
        ("api_key", "abc123"),
        ("api_secret", "s3cret"),
        ("from", "Crossgate"),
        ("signature_secret", "sig-secret-1"),
        ("base_url", "https://rest.vonage.test"),
    ])
}

fn message(text: &str) -> Message {
    let mut msg = Message::text(Channel::Sms, "+447700900001", text);
    msg.id = "msg_1".into();
    msg
}

fn form(request: &http::Request) -> Vec<(String, String)> {
    WebhookRequest {
        body: request.body.clone(),
        ..WebhookRequest::default()
    }
    .form()
}

fn field(form: &[(String, String)], name: &str) -> Option<String> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

#[test]
fn a_message_is_posted_as_a_form_with_bare_digits() {
    let mut h = harness();
    h.respond(Response::new(
        200,
        r#"{"message-count":"1","messages":[{"to":"447700900001","message-id":"0A00000012345678","status":"0","remaining-balance":"3.14","message-price":"0.033","network":"23410"}]}"#,
    ));
    let receipt = h
        .deliver::<VonageSms>(&message("Your code is 1234"))
        .unwrap();
    assert_eq!(receipt.provider_message_id, "0A00000012345678");
    let request = &h.requests()[0];
    assert_eq!(request.url, "https://rest.vonage.test/sms/json");
    let form = form(request);
    assert_eq!(field(&form, "to").as_deref(), Some("447700900001"));
    assert_eq!(field(&form, "from").as_deref(), Some("Crossgate"));
    assert_eq!(field(&form, "type").as_deref(), Some("text"));
    assert_eq!(field(&form, "client-ref").as_deref(), Some("msg_1"));
    assert_eq!(field(&form, "api_secret").as_deref(), Some("s3cret"));
}

#[test]
fn text_beyond_gsm_7_goes_as_unicode() {
    let mut h = harness();
    h.respond(Response::new(
        200,
        r#"{"message-count":"1","messages":[{"message-id":"X1","status":"0"}]}"#,
    ));
    let mut msg = message("Привет");
    msg.metadata = vec![
        ("sms:encoding".into(), "UCS-2".into()),
        ("sms:segments".into(), "1".into()),
    ];
    h.deliver::<VonageSms>(&msg).unwrap();
    assert_eq!(
        field(&form(&h.requests()[0]), "type").as_deref(),
        Some("unicode")
    );
}

#[test]
fn throttled_is_retried_and_a_refusal_is_not() {
    let mut h = harness();
    h.respond(Response::new(
        200,
        r#"{"message-count":"1","messages":[{"status":"1","error-text":"Throughput Rate Exceeded - please wait [ 30 ] and retry"}]}"#,
    ));
    let throttled = h.deliver::<VonageSms>(&message("hi")).unwrap_err();
    assert!(throttled.retryable);
    assert_eq!(throttled.code, "vonage_1");
    h.respond(Response::new(
        200,
        r#"{"message-count":"1","messages":[{"status":"29","error-text":"Non-Whitelisted Destination"}]}"#,
    ));
    let refused = h.deliver::<VonageSms>(&message("hi")).unwrap_err();
    assert!(!refused.retryable);
    assert_eq!(refused.message, "Non-Whitelisted Destination");
    let bad = h
        .deliver::<VonageSms>(&Message::text(Channel::Sms, "447700900001", "hi"))
        .unwrap_err();
    assert_eq!(bad.code, "invalid_number");
    assert_eq!(h.requests().len(), 2, "an invalid number is not sent");
}

fn receipt_params() -> Vec<(String, String)> {
    [
        ("api-key", "abc123"),
        ("messageId", "0A00000012345678"),
        ("msisdn", "447700900001"),
        ("status", "delivered"),
        ("err-code", "0"),
        ("timestamp", "1767225600"),
        ("client-ref", "msg_1&x=y"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

#[test]
fn signatures_match_vonages_algorithm() {
    let mut params = receipt_params();
    let now = 1_767_225_600 + 60;
    params.push(("sig".into(), "b8e535bea25ecc4ac83de905201afe90".into()));
    assert_eq!(
        signature::verify_at(&params, "sig-secret-1", Method::Md5Hash, now),
        Ok(())
    );
    params.pop();
    params.push((
        "sig".into(),
        "6BF2F4C7B72368B9D18D5802A1AA3E3959F08B436CE65EBD2530BE79344E4744".into(),
    ));
    assert_eq!(
        signature::verify_at(&params, "sig-secret-1", Method::Sha256, now),
        Ok(())
    );
    assert!(signature::verify_at(&params, "another-secret", Method::Sha256, now).is_err());
    assert!(
        signature::verify_at(&params, "sig-secret-1", Method::Sha256, now + 3_600)
            .unwrap_err()
            .contains("replay")
    );
}

fn signed_get(params: &[(String, String)]) -> WebhookRequest {
    let mut params = params.to_vec();
    params.retain(|(k, _)| k != "timestamp");
    params.push((
        "timestamp".into(),
        crossgate_plugin_sdk::webhook::now_secs().to_string(),
    ));
    let sig = signature::sign(&params, "sig-secret-1", Method::Md5Hash);
    params.push((
        "sig".into(),
        crossgate_plugin_sdk::webhook::hex_encode(&sig),
    ));
    let query = form_urlencoded_query(&params);
    WebhookRequest {
        method: "GET".into(),
        url: format!("https://gw.test/v1/webhooks/vonage?{query}"),
        headers: Vec::new(),
        body: Vec::new(),
    }
}

fn form_urlencoded_query(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                v.replace('&', "%26").replace('=', "%3D").replace(' ', "+")
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[test]
fn a_signed_receipt_by_get_is_a_status() {
    let mut h = harness();
    let events = h
        .handle_webhook::<VonageSms>(&signed_get(&receipt_params()))
        .unwrap();
    assert_eq!(
        events,
        [InboundEvent::Status(StatusEvent {
            provider_message_id: "0A00000012345678".into(),
            state: DeliveryState::Delivered,
            code: None,
            description: Some("delivered".into()),
        })]
    );
    let mut forged = signed_get(&receipt_params());
    forged.url = forged.url.replace("delivered", "failed");
    assert!(matches!(
        h.handle_webhook::<VonageSms>(&forged),
        Err(WebhookError::Unauthorized(_))
    ));
}

#[test]
fn stop_by_sms_is_an_opt_out() {
    let mut h = harness();
    let inbound: Vec<(String, String)> = [
        ("msisdn", "447700900001"),
        ("to", "447700900000"),
        ("messageId", "0B00000087654321"),
        ("text", "STOP"),
        ("type", "text"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let events = h
        .handle_webhook::<VonageSms>(&signed_get(&inbound))
        .unwrap();
    assert_eq!(events, [InboundEvent::OptOut("+447700900001".into())]);
}

#[test]
fn without_a_signature_secret_nothing_is_taken() {
    let mut h = Harness::new([
        ("api_key", "abc123"),
        ("api_secret", "s3cret"),
        ("from", "Crossgate"),
    ]);
    assert!(matches!(
        h.handle_webhook::<VonageSms>(&signed_get(&receipt_params())),
        Err(WebhookError::Unauthorized(_))
    ));
}

#[test]
fn a_long_text_names_every_part_and_goes_from_the_pools_sender() {
    let mut h = harness();
    h.respond(Response::new(
        200,
        r#"{"message-count":"3","messages":[{"message-id":"P1","status":"0"},{"message-id":"P2","status":"0"},{"message-id":"P3","status":"0"}]}"#,
    ));
    let mut msg = message(&"long ".repeat(70));
    msg.sender = Some("+447700900999".into());
    let receipt = h.deliver::<VonageSms>(&msg).unwrap();
    assert_eq!(receipt.provider_message_id, "P1");
    assert_eq!(receipt.part_ids, ["P2", "P3"]);
    assert_eq!(
        field(&form(&h.requests()[0]), "from").as_deref(),
        Some("447700900999")
    );
    // A part refused after others went is not tried again.
    h.respond(Response::new(
        200,
        r#"{"message-count":"2","messages":[{"message-id":"P4","status":"0"},{"status":"1","error-text":"Throttled"}]}"#,
    ));
    let refused = h.deliver::<VonageSms>(&msg).unwrap_err();
    assert_eq!(
        (refused.code.as_str(), refused.retryable),
        ("vonage_1", false)
    );
    assert!(
        refused.message.contains("after 1 part(s) went"),
        "{refused}"
    );
}

#[test]
fn the_signature_method_is_one_of_vonages_names() {
    let h = Harness::new([
        ("api_key", "abc123"),
        ("api_secret", "s3cret"),
        ("from", "Crossgate"),
        ("signature_method", "sha3"),
    ]);
    let refused = h.validate::<VonageSms>().unwrap_err();
    assert_eq!(refused.key, "signature_method");
    assert!(
        refused
            .message
            .contains("is not one of md5hash, md5, sha1, sha256, sha512"),
        "{}",
        refused.message
    );
}
