use super::*;
use crossgate_plugin_sdk::http::Response;
use crossgate_plugin_sdk::jwt;
use crossgate_plugin_sdk::testing::Harness;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::Verifier;

const KEY: &str = include_str!("../../../config/simulator/fcm-service-account.json");

fn harness() -> Harness {
    Harness::new([
        ("service_account", KEY),
        ("base_url", "http://127.0.0.1:9"),
        ("token_uri", "http://127.0.0.1:9/token"),
    ])
}

fn message() -> Message {
    let mut msg = Message::text(Channel::Push, "device-token-1", "Your order shipped");
    msg.subject = Some("Order #1042".into());
    msg.metadata = vec![("data:order_id".into(), "1042".into())];
    msg
}

fn token_response() -> Response {
    Response::new(
        200,
        r#"{"access_token":"ya29.test-token","expires_in":3599,"token_type":"Bearer"}"#,
    )
}

fn sent() -> Response {
    Response::new(200, r#"{"name":"projects/crossgate-sim/messages/0:1"}"#)
}

fn fcm_error(status: u16, rpc: &str, fcm_code: &str, message: &str) -> Response {
    Response::new(
        status,
        json!({"error": {"code": status, "message": message, "status": rpc,
            "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": fcm_code}]}})
        .to_string(),
    )
}

/// Check the assertion like Google does: RS256 over `header.claims` with the key's public half.
fn verified_claims(assertion: &str) -> Value {
    let account: Value = serde_json::from_str(KEY).unwrap();
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(account["private_key"].as_str().unwrap()).unwrap();
    let verifier = VerifyingKey::<sha2::Sha256>::new(key.to_public_key());
    let (signed, signature) = assertion.rsplit_once('.').unwrap();
    let signature = jwt::base64url_decode(signature).unwrap();
    verifier
        .verify(
            signed.as_bytes(),
            &Signature::try_from(signature.as_slice()).unwrap(),
        )
        .expect("RS256 signature verifies");
    let (header, claims) = signed.split_once('.').unwrap();
    let header: Value = serde_json::from_slice(&jwt::base64url_decode(header).unwrap()).unwrap();
    assert_eq!(header["alg"], "RS256");
    serde_json::from_slice(&jwt::base64url_decode(claims).unwrap()).unwrap()
}

#[test]
fn the_first_message_exchanges_a_jwt_and_the_next_reuse_the_token() {
    let mut h = harness();
    h.respond(token_response()).respond(sent()).respond(sent());
    let receipt = h.deliver::<Fcm>(&message()).unwrap();
    assert_eq!(
        receipt.provider_message_id,
        "projects/crossgate-sim/messages/0:1"
    );
    h.deliver::<Fcm>(&message()).unwrap();

    let requests = h.requests();
    assert_eq!(requests.len(), 3, "one exchange, two sends");
    let exchange = &requests[0];
    assert_eq!(exchange.url, "http://127.0.0.1:9/token");
    let form: Vec<(String, String)> = form_urlencoded_pairs(&exchange.body);
    assert_eq!(
        form[0],
        (
            "grant_type".into(),
            "urn:ietf:params:oauth:grant-type:jwt-bearer".into()
        )
    );
    let claims = verified_claims(&form[1].1);
    assert_eq!(
        claims["iss"],
        "crossgate@crossgate-sim.iam.gserviceaccount.com"
    );
    assert_eq!(claims["scope"], token::SCOPE);
    assert_eq!(claims["aud"], "http://127.0.0.1:9/token");
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        3600
    );

    for send in &requests[1..] {
        assert_eq!(
            send.url,
            "http://127.0.0.1:9/v1/projects/crossgate-sim/messages:send"
        );
        assert_eq!(
            send.header_value("authorization"),
            Some("Bearer ya29.test-token")
        );
        let body: Value = serde_json::from_slice(&send.body).unwrap();
        assert_eq!(
            body,
            json!({"message": {
                "token": "device-token-1",
                "notification": {"title": "Order #1042", "body": "Your order shipped"},
                "data": {"order_id": "1042", "crossgate_message_id": "msg_test"},
            }})
        );
    }
}

fn form_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    crossgate_plugin_sdk::WebhookRequest {
        body: body.to_vec(),
        ..Default::default()
    }
    .form()
}

#[test]
fn an_unregistered_token_is_reported_dead_and_fails_permanently() {
    let mut h = harness();
    h.respond(token_response()).respond(fcm_error(
        404,
        "NOT_FOUND",
        "UNREGISTERED",
        "Requested entity was not found.",
    ));
    let failure = h.deliver::<Fcm>(&message()).unwrap_err();
    assert!(!failure.retryable);
    assert_eq!(failure.code, "UNREGISTERED");
    assert_eq!(
        h.dead_addresses(),
        vec![(
            "device-token-1".to_owned(),
            "FCM: token unregistered".to_owned()
        )]
    );
}

#[test]
fn outages_and_quota_are_retryable_with_retry_after() {
    let mut h = harness();
    h.respond(token_response()).respond(
        fcm_error(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "quota")
            .with_header("retry-after", "7"),
    );
    let failure = h.deliver::<Fcm>(&message()).unwrap_err();
    assert!(failure.retryable);
    assert_eq!(failure.code, "QUOTA_EXCEEDED");
    assert_eq!(failure.retry_after_ms, Some(7000));
    assert!(h.dead_addresses().is_empty());
}

#[test]
fn a_rejected_access_token_is_forgotten() {
    let mut h = harness();
    // FCM's answer to an expired token carries no FCM error code.
    h.respond(token_response()).respond(Response::new(
        401,
        r#"{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}"#,
    ));
    let failure = h.deliver::<Fcm>(&message()).unwrap_err();
    assert!(failure.retryable);
    assert_eq!(failure.code, "UNAUTHENTICATED");
    assert_eq!(
        h.cached("access-token:crossgate@crossgate-sim.iam.gserviceaccount.com"),
        None
    );
}

#[test]
fn a_failed_exchange_names_googles_error() {
    let mut h = harness();
    h.respond(Response::new(
        400,
        r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#,
    ));
    let failure = h.deliver::<Fcm>(&message()).unwrap_err();
    assert!(!failure.retryable);
    assert_eq!(failure.code, "token_exchange");
    assert!(
        failure
            .message
            .contains("invalid_grant: Invalid JWT Signature."),
        "{}",
        failure.message
    );
}

#[test]
fn config_needs_a_service_account_key() {
    let h = Harness::new([("service_account", "{}")]);
    let err = h.validate::<Fcm>().unwrap_err();
    assert_eq!(err.key, "service_account");
    assert!(
        Harness::new([("service_account", KEY)])
            .validate::<Fcm>()
            .is_ok()
    );
}
