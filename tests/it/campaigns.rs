//! Segments counted by the store on thousands of profiles; broadcasts that
//! honour each member's quiet hours, stop when cancelled and resume after a
//! restart without sending anyone twice.

use crate::support::{FAST_DISPATCH, TestGateway, clock_at, default_twilio, pinned};
use crossgate_tests::ProviderSim;
use futures::stream::{self, StreamExt as _};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

/// The categories hold marketing and news from 21:00 to 08:00 in each
/// member's zone; the clock shows `utc` (`hh:mm`) when the gateway starts.
fn config(sim: &ProviderSim, utc: &str) -> String {
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
{}{}"#,
        default_twilio(&sim.url()),
        clock_at(utc)
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
    let gw = TestGateway::start(&config(&sim, "12:30")).await;
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
    let (status, answer) = gw.put("/v1/segments/benelux_vips", &segment).await;
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
    gw.put(
        "/v1/segments/gold",
        &json!({"attributes": {"tier": "gold"}}),
    )
    .await;
    assert_eq!(gw.get_ok("/v1/segments/gold/count").await["count"], N / 4);

    // Bad definitions name their field; the configuration's cannot be replaced.
    let (status, answer) = gw
        .put("/v1/segments/bad", &json!({"regions": ["atlantis"]}))
        .await;
    assert_eq!(
        (status, &answer["error"]["field"]),
        (422, &json!("regions[0]")),
        "{answer}"
    );
    let (status, _) = gw
        .put(
            "/v1/segments/bad",
            &json!({"consent": [{"channel": "email", "category": "nope"}]}),
        )
        .await;
    assert_eq!(status, 422);
    // Events older than retention.events (400 days by default) are gone.
    let (status, answer) = gw
        .put(
            "/v1/segments/bad",
            &json!({"did": [{"event": "purchase", "within": "500d"}]}),
        )
        .await;
    assert_eq!(
        (status, &answer["error"]["field"]),
        (422, &json!("did[0].within")),
        "{answer}"
    );
    let (status, answer) = gw
        .put("/v1/segments/germans", &json!({"countries": ["AT"]}))
        .await;
    assert_eq!(status, 409, "{answer}");
    gw.stop().await;
}

/// The `Etc/GMT` zone where it is `hour` when it is `utc_hour` in UTC
/// (their sign is inverted: `Etc/GMT-2` is UTC+2).
fn zone_at_local_hour(utc_hour: i64, hour: i64) -> String {
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

/// A broadcast of `text` to every customer with a phone; its id.
async fn broadcast_to_everyone(gw: &TestGateway, text: &str, rate_per_second: u32) -> String {
    let (status, refused) = gw
        .post(
            "/v1/broadcasts",
            &json!({"segment": "everyone", "category": "news", "content": {"text": text}}),
        )
        .await;
    assert_eq!(status, 404, "no segment yet: {refused}");
    assert!(
        refused.to_string().contains("no segment named"),
        "{refused}"
    );
    gw.put("/v1/segments/everyone", &json!({"reachable": ["sms"]}))
        .await;
    let (status, created) = gw
        .post(
            "/v1/broadcasts",
            &json!({"segment": "everyone", "category": "news", "content": {"text": text},
                    "rate_per_second": rate_per_second}),
        )
        .await;
    assert_eq!(status, 202, "{created}");
    created["id"].as_str().unwrap().to_owned()
}

/// 120 customers, a third each where it is noon, 23:00 (quiet) and 15:00
/// when it is `utc_hour` in UTC.
async fn three_zones(gw: &TestGateway, utc_hour: i64) -> HashSet<String> {
    let zones = [
        zone_at_local_hour(utc_hour, 12),
        zone_at_local_hour(utc_hour, 23),
        zone_at_local_hour(utc_hour, 15),
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

/// At 03:30 UTC: the quiet third is four hours behind UTC, at 23:30 the
/// evening before.
#[tokio::test]
async fn a_broadcast_at_0330_utc_keeps_each_members_quiet_hours_and_stops_when_cancelled() {
    keeps_quiet_hours_and_stops_when_cancelled("03:30", 3).await;
}

/// At 22:30 UTC: the quiet third is one hour ahead of UTC, where the night
/// crosses midnight.
#[tokio::test]
async fn a_broadcast_at_2230_utc_keeps_each_members_quiet_hours_and_stops_when_cancelled() {
    keeps_quiet_hours_and_stops_when_cancelled("22:30", 22).await;
}

async fn keeps_quiet_hours_and_stops_when_cancelled(utc: &str, utc_hour: i64) {
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&config(&sim, utc)).await;
    let quiet = three_zones(&gw, utc_hour).await;
    let id = broadcast_to_everyone(&gw, "Spring sale starts today", 20).await;

    // Half-way (pages of 20 a second), cancel.
    broadcast_until(&gw, &id, |v| v["planned"].as_i64() >= Some(40)).await;
    let (status, cancelled) = gw
        .post(&format!("/v1/broadcasts/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    let (status, unknown) = gw.post("/v1/broadcasts/bc_nope/cancel", &json!({})).await;
    assert_eq!(status, 404, "{unknown}");
    let planned = cancelled["planned"].as_i64().unwrap();
    assert!((40..120).contains(&planned), "{cancelled}");

    // Once what was sent has settled, nothing more happens.
    gw.quiesce().await;
    let settled = broadcast_view(&gw, &id).await;
    let sent_before = sms_recipients(&sim);
    gw.quiesce().await;
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
    let gw = TestGateway::start(&config(&sim, "12:30")).await;
    let quiet = three_zones(&gw, 12).await;
    let id = broadcast_to_everyone(&gw, "Our summer hours", 25).await;
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

/// Broadcasts are listed newest first, a page at a time, by status.
#[tokio::test]
async fn broadcasts_are_listed_newest_first_by_status() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&config(&sim, "12:30")).await;
    let next_month = (pinned("12:30") + jiff::SignedDuration::from_hours(720)).to_string();
    let create = |send_at: Option<&str>| {
        let mut body = json!({"segment": "germans", "category": "news",
                              "content": {"text": "Neue Öffnungszeiten"}});
        if let Some(at) = send_at {
            body["send_at"] = json!(at);
        }
        body
    };
    let mut ids = Vec::new();
    for send_at in [None, Some(next_month.as_str())] {
        let (status, created) = gw.post("/v1/broadcasts", &create(send_at)).await;
        assert_eq!(status, 202, "{created}");
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    let (now, later) = (&ids[0], &ids[1]);
    // The segment has no members: the first is planned at its first page.
    broadcast_until(&gw, now, |v| v["status"] == "planned").await;

    let first = gw.get_ok("/v1/broadcasts?limit=1").await;
    assert_eq!(first["broadcasts"][0]["id"], later.as_str(), "{first}");
    assert_eq!(first["broadcasts"][0]["status"], "scheduled", "{first}");
    assert_eq!(first["broadcasts"][0]["segment"], "germans", "{first}");
    assert_eq!(first["next"], later.as_str(), "{first}");
    let rest = gw
        .get_ok(&format!("/v1/broadcasts?limit=1&before={later}"))
        .await;
    assert_eq!(rest["broadcasts"][0]["id"], now.as_str(), "{rest}");
    let scheduled = gw.get_ok("/v1/broadcasts?status=scheduled").await;
    let listed: Vec<&str> = scheduled["broadcasts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        (listed, &scheduled["next"]),
        (vec![later.as_str()], &Value::Null)
    );

    let (status, bad) = gw.get("/v1/broadcasts?status=sending").await;
    assert_eq!(
        (status, &bad["error"]["field"]),
        (422, &json!("status")),
        "{bad}"
    );
    let (status, bad) = gw.get("/v1/broadcasts?limit=5000").await;
    assert_eq!(
        (status, &bad["error"]["field"]),
        (422, &json!("limit")),
        "{bad}"
    );
    gw.stop().await;
}

/// A member with no phone for the only channel gets a suppressed message;
/// one who already got a message of the broadcast's offer group gets none
/// and is counted as refused, by code, and listed a page at a time.
#[tokio::test]
async fn a_member_who_already_got_the_offer_is_counted_as_refused_and_listed() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&config(&sim, "12:30")).await;
    // Where it is noon, so that the news category's quiet hours hold nobody.
    let noon = zone_at_local_hour(12, 12);
    let profiles = (0..6)
        .map(|i| {
            let addresses = if i % 3 == 0 {
                json!({"email": format!("g{i}@shop.example")})
            } else {
                json!({"phone": format!("+49151{i:08}")})
            };
            let profile = json!({"addresses": addresses, "country": "DE", "timezone": noon});
            (format!("g{i}"), profile)
        })
        .collect();
    put_all(&gw, profiles).await;
    // g1 already got this offer: the broadcast's copy would be a second.
    let offer = json!({"name": "autumn", "window": "30d"});
    let early = gw
        .send_ok(
            &json!({"customer_id": "g1", "category": "news", "offer_group": offer,
                         "content": {"text": "Früher Zugang"}}),
        )
        .await;
    gw.settled(&early).await;
    // An offer window longer than messages are kept could not be kept.
    let (status, refused) = gw
        .post(
            "/v1/broadcasts",
            &json!({"segment": "germans", "category": "news",
                    "offer_group": {"name": "autumn", "window": "500d"},
                    "content": {"text": "Neue Öffnungszeiten"}}),
        )
        .await;
    assert_eq!(
        (status, &refused["error"]["field"]),
        (422, &json!("offer_group.window")),
        "{refused}"
    );
    let (status, created) = gw
        .post(
            "/v1/broadcasts",
            &json!({"segment": "germans", "category": "news", "offer_group": offer,
                    "content": {"text": "Neue Öffnungszeiten"}}),
        )
        .await;
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_str().unwrap();

    let view = broadcast_until(&gw, id, |v| {
        v["status"] == "planned" && v["messages"]["sent"].as_i64() >= Some(3)
    })
    .await;
    assert_eq!(view["planned"], 6, "{view}");
    assert_eq!(
        view["messages"],
        json!({"sent": 3, "suppressed": 2}),
        "{view}"
    );
    assert_eq!(view["refused"], 1, "{view}");
    assert_eq!(
        view["reasons"],
        json!({"refused": {"offer_group": 1}, "suppressed": {"no_channel": 2}}),
        "{view}"
    );
    let mut recipients = sms_recipients(&sim);
    recipients.sort();
    assert_eq!(
        recipients,
        [
            "+4915100000001",
            "+4915100000002",
            "+4915100000004",
            "+4915100000005"
        ],
        "g1 once, the others with a phone once"
    );

    let first = gw
        .get_ok(&format!("/v1/broadcasts/{id}/refusals?limit=1"))
        .await;
    let refusal = &first["refusals"][0];
    assert_eq!(
        (&refusal["customer_id"], &refusal["code"], &first["next"]),
        (&json!("g1"), &json!("offer_group"), &json!("g1")),
        "{first}"
    );
    assert!(
        refusal["message"].as_str().unwrap().contains(&early),
        "names the earlier message: {first}"
    );
    assert!(refusal["refused_at"].is_string(), "{first}");
    let rest = gw
        .get_ok(&format!("/v1/broadcasts/{id}/refusals?after=g1"))
        .await;
    assert_eq!(rest, json!({"refusals": [], "next": null}));

    let (status, bad) = gw
        .get(&format!("/v1/broadcasts/{id}/refusals?limit=0"))
        .await;
    assert_eq!(
        (status, &bad["error"]["field"]),
        (422, &json!("limit")),
        "{bad}"
    );
    let (status, unknown) = gw.get("/v1/broadcasts/bc_nope/refusals").await;
    assert_eq!(status, 404, "{unknown}");
    gw.stop().await;
}

/// Conversions are credited to the last message delivered or read within
/// their window (and record the first), none outside it; the report's
/// sums are the messages, costs and conversions recorded.
#[tokio::test]
async fn conversions_are_credited_in_their_window_and_the_report_adds_up() {
    let sim = ProviderSim::start().await.unwrap();
    let twilio = default_twilio(&sim.url()).replace(
        "channel = \"sms\"",
        "channel = \"sms\"\ncost = { default = 0.05, europe = 0.07 }",
    );
    let sendgrid = crate::support::sendgrid_connector("sendgrid", &sim.url()).replace(
        "channel = \"email\"",
        "channel = \"email\"\ncost = { default = 0.001 }",
    );
    let gw = TestGateway::start(&format!(
        r#"{FAST_DISPATCH}
[server]
public_url = "{}"

[regions]
europe = ["NL", "BE"]

[categories.news]
consent = "opt-out"

[conversions.purchase]
value = "properties.amount"
currency = "EUR"
window = "7d"
{twilio}{sendgrid}"#,
        crate::webhooks::PUBLIC_URL
    ))
    .await;
    gw.put_customer(
        "ana",
        &json!({"addresses": {"phone": "+31612345678", "email": "ana@shop.example"}, "country": "NL"}),
    )
    .await;
    gw.put_customer(
        "bo",
        &json!({"addresses": {"phone": "+31687654321"}, "country": "NL"}),
    )
    .await;
    let send = |customer: &str, channel: &str, text: String| {
        json!({"customer_id": customer, "category": "news", "channels": [channel],
               "content": {"text": text, "subject": "News"}})
    };
    let start = jiff::Timestamp::now();
    let m1 = gw.send_ok(&send("ana", "sms", "Spring sale".into())).await;
    let m2 = gw
        .send_ok(&send("ana", "email", "Spring sale".into()))
        .await;
    // 161 GSM-7 characters: two segments, twice the price.
    let m3 = gw.send_ok(&send("bo", "sms", "x".repeat(161))).await;
    for id in [&m1, &m2, &m3] {
        gw.settled(id).await;
    }
    deliver(&gw, &m1).await;

    let purchase = |amount: f64, after: &str| {
        let at = start
            .checked_add(after.parse::<jiff::Span>().unwrap())
            .unwrap();
        json!({"customer_id": "ana", "name": "purchase", "properties": {"amount": amount},
               "occurred_at": at.to_string()})
    };
    let p1 = event_id(&gw, &purchase(30.0, "PT1H")).await;
    let c1 = gw.get_ok(&format!("/v1/conversions/{p1}")).await;
    assert_eq!(c1["last_touch"], m1.as_str(), "{c1}");
    assert_eq!(
        c1["first_touch"],
        m1.as_str(),
        "only the delivered count: {c1}"
    );
    assert_eq!(
        (&c1["channel"], &c1["region"], &c1["connector"]),
        (&json!("sms"), &json!("europe"), &json!("twilio"))
    );
    assert_eq!(
        (&c1["value"], &c1["currency"]),
        (&json!(30.0), &json!("EUR"))
    );

    let m4 = gw.send_ok(&send("ana", "sms", "Last day".into())).await;
    gw.settled(&m4).await;
    deliver(&gw, &m4).await;
    let p2 = event_id(&gw, &purchase(20.0, "PT2H")).await;
    let c2 = gw.get_ok(&format!("/v1/conversions/{p2}")).await;
    assert_eq!(
        (&c2["last_touch"], &c2["first_touch"]),
        (&json!(m4), &json!(m1)),
        "{c2}"
    );
    // Eight days on, no message is inside the window.
    let p3 = event_id(&gw, &purchase(5.0, "PT192H")).await;
    let c3 = gw.get_ok(&format!("/v1/conversions/{p3}")).await;
    assert_eq!(
        (&c3["last_touch"], &c3["channel"]),
        (&Value::Null, &Value::Null),
        "{c3}"
    );
    let from = start.checked_sub(jiff::Span::new().hours(1)).unwrap();
    let to = start.checked_add(jiff::Span::new().hours(216)).unwrap();
    let report = gw
        .get_ok(&format!(
            "/v1/reports/channels?from={from}&to={to}&group_by=channel,region"
        ))
        .await;
    let rows = report["rows"].as_array().unwrap();
    let row = |channel: Value| {
        rows.iter()
            .find(|r| r["channel"] == channel)
            .unwrap_or_else(|| panic!("{report}"))
    };
    let sms = row(json!("sms"));
    assert_eq!(
        (&sms["sent"], &sms["delivered"], &sms["conversions"]),
        (&json!(3), &json!(2), &json!(2)),
        "{sms}"
    );
    assert!((sms["cost"].as_f64().unwrap() - 0.28).abs() < 1e-9, "{sms}");
    assert_eq!(sms["revenue"], 50.0);
    assert!((sms["cost_per_conversion"].as_f64().unwrap() - 0.14).abs() < 1e-9);
    assert_eq!(sms["region"], "europe");
    let email = row(json!("email"));
    assert_eq!(
        (&email["sent"], &email["delivered"], &email["conversions"]),
        (&json!(1), &json!(0), &json!(0))
    );
    let uncredited = row(Value::Null);
    assert_eq!(
        (&uncredited["conversions"], &uncredited["revenue"]),
        (&json!(1), &json!(5.0))
    );
    let totals = &report["totals"];
    assert_eq!(
        (&totals["sent"], &totals["conversions"]),
        (&json!(4), &json!(3))
    );
    assert_eq!(totals["revenue"], 55.0);

    let csv = gw
        .client
        .get(format!(
            "{}/v1/reports/channels?from={from}&to={to}&format=csv",
            gw.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0]
            .starts_with("channel,sent,delivered,read,failed,suppressed,cost,conversions,revenue"),
        "{csv}"
    );
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(
        lines.iter().any(|l| l.starts_with("sms,3,2,0,0,0,")),
        "{csv}"
    );
    gw.stop().await;
}

/// Twilio reports the message delivered.
async fn deliver(gw: &TestGateway, id: &str) {
    let sid = gw.message(id).await["provider_message_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, applied) = crate::webhooks::twilio_callback(
        gw,
        &[("MessageSid", &sid), ("MessageStatus", "delivered")],
        crossgate_tests::DEFAULT_AUTH_TOKEN,
    )
    .await;
    assert_eq!(
        (status, &applied["matched_messages"]),
        (200, &json!(1)),
        "{applied}"
    );
}

async fn event_id(gw: &TestGateway, event: &Value) -> String {
    let (status, answer) = gw.post("/v1/events", event).await;
    assert_eq!(status, 202, "{answer}");
    answer["id"].as_str().unwrap().to_owned()
}
