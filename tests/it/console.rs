//! The operator console in a real browser: sign in with a read key, find a
//! customer's message and read its timeline (the plan's reasons, the
//! attempts), sign out; a replayed cookie, a wrong key and a cross-site
//! post are refused.

use crate::support::browser::Browser;
use crate::support::{FAST_DISPATCH, TestGateway};
use crossgate_tests::{ProviderSim, private_twilio};
use serde_json::json;
use std::time::Duration;

const READER: &str = "a-console-read-key-for-tests";
const ADMIN: &str = "a-console-admin-key-for-tests";

async fn gateway(sim: &ProviderSim) -> TestGateway {
    TestGateway::start(&format!(
        r#"{FAST_DISPATCH}
[server]
api_keys = [{{ name = "viewer", key = "{READER}", scopes = ["read"] }},
            {{ name = "ops", key = "{ADMIN}" }}]
[routing]
default = ["email", "sms"]
{}"#,
        private_twilio(sim)
    ))
    .await
}

async fn send(gw: &TestGateway) -> String {
    let client = &gw.client;
    let put = client
        .put(format!("{}/v1/customers/ada", gw.url))
        .bearer_auth(ADMIN)
        .json(&json!({"addresses": {"phone": "+31612345678"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    let sent: serde_json::Value = client
        .post(format!("{}/v1/messages", gw.url))
        .bearer_auth(ADMIN)
        .json(&json!({"customer_id": "ada", "category": "transactional",
                      "content": {"text": "Your parcel is on its way"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    sent["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_operator_finds_a_customers_message_and_reads_its_timeline() {
    let test = "console::an_operator_finds_a_customers_message_and_reads_its_timeline";
    let Some(browser) = Browser::open(test).await else {
        return;
    };
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim).await;
    let id = send(&gw).await;

    browser.goto(&format!("{}/console", gw.url)).await;
    browser
        .wait_for(
            "the sign-in page",
            "return document.querySelector('input[name=key]');",
            Duration::from_secs(5),
        )
        .await;
    browser
        .eval(
            "document.querySelector('input[name=key]').value = arguments[0];",
            json!([READER]),
        )
        .await;
    browser
        .click("return document.querySelector('button[type=submit]');")
        .await;
    browser
        .wait_for(
            "the messages page",
            "return document.querySelector('input[name=customer_id]');",
            Duration::from_secs(5),
        )
        .await;
    browser
        .eval(
            "document.querySelector('input[name=customer_id]').value = 'ada';",
            json!([]),
        )
        .await;
    browser
        .click("return document.querySelector('form.search button');")
        .await;
    let link = format!("a[href=\"/console/messages/{id}\"]");
    browser
        .wait_for(
            "the customer's message in the list",
            &format!("return document.querySelector('{link}');"),
            Duration::from_secs(5),
        )
        .await;
    browser
        .click(&format!("return document.querySelector('{link}');"))
        .await;
    let page = browser
        .wait_for(
            "the timeline",
            "return document.querySelector('h2') && document.body.innerText;",
            Duration::from_secs(5),
        )
        .await;
    let page = page.as_str().unwrap().to_owned();
    assert!(page.contains("no address"), "email's reason: {page}");
    assert!(page.contains("chosen"), "{page}");
    assert!(page.contains("twilio"), "the attempt's connector: {page}");
    assert!(page.contains("Attempts"), "{page}");
    assert!(
        !page.contains("Cancel") && !page.contains("Change"),
        "a read session is offered nothing to change"
    );

    // Sign out; the cookie the browser had no longer signs anyone in.
    let cookie = browser.eval("return document.cookie;", json!([])).await;
    assert_eq!(cookie, "", "the session cookie is HttpOnly");
    browser
        .click("return document.querySelector('header button');")
        .await;
    browser
        .wait_for(
            "back at sign-in",
            "return location.pathname === '/console/sign-in';",
            Duration::from_secs(5),
        )
        .await;
    browser.goto(&format!("{}/console/messages", gw.url)).await;
    let at = browser.eval("return location.pathname;", json!([])).await;
    assert_eq!(at, "/console/sign-in");
    browser.quit().await;
}

#[tokio::test]
async fn sessions_refuse_wrong_keys_replays_and_cross_site_posts() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let sign_in = |key: &str| {
        client
            .post(format!("{}/console/sign-in", gw.url))
            .form(&[("key", key)])
            .send()
    };
    assert_eq!(sign_in("not-a-key").await.unwrap().status(), 401);
    let signed_in = sign_in(READER).await.unwrap();
    assert_eq!(signed_in.status(), 303);
    let set = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_owned();
    let page = |cookie: String| {
        client
            .get(format!("{}/console/messages", gw.url))
            .header("cookie", cookie)
            .send()
    };
    assert_eq!(page(cookie.clone()).await.unwrap().status(), 200);
    let html = page(cookie.clone()).await.unwrap().text().await.unwrap();
    let csrf = html
        .split("name=csrf value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();

    // Without the form's check, or from another site: refused, still signed in.
    let sign_out = |cookie: String, fields: Vec<(&'static str, String)>, origin: &str| {
        client
            .post(format!("{}/console/sign-out", gw.url))
            .header("cookie", cookie)
            .header("origin", origin.to_owned())
            .form(&fields)
            .send()
    };
    let forged = sign_out(cookie.clone(), vec![], &gw.url).await.unwrap();
    assert_eq!(forged.status(), 403);
    let cross = sign_out(
        cookie.clone(),
        vec![("csrf", csrf.clone())],
        "https://evil.example",
    )
    .await
    .unwrap();
    assert_eq!(cross.status(), 403);
    assert_eq!(page(cookie.clone()).await.unwrap().status(), 200);

    let out = sign_out(cookie.clone(), vec![("csrf", csrf)], &gw.url)
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    // The same cookie again: signed out everywhere.
    let replayed = page(cookie).await.unwrap();
    assert_eq!(replayed.status(), 303);
    assert_eq!(replayed.headers()["location"], "/console/sign-in");
}
