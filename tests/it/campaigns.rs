//! Segments counted by the store on thousands of profiles; broadcasts that
//! honour each member's quiet hours, stop when cancelled and resume after a
//! restart without sending anyone twice.

use crate::support::{FAST_DISPATCH, TestGateway, default_twilio};
use crossgate_tests::ProviderSim;
use futures::stream::{self, StreamExt as _};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

fn config(sim: &ProviderSim) -> String {
    format!(
        r#"{FAST_DISPATCH}
[routing]
default = ["sms"]

[categories.marketing]
consent = "opt-in"
quiet_hours = "21:00-08:00"

[categories.news]
consent = "opt-out"
quiet_hours = "21:00-08:00"

[segments.germans]
countries = ["DE"]

[broadcasts]
tick_ms = 50
lease_ms = 3000
{}"#,
        default_twilio(&sim.url())
    )
}

/// Store every profile, a few dozen at a time.
async fn put_all(gw: &TestGateway, profiles: Vec<(String, Value)>) {
    let refused: Vec<(u16, Value)> = stream::iter(profiles)
        .map(|(id, profile)| async move { gw.put_customer(&id, &profile).await })
        .buffer_unordered(32)
        .filter(|(status, _)| std::future::ready(*status != 201))
        .collect()
        .await;
    assert!(
        refused.is_empty(),
        "{} refused, first: {:?}",
        refused.len(),
        refused.first()
    );
}

#[tokio::test]
async fn a_segment_is_counted_by_the_store_on_thousands_of_profiles() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&config(&sim)).await;
    const N: usize = 3000;
    let countries = ["NL", "BE", "DE"];
    let profiles = (0..N)
        .map(|i| {
            let mut profile = json!({
                "addresses": {"email": format!("c{i}@shop.example"), "phone": format!("+3161{i:07}")},
                "country": countries[i % 3],
                "tags": if i % 5 == 0 { vec!["vip"] } else { vec![] },
                "attributes": {"tier": if i % 4 == 0 { "gold" } else { "silver" }},
            });
            if i % 2 == 0 {
                profile["consent"] = json!({"email": {"marketing": {"status": "opted_in", "at": "2026-01-01T00:00:00Z"}}});
            }
            (format!("c{i:05}"), profile)
        })
        .collect();
    put_all(&gw, profiles).await;
    let purchases: Vec<Value> = (0..N)
        .filter(|i| i % 7 == 0)
        .map(|i| json!({"customer_id": format!("c{i:05}"), "name": "purchase", "properties": {}}))
        .collect();
    for batch in purchases.chunks(1000) {
        let (status, answer) = gw.post("/v1/events", &json!({"events": batch})).await;
        assert_eq!(status, 202, "{answer}");
    }

    let segment = json!({
        "countries": ["NL", "BE"],
        "tags": ["vip"],
        "consent": [{"channel": "email", "category": "marketing"}],
        "did_not": [{"event": "purchase", "within": "30d"}],
    });
    let (status, answer) = put(&gw, "/v1/segments/benelux_vips", &segment).await;
    assert_eq!(status, 201, "{answer}");
    let expected: BTreeSet<String> = (0..N)
        .filter(|i| i % 3 != 2 && i % 5 == 0 && i % 2 == 0 && i % 7 != 0)
        .map(|i| format!("c{i:05}"))
        .collect();
    let counted = gw.get_ok("/v1/segments/benelux_vips/count?sample=20").await;
    assert_eq!(counted["count"], expected.len(), "{counted}");
    let sample: Vec<String> = serde_json::from_value(counted["sample"].clone()).unwrap();
    let first: Vec<String> = expected.iter().take(20).cloned().collect();
    assert_eq!(sample, first, "the sample is the first members in id order");

    // From the configuration, and by an attribute.
    assert_eq!(
        gw.get_ok("/v1/segments/germans/count").await["count"],
        N / 3
    );
    put(
        &gw,
        "/v1/segments/gold",
        &json!({"attributes": {"tier": "gold"}}),
    )
    .await;
    assert_eq!(gw.get_ok("/v1/segments/gold/count").await["count"], N / 4);

    // Bad definitions name their field; the configuration's cannot be replaced.
    let (status, answer) = put(&gw, "/v1/segments/bad", &json!({"regions": ["atlantis"]})).await;
    assert_eq!(
        (status, &answer["error"]["field"]),
        (422, &json!("regions[0]")),
        "{answer}"
    );
    let (status, _) = put(
        &gw,
        "/v1/segments/bad",
        &json!({"consent": [{"channel": "email", "category": "nope"}]}),
    )
    .await;
    assert_eq!(status, 422);
    let (status, answer) = put(&gw, "/v1/segments/germans", &json!({"countries": ["AT"]})).await;
    assert_eq!(status, 409, "{answer}");
    gw.stop().await;
}

async fn put(gw: &TestGateway, path: &str, body: &Value) -> (u16, Value) {
    let response = gw
        .client
        .put(format!("{}{path}", gw.url))
        .json(body)
        .send()
        .await
        .unwrap();
    crate::support::answer(response).await
}

/// `Etc/GMT` zones where the local hour is `hour` now (their sign is
/// inverted: `Etc/GMT-2` is UTC+2).
fn zone_at_local_hour(hour: i64) -> String {
    let utc_hour = jiff::Timestamp::now().as_second().rem_euclid(86_400) / 3600;
    let mut offset = (hour - utc_hour).rem_euclid(24);
    if offset > 12 {
        offset -= 24;
    }
    match offset {
        0 => "Etc/UTC".to_owned(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    }
}

async fn broadcast_view(gw: &TestGateway, id: &str) -> Value {
    gw.get_ok(&format!("/v1/broadcasts/{id}")).await
}

/// Waits until `done` holds for the broadcast's view.
async fn broadcast_until(gw: &TestGateway, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let view = broadcast_view(gw, id).await;
        if done(&view) {
            return view;
        }
        assert!(Instant::now() < deadline, "broadcast stuck: {view}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn sms_recipients(sim: &ProviderSim) -> Vec<String> {
    sim.requests()
        .iter()
        .filter_map(|r| r.field("To").map(str::to_owned))
        .collect()
}

/// 120 customers, a third each where it is noon, 23:00 (quiet) and 15:00.
async fn three_zones(gw: &TestGateway) -> HashSet<String> {
    let zones = [
        zone_at_local_hour(12),
        zone_at_local_hour(23),
        zone_at_local_hour(15),
    ];
    let mut quiet = HashSet::new();
    let profiles = (0..120)
        .map(|i| {
            let phone = format!("+3162{i:07}");
            if i % 3 == 1 {
                quiet.insert(phone.clone());
            }
            let profile =
                json!({"addresses": {"phone": phone}, "country": "NL", "timezone": zones[i % 3]});
            (format!("m{i:03}"), profile)
        })
        .collect();
    put_all(gw, profiles).await;
    quiet
}

#[tokio::test]
async fn a_broadcast_keeps_each_members_quiet_hours_and_stops_when_cancelled() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&config(&sim)).await;
    let quiet = three_zones(&gw).await;
    put(&gw, "/v1/segments/everyone", &json!({"reachable": ["sms"]})).await;
    let (status, created) = gw
        .post(
            "/v1/broadcasts",
            &json!({"segment": "everyone", "category": "news", "content": {"text": "Spring sale starts today"}, "rate_per_second": 20}),
        )
        .await;
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();

    // Half-way (pages of 20 a second), cancel.
    broadcast_until(&gw, &id, |v| v["planned"].as_i64() >= Some(40)).await;
    let (status, cancelled) = gw
        .post(&format!("/v1/broadcasts/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    let planned = cancelled["planned"].as_i64().unwrap();
    assert!((40..120).contains(&planned), "{cancelled}");

    // Let what was sent settle, then nothing more happens.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let settled = broadcast_view(&gw, &id).await;
    let sent_before = sms_recipients(&sim);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = broadcast_view(&gw, &id).await;
    assert_eq!(
        after["planned"], settled["planned"],
        "planned after the cancel"
    );
    assert_eq!(sms_recipients(&sim), sent_before, "sent after the cancel");

    // Nobody in quiet hours got anything: their messages were held, then
    // cancelled with the broadcast; nobody got two.
    assert!(
        sent_before.iter().all(|to| !quiet.contains(to)),
        "{sent_before:?}"
    );
    let unique: HashSet<&String> = sent_before.iter().collect();
    assert_eq!(unique.len(), sent_before.len(), "someone got two");
    let messages = &after["messages"];
    assert_eq!(
        messages["sent"].as_i64().unwrap_or(0),
        sent_before.len() as i64,
        "{after}"
    );
    assert!(messages["cancelled"].as_i64().unwrap_or(0) > 0, "{after}");
    assert_eq!(messages["scheduled"], Value::Null, "{after}");
    let total: i64 = messages
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_i64().unwrap())
        .sum();
    assert!(total >= planned && total <= planned + 20, "{after}");
    gw.stop().await;
}

#[tokio::test]
async fn a_broadcast_resumes_after_a_restart_without_sending_anyone_twice() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&config(&sim)).await;
    let quiet = three_zones(&gw).await;
    put(&gw, "/v1/segments/everyone", &json!({"reachable": ["sms"]})).await;
    let (status, created) = gw
        .post(
            "/v1/broadcasts",
            &json!({"segment": "everyone", "category": "news", "content": {"text": "Our summer hours"}, "rate_per_second": 25}),
        )
        .await;
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    broadcast_until(&gw, &id, |v| v["planned"].as_i64() >= Some(25)).await;

    let gw = gw.restart().await;
    let done = broadcast_until(&gw, &id, |v| v["status"] == "planned").await;
    assert_eq!(done["planned"], 120, "{done}");
    let view = broadcast_until(&gw, &id, |v| v["messages"]["sent"].as_i64() >= Some(80)).await;
    let sent = sms_recipients(&sim);
    let unique: HashSet<&String> = sent.iter().collect();
    assert_eq!(unique.len(), sent.len(), "someone got two");
    assert_eq!(sent.len(), 80, "the members outside quiet hours");
    assert!(sent.iter().all(|to| !quiet.contains(to)));
    assert_eq!(view["messages"]["scheduled"], 40, "{view}");
    assert_eq!(view["messages"]["sent"], 80, "{view}");
    gw.stop().await;
}
