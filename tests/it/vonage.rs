//! Vonage, the second SMS provider, written with the plugin kit: a
//! throttled send is tried again, signed delivery receipts come by GET and
//! by POST (JSON), a STOP by SMS opts the customer out, and an unsigned or
//! forged callback changes nothing. Signatures are computed here, apart
//! from the connector's code.

use crate::support::{FAST_DISPATCH, TestGateway, answer, plugin_dir, sms, sms_plan};
use crossgate_tests::vonage::DEFAULT_API_KEY;
use crossgate_tests::{Behaviour, ProviderSim, vonage_connector};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

const PUBLIC_URL: &str = "https://gw.example.com";
const SIGNATURE_SECRET: &str = "vonage-signature-secret-of-this-test";

async fn gateway(sim: &ProviderSim) -> TestGateway {
    plugin_dir();
    TestGateway::start(&format!(
        "[server]\npublic_url = \"{PUBLIC_URL}\"\n{FAST_DISPATCH}
[categories.transactional]
consent = \"opt-out\"
{}",
        vonage_connector("vonage", &sim.url(), SIGNATURE_SECRET)
    ))
    .await
}

/// `params` with a fresh `timestamp` and Vonage's `sig`: HMAC-SHA256 of
/// every parameter sorted, as `&name=value` with `&` and `=` in values as `_`.
pub(crate) fn signed(params: &[(&str, &str)], secret: &str) -> Vec<(String, String)> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let mut params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain([("timestamp".to_owned(), now)])
        .collect();
    params.sort();
    let text: String = params
        .iter()
        .map(|(k, v)| format!("&{k}={}", v.replace(['&', '='], "_")))
        .collect();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(text.as_bytes());
    let sig: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    params.push(("sig".into(), sig));
    params
}

pub(crate) async fn by_get(gw: &TestGateway, params: &[(String, String)]) -> (u16, Value) {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    answer(
        gw.client
            .get(format!("{}/v1/webhooks/vonage?{query}", gw.url))
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn vonage_delivers_retries_a_throttle_and_takes_signed_receipts() {
    let sim = ProviderSim::start().await.unwrap();
    sim.script(
        DEFAULT_API_KEY,
        [Behaviour::RateLimit {
            retry_after_secs: 0,
        }],
    );
    let gw = gateway(&sim).await;
    gw.put_customer("c-1", &json!({"addresses": {"phone": "+31612345678"}}))
        .await;
    let send = json!({"customer_id": "c-1", "category": "transactional", "content": {"text": "Your code is 1234"}});
    let id = gw.send_ok(&send).await;
    let message = gw.settled(&id).await;
    assert_eq!(message["status"], "sent", "{message}");
    let attempts = message["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "throttled, then taken: {message}");
    assert_eq!(attempts[0]["error"]["code"], "vonage_1", "{message}");
    let provider_id = message["provider_message_id"].as_str().unwrap().to_owned();
    let requests = sim.requests();
    let sent = requests.last().unwrap();
    assert_eq!(sent.path, "/sms/json");
    assert_eq!(sent.field("to"), Some("31612345678"));
    assert_eq!(sent.field("type"), Some("text"));
    assert_eq!(sent.field("client-ref"), Some(id.as_str()));

    // A receipt by GET, signed: delivered.
    let receipt = signed(
        &[
            ("messageId", &provider_id),
            ("msisdn", "31612345678"),
            ("to", "Crossgate"),
            ("status", "delivered"),
            ("err-code", "0"),
            ("api-key", DEFAULT_API_KEY),
            ("client-ref", &id),
        ],
        SIGNATURE_SECRET,
    );
    let (status, applied) = by_get(&gw, &receipt).await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["matched_messages"], 1, "{applied}");
    assert_eq!(gw.message(&id).await["status"], "delivered");

    // Text beyond GSM-7 goes as unicode; its receipt comes by POST, as JSON.
    let id = gw
        .send_ok(&json!({"customer_id": "c-1", "category": "transactional", "content": {"text": "Ваш код 1234"}}))
        .await;
    let message = gw.settled(&id).await;
    assert_eq!(message["status"], "sent", "{message}");
    assert_eq!(
        sim.requests().last().unwrap().field("type"),
        Some("unicode")
    );
    let provider_id = message["provider_message_id"].as_str().unwrap().to_owned();
    let receipt: serde_json::Map<String, Value> = signed(
        &[
            ("messageId", &provider_id),
            ("msisdn", "31612345678"),
            ("status", "failed"),
            ("err-code", "6"),
        ],
        SIGNATURE_SECRET,
    )
    .into_iter()
    .map(|(k, v)| (k, Value::String(v)))
    .collect();
    let (status, applied) = answer(
        gw.client
            .post(format!("{}/v1/webhooks/vonage", gw.url))
            .json(&receipt)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{applied}");
    let message = gw.message(&id).await;
    assert_eq!(message["status"], "failed", "{message}");

    // Forged: the same receipt under another secret.
    let forged = signed(
        &[("messageId", &provider_id), ("status", "delivered")],
        "not-the-secret",
    );
    let (status, refused) = by_get(&gw, &forged).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (401, Some("webhook_unauthorized"))
    );
}

/// The gateway tells an SMS connector the encoding it counted: "Café" is
/// GSM-7, so `type=text` (a connector guessing from ASCII alone would send
/// it as unicode, at twice the parts). Callers cannot set `sms:` keys.
#[tokio::test]
async fn the_connector_is_told_the_encoding_and_callers_cannot_say_it() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim).await;
    let id = gw
        .send_ok(&sms("+31612345678", "Café at 5, 10 € off"))
        .await;
    assert_eq!(gw.settled(&id).await["status"], "sent");
    assert_eq!(sim.requests().last().unwrap().field("type"), Some("text"));

    let mut claimed = sms("+31612345678", "hi");
    claimed["content"]["metadata"] = json!({"sms:encoding": "UCS-2"});
    let (status, refused) = gw.send(&claimed).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["code"], "reserved_metadata", "{refused}");
}

#[tokio::test]
async fn a_stop_by_vonage_opts_the_customer_out() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim).await;
    gw.put_customer("c-2", &json!({"addresses": {"phone": "+31612345679"}}))
        .await;
    let stop = signed(
        &[
            ("msisdn", "31612345679"),
            ("to", "31970102030"),
            ("messageId", "0B000000000000AA"),
            ("text", "STOP"),
            ("type", "text"),
        ],
        SIGNATURE_SECRET,
    );
    let (status, applied) = by_get(&gw, &stop).await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["consent_changes"], 1, "{applied}");
    let profile = gw.customer("c-2").await;
    assert_eq!(
        profile["consent"]["sms"]["transactional"]["status"], "opted_out",
        "{profile}"
    );
    let (_, after) = gw
        .send(&json!({"customer_id": "c-2", "category": "transactional", "content": {"text": "again"}}))
        .await;
    assert_eq!(after["status"], "suppressed", "{after}");
    assert!(sim.requests().is_empty(), "nothing sent");
}

/// Providers per region: Vonage serves the EU only and leads its SMS;
/// an EU customer's SMS goes through Vonage, a US customer's through
/// Twilio, and each plan says which connectors and why.
#[tokio::test]
async fn an_eu_customers_sms_goes_through_vonage_and_a_us_customers_through_twilio() {
    let sim = ProviderSim::start().await.unwrap();
    let vonage = vonage_connector("vonage", &sim.url(), SIGNATURE_SECRET).replace(
        "channel = \"sms\"\n",
        "channel = \"sms\"\nregions = [\"EU\"]\n",
    );
    let gw = TestGateway::start(&format!(
        "{FAST_DISPATCH}
[regions]
EU = [\"NL\", \"DE\"]
NA = [\"US\"]
[routing.connectors.EU]
sms = [\"vonage\", \"twilio\"]
{}{vonage}",
        crossgate_tests::default_twilio(&sim.url())
    ))
    .await;
    for (id, country, phone) in [("eu", "NL", "+31612345678"), ("us", "US", "+14155550123")] {
        gw.put_customer(
            id,
            &json!({"country": country, "addresses": {"phone": phone}}),
        )
        .await;
    }
    let send = |customer: &str| json!({"customer_id": customer, "category": "transactional", "content": {"text": "Your code is 1234"}});
    let eu = gw.settled(&gw.send_ok(&send("eu")).await).await;
    assert_eq!(eu["delivered_by"], "vonage", "{eu}");
    let sms = sms_plan(&eu);
    assert_eq!(sms["connectors"], json!(["vonage", "twilio"]), "{eu}");
    assert_eq!(sms["connector_order"], "region");

    let us = gw.settled(&gw.send_ok(&send("us")).await).await;
    assert_eq!(us["delivered_by"], "twilio", "{us}");
    let sms = sms_plan(&us);
    assert_eq!(sms["connectors"], json!(["twilio"]), "{us}");
    assert_eq!(sms["not_in_region"], json!(["vonage"]));
    let paths: Vec<String> = sim.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths.iter().filter(|p| *p == "/sms/json").count(),
        1,
        "{paths:?}"
    );
}

/// A text of three parts has three ids and three receipts: the message is
/// delivered when the last part is, whatever the order they report in.
#[tokio::test]
async fn a_split_message_is_delivered_when_all_its_parts_are() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim).await;
    gw.put_customer("c-1", &json!({"addresses": {"phone": "+31612345678"}}))
        .await;
    let text = "Your order shipped. ".repeat(20);
    let id = gw
        .send_ok(
            &json!({"customer_id": "c-1", "category": "transactional", "content": {"text": text}}),
        )
        .await;
    let message = gw.settled(&id).await;
    assert_eq!(message["status"], "sent", "{message}");
    let first = message["provider_message_id"].as_str().unwrap().to_owned();
    let part = |k| crossgate_tests::vonage::part_id(&first, k);
    let receipt = |provider_id: String, status: &'static str| {
        signed(
            &[
                ("messageId", &provider_id),
                ("msisdn", "31612345678"),
                ("status", status),
                ("err-code", "0"),
            ],
            SIGNATURE_SECRET,
        )
    };
    for (k, status_after) in [(2, "sent"), (0, "sent"), (1, "delivered")] {
        let (status, applied) = by_get(&gw, &receipt(part(k), "delivered")).await;
        assert_eq!(
            (status, &applied["matched_messages"]),
            (200, &json!(1)),
            "part {k}: {applied}"
        );
        let message = gw.message(&id).await;
        assert_eq!(message["status"], status_after, "after part {k}: {message}");
    }

    // Another split message whose second part fails: failed.
    let id = gw
        .send_ok(
            &json!({"customer_id": "c-1", "category": "transactional", "content": {"text": text}}),
        )
        .await;
    let first = gw.settled(&id).await["provider_message_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let part = |k| crossgate_tests::vonage::part_id(&first, k);
    by_get(&gw, &receipt(part(0), "delivered")).await;
    let (status, _) = by_get(&gw, &receipt(part(1), "failed")).await;
    assert_eq!(status, 200);
    let message = gw.message(&id).await;
    assert_eq!(message["status"], "failed", "{message}");
    gw.stop().await;
}

/// Sender pools: Vonage sends a Dutch number's SMS from one of its two
/// Dutch numbers, the plan says which and from which pool, and the same
/// customer hears from the same number again; a German number (the EU
/// pool) gets the alphanumeric sender ID.
#[tokio::test]
async fn a_customer_keeps_hearing_from_the_number_their_country_pool_gives() {
    let sim = ProviderSim::start().await.unwrap();
    let vonage = vonage_connector("vonage", &sim.url(), SIGNATURE_SECRET).replace(
        "[connectors.config]",
        "[connectors.senders]\nNL = [\"+3197010520001\", \"+3197010520002\"]\nEU = [\"Crossgate\"]\n[connectors.config]",
    );
    let gw = TestGateway::start(&format!(
        "{FAST_DISPATCH}
[regions]
EU = [\"NL\", \"DE\"]
{vonage}"
    ))
    .await;
    let send = |to: &str| sms(to, "Your code is 1234");
    let sender_of = |message: &Value| message["plan"]["channels"][0]["senders"][0].clone();
    let mut seen = std::collections::BTreeSet::new();
    for to in [
        "+31612345678",
        "+31687654321",
        "+31611111111",
        "+31622222222",
    ] {
        let first = gw.settled(&gw.send_ok(&send(to)).await).await;
        let chosen = sender_of(&first);
        assert_eq!(chosen["pool"], "NL", "{first}");
        let sent_from = sim
            .requests()
            .last()
            .unwrap()
            .field("from")
            .unwrap()
            .to_owned();
        assert_eq!(
            format!("+{sent_from}"),
            chosen["sender"].as_str().unwrap(),
            "the connector sends from the plan's sender"
        );
        let again = gw.settled(&gw.send_ok(&send(to)).await).await;
        assert_eq!(sender_of(&again), chosen, "sticky for {to}");
        seen.insert(chosen["sender"].as_str().unwrap().to_owned());
    }
    assert!(seen.len() <= 2, "{seen:?}");
    let german = gw.settled(&gw.send_ok(&send("+4915112345678")).await).await;
    assert_eq!(
        sender_of(&german),
        json!({"connector": "vonage", "sender": "Crossgate", "pool": "EU"})
    );
    assert_eq!(
        sim.requests().last().unwrap().field("from"),
        Some("Crossgate")
    );
    gw.stop().await;
}
