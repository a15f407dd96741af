use super::*;
use crossgate_plugin_sdk::http::Response;
use crossgate_plugin_sdk::testing::Harness;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};

fn b64(text: &str) -> Vec<u8> {
    jwt::base64url_decode(text).unwrap()
}

/// RFC 8291, section 5: the worked example, byte for byte.
#[test]
fn encryption_matches_the_rfc_8291_example() {
    let as_secret =
        p256::SecretKey::from_slice(&b64("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw")).unwrap();
    let ua_public = b64(
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
    );
    let auth = b64("BTBZMqHH6r4Tts7J_aSIgg");
    let salt: [u8; 16] = b64("DGv6ra1nlYgDCS1FRnbzlw").try_into().unwrap();
    let body = ece::encrypt(
        b"When I grow up, I want to be a watermelon",
        &ua_public,
        &auth,
        &as_secret,
        salt,
    )
    .unwrap();
    assert_eq!(
        jwt::base64url(&body),
        "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
    );
}

const VAPID_KEY: &str = "RDamDvx-lheiBGGwe-6sAwLoVDpJRxlzHEwkgwfUs6o";

fn harness() -> Harness {
    Harness::new([
        ("vapid_private_key", VAPID_KEY),
        ("vapid_subject", "mailto:ops@shop.example"),
        ("ttl_secs", "3600"),
    ])
}

fn subscription() -> String {
    // The RFC 8291 example's browser keys.
    json!({
        "endpoint": "https://push.example.net/push/JzLQ3raZJfFBR0aqvOMsLrt54w4rJUsV",
        "keys": {
            "p256dh": "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
            "auth": "BTBZMqHH6r4Tts7J_aSIgg"
        }
    })
    .to_string()
}

fn message() -> Message {
    let mut msg = Message::text(Channel::Push, &subscription(), "Your order shipped");
    msg.subject = Some("Order #1042".into());
    msg
}

#[test]
fn a_push_carries_vapid_ttl_urgency_and_an_encrypted_body() {
    let mut h = harness();
    h.respond(Response::new(201, "").with_header("location", "https://push.example.net/m/1"));
    let receipt = h.deliver::<WebPush>(&message()).unwrap();
    assert_eq!(receipt.provider_message_id, "https://push.example.net/m/1");

    let request = &h.requests()[0];
    assert_eq!(
        request.url,
        "https://push.example.net/push/JzLQ3raZJfFBR0aqvOMsLrt54w4rJUsV"
    );
    assert_eq!(request.header_value("ttl"), Some("3600"));
    assert_eq!(request.header_value("urgency"), Some("normal"));
    assert_eq!(request.header_value("content-encoding"), Some("aes128gcm"));
    // Header: salt, record size 4096, a 65-byte key id; then ciphertext with its tag.
    assert_eq!(&request.body[16..21], &[0, 0, 16, 0, 65]);
    let payload_len = notification(&message()).to_string().len();
    assert_eq!(request.body.len(), 86 + payload_len + 1 + 16);

    let auth = request.header_value("authorization").unwrap();
    let (t, k) = auth
        .strip_prefix("vapid t=")
        .and_then(|rest| rest.split_once(", k="))
        .unwrap();
    let key = VerifyingKey::from_sec1_bytes(&b64(k)).unwrap();
    let (signed, signature) = t.rsplit_once('.').unwrap();
    key.verify(
        signed.as_bytes(),
        &Signature::from_slice(&b64(signature)).unwrap(),
    )
    .expect("ES256 signature verifies with k");
    let claims: Value = serde_json::from_slice(&b64(signed.split_once('.').unwrap().1)).unwrap();
    assert_eq!(claims["aud"], "https://push.example.net");
    assert_eq!(claims["sub"], "mailto:ops@shop.example");
}

#[test]
fn the_vapid_token_is_reused_for_the_same_push_service() {
    let mut h = harness();
    h.respond(Response::new(201, ""))
        .respond(Response::new(201, ""));
    h.deliver::<WebPush>(&message()).unwrap();
    h.deliver::<WebPush>(&message()).unwrap();
    let requests = h.requests();
    assert_eq!(
        requests[0].header_value("authorization"),
        requests[1].header_value("authorization")
    );
    assert!(h.cached("vapid:https://push.example.net").is_some());
}

#[test]
fn a_gone_subscription_is_reported_dead() {
    for status in [404, 410] {
        let mut h = harness();
        h.respond(Response::new(status, ""));
        let failure = h.deliver::<WebPush>(&message()).unwrap_err();
        assert!(!failure.retryable);
        assert_eq!(failure.code, "subscription_gone");
        assert_eq!(h.dead_addresses().len(), 1);
        assert_eq!(h.dead_addresses()[0].0, subscription());
    }
}

#[test]
fn overload_is_retryable_and_bad_requests_are_not() {
    let mut h = harness();
    h.respond(Response::new(429, "slow down").with_header("retry-after", "30"));
    let failure = h.deliver::<WebPush>(&message()).unwrap_err();
    assert!(failure.retryable);
    assert_eq!(failure.retry_after_ms, Some(30_000));

    h.respond(Response::new(403, "bad vapid"));
    let failure = h.deliver::<WebPush>(&message()).unwrap_err();
    assert!(!failure.retryable);
    assert_eq!(failure.code, "http_403");
    assert!(h.dead_addresses().is_empty());
}

#[test]
fn oversized_payloads_and_bad_addresses_fail_permanently_without_a_request() {
    let mut h = harness();
    let mut big = message();
    big.text = "x".repeat(ece::MAX_PAYLOAD);
    assert_eq!(
        h.deliver::<WebPush>(&big).unwrap_err().code,
        "payload_too_large"
    );
    let not_a_subscription = Message::text(Channel::Push, "fcm-token", "hi");
    assert_eq!(
        h.deliver::<WebPush>(&not_a_subscription).unwrap_err().code,
        "invalid_address"
    );
    assert!(h.requests().is_empty());
}

#[test]
fn config_is_checked() {
    let h = Harness::new([
        ("vapid_private_key", "short"),
        ("vapid_subject", "mailto:a@b.c"),
    ]);
    assert_eq!(
        h.validate::<WebPush>().unwrap_err().key,
        "vapid_private_key"
    );
    let h = Harness::new([
        ("vapid_private_key", VAPID_KEY),
        ("vapid_subject", "ops@shop"),
    ]);
    assert_eq!(h.validate::<WebPush>().unwrap_err().key, "vapid_subject");
    assert!(harness().validate::<WebPush>().is_ok());
}
