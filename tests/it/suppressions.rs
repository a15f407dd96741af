//! Consent holds for every send: address sends are planned like customer
//! sends, and the suppression list (STOP from any number, hard bounces,
//! staff entries) stops later sends to an address, whoever sends.

use crate::support::{
    FAST_DISPATCH, TestGateway, default_twilio, fcm_connector, sendgrid_connector, sms,
};
use base64::Engine as _;
use crossgate_tests::{DEFAULT_AUTH_TOKEN, ProviderSim};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

const PUBLIC_URL: &str = "https://gw.example.com";
const PHONE: &str = "+31612345678";

/// Messages the simulator received for Twilio, as a count.
fn sms_sent(sim: &ProviderSim) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.path.contains("/Messages.json"))
        .count()
}

async fn gateway(sim: &ProviderSim, extra: &str) -> TestGateway {
    TestGateway::start(&format!(
        "[server]\npublic_url = \"{PUBLIC_URL}\"\n{FAST_DISPATCH}
[categories.transactional]
consent = \"opt-out\"
[categories.marketing]
consent = \"opt-in\"
{}{extra}",
        default_twilio(&sim.url())
    ))
    .await
}

/// An inbound SMS, signed as Twilio signs it; each a message of its own
/// (Twilio gives every message its own sid).
pub(crate) async fn inbound_sms(gw: &TestGateway, from: &str, body: &str) -> (u16, Value) {
    let sid = format!("SM{}", uuid::Uuid::now_v7().simple());
    inbound_sms_as(gw, from, body, &sid).await
}

/// An inbound SMS with the message sid `sid`, signed as Twilio signs it:
/// the same sid and body again is the same request, as a replay sends it.
pub(crate) async fn inbound_sms_as(
    gw: &TestGateway,
    from: &str,
    body: &str,
    sid: &str,
) -> (u16, Value) {
    let params = [("From", from), ("Body", body), ("MessageSid", sid)];
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(DEFAULT_AUTH_TOKEN.as_bytes()).unwrap();
    mac.update(format!("{PUBLIC_URL}/v1/webhooks/twilio").as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let form: String = form_encode(&params);
    let response = gw
        .client
        .post(format!("{}/v1/webhooks/twilio", gw.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", signature)
        .body(form)
        .send()
        .await
        .unwrap();
    crate::support::answer(response).await
}

fn form_encode(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace('+', "%2B").replace(' ', "+")))
        .collect::<Vec<_>>()
        .join("&")
}

#[tokio::test]
async fn an_opted_out_customers_number_gets_nothing_by_address_either() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim, "").await;
    gw.put_customer("c1", &json!({"addresses": {"phone": PHONE}}))
        .await;
    let response = gw
        .client
        .patch(format!("{}/v1/customers/c1/consent", gw.url))
        .json(&json!({"sms": {"transactional": {"status": "opted_out", "source": "support"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);

    let request = sms(PHONE, "your code is 1234");
    let (status, preview) = gw.post("/v1/routes/preview", &request).await;
    assert_eq!(status, 200, "{preview}");
    let (status, sent) = gw.send(&request).await;
    assert_eq!(status, 202, "{sent}");
    assert_eq!(sent["status"], "suppressed", "{sent}");
    assert_eq!(sent["plan"]["suppressed"]["reason"], "opted_out");
    assert_eq!(sent["plan"], preview["plan"], "preview == send");
    assert_eq!(preview["status"], "suppressed");
    assert_eq!(sent["plan"]["category"], "transactional");
    assert_eq!(sent["plan"]["channels"][0]["decision"], "opted_out");

    // GET shows the plan, and nothing reached the provider.
    let message = gw.message(sent["id"].as_str().unwrap()).await;
    assert_eq!(message["status"], "suppressed");
    assert!(
        message["status_reason"]
            .as_str()
            .unwrap()
            .starts_with("opted_out"),
        "{message}"
    );
    assert_eq!(message["plan"]["channels"][0]["decision"], "opted_out");
    assert_eq!(message["attempts"], json!([]));

    // A number nobody opted out goes, with its plan shown.
    let id = gw.send_ok(&sms("+31612345679", "hello")).await;
    let message = gw.settled(&id).await;
    assert_eq!(message["status"], "sent", "{message}");
    assert_eq!(message["plan"]["channels"][0]["decision"], "chosen");
    assert_eq!(sms_sent(&sim), 1, "only the second message was sent");
}

#[tokio::test]
async fn stop_from_any_number_suppresses_it_until_start() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim, "").await;
    let stranger = "+31612345670";

    let (status, answer) = inbound_sms(&gw, stranger, "Stop").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["suppressions"], 1);
    assert_eq!(answer["consent_changes"], 0, "no customer owns the number");
    let entry = gw.get_ok(&format!("/v1/suppressions/sms/{stranger}")).await;
    assert_eq!(entry["reason"], "opt_out");
    assert_eq!(entry["source"], "twilio");

    let (status, answer) = gw.send(&sms(stranger, "a second chance?")).await;
    assert_eq!(status, 202);
    assert_eq!(answer["status"], "suppressed", "{answer}");
    assert_eq!(answer["plan"]["suppressed"]["reason"], "suppressed_address");
    // A STOP holds for every category, marketing included, and for customer
    // sends to a profile that holds the number later.
    gw.put_customer("late", &json!({"addresses": {"phone": stranger}}))
        .await;
    let (_, answer) = gw
        .send(
            &json!({"customer_id": "late", "category": "transactional", "content": {"text": "x"}}),
        )
        .await;
    assert_eq!(answer["status"], "suppressed", "{answer}");
    assert_eq!(
        answer["plan"]["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["channel"] == "sms")
            .unwrap()["decision"],
        "suppressed_address"
    );

    let (status, answer) = inbound_sms(&gw, stranger, "START").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["suppressions"], 1, "the opt-out was lifted");
    let id = gw.send_ok(&sms(stranger, "welcome back")).await;
    assert_eq!(gw.settled(&id).await["status"], "sent");
    assert_eq!(sms_sent(&sim), 1);
}

#[tokio::test]
async fn support_staff_manage_the_list_and_categories_may_ignore_bounces_not_stops() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&format!(
        "{FAST_DISPATCH}
[categories.transactional]
consent = \"opt-out\"
respect_suppressions = false
[categories.marketing]
consent = \"opt-out\"
{}",
        default_twilio(&sim.url())
    ))
    .await;
    let url = |address: &str| format!("{}/v1/suppressions/sms/{address}", gw.url);

    let created = gw
        .client
        .put(url("+31 6 1234 5678"))
        .json(&json!({"reason": "bounce", "note": "carrier says unknown subscriber"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let entry: Value = created.json().await.unwrap();
    assert_eq!(entry["address"], PHONE, "stored in E.164");
    assert_eq!(entry["source"], "api");
    assert!(entry["created_at"].as_str().is_some());

    // Marketing respects the bounce; transactional is configured not to.
    let mut marketing = sms(PHONE, "sale");
    marketing["category"] = json!("marketing");
    let (_, answer) = gw.send(&marketing).await;
    assert_eq!(answer["status"], "suppressed", "{answer}");
    let id = gw.send_ok(&sms(PHONE, "your code is 1234")).await;
    assert_eq!(gw.settled(&id).await["status"], "sent");

    // A STOP is never ignored.
    let replaced = gw
        .client
        .put(url(PHONE))
        .json(&json!({"reason": "opt_out"}))
        .send()
        .await
        .unwrap();
    assert_eq!(replaced.status().as_u16(), 200);
    let (_, answer) = gw.send(&sms(PHONE, "your code is 5678")).await;
    assert_eq!(answer["status"], "suppressed", "{answer}");

    let deleted = gw.client.delete(url(PHONE)).send().await.unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    let gone = gw.client.get(url(PHONE)).send().await.unwrap();
    assert_eq!(gone.status().as_u16(), 404);
    let bad = gw.client.get(url("not-a-number")).send().await.unwrap();
    assert_eq!(bad.status().as_u16(), 422);
    let bad_reason = gw
        .client
        .put(url(PHONE))
        .json(&json!({"reason": "grumpy"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_reason.status().as_u16(), 400);
    assert_eq!(sms_sent(&sim), 1);
}

/// A P-256 key of the test's own, standing in for SendGrid's signing key.
pub(crate) fn event_key() -> (p256::ecdsa::SigningKey, String) {
    use p256::pkcs8::EncodePublicKey as _;
    let signing = p256::ecdsa::SigningKey::from_slice(&[42u8; 32]).unwrap();
    let der = signing.verifying_key().to_public_key_der().unwrap();
    let public = base64::engine::general_purpose::STANDARD.encode(der.as_bytes());
    (signing, public)
}

pub(crate) async fn sendgrid_events(
    gw: &TestGateway,
    key: &p256::ecdsa::SigningKey,
    events: &Value,
) -> (u16, Value) {
    sendgrid_events_at(gw, key, events, jiff::Timestamp::now().as_second()).await
}

/// A batch signed as SendGrid signs it, with the signed timestamp `at` (Unix seconds).
pub(crate) async fn sendgrid_events_at(
    gw: &TestGateway,
    key: &p256::ecdsa::SigningKey,
    events: &Value,
    at: i64,
) -> (u16, Value) {
    use p256::ecdsa::signature::Signer as _;
    let body = events.to_string();
    let timestamp = at.to_string();
    let signature: p256::ecdsa::Signature = key.sign(format!("{timestamp}{body}").as_bytes());
    let response = gw
        .client
        .post(format!("{}/v1/webhooks/sendgrid", gw.url))
        .header("content-type", "application/json")
        .header(
            "X-Twilio-Email-Event-Webhook-Signature",
            base64::engine::general_purpose::STANDARD.encode(signature.to_der()),
        )
        .header("X-Twilio-Email-Event-Webhook-Timestamp", timestamp)
        .body(body)
        .send()
        .await
        .unwrap();
    crate::support::answer(response).await
}

#[tokio::test]
async fn a_signed_sendgrid_bounce_suppresses_the_address_and_a_forged_one_changes_nothing() {
    let sim = ProviderSim::start().await.unwrap();
    let (signing, public) = event_key();
    let gw = TestGateway::start(&format!(
        "{FAST_DISPATCH}{}event_webhook_public_key = \"{public}\"\n{}",
        sendgrid_connector("sendgrid", &sim.url()),
        fcm_connector("fcm", &sim.url())
    ))
    .await;
    let mail = |to: &str| {
        json!({"channel": "email", "to": {"email": to},
               "content": {"subject": "Receipt", "text": "Thanks for your order"}})
    };
    // A customer holds the address too (in another spelling).
    let profile = json!({"addresses": {"email": "Gone@example.nl", "phone": "+31612345678"}});
    assert_eq!(gw.put_customer("gone", &profile).await.0, 201);
    let id = gw.send_ok(&mail("gone@example.nl")).await;
    let message = gw.settled(&id).await;
    let provider_id = message["provider_message_id"].as_str().unwrap().to_owned();

    let events = json!([
        {"email": "gone@example.nl", "event": "processed", "sg_message_id": format!("{provider_id}.filter0001.1.0")},
        {"email": "gone@example.nl", "event": "bounce", "type": "bounce",
         "reason": "550 5.1.1 The email account does not exist", "sg_message_id": format!("{provider_id}.filter0001.1.0")},
    ]);
    // A forged batch (another key) is refused and changes nothing.
    let forger = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
    let (status, answer) = sendgrid_events(&gw, &forger, &events).await;
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["error"]["code"], "webhook_unauthorized");
    let unsigned = gw
        .client
        .post(format!("{}/v1/webhooks/sendgrid", gw.url))
        .body(events.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);
    assert_eq!(gw.message(&id).await["status"], "sent");
    let none = gw
        .client
        .get(format!("{}/v1/suppressions/email/gone@example.nl", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status().as_u16(), 404);

    let (status, answer) = sendgrid_events(&gw, &signing, &events).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["matched_messages"], 1);
    assert_eq!(answer["suppressions"], 1);
    let message = gw.message(&id).await;
    assert_eq!(
        message["status"], "failed",
        "the bounce failed the message: {message}"
    );
    let entry = gw.get_ok("/v1/suppressions/email/Gone@Example.nl").await;
    assert_eq!(entry["reason"], "bounce");
    assert_eq!(entry["source"], "sendgrid");
    // The profile lost it, as it would have had the send itself bounced.
    let customer = gw.customer("gone").await;
    assert_eq!(customer["addresses"]["email"], Value::Null, "{customer}");
    assert_eq!(customer["addresses"]["phone"], "+31612345678");

    let (_, answer) = gw.send(&mail("gone@example.nl")).await;
    assert_eq!(answer["status"], "suppressed", "{answer}");
    assert_eq!(answer["plan"]["suppressed"]["reason"], "suppressed_address");
    let mail_requests = sim
        .requests()
        .iter()
        .filter(|r| r.path == "/v3/mail/send")
        .count();
    assert_eq!(mail_requests, 1);

    // A connector without webhooks says so.
    let fcm = gw
        .client
        .post(format!("{}/v1/webhooks/fcm", gw.url))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(fcm.status().as_u16(), 404);
}
