//! Templates per channel and locale, SMS encoding and segments, and
//! one-click unsubscribe, end to end with the shipped example templates.

use crate::support::{
    FAST_DISPATCH, TestGateway, default_twilio, repo_root, sendgrid_connector, whatsapp_connector,
};
use crossgate_tests::{Behaviour, DEFAULT_SENDGRID_KEY, ProviderSim, Recorded};
use serde_json::{Value, json};

const SECRET: &str = "unsubscribe-secret-for-tests";
/// Where providers and mail clients reach the gateway (its TLS proxy).
const PUBLIC_URL: &str = "https://gateway.example.com";

/// The shipped templates, a transactional and a marketing category with an
/// SMS footer and a segment limit, SendGrid and Twilio on the simulator.
async fn gateway(sim: &ProviderSim, templates_dir: &str) -> TestGateway {
    TestGateway::start(&format!(
        r#"{FAST_DISPATCH}
[server]
public_url = "{PUBLIC_URL}"

[regions]
EU = ["NL", "BE", "DE"]

[routing]
default = ["email", "sms"]

[routing.regions]
EU = ["email", "sms"]

[categories.transactional]
consent = "opt-out"

[categories.marketing]
consent = "opt-in"
max_segments = 2
smart_encoding = true
[categories.marketing.sms_footer]
default = {{ default = "Reply STOP to opt out" }}
EU = {{ default = "Reply STOP to opt out", nl = "Antwoord STOP om je af te melden" }}

[templates]
dir = "{templates_dir}"

[unsubscribe]
secret = "{SECRET}"
mailto = "unsubscribe@shop.example"
{}{}{}"#,
        sendgrid_connector("sendgrid", &sim.url()),
        whatsapp_connector("whatsapp", &sim.url()),
        // Twilio's price per segment.
        default_twilio(&sim.url()).replace(
            "channel = \"sms\"",
            "channel = \"sms\"\ncost = { default = 0.0079, EU = 0.072 }"
        ),
    ))
    .await
}

fn shipped() -> String {
    repo_root().join("config/templates").display().to_string()
}

fn order(customer: &str) -> Value {
    json!({
        "customer_id": customer,
        "template": "order_confirmation",
        "data": {"name": "Ada", "order_id": "A-1001", "total": "€42.50"}
    })
}

fn twilio_bodies(requests: &[Recorded]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.path.contains("/Accounts/"))
        .map(|r| r.field("Body").unwrap_or_default().to_owned())
        .collect()
}

fn sendgrid_bodies(requests: &[Recorded]) -> Vec<Value> {
    requests
        .iter()
        .filter(|r| r.path == "/v3/mail/send")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

#[tokio::test]
async fn a_template_speaks_each_customers_language_with_fallback() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim, &shipped()).await;
    // nl-BE has no folder: nl is next. de has none at all: the default, en.
    let belgian =
        json!({"addresses": {"phone": "+32470123456"}, "country": "BE", "locale": "nl-BE"});
    let german =
        json!({"addresses": {"email": "max@example.de"}, "country": "DE", "locale": "de-DE"});
    assert_eq!(gw.put_customer("be-1", &belgian).await.0, 201);
    assert_eq!(gw.put_customer("de-1", &german).await.0, 201);

    let sms = gw.send_ok(&order("be-1")).await;
    let email = gw.send_ok(&order("de-1")).await;
    let sms = gw.settled(&sms).await;
    let email = gw.settled(&email).await;
    assert_eq!(sms["status"], "sent", "{sms:#}");
    assert_eq!(email["status"], "sent", "{email:#}");

    let requests = sim.requests();
    assert_eq!(
        twilio_bodies(&requests),
        ["Hoi Ada, bestelling A-1001 (€42.50) is bevestigd."]
    );
    let mail = &sendgrid_bodies(&requests)[0];
    assert_eq!(mail["subject"], "Order A-1001 confirmed");
    let html = mail["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "text/html")
        .unwrap();
    assert!(
        html["value"]
            .as_str()
            .unwrap()
            .contains("<strong>A-1001</strong>"),
        "{mail}"
    );
    assert!(
        mail.get("headers").is_none(),
        "transactional mail has no unsubscribe: {mail}"
    );

    // The message says which template, which locale, and what it rendered.
    let template = &sms["template"];
    assert_eq!(template["name"], "order_confirmation");
    assert_eq!(template["requested_locale"], "nl-BE");
    assert_eq!(template["locale"], "nl");
    assert_eq!(template["channels"]["sms"]["locale"], "nl");
    assert_eq!(template["channels"]["sms"]["encoding"], "GSM-7");
    assert_eq!(template["channels"]["sms"]["segments"], 1);
    assert_eq!(email["template"]["locale"], "en");
    assert_eq!(email["template"]["requested_locale"], "de-DE");
    assert_eq!(
        email["template"]["channels"]["email"]["subject"],
        "Order A-1001 confirmed"
    );

    // An explicit locale wins over the profile's.
    let mut english = order("be-1");
    english["locale"] = json!("en-GB");
    let id = gw.send_ok(&english).await;
    assert_eq!(gw.settled(&id).await["template"]["locale"], "en");
    assert_eq!(
        twilio_bodies(&sim.requests()).last().unwrap(),
        "Hi Ada, order A-1001 (€42.50) is confirmed."
    );
}

#[tokio::test]
async fn a_fallback_from_email_to_sms_sends_the_sms_variant() {
    let sim = ProviderSim::start().await.unwrap();
    sim.script(
        DEFAULT_SENDGRID_KEY,
        [Behaviour::Reject {
            code: 400,
            message: "Does not contain a valid address.".into(),
        }],
    );
    let gw = gateway(&sim, &shipped()).await;
    let customer = json!({"addresses": {"email": "anna@example.nl", "phone": "+31612345678"}, "country": "NL", "locale": "nl-NL"});
    assert_eq!(gw.put_customer("nl-1", &customer).await.0, 201);
    let (status, answer) = gw.send(&order("nl-1")).await;
    assert_eq!(status, 202, "{answer}");
    let channels: Vec<&str> = answer["plan"]["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["email", "sms"]);

    let message = gw.settled(answer["id"].as_str().unwrap()).await;
    assert_eq!(message["status"], "sent", "{message:#}");
    assert_eq!(message["delivered_channel"], "sms");
    let requests = sim.requests();
    assert_eq!(
        sendgrid_bodies(&requests)[0]["subject"],
        "Bestelling A-1001 bevestigd"
    );
    // The SMS variant reached Twilio, not the email squeezed into an SMS.
    assert_eq!(
        twilio_bodies(&requests),
        ["Hoi Ada, bestelling A-1001 (€42.50) is bevestigd."]
    );
    // Both chosen channels were rendered at accept time.
    let rendered = &message["template"]["channels"];
    assert_eq!(rendered["email"]["subject"], "Bestelling A-1001 bevestigd");
    assert_eq!(
        rendered["sms"]["text"],
        "Hoi Ada, bestelling A-1001 (€42.50) is bevestigd."
    );
}

/// Every member of a broadcast gets the same `data`: a required variable
/// missing from it refuses the broadcast at once, not each member later.
#[tokio::test]
async fn a_broadcast_without_a_templates_variable_is_refused_at_once() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim, &shipped()).await;
    let (status, segment) = gw
        .put("/v1/segments/dutch", &json!({"countries": ["NL"]}))
        .await;
    assert_eq!(status, 201, "{segment}");
    let broadcast = |data: Value| {
        json!({"segment": "dutch", "category": "transactional",
               "template": "order_confirmation", "data": data})
    };
    let (status, refused) = gw
        .post(
            "/v1/broadcasts",
            &broadcast(json!({"name": "Ada", "order_id": "A-1"})),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(
        (&refused["error"]["code"], &refused["error"]["field"]),
        (&json!("missing_variable"), &json!("data.total")),
        "{refused}"
    );
    let (status, created) = gw
        .post(
            "/v1/broadcasts",
            &broadcast(json!({"name": "Ada", "order_id": "A-1", "total": "1"})),
        )
        .await;
    assert_eq!(status, 202, "{created}");
    gw.stop().await;
}

#[tokio::test]
async fn what_a_template_cannot_render_is_refused_and_nothing_is_stored() {
    let sim = ProviderSim::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo_root().join("config/templates"), dir.path());
    // A template with an email variant only.
    let only_email = dir.path().join("newsletter");
    std::fs::create_dir_all(only_email.join("en")).unwrap();
    std::fs::write(
        only_email.join("template.toml"),
        "category = \"transactional\"\ndefault_locale = \"en\"\n",
    )
    .unwrap();
    std::fs::write(only_email.join("en/email.subject"), "News").unwrap();
    std::fs::write(only_email.join("en/email.txt"), "All the news.").unwrap();
    let gw = gateway(&sim, &dir.path().display().to_string()).await;
    let customer = json!({"addresses": {"phone": "+31612345678"}, "country": "NL"});
    assert_eq!(gw.put_customer("c-1", &customer).await.0, 201);

    let cases = [
        (
            json!({"customer_id": "c-1", "template": "order_confirmation", "data": {"name": "Ada", "order_id": "A-1"}}),
            "missing_variable",
            "data.total",
        ),
        (
            json!({"customer_id": "c-1", "template": "order_confirmation", "locale": "../../etc",
                   "data": {"name": "Ada", "order_id": "A-1", "total": "1"}}),
            "invalid_locale",
            "locale",
        ),
        (
            json!({"customer_id": "c-1", "template": "no_such_template", "data": {}}),
            "unknown_template",
            "template",
        ),
        (
            json!({"customer_id": "c-1", "template": "newsletter"}),
            "missing_variant",
            "template",
        ),
        (
            json!({"customer_id": "c-1", "template": "order_confirmation", "category": "marketing",
                   "data": {"name": "Ada", "order_id": "A-1", "total": "1"}}),
            "category_mismatch",
            "category",
        ),
        (
            json!({"customer_id": "c-1", "template": "order_confirmation", "content": {"text": "hi"},
                   "data": {"name": "Ada", "order_id": "A-1", "total": "1"}}),
            "invalid_content",
            "template",
        ),
        (
            json!({"channel": "sms", "to": {"phone": "+31612345678"}, "template": "order_confirmation",
                   "data": {"name": "Ada\u{1b}[31m", "order_id": "A-1", "total": "1"}}),
            "unsafe_text",
            "content.sms.text",
        ),
    ];
    for (body, code, field) in cases {
        let (status, answer) = gw.send(&body).await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
        let (status, preview) = gw.post("/v1/routes/preview", &body).await;
        assert_eq!(
            (status, &preview["error"]["code"]),
            (422, &json!(code)),
            "{preview}"
        );
    }
    assert_eq!(gw.stored_messages(), 0, "nothing refused was stored");
    assert_eq!(sim.request_count(), 0);
}

#[tokio::test]
async fn sms_texts_are_priced_by_segment_footed_and_bounded() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim, &shipped()).await;
    let customer = json!({
        "addresses": {"phone": "+31612345678"}, "country": "NL", "locale": "nl-NL",
        "consent": {"sms": {"marketing": {"status": "opted_in", "at": "2026-01-01T00:00:00Z"}}}
    });
    assert_eq!(gw.put_customer("c-1", &customer).await.0, 201);
    let marketing = |text: &str| json!({"customer_id": "c-1", "category": "marketing", "content": {"text": text}});

    // Curly quotes and a dash would make it UCS-2; smart encoding keeps it
    // GSM-7. The Dutch footer for EU is added, and counted.
    let (status, preview) = gw
        .post(
            "/v1/routes/preview",
            &marketing("Don\u{2019}t miss it \u{2013} \u{201C}20% off\u{201D}"),
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    let text = preview["deliveries"][0]["content"]["text"]
        .as_str()
        .unwrap();
    assert_eq!(
        text,
        "Don't miss it - \"20% off\"\nAntwoord STOP om je af te melden"
    );
    let sms = sms_decision(&preview);
    assert_eq!(
        (sms["encoding"].as_str(), sms["segments"].as_u64()),
        (Some("GSM-7"), Some(1))
    );
    let one_segment = sms["cost"].as_f64().unwrap();
    assert!((one_segment - 0.072).abs() < 1e-9, "EU's price: {sms}");

    // Two GSM-7 segments cost twice as much; three are refused.
    let footer = "\nAntwoord STOP om je af te melden".len();
    let (_, preview) = gw
        .post("/v1/routes/preview", &marketing(&"a".repeat(306 - footer)))
        .await;
    let sms = sms_decision(&preview);
    assert_eq!(sms["segments"], 2, "{preview}");
    assert!((sms["cost"].as_f64().unwrap() - 2.0 * one_segment).abs() < 1e-9);
    let (status, refused) = gw.send(&marketing(&"a".repeat(307 - footer))).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["code"], "too_many_segments");
    assert_eq!(refused["error"]["field"], "content.text");

    // An emoji makes it UCS-2: 70 units a segment, 67 when split.
    let (_, preview) = gw.post("/v1/routes/preview", &marketing("😀 deal")).await;
    assert_eq!(sms_decision(&preview)["encoding"], "UCS-2", "{preview}");
    assert_eq!(sms_decision(&preview)["segments"], 1);

    // Transactional texts get no footer and no limit.
    let (_, preview) = gw
        .post(
            "/v1/routes/preview",
            &json!({"customer_id": "c-1", "category": "transactional", "content": {"text": "a".repeat(500)}}),
        )
        .await;
    assert_eq!(preview["deliveries"][0]["content"]["text"], "a".repeat(500));
    assert_eq!(sms_decision(&preview)["segments"], 4, "{preview}");
    assert_eq!(gw.stored_messages(), 0);
}

#[tokio::test]
async fn one_click_unsubscribe_round_trip() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim, &shipped()).await;
    let customer = json!({
        "addresses": {"email": "anna@example.nl"}, "country": "NL", "locale": "nl",
        "consent": {"email": {"marketing": {"status": "opted_in", "at": "2026-01-01T00:00:00Z"}}}
    });
    assert_eq!(gw.put_customer("c-1", &customer).await.0, 201);
    let offer = json!({"customer_id": "c-1", "template": "marketing_offer",
                       "data": {"name": "Anna", "discount": "20%", "code": "LENTE20"}});
    let id = gw.send_ok(&offer).await;
    assert_eq!(gw.settled(&id).await["status"], "sent");

    // The headers of RFC 8058, and the same link in the body.
    let mail = sendgrid_bodies(&sim.requests()).pop().unwrap();
    assert_eq!(
        mail["headers"]["List-Unsubscribe-Post"],
        "List-Unsubscribe=One-Click"
    );
    let header = mail["headers"]["List-Unsubscribe"].as_str().unwrap();
    let link = header
        .strip_prefix('<')
        .and_then(|h| h.split_once('>'))
        .map(|(url, _)| url.to_owned())
        .unwrap();
    assert!(link.starts_with(&format!("{PUBLIC_URL}/u/")), "{header}");
    assert!(
        header.ends_with(", <mailto:unsubscribe@shop.example?subject=unsubscribe>"),
        "{header}"
    );
    let text = mail["content"][0]["value"].as_str().unwrap();
    assert!(
        text.contains(&link),
        "the Dutch text part, made from its HTML, links it: {text}"
    );
    // The proxy at the public URL forwards to this gateway.
    let url = link.replace(PUBLIC_URL, &gw.url);

    // A forged link changes nothing; a GET (a link scanner) changes nothing.
    let token = url.rsplit('/').next().unwrap();
    let forged = format!("{}/u/{}x", gw.url, token);
    let response = gw
        .client
        .post(&forged)
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    let expired = crossgate::customer::unsubscribe::sign(
        SECRET.as_bytes(),
        &crossgate::customer::unsubscribe::Unsubscribe {
            customer_id: "c-1".into(),
            category: "marketing".into(),
            expires_at: 1,
        },
    );
    let response = gw
        .client
        .post(format!("{}/u/{expired}", gw.url))
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 410);
    let page = gw.client.get(&url).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains("method=post"));
    assert_eq!(
        gw.customer("c-1").await["consent"]["email"]["marketing"]["status"],
        "opted_in"
    );

    // The mail client's POST: 200, no redirect, and the customer is out.
    let response = gw
        .client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let consent = &gw.customer("c-1").await["consent"]["email"]["marketing"];
    assert_eq!(consent["status"], "opted_out", "{consent}");
    assert_eq!(consent["source"], "one-click-unsubscribe");

    // The next offer is suppressed; an order confirmation still goes.
    let (status, answer) = gw.send(&offer).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["status"], "suppressed", "{answer}");
    assert_eq!(answer["plan"]["channels"][0]["channel"], "email");
    assert_eq!(
        answer["plan"]["channels"][0]["decision"], "opted_out",
        "{answer}"
    );
    let id = gw.send_ok(&order("c-1")).await;
    assert_eq!(gw.settled(&id).await["status"], "sent");
    let mails = sendgrid_bodies(&sim.requests());
    assert_eq!(mails.len(), 2);
    assert_eq!(mails[1]["subject"], "Bestelling A-1001 bevestigd");
}

/// The plan's decision about SMS.
fn sms_decision(preview: &Value) -> Value {
    preview["plan"]["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == "sms")
        .cloned()
        .unwrap_or_else(|| panic!("no SMS in the plan: {preview}"))
}

#[tokio::test]
async fn whatsapp_sends_the_approved_template_in_the_customers_language() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim, &shipped()).await;
    let customer = json!({
        "addresses": {"whatsapp": "+31612345678"}, "country": "NL", "locale": "nl-NL",
        "consent": {"whatsapp": {"marketing": {"status": "opted_in", "at": "2026-01-01T00:00:00Z"}}}
    });
    assert_eq!(gw.put_customer("c-1", &customer).await.0, 201);
    let id = gw
        .send_ok(
            &json!({"customer_id": "c-1", "template": "marketing_offer", "channels": ["whatsapp"],
                         "data": {"name": "Anna", "discount": "20%", "code": "LENTE20"}}),
        )
        .await;
    assert_eq!(gw.settled(&id).await["status"], "sent");
    let request = sim
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/messages"))
        .unwrap();
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["type"], "template", "{body}");
    assert_eq!(body["template"]["name"], "spring_offer");
    assert_eq!(body["template"]["language"]["code"], "nl");
    let parameters: Vec<&str> = body["template"]["components"][0]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["text"].as_str().unwrap())
        .collect();
    assert_eq!(parameters, ["Anna", "20%", "LENTE20"]);
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
