//! The operator console in a real browser: sign in with a read key, find a
//! customer's message and read its timeline (the plan's reasons, the
//! attempts), sign out; a replayed cookie, a wrong key and a cross-site
//! post are refused.

use crate::support::browser::{Browser, ENTER, TAB};
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
[journeys.welcome]
trigger = "signed_up"
goal = "purchase"
[[journeys.welcome.steps]]
id = "hello"
send = {{ category = "transactional", text = "Welcome aboard" }}
[[journeys.welcome.steps]]
id = "a_day"
wait = "1d"
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
    // By keyboard alone: the first Tab reaches the skip link, Enter moves
    // to the page, the next Tab to the search's first field, Enter searches.
    browser.keys(TAB).await;
    let focused = browser
        .eval("return document.activeElement.textContent;", json!([]))
        .await;
    assert_eq!(focused, "Skip to the page");
    browser.keys(ENTER).await;
    browser.keys(TAB).await;
    let focused = browser
        .eval("return document.activeElement.name;", json!([]))
        .await;
    assert_eq!(focused, "customer_id");
    browser.keys(&format!("ada{ENTER}")).await;
    // The unfiltered page lists the message too: wait for the search's own.
    browser
        .wait_for(
            "the search's page",
            "return location.search.includes('customer_id=ada') && document.readyState === 'complete';",
            Duration::from_secs(5),
        )
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
            "return location.pathname.startsWith('/console/messages/') \
             && document.readyState === 'complete' && document.querySelector('h2') \
             && document.body.innerText;",
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
    // Nor on the customer's page: consent is shown, not offered for change.
    browser
        .goto(&format!("{}/console/customers/ada", gw.url))
        .await;
    let offered = browser
        .wait_for(
            "the customer's page",
            "return document.querySelector('h1')?.textContent.startsWith('Customer') \
             && String(document.querySelectorAll('select, textarea, form[action*=consent], \
             form[action*=erase], form[action*=suppression]').length);",
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(offered, "0", "no form to change anything");

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

/// A customer with a phone per id, a segment of all who have one, and a
/// slow broadcast to it started with the admin key.
async fn slow_broadcast(gw: &TestGateway, members: usize) -> String {
    let client = &gw.client;
    for i in 0..members {
        let put = client
            .put(format!("{}/v1/customers/m{i:03}", gw.url))
            .bearer_auth(ADMIN)
            .json(&json!({"addresses": {"phone": format!("+3161200{i:04}")}}))
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 201);
    }
    let segment = client
        .put(format!("{}/v1/segments/everyone", gw.url))
        .bearer_auth(ADMIN)
        .json(&json!({"reachable": ["sms"]}))
        .send()
        .await
        .unwrap();
    assert!(segment.status().is_success());
    let created: serde_json::Value = client
        .post(format!("{}/v1/broadcasts", gw.url))
        .bearer_auth(ADMIN)
        .json(&json!({"segment": "everyone", "category": "transactional",
                      "content": {"text": "Our opening hours change"}, "rate_per_second": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["id"].as_str().unwrap().to_owned()
}

async fn sign_in_as(browser: &Browser, gw: &TestGateway, key: &str) {
    browser.goto(&format!("{}/console/sign-in", gw.url)).await;
    browser
        .eval(
            "document.querySelector('input[name=key]').value = arguments[0];",
            json!([key]),
        )
        .await;
    browser
        .click("return document.querySelector('button[type=submit]');")
        .await;
    browser
        .wait_for(
            "signed in",
            "return location.pathname === '/console/messages';",
            Duration::from_secs(5),
        )
        .await;
}

#[tokio::test]
async fn an_admin_changes_consent_cancels_a_broadcast_and_downloads_the_report() {
    let test = "console::an_admin_changes_consent_cancels_a_broadcast_and_downloads_the_report";
    let Some(browser) = Browser::open(test).await else {
        return;
    };
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim).await;
    let first = send(&gw).await;
    gw.client
        .get(format!("{}/v1/messages/{first}", gw.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    let broadcast = slow_broadcast(&gw, 30).await;
    sign_in_as(&browser, &gw, ADMIN).await;

    // Consent: ada opts out of transactional SMS, by the operator's hand.
    browser
        .goto(&format!("{}/console/customers/ada", gw.url))
        .await;
    browser
        .eval(
            "document.querySelector('select[name=\"c.sms.transactional\"]').value = 'opted_out';",
            json!([]),
        )
        .await;
    browser
        .click("return [...document.querySelectorAll('button[type=submit]')].find(b => b.textContent === 'Change consent');")
        .await;
    let page = browser
        .wait_for(
            "the changed consent",
            "return document.body.innerText.includes('opted out') && document.body.innerText;",
            Duration::from_secs(5),
        )
        .await;
    assert!(page.as_str().unwrap().contains("console:ops"), "{page}");
    let next: serde_json::Value = gw
        .client
        .post(format!("{}/v1/routes/preview", gw.url))
        .bearer_auth(ADMIN)
        .json(&json!({"customer_id": "ada", "category": "transactional", "content": {"text": "again"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sms = next["plan"]["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == "sms")
        .unwrap()
        .clone();
    assert_eq!(
        sms["decision"], "opted_out",
        "the next plan follows: {next}"
    );

    // The broadcast, planning one member a second: cancelled, it plans no more.
    browser
        .goto(&format!("{}/console/broadcasts/{broadcast}", gw.url))
        .await;
    browser
        .click("return [...document.querySelectorAll('button')].find(b => b.textContent === 'Cancel the broadcast');")
        .await;
    browser
        .wait_for(
            "the cancelled broadcast",
            "return document.querySelector('#status')?.textContent === 'cancelled';",
            Duration::from_secs(5),
        )
        .await;
    let planned = browser
        .eval(
            "return document.querySelector('#planned').textContent;",
            json!([]),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    browser.eval("location.reload();", json!([])).await;
    let later = browser
        .wait_for(
            "the broadcast again",
            "return document.querySelector('#planned')?.textContent;",
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(later, planned, "no member planned after the cancel");
    let planned: usize = planned.as_str().unwrap().parse().unwrap();
    assert!(planned < 30, "stopped before its end: {planned}");

    // The report's CSV, as the page links it, fetched with the session
    // (from a page of the same origin without the console's CSP, which
    // lets a console page fetch nothing).
    browser.goto(&format!("{}/console/reports", gw.url)).await;
    let charts = browser
        .eval(
            "return document.querySelectorAll('figure svg[role=img] rect').length;",
            json!([]),
        )
        .await;
    assert!(
        charts.as_u64().unwrap() >= 3,
        "a bar per group and figure: {charts}"
    );
    let href = browser
        .eval("return document.querySelector('#csv').href;", json!([]))
        .await;
    browser.goto(&format!("{}/healthz", gw.url)).await;
    let csv = browser
        .eval_async(&format!(
            "const done = arguments[arguments.length - 1];\
             fetch({href}).then(r => r.text()).then(done, e => done('failed: ' + e));"
        ))
        .await;
    let csv = csv.as_str().unwrap();
    assert!(csv.starts_with("channel,sent,delivered,read"), "{csv}");
    assert!(csv.contains("\nsms,"), "{csv}");
    browser.quit().await;
}

#[tokio::test]
async fn a_read_session_is_offered_no_change_and_its_posts_are_refused() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim).await;
    send(&gw).await;
    let broadcast = slow_broadcast(&gw, 3).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (cookie, _) = session_of(&client, &gw, READER).await;
    let page = |path: String| {
        client
            .get(format!("{}{path}", gw.url))
            .header("cookie", cookie.clone())
            .send()
    };
    let customer = page("/console/customers/ada".into()).await.unwrap();
    assert_eq!(customer.status(), 200);
    let customer = customer.text().await.unwrap();
    assert!(!customer.contains("<select"), "no consent form: {customer}");
    let csrf = customer
        .split("name=csrf value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let shown = page(format!("/console/broadcasts/{broadcast}"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!shown.contains("Cancel the broadcast"), "{shown}");
    let connectors = page("/console/connectors".into())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(connectors.contains("twilio"), "{connectors}");
    assert!(!connectors.contains("Reload"), "{connectors}");
    for (path, field) in [
        (
            "/console/customers/ada/consent".to_owned(),
            ("c.sms.transactional", "opted_out"),
        ),
        (
            format!("/console/broadcasts/{broadcast}/cancel"),
            ("x", "y"),
        ),
        ("/console/reload".to_owned(), ("x", "y")),
    ] {
        let posted = post_form(&client, &gw, &cookie, &csrf, &path, &[field]).await;
        assert_eq!(posted.status(), 403, "{path}");
    }
    let consent: serde_json::Value = gw
        .client
        .get(format!("{}/v1/customers/ada", gw.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(consent["consent"].is_null(), "nothing changed: {consent}");
}

#[tokio::test]
async fn the_connectors_and_journeys_pages_show_what_ran() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim).await;
    let id = send(&gw).await;
    // Settled: its attempt is in the figures.
    let deadline = std::time::Instant::now() + crate::support::SETTLE_TIMEOUT;
    loop {
        let message: serde_json::Value = gw
            .client
            .get(format!("{}/v1/messages/{id}", gw.url))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if message["status"] == "sent" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{message}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (cookie, _) = session_of(&client, &gw, ADMIN).await;
    let page = page_text(&client, &cookie, format!("{}/console/connectors", gw.url)).await;
    let row = page
        .split("<tr>")
        .find(|row| row.contains("<td>twilio</td>"))
        .unwrap_or_else(|| panic!("no twilio row: {page}"));
    assert!(
        row.contains("<td>1</td>") && row.contains("100.0%"),
        "{row}"
    );
    assert!(
        page.contains("Reload the configuration"),
        "an admin may reload"
    );

    // A journey's runs by status and how many converted.
    for event in ["signed_up", "purchase"] {
        let posted = client
            .post(format!("{}/v1/events", gw.url))
            .bearer_auth(ADMIN)
            .json(&json!({"customer_id": "ada", "name": event}))
            .send()
            .await
            .unwrap();
        assert_eq!(posted.status(), 202);
        // The run starts before the purchase ends it.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // A simulation: a purchase an hour in converts the run; nothing is stored.
    let simulated = page_text(
        &client,
        &cookie,
        format!(
            "{}/console/journeys/welcome/simulate?timeline=purchase%201h",
            gw.url
        ),
    )
    .await;
    assert!(
        simulated.contains("<strong id=outcome>converted</strong>"),
        "{simulated}"
    );
    let deadline = std::time::Instant::now() + crate::support::SETTLE_TIMEOUT;
    loop {
        let journeys = page_text(&client, &cookie, format!("{}/console/journeys", gw.url)).await;
        assert!(journeys.contains("signed_up"), "{journeys}");
        if journeys.contains("Converted: 100.0% of 1.") {
            assert!(
                journeys.contains("<th>converted</th><td>1</td>"),
                "{journeys}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{journeys}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The run's history, from the customer's page.
    let customer = page_text(
        &client,
        &cookie,
        format!("{}/console/customers/ada", gw.url),
    )
    .await;
    let run = customer
        .split("href=\"/console/journey-runs/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no run link: {customer}"))
        .to_owned();
    let history = page_text(
        &client,
        &cookie,
        format!("{}/console/journey-runs/{run}", gw.url),
    )
    .await;
    assert!(history.contains("<dd>converted</dd>"), "{history}");
    assert!(history.contains("<td>hello</td>"), "each step: {history}");
}

/// The connectors page runs `crossgate check` on the file on disk: it says
/// what a reload would take and what would wait for a restart, or every
/// error it would refuse with, and changes nothing that runs; an admin's
/// reload there says what waits too.
#[tokio::test]
async fn the_connectors_page_checks_the_file_a_reload_would_read() {
    let sim = ProviderSim::start().await.unwrap();
    let config = format!(
        r#"[server]
api_keys = [
    {{ name = "viewer", key = "{READER}", scopes = ["read"] }},
    {{ name = "operator", key = "{ADMIN}", scopes = ["admin"] }},
]
{}"#,
        private_twilio(&sim)
    );
    let (gw, path) = TestGateway::start_from_file(&config).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (cookie, _) = session_of(&client, &gw, READER).await;
    let check = async || {
        page_text(
            &client,
            &cookie,
            format!("{}/console/connectors?check=file", gw.url),
        )
        .await
    };
    let checked = check().await;
    assert!(
        checked.contains(&format!(
            "crossgate check: {}: ok (1 connectors loaded",
            path.display()
        )),
        "{checked}"
    );

    // A change only a restart applies: a reload would take the file, and
    // the page says what would wait.
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("[dispatch]\nconcurrency = 4\n{text}")).unwrap();
    let checked = check().await;
    assert!(
        checked.contains("changed, in effect only after a restart: dispatch"),
        "{checked}"
    );
    // An admin reloads it: what could switch did, and the page says what waits.
    let (admin, csrf) = session_of(&client, &gw, ADMIN).await;
    let reloaded = post_form(&client, &gw, &admin, &csrf, "/console/reload", &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(
        reloaded.contains(
            "Reloaded; connectors: twilio. Changes to dispatch take effect at a restart."
        ),
        "{reloaded}"
    );

    // A setting misspelled on disk: refused with its place, as `check` says.
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("base_url", "base_ur1")).unwrap();
    let checked = check().await;
    assert!(
        checked.contains("<p role=alert>crossgate check: the file on disk would not load"),
        "{checked}"
    );
    assert!(checked.contains("base_ur1"), "{checked}");
    assert!(
        checked.contains("Running: 1 connectors"),
        "the running configuration stays: {checked}"
    );
}

/// A signed-in session's cookie and form check, without a browser.
async fn session_of(client: &reqwest::Client, gw: &TestGateway, key: &str) -> (String, String) {
    let signed_in = client
        .post(format!("{}/console/sign-in", gw.url))
        .form(&[("key", key)])
        .send()
        .await
        .unwrap();
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = page_text(client, &cookie, format!("{}/console/messages", gw.url)).await;
    let csrf = page
        .split("name=csrf value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    (cookie, csrf)
}

#[tokio::test]
async fn an_admin_starts_a_broadcast_manages_suppressions_and_erases_a_customer() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim).await;
    send(&gw).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (cookie, csrf) = session_of(&client, &gw, ADMIN).await;
    let get = |path: String| {
        client
            .get(format!("{}{path}", gw.url))
            .header("cookie", cookie.clone())
            .send()
    };
    let post = |path: &str, fields: Vec<(&str, String)>| {
        let mut fields = fields;
        fields.push(("csrf", csrf.clone()));
        client
            .post(format!("{}{path}", gw.url))
            .header("cookie", cookie.clone())
            .header("origin", gw.url.clone())
            .form(&fields)
            .send()
    };
    let segment = gw
        .client
        .put(format!("{}/v1/segments/everyone", gw.url))
        .bearer_auth(ADMIN)
        .json(&json!({"reachable": ["sms"]}))
        .send()
        .await
        .unwrap();
    assert!(segment.status().is_success());

    // A broadcast: the segment counted first, then started.
    let preview = get("/console/broadcasts?segment=everyone".into())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        preview.contains("<p id=count>1 members in everyone."),
        "{preview}"
    );
    let start = |segment: &'static str| {
        post(
            "/console/broadcasts/create",
            vec![
                ("segment", segment.into()),
                ("category", "transactional".into()),
                ("text", "We open late on Friday".into()),
                ("rate_per_second", "50".into()),
            ],
        )
    };
    let started = start("everyone").await.unwrap();
    assert_eq!(started.status(), 303);
    let at = started.headers()["location"].to_str().unwrap().to_owned();
    assert!(at.starts_with("/console/broadcasts/bc_"), "{at}");
    let unknown = start("nobody").await.unwrap();
    assert_eq!(unknown.status(), 422);

    // Suppress ada's number by hand, then lift it.
    let suppress = |action: &'static str| {
        post(
            "/console/customers/ada/suppression",
            vec![
                ("channel", "sms".into()),
                ("address", "+31612345678".into()),
                ("action", action.into()),
            ],
        )
    };
    assert_eq!(suppress("add").await.unwrap().status(), 303);
    let entry = gw
        .client
        .get(format!("{}/v1/suppressions/sms/+31612345678", gw.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(entry.status(), 200);
    let entry: serde_json::Value = entry.json().await.unwrap();
    assert_eq!(entry["reason"], "manual");
    assert_eq!(entry["source"], "console:ops");
    assert_eq!(suppress("lift").await.unwrap().status(), 303);
    let gone = gw
        .client
        .get(format!("{}/v1/suppressions/sms/+31612345678", gw.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);

    // Erase: only with the id typed again.
    let unconfirmed = post(
        "/console/customers/ada/erase",
        vec![("confirm", "ad".into())],
    )
    .await
    .unwrap();
    assert_eq!(unconfirmed.status(), 422);
    let erased = post(
        "/console/customers/ada/erase",
        vec![("confirm", "ada".into())],
    )
    .await
    .unwrap();
    assert_eq!(erased.status(), 200);
    let profile = gw
        .client
        .get(format!("{}/v1/customers/ada", gw.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(profile.status(), 404);
}

#[tokio::test]
async fn an_expired_session_signs_nobody_in() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&format!(
        r#"{FAST_DISPATCH}
[server]
api_keys = [{{ name = "ops", key = "{ADMIN}" }}]
{}
{}"#,
        private_twilio(&sim),
        crate::support::clock_at("12:30")
    ))
    .await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (cookie, _) = session_of(&client, &gw, ADMIN).await;
    let page = || {
        client
            .get(format!("{}/console/messages", gw.url))
            .header("cookie", cookie.clone())
            .send()
    };
    assert_eq!(page().await.unwrap().status(), 200);
    let advanced = gw
        .client
        .post(format!("{}/v1/admin/clock", gw.url))
        .bearer_auth(ADMIN)
        .json(&json!({"advance": "8h"}))
        .send()
        .await
        .unwrap();
    assert_eq!(advanced.status(), 200);
    let expired = page().await.unwrap();
    assert_eq!(expired.status(), 303, "a session lasts 8 hours");
    assert_eq!(expired.headers()["location"], "/console/sign-in");
}

/// A console page's HTML, with a session's cookie.
/// A console form posted by a signed-in session from the console's own page.
async fn post_form(
    client: &reqwest::Client,
    gw: &TestGateway,
    cookie: &str,
    csrf: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![("csrf", csrf)];
    form.extend_from_slice(fields);
    client
        .post(format!("{}{path}", gw.url))
        .header("cookie", cookie)
        .header("origin", gw.url.clone())
        .form(&form)
        .send()
        .await
        .unwrap()
}

async fn page_text(client: &reqwest::Client, cookie: &str, url: String) -> String {
    client
        .get(url)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}
