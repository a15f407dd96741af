//! Digests: a customer's triggers with the same key, over a window (or up
//! to `max`), become one message that lists them; a late one joins the open
//! digest, one that occurred after the window starts the next; with
//! `unread_only`, what the customer saw in their inbox before it closes is
//! left out. On both stores, with the clock set by the test.

use crate::support::postgres;
use crate::support::runs::{advance, post_events, runs_of, sms_customer, texts, texts_settle_at};
use crate::support::{FAST_DISPATCH, TestGateway, clock_at, default_twilio, pinned};
use crossgate_tests::ProviderSim;
use serde_json::{Value, json};

fn config(sim: &ProviderSim) -> String {
    format!(
        r#"{FAST_DISPATCH}
[journey_runner]
tick_ms = 25
{clock}
[routing]
default = ["sms"]

[categories.social]
consent = "opt-out"

[journeys.comments]
trigger = "comment_posted"
[[journeys.comments.steps]]
id = "bundle"
digest = {{ window = "1h", key = "{{{{ event.thread }}}}" }}
[[journeys.comments.steps]]
id = "tell"
send = {{ category = "social", text = "{{{{ digest.count }}}} new on {{{{ event.thread }}}}:{{% for e in digest.events %}} {{{{ e.author }}}}{{% endfor %}}" }}

[journeys.mentions]
trigger = "mentioned"
[[journeys.mentions.steps]]
id = "bundle"
digest = {{ window = "1h", unread_only = true }}
[[journeys.mentions.steps]]
id = "tell"
send = {{ category = "social", text = "{{{{ digest.count }}}} unread" }}

[inbox]
secret = "{secret}"

[journeys.likes]
trigger = "liked"
[[journeys.likes.steps]]
id = "bundle"
digest = {{ window = "1d", max = 2 }}
[[journeys.likes.steps]]
id = "tell"
send = {{ category = "social", text = "{{{{ digest.count }}}} likes" }}
{twilio}"#,
        clock = clock_at("12:30"),
        secret = crate::inbox::SECRET,
        twilio = default_twilio(&sim.url()),
    )
}

#[tokio::test]
async fn triggers_are_bundled_into_digests_on_sqlite() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&config(&sim)).await;
    digests(&gw, &sim).await;
    unread_only(&gw, &sim).await;
}

#[tokio::test]
async fn triggers_are_bundled_into_digests_on_postgres() {
    let Some(url) = postgres::migrated_database("digests::on_postgres").await else {
        return;
    };
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start_on_postgres(&config(&sim), &url).await;
    digests(&gw, &sim).await;
    unread_only(&gw, &sim).await;
}

fn comment(thread: &str, author: &str, hh_mm: &str) -> Value {
    json!({"customer_id": "ada", "name": "comment_posted", "occurred_at": pinned(hh_mm).to_string(),
           "properties": {"thread": thread, "author": author}})
}

fn sorted(mut texts: Vec<String>) -> Vec<String> {
    texts.sort();
    texts
}

async fn digests(gw: &TestGateway, sim: &ProviderSim) {
    sms_customer(gw, "ada", "+31612345678").await;

    // Thread a: comments at 12:00 and 12:20 arrive, then the one of 12:10
    // (late, out of order); thread b has one of its own.
    post_events(
        gw,
        &json!({"events": [comment("a", "ann", "12:00"), comment("a", "cy", "12:20"),
                          comment("b", "bo", "12:15")]}),
    )
    .await;
    gw.quiesce().await;
    post_events(gw, &comment("a", "bea", "12:10")).await;
    gw.quiesce().await;
    let open = runs_of(gw, "ada", "comments").await;
    assert_eq!(open.len(), 2, "one digest per thread: {open:#?}");
    assert!(
        texts(sim).is_empty(),
        "nothing goes while the windows are open"
    );

    // Likes: the second fills the digest (max 2), the third opens the next.
    for _ in 0..3 {
        post_events(gw, &json!({"customer_id": "ada", "name": "liked"})).await;
        gw.quiesce().await;
    }
    assert_eq!(sorted(texts_settle_at(gw, sim, 1).await), ["2 likes"]);

    // 13:20: both comment windows (from 12:00 and 12:15) are over.
    advance(gw, "50m").await;
    assert_eq!(
        sorted(texts_settle_at(gw, sim, 3).await),
        ["1 new on b: bo", "2 likes", "3 new on a: ann bea cy"]
    );
    // A comment of 13:05 on thread a occurred after its window: the next digest.
    post_events(gw, &comment("a", "dee", "13:05")).await;
    gw.quiesce().await;
    assert_eq!(runs_of(gw, "ada", "comments").await.len(), 3);
    advance(gw, "1h").await;
    let all = texts_settle_at(gw, sim, 4).await;
    assert!(all.contains(&"1 new on a: dee".to_owned()), "{all:?}");

    let first = runs_of(gw, "ada", "comments")
        .await
        .into_iter()
        .find(|r| r["steps"]["bundle"]["count"] == 3)
        .expect("the digest of three");
    assert_eq!(first["status"], "completed");
    let history: Vec<&str> = first["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["what"].as_str().unwrap())
        .collect();
    assert_eq!(
        history,
        ["started", "digesting", "digested", "sent", "completed"]
    );
}

fn mention(customer: &str, at: jiff::Timestamp) -> Value {
    json!({"customer_id": customer, "name": "mentioned", "occurred_at": at.to_string()})
}

/// The customer opens their inbox (`GET /v1/inbox/items` with their token).
async fn open_inbox(gw: &TestGateway, customer: &str) {
    let response = gw
        .client
        .get(format!("{}/v1/inbox/items", gw.url))
        .bearer_auth(crate::inbox::token(customer))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// A digest with `unread_only`: mentions that occurred before the customer
/// last opened their inbox are left out; none left, nothing is sent.
async fn unread_only(gw: &TestGateway, sim: &ProviderSim) {
    sms_customer(gw, "bo", "+31612345679").await;
    let sent_before = texts(sim).len();
    let minutes = |n: i64| jiff::SignedDuration::from_mins(n);

    // A mention, then Bo opens the inbox, then another: only the second is new.
    let start = advance(gw, "1m").await;
    post_events(gw, &mention("bo", start - minutes(5))).await;
    gw.quiesce().await;
    advance(gw, "1m").await;
    open_inbox(gw, "bo").await;
    advance(gw, "9m").await;
    post_events(gw, &mention("bo", start + minutes(5))).await;
    gw.quiesce().await;
    advance(gw, "1h").await;
    let all = texts_settle_at(gw, sim, sent_before + 1).await;
    assert_eq!(all[sent_before..], ["1 unread".to_owned()]);
    let run = &runs_of(gw, "bo", "mentions").await[0];
    assert_eq!(run["steps"]["bundle"]["count"], 1, "{run:#}");

    // One mention, seen in the inbox before the digest closes: nothing to tell.
    let later = advance(gw, "1m").await;
    post_events(gw, &mention("bo", later)).await;
    gw.quiesce().await;
    advance(gw, "2m").await;
    open_inbox(gw, "bo").await;
    advance(gw, "1h").await;
    gw.quiesce().await;
    let run = &runs_of(gw, "bo", "mentions").await[0];
    assert_eq!(run["steps"]["tell"]["skipped"], "nothing_unread", "{run:#}");
    assert_eq!(texts(sim).len(), sent_before + 1, "{:?}", texts(sim));
}
