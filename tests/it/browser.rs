//! What people see, in a real browser (headless Chromium): the
//! `<crossgate-inbox>` bell on a platform's page shows an item sent through
//! another node, and a click on it reads it; a customer opts out on their
//! preference page and the next send plans around it.

use crate::inbox::{SECRET, token_with};
use crate::support::browser::{Browser, serve_page};
use crate::support::child::ChildGateway;
use crate::support::{TestGateway, postgres};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The bell's badge text inside the component's shadow root ('' when hidden).
const BADGE_TEXT: &str = "(() => { const b = document.querySelector('crossgate-inbox')\
     ?.shadowRoot?.querySelector('.badge'); return b && !b.hidden ? b.textContent : ''; })()";

fn node_config(page_origin: &str) -> String {
    format!(
        "[routing]\ndefault = [\"inbox\"]\n\
         [categories.marketing]\nconsent = \"opt-out\"\n\
         [inbox]\nsecret = \"{SECRET}\"\nallowed_origins = [\"{page_origin}\"]\n"
    )
}

async fn until_read(url: &str, id: &str) -> Value {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let message: Value = client
            .get(format!("{url}/v1/messages/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if message["status"] == "read" {
            return message;
        }
        assert!(Instant::now() < deadline, "never read: {message}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_bell_shows_an_item_sent_through_another_node_and_a_click_reads_it() {
    let test = "browser::the_bell_shows_an_item_sent_through_another_node";
    let Some(database) = postgres::migrated_database(test).await else {
        return;
    };
    let Some(browser) = Browser::open(test).await else {
        return;
    };
    // The platform's page, on an origin of its own.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = ChildGateway::spawn_on(dir_a.path(), &node_config(&origin), &database).await;
    let b = ChildGateway::spawn_on(dir_b.path(), &node_config(&origin), &database).await;
    let client = reqwest::Client::new();
    let put = client
        .put(format!("{}/v1/customers/eva", a.url))
        .json(&json!({"locale": "en"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);

    // The page talks to node B only.
    let token = token_with(SECRET, "eva", crossgate::clock::wall_ms() + 3_600_000);
    let html = format!(
        "<!doctype html><title>Shop</title><script src=\"{b}/sdk/inbox.js\"></script>\
         <crossgate-inbox gateway=\"{b}\" token=\"{token}\"></crossgate-inbox>",
        b = b.url
    );
    let _page = serve_page(listener, html).await;
    browser.goto(&format!("{origin}/")).await;
    // Connected: the stream's first counts set the bell's label.
    browser
        .wait_for(
            "the component's stream",
            "return document.querySelector('crossgate-inbox')?.shadowRoot\
             ?.querySelector('.bell')?.getAttribute('aria-label');",
            Duration::from_secs(10),
        )
        .await;
    let badge = format!("return {BADGE_TEXT};");
    assert_eq!(browser.eval(&badge, json!([])).await, "", "nothing yet");

    // Sent through node A; the badge on node B's stream says 1.
    let sent = client
        .post(format!("{}/v1/messages", a.url))
        .json(&json!({"customer_id": "eva", "category": "marketing",
                      "content": {"subject": "Back in stock", "text": "Your size is back"}}))
        .send()
        .await
        .unwrap();
    let accepted_at = Instant::now();
    assert_eq!(sent.status(), 202);
    let id = sent.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let badge = browser
        .wait_for("the badge", &badge, Duration::from_secs(5))
        .await;
    eprintln!(
        "badge shown {} ms after the send was accepted by the other node",
        accepted_at.elapsed().as_millis()
    );
    assert_eq!(badge, "1");

    // Open the bell, click the item: it is read, and the message says so.
    browser
        .click(
            "return document.querySelector('crossgate-inbox').shadowRoot.querySelector('.bell');",
        )
        .await;
    browser
        .click("return document.querySelector('crossgate-inbox').shadowRoot.querySelector('li .open');")
        .await;
    let message = until_read(&a.url, &id).await;
    assert_eq!(message["delivered_by"], "inbox");
    browser
        .wait_for(
            "the badge to clear",
            &format!("return {BADGE_TEXT} === '' ? 'cleared' : '';"),
            Duration::from_secs(5),
        )
        .await;
    browser.quit().await;
}

#[tokio::test]
async fn a_customer_opts_out_of_marketing_sms_on_their_page_in_a_browser() {
    let test = "browser::a_customer_opts_out_of_marketing_sms_on_their_page_in_a_browser";
    let Some(browser) = Browser::open(test).await else {
        return;
    };
    let secret = "a browser test unsubscribe secret";
    let gw = TestGateway::start(&format!(
        r#"[routing]
default = ["sms", "email"]
[categories.marketing]
consent = "opt-out"
title = {{ en = "Offers" }}
[unsubscribe]
secret = "{secret}"
{}{}"#,
        crate::support::default_twilio("http://127.0.0.1:9"),
        crate::support::sendgrid_connector("sendgrid", "http://127.0.0.1:9"),
    ))
    .await;
    let profile = json!({"addresses": {"email": "fay@example.com", "phone": "+31612345678"}});
    assert_eq!(gw.put_customer("fay", &profile).await.0, 201);
    let token = crossgate::customer::signed::sign(
        secret.as_bytes(),
        crossgate::customer::signed::Purpose::Preferences,
        &["fay"],
        crossgate::clock::wall_ms() + 3_600_000,
    );
    browser.goto(&format!("{}/p/{token}", gw.url)).await;
    browser
        .click("return document.querySelector('input[value=\"sms.marketing\"]');")
        .await;
    let ticked = browser
        .eval(
            "return document.querySelector('input[value=\"sms.marketing\"]').checked;",
            json!([]),
        )
        .await;
    assert_eq!(ticked, false);
    browser
        .click("return document.querySelector('button[type=submit]');")
        .await;
    browser
        .wait_for(
            "the saved page",
            "return document.querySelector('[role=status]')?.textContent;",
            Duration::from_secs(5),
        )
        .await;
    let consent = &gw.customer("fay").await["consent"];
    assert_eq!(
        consent["sms"]["marketing"]["status"], "opted_out",
        "{consent}"
    );
    assert_eq!(consent["sms"]["marketing"]["source"], "preference_center");

    let (status, accepted) = gw
        .send(&json!({"customer_id": "fay", "category": "marketing",
                      "content": {"subject": "Sale", "text": "Last day"}}))
        .await;
    assert_eq!(status, 202, "{accepted}");
    let channels = &accepted["plan"]["channels"];
    assert_eq!(
        (&channels[0]["channel"], &channels[0]["decision"]),
        (&json!("sms"), &json!("opted_out"))
    );
    assert_eq!(
        (&channels[1]["channel"], &channels[1]["decision"]),
        (&json!("email"), &json!("chosen"))
    );
    browser.quit().await;
}
