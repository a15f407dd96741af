//! Sending to a customer: profiles, consent, the plan, and fallback across channels.

use crate::support::{FAST_DISPATCH, TestGateway, default_twilio, whatsapp_connector};
use crossgate_tests::{Behaviour, DEFAULT_ACCOUNT_SID, ProviderSim};
use serde_json::{Value, json};

const POLICY: &str = r#"
[regions]
EU = ["NL", "DE"]
LATAM = ["BR"]

[routing]
default = ["email", "sms", "whatsapp"]
strategy = "ordered"

[routing.regions]
EU = ["sms", "whatsapp", "email"]
LATAM = ["whatsapp", "sms"]

[categories.transactional]
consent = "opt-out"

[categories.marketing]
consent = "opt-in"
frequency_cap = { max = 1, per = "1d" }
"#;

async fn gateway(sim: &ProviderSim) -> TestGateway {
    TestGateway::start(&format!(
        "{FAST_DISPATCH}{POLICY}{}{}",
        default_twilio(&sim.url()),
        whatsapp_connector("whatsapp", &sim.url()),
    ))
    .await
}

fn dutch_customer() -> Value {
    json!({
        "addresses": {"phone": "+31612345678", "whatsapp": "+31612345678"},
        "country": "NL",
        "timezone": "Europe/Amsterdam",
        "locale": "nl-NL"
    })
}

fn decisions(plan: &Value) -> Vec<(String, String)> {
    plan["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["channel"].as_str().unwrap().to_owned(),
                c["decision"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_permanent_sms_failure_falls_back_to_whatsapp_with_its_own_content() {
    let sim = ProviderSim::start().await.unwrap();
    sim.script(
        DEFAULT_ACCOUNT_SID,
        [Behaviour::Reject {
            code: 21610,
            message: "Attempt to send to unsubscribed recipient".into(),
        }],
    );
    let gw = gateway(&sim).await;
    assert_eq!(gw.put_customer("c-1", &dutch_customer()).await.0, 201);

    let (status, answer) = gw
        .send(&json!({
            "customer_id": "c-1",
            "category": "transactional",
            "content": {"text": "Your parcel is on its way", "whatsapp": {"text": "📦 Your parcel is on its way"}}
        }))
        .await;
    assert_eq!(status, 202, "{answer}");
    let plan = &answer["plan"];
    assert_eq!(plan["region"], "EU");
    assert_eq!(plan["region_source"], "country");
    assert_eq!(
        decisions(plan),
        [
            ("sms".to_owned(), "chosen".to_owned()),
            ("whatsapp".to_owned(), "chosen".to_owned()),
            ("email".to_owned(), "no_address".to_owned())
        ]
    );

    let id = answer["id"].as_str().unwrap();
    let message = gw.settled(id).await;
    assert_eq!(message["status"], "sent", "{message:#}");
    assert_eq!(message["delivered_channel"], "whatsapp");
    assert_eq!(message["delivered_by"], "whatsapp");
    assert_eq!(message["plan"], *plan, "GET shows the plan of the 202");
    let attempts: Vec<(String, String)> = message["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["channel"].as_str().unwrap().to_owned(),
                a["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        attempts,
        [
            ("sms".to_owned(), "permanent".to_owned()),
            ("whatsapp".to_owned(), "sent".to_owned())
        ]
    );
    assert_eq!(message["attempts"][0]["error"]["code"], "21610");

    let requests = sim.requests();
    let sms = requests
        .iter()
        .find(|r| r.path.contains("/Accounts/"))
        .unwrap();
    assert_eq!(sms.field("Body"), Some("Your parcel is on its way"));
    let whatsapp = requests
        .iter()
        .find(|r| r.path.ends_with("/messages"))
        .unwrap();
    let body: Value = serde_json::from_slice(&whatsapp.body).unwrap();
    assert_eq!(body["text"]["body"], "📦 Your parcel is on its way");
    assert_eq!(body["to"], "31612345678");
}

#[tokio::test]
async fn preview_and_send_give_the_same_plan() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim).await;
    let brazilian = json!({"addresses": {"phone": "+5511987654321", "whatsapp": "+5511987654321"}});
    gw.put_customer("br-7", &brazilian).await;
    let request =
        json!({"customer_id": "br-7", "category": "transactional", "content": {"text": "Olá"}});

    let (status, preview) = gw.post("/v1/routes/preview", &request).await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(sim.requests().len(), 0);
    assert_eq!(gw.stored_messages(), 0, "a preview stores nothing");
    assert_eq!(preview["plan"]["region"], "LATAM");
    assert_eq!(preview["plan"]["region_source"], "phone");
    assert_eq!(preview["deliveries"][0]["channel"], "whatsapp");

    let (status, sent) = gw.send(&request).await;
    assert_eq!(status, 202);
    assert_eq!(sent["plan"], preview["plan"]);
    let message = gw.settled(sent["id"].as_str().unwrap()).await;
    assert_eq!(message["delivered_channel"], "whatsapp");
}

#[tokio::test]
async fn consent_and_caps_decide_and_say_why() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim).await;
    gw.put_customer("c-2", &dutch_customer()).await;

    // Marketing without any opt-in: nothing may go.
    let marketing =
        json!({"customer_id": "c-2", "category": "marketing", "content": {"text": "Spring sale"}});
    let (status, answer) = gw.send(&marketing).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["status"], "suppressed");
    assert!(
        decisions(&answer["plan"])
            .iter()
            .any(|(c, d)| c == "sms" && d == "no_consent")
    );

    // An opt-in for WhatsApp lets one marketing message through; the cap stops the second.
    let response = gw
        .client
        .patch(format!("{}/v1/customers/c-2/consent", gw.url))
        .json(
            &json!({"whatsapp": {"marketing": {"status": "opted_in", "source": "checkout"}},
                      "sms": {"transactional": {"status": "opted_out", "source": "sms-keyword"}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let (_, first) = gw.send(&marketing).await;
    assert_eq!(first["status"], "queued", "{first}");
    assert_eq!(first["plan"]["channels"][1]["decision"], "chosen");
    let (_, second) = gw.send(&marketing).await;
    assert_eq!(second["status"], "suppressed");
    assert_eq!(second["plan"]["suppressed"]["reason"], "frequency_cap");
    assert!(
        second["status_reason"]
            .as_str()
            .unwrap()
            .starts_with("frequency_cap")
    );

    // The SMS opt-out holds even when the request asks for SMS.
    let (_, forced) = gw
        .send(&json!({"customer_id": "c-2", "category": "transactional", "channels": ["sms"], "content": {"text": "x"}}))
        .await;
    assert_eq!(forced["status"], "suppressed", "{forced}");
    assert_eq!(
        decisions(&forced["plan"]),
        [("sms".to_owned(), "opted_out".to_owned())]
    );
    gw.settled(first["id"].as_str().unwrap()).await;
    assert!(
        sim.requests()
            .iter()
            .all(|r| !r.path.contains("/Accounts/")),
        "SMS went out"
    );
}

#[tokio::test]
async fn profiles_are_validated_read_and_erased() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim).await;
    for (profile, field) in [
        (
            json!({"addresses": {"phone": "0612345678"}}),
            "addresses.phone",
        ),
        (json!({"addresses": {"email": "nope"}}), "addresses.email"),
        (json!({"timezone": "Europe/Atlantis"}), "timezone"),
        (json!({"country": "ZZ"}), "country"),
        (json!({"locale": "klingon!"}), "locale"),
    ] {
        let (status, answer) = gw.put_customer("bad", &profile).await;
        assert_eq!(status, 422, "{profile}: {answer}");
        assert_eq!(answer["error"]["field"], field);
    }
    let (status, answer) = gw.put_customer("bad", &json!({"nickname": "x"})).await;
    assert_eq!(status, 400, "{answer}");

    assert_eq!(gw.put_customer("c-3", &dutch_customer()).await.0, 201);
    assert_eq!(gw.put_customer("c-3", &dutch_customer()).await.0, 200);
    let profile = gw.customer("c-3").await;
    assert_eq!(profile["addresses"]["phone"], "+31612345678");
    assert_eq!(profile["timezone"], "Europe/Amsterdam");

    let id = gw
        .send_ok(
            &json!({"customer_id": "c-3", "category": "transactional", "content": {"text": "hi"}}),
        )
        .await;
    gw.settled(&id).await;
    let mut later =
        json!({"customer_id": "c-3", "category": "transactional", "content": {"text": "later"}});
    later["send_at"] =
        json!((jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1)).to_string());
    let (status, answer) = gw.send(&later).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (202, Some("scheduled"))
    );
    let scheduled = answer["id"].as_str().unwrap().to_owned();
    let deleted = gw
        .client
        .delete(format!("{}/v1/customers/c-3", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    let gone = gw
        .client
        .get(format!("{}/v1/customers/c-3", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status().as_u16(), 404);
    let message = gw.message(&id).await;
    assert_eq!(message["to"], "customer:c-3", "history keeps the id only");
    let pending = gw.message(&scheduled).await;
    assert_eq!(
        pending["status"], "cancelled",
        "nothing goes to an erased customer"
    );
    assert_eq!(pending["status_reason"], "customer erased");
    let conn = rusqlite::Connection::open(&gw.db_path).unwrap();
    let addresses: Vec<String> = conn
        .prepare("SELECT address FROM deliveries WHERE message_id = ?1")
        .unwrap()
        .query_map([&id], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert!(addresses.iter().all(|a| a == "[erased]"), "{addresses:?}");

    let (status, answer) = gw
        .send(
            &json!({"customer_id": "c-3", "category": "transactional", "content": {"text": "hi"}}),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (422, Some("unknown_customer"))
    );
}
