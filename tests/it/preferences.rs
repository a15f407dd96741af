//! The customer's own preference page, followed from a marketing mail's
//! link, and the same choices as JSON: saving opts out with its source and
//! time, the next send plans around it, and nobody else's page or post
//! changes anything.

use crate::support::{FAST_DISPATCH, TestGateway, default_twilio, repo_root, sendgrid_connector};
use crossgate_tests::ProviderSim;
use serde_json::{Value, json};

const SECRET: &str = "a preference test secret of length";

async fn gateway(sim: &ProviderSim) -> TestGateway {
    TestGateway::start(&format!(
        r#"{FAST_DISPATCH}
[routing]
default = ["sms", "email"]

[categories.transactional]
consent = "opt-out"

[categories.marketing]
consent = "opt-in"
title = {{ en = "Offers", nl = "Aanbiedingen" }}
description = {{ en = "Deals, at most weekly", nl = "Kortingen, hooguit wekelijks" }}

[templates]
dir = "{}"

[unsubscribe]
secret = "{SECRET}"
{}{}"#,
        repo_root().join("config/templates").display(),
        sendgrid_connector("sendgrid", &sim.url()),
        default_twilio(&sim.url()),
    ))
    .await
}

fn offer() -> Value {
    json!({"customer_id": "anna", "template": "marketing_offer", "channels": ["email"],
           "data": {"name": "Anna", "discount": "20%", "code": "LENTE20"}})
}

/// The page's link from the last mail, made to point at this gateway.
fn link_in_mail(sim: &ProviderSim, gw: &TestGateway) -> String {
    let mail: Value = serde_json::from_slice(
        &sim.requests()
            .iter()
            .rfind(|r| r.path == "/v3/mail/send")
            .expect("a mail")
            .body,
    )
    .unwrap();
    let text = mail.to_string();
    let at = text.find("/p/").expect("a preference link in the mail");
    let token: String = text[at + 3..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    format!("{}/p/{token}", gw.url)
}

/// The form's fields as a browser would send them with `unticked` unticked.
fn form_without(page: &str, unticked: &str) -> Vec<(String, String)> {
    let value_after = |from: usize| {
        let at = page[from..].find("value=\"").unwrap() + from + 7;
        page[at..at + page[at..].find('"').unwrap()].to_owned()
    };
    let mut fields = vec![(
        "check".to_owned(),
        value_after(page.find("name=check").unwrap()),
    )];
    let mut from = 0;
    while let Some(at) = page[from..].find("name=shown") {
        let cell = value_after(from + at);
        from += at + 1;
        fields.push(("shown".to_owned(), cell));
    }
    let mut from = 0;
    while let Some(at) = page[from..].find("name=c ") {
        let box_end = from + at + page[from + at..].find('>').unwrap();
        let cell = value_after(from + at);
        if page[from + at..box_end].contains("checked") && cell != unticked {
            fields.push(("c".to_owned(), cell));
        }
        from = box_end;
    }
    fields
}

#[tokio::test]
async fn a_customer_opts_out_of_marketing_sms_on_their_page_and_the_next_send_plans_email() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim).await;
    let yes = json!({"marketing": {"status": "opted_in", "at": "2026-01-01T00:00:00Z"}});
    let profile = json!({"addresses": {"email": "anna@example.nl", "phone": "+31612345678"},
                         "locale": "nl-NL", "consent": {"email": yes, "sms": yes}});
    assert_eq!(gw.put_customer("anna", &profile).await.0, 201);
    let id = gw.send_ok(&offer()).await;
    assert_eq!(gw.settled(&id).await["status"], "sent");
    let link = link_in_mail(&sim, &gw);

    let page = gw.client.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let page = page.text().await.unwrap();
    assert!(
        page.contains("Aanbiedingen") && page.contains("Kortingen"),
        "{page}"
    );
    assert!(page.contains("value=\"sms.marketing\" checked"), "{page}");
    assert!(!page.contains("<script"), "works without JavaScript");

    // Another site's post is refused, with or without the form's check.
    let fields = form_without(&page, "sms.marketing");
    let cross = gw
        .client
        .post(&link)
        .header("origin", "https://evil.example")
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    let unchecked: Vec<_> = fields.iter().filter(|(k, _)| k != "check").collect();
    let forged = gw.client.post(&link).form(&unchecked).send().await.unwrap();
    assert_eq!(forged.status(), 403);
    let untouched = &gw.customer("anna").await["consent"];
    assert_eq!(
        untouched["sms"]["marketing"]["status"], "opted_in",
        "{untouched}"
    );

    // Saved from its own page: SMS of marketing is off, with source and time.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let saved = client
        .post(&link)
        .header("origin", &gw.url)
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 303);
    let consent = &gw.customer("anna").await["consent"];
    assert_eq!(
        consent["sms"]["marketing"]["status"], "opted_out",
        "{consent}"
    );
    assert_eq!(consent["sms"]["marketing"]["source"], "preference_center");
    assert!(consent["sms"]["marketing"]["at"].is_string());
    assert_ne!(
        consent["email"]["marketing"]["source"], "preference_center",
        "an unchanged box writes nothing"
    );
    let again = gw
        .client
        .get(format!("{link}?saved=1"))
        .send()
        .await
        .unwrap();
    let again = again.text().await.unwrap();
    assert!(again.contains("Opgeslagen"), "{again}");
    assert!(
        again.contains("value=\"sms.marketing\">"),
        "now unticked: {again}"
    );

    // The next marketing send plans email, and says why not SMS.
    let next = json!({"customer_id": "anna", "category": "marketing",
                      "content": {"text": "Last day of the sale", "subject": "Sale"}});
    let (status, accepted) = gw.send(&next).await;
    assert_eq!(status, 202, "{accepted}");
    let channels = &accepted["plan"]["channels"];
    assert_eq!(channels[0]["channel"], "sms");
    assert_eq!(channels[0]["decision"], "opted_out");
    assert_eq!(channels[1]["channel"], "email");
    assert_eq!(channels[1]["decision"], "chosen");

    // The same choices as JSON, and changed through it.
    let json_view = gw.get_ok("/v1/customers/anna/preferences").await;
    let marketing = &json_view["categories"][0];
    assert_eq!(marketing["name"], "marketing");
    assert_eq!(marketing["title"], "Aanbiedingen");
    let sms = marketing["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == "sms")
        .unwrap();
    assert_eq!(sms["subscribed"], false);
    let (status, _) = gw
        .put(
            "/v1/customers/anna/preferences",
            &json!({"sms": {"marketing": true}}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        gw.customer("anna").await["consent"]["sms"]["marketing"]["status"],
        "opted_in"
    );
    let (status, refused) = gw
        .put(
            "/v1/customers/anna/preferences",
            &json!({"push": {"marketing": true}}),
        )
        .await;
    assert_eq!(status, 422, "anna has no push address: {refused}");
}

#[tokio::test]
async fn a_page_link_is_only_good_for_its_customer_and_its_time() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim).await;
    let now = crossgate::clock::wall_ms();
    let sign = |customer: &str, expires: i64, purpose| {
        crossgate::customer::signed::sign(SECRET.as_bytes(), purpose, &[customer], expires)
    };
    use crossgate::customer::signed::Purpose;
    let expired = sign("anna", now - 1, Purpose::Preferences);
    let response = gw
        .client
        .get(format!("{}/p/{expired}", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 410);
    // A feed token is no page link, nor is one signed with another key.
    let feed = sign("anna", now + 60_000, Purpose::Inbox);
    let response = gw
        .client
        .get(format!("{}/p/{feed}", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let other = crossgate::customer::signed::sign(
        b"another key entirely",
        Purpose::Preferences,
        &["anna"],
        now + 60_000,
    );
    let response = gw
        .client
        .get(format!("{}/p/{other}", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // A valid link of a customer who does not exist shows nothing to choose.
    let nobody = sign("nobody", now + 60_000, Purpose::Preferences);
    let response = gw
        .client
        .get(format!("{}/p/{nobody}", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}
