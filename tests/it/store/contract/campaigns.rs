//! Segments, broadcasts, their progress and refusals, conversions and the report.

use super::*;

fn segment_profile(country: &str, tags: &[&str], marketing_email: Option<&str>) -> Profile {
    let mut profile = serde_json::json!({
        "addresses": {"email": "x@shop.example"},
        "country": country,
        "tags": tags,
    });
    if let Some(status) = marketing_email {
        profile["consent"] = serde_json::json!({"email": {"marketing": {"status": status, "at": "2026-01-01T00:00:00Z"}}});
    }
    serde_json::from_value(profile).unwrap()
}

/// A segment is answered from the trait index and the events: members in
/// id order, paged from a cursor, counted alike on every node; a changed
/// profile moves in or out at once.
pub async fn segments_are_computed_from_traits_and_events(s: Stores) {
    let people = [
        ("c1", "NL", vec!["vip"], Some("opted_in")),
        ("c2", "NL", vec![], Some("opted_in")),
        ("c3", "BE", vec!["vip"], Some("opted_out")),
        ("c4", "DE", vec!["vip"], None),
        ("c5", "NL", vec!["vip"], None),
    ];
    for (id, country, tags, consent) in &people {
        s.a.put_customer(id, segment_profile(country, tags, *consent), 1_000)
            .await
            .unwrap();
    }
    s.a.record_events(vec![new_event("p1", "c5", "purchase", 9_000, None)])
        .await
        .unwrap();
    let benelux_vips = SegmentQuery {
        all_of: vec![
            vec!["country:NL".into(), "country:BE".into()],
            vec!["tag:vip".into()],
        ],
        none_of: vec!["consent:email:marketing=opted_out".into()],
        did: vec![],
        did_not: vec![("purchase".into(), 5_000)],
    };
    assert_eq!(s.b.segment_count(benelux_vips.clone()).await.unwrap(), 1);
    assert_eq!(
        s.b.segment_members(benelux_vips.clone(), String::new(), 10)
            .await
            .unwrap(),
        ["c1"]
    );
    let everyone = SegmentQuery::default();
    assert_eq!(s.b.segment_count(everyone.clone()).await.unwrap(), 5);
    let first =
        s.b.segment_members(everyone.clone(), String::new(), 2)
            .await
            .unwrap();
    let next = s.a.segment_members(everyone, "c2".into(), 2).await.unwrap();
    assert_eq!(
        (first, next),
        (
            vec!["c1".to_owned(), "c2".into()],
            vec!["c3".to_owned(), "c4".into()]
        )
    );

    // c3 opts in again: now in.
    s.b.put_customer(
        "c3",
        segment_profile("BE", &["vip"], Some("opted_in")),
        2_000,
    )
    .await
    .unwrap();
    assert_eq!(s.a.segment_count(benelux_vips.clone()).await.unwrap(), 2);
    // Purchases before the window do not count.
    let bought = SegmentQuery {
        did: vec![("purchase".into(), 9_500)],
        ..SegmentQuery::default()
    };
    assert_eq!(s.a.segment_count(bought).await.unwrap(), 0);
    assert!(s.a.delete_customer("c1", wall_ms()).await.unwrap());
    assert_eq!(s.b.segment_count(benelux_vips).await.unwrap(), 1);
}

fn broadcast(id: &str, start_at: i64) -> BroadcastRecord {
    BroadcastRecord {
        id: id.into(),
        definition: "{}".into(),
        status: "scheduled".into(),
        cursor: String::new(),
        planned: 0,
        start_at,
        created_at: 1_000,
        updated_at: 1_000,
    }
}

/// One node fans a broadcast out at a time; its cursor moves under the
/// lease, another node resumes from it when the lease runs out, and a
/// cancelled broadcast moves no further.
pub async fn broadcasts_are_leased_resumed_and_cancelled(s: Stores) {
    s.a.insert_broadcast(broadcast("b1", 1_000)).await.unwrap();
    s.a.insert_broadcast(broadcast("later", 50_000))
        .await
        .unwrap();
    let leased = s.a.lease_broadcast(2_000, 10_000).await.unwrap().unwrap();
    assert_eq!(
        (leased.id.as_str(), leased.status.as_str()),
        ("b1", "planning")
    );
    assert_eq!(
        s.b.lease_broadcast(2_000, 10_000).await.unwrap(),
        None,
        "leased, or not due"
    );
    assert!(
        s.a.advance_broadcast("b1", progress("c2", 2, false, 13_000), 3_000)
            .await
            .unwrap()
    );

    // The first node is gone: after its lease, the other resumes at c2.
    let resumed = s.b.lease_broadcast(13_000, 10_000).await.unwrap().unwrap();
    assert_eq!((resumed.cursor.as_str(), resumed.planned), ("c2", 2));
    assert!(
        s.b.advance_broadcast("b1", progress("c4", 2, true, 23_000), 14_000)
            .await
            .unwrap()
    );
    let done = s.a.broadcast("b1").await.unwrap().unwrap();
    assert_eq!((done.status.as_str(), done.planned), ("planned", 4));
    assert_eq!(
        s.a.lease_broadcast(60_000, 10_000)
            .await
            .unwrap()
            .map(|b| b.id),
        Some("later".into())
    );

    assert!(s.b.cancel_broadcast("later", 61_000).await.unwrap());
    assert!(
        !s.a.advance_broadcast("later", progress("c9", 1, false, 70_000), 62_000)
            .await
            .unwrap()
    );
    assert!(
        !s.b.cancel_broadcast("later", 63_000).await.unwrap(),
        "already over"
    );
    assert_eq!(
        s.a.broadcast("later").await.unwrap().unwrap().status,
        "cancelled"
    );

    // Listed newest (highest id) first, a page at a time, by status.
    let ids = |page: Vec<BroadcastRecord>| page.into_iter().map(|b| b.id).collect::<Vec<_>>();
    let all = s.b.list_broadcasts(None, None, 10).await.unwrap();
    assert_eq!(ids(all), ["later", "b1"]);
    let first = s.a.list_broadcasts(None, None, 1).await.unwrap();
    assert_eq!(ids(first), ["later"]);
    let rest =
        s.a.list_broadcasts(None, Some("later".into()), 1)
            .await
            .unwrap();
    assert_eq!(ids(rest), ["b1"]);
    let planned =
        s.b.list_broadcasts(Some("planned".into()), None, 10)
            .await
            .unwrap();
    assert_eq!(ids(planned), ["b1"]);
    let none =
        s.b.list_broadcasts(Some("scheduled".into()), None, 10)
            .await
            .unwrap();
    assert!(none.is_empty());
}

/// The campaign's counts are `expected`, as (status, reason, count).
async fn assert_progress(
    store: &dyn Store,
    campaign: &str,
    expected: &[(&str, Option<&str>, i64)],
) {
    let counts = store.campaign_progress(campaign).await.unwrap();
    let counts: Vec<(&str, Option<&str>, i64)> = counts
        .iter()
        .map(|c| (c.status.as_str(), c.reason.as_deref(), c.count))
        .collect();
    assert_eq!(counts, expected, "{campaign}");
}

/// A campaign's messages are counted by status and reason code, and those
/// not yet sent are cancelled together.
pub async fn campaign_messages_are_counted_and_cancelled_together(s: Stores) {
    for (id, suppressed) in [
        ("m1", None),
        ("m2", None),
        ("m3", Some("opted_out: marketing email")),
    ] {
        let mut m = message(id, 1_000, &["twilio"]);
        m.campaign = Some("broadcast:b1".into());
        m.cancel_key = Some("broadcast:b1".into());
        m.scope = format!("customer:{id}");
        m.suppressed = suppressed.map(str::to_owned);
        m.send_at = Some(50_000);
        insert(&*s.a, m).await;
    }
    assert_progress(
        &*s.b,
        "broadcast:b1",
        &[("scheduled", None, 2), ("suppressed", Some("opted_out"), 1)],
    )
    .await;
    assert_eq!(s.b.cancel_campaign("broadcast:b1", 2_000).await.unwrap(), 2);
    let counts = s.a.campaign_progress("broadcast:b1").await.unwrap();
    assert_eq!(counts[0].status, "cancelled");
    assert_eq!(counts[0].count, 2);
}

/// A member a campaign could not send to is kept once with the code it
/// was refused for (a page planned again counts nobody twice), counted
/// beside the campaign's messages and listed a page at a time.
pub async fn refused_members_are_kept_once_and_counted(s: Stores) {
    let refusal = |customer: &str, code: &str, at: i64| RefusedMember {
        customer_id: customer.into(),
        code: code.into(),
        message: format!("{code}: {customer} cannot be sent to"),
        refused_at: at,
    };
    let mut m = message("m1", 1_000, &["twilio"]);
    m.campaign = Some("broadcast:b1".into());
    insert(&*s.a, m).await;
    let page = vec![
        refusal("c3", "missing_phone", 1_000),
        refusal("c1", "missing_phone", 1_000),
        refusal("c2", "missing_variable", 1_000),
    ];
    s.a.record_refusals("broadcast:b1", page).await.unwrap();
    // The same page again, later and for another reason: the first stands.
    s.b.record_refusals(
        "broadcast:b1",
        vec![
            refusal("c1", "invalid_phone", 9_000),
            refusal("c4", "missing_phone", 9_000),
        ],
    )
    .await
    .unwrap();
    s.b.record_refusals(
        "broadcast:other",
        vec![refusal("c1", "missing_phone", 1_000)],
    )
    .await
    .unwrap();

    assert_progress(
        &*s.b,
        "broadcast:b1",
        &[
            ("queued", None, 1),
            ("refused", Some("missing_phone"), 3),
            ("refused", Some("missing_variable"), 1),
        ],
    )
    .await;

    let first = s.a.refusals("broadcast:b1", "", 2).await.unwrap();
    assert_eq!(
        first,
        [
            refusal("c1", "missing_phone", 1_000),
            refusal("c2", "missing_variable", 1_000)
        ]
    );
    let rest = s.b.refusals("broadcast:b1", "c2", 2).await.unwrap();
    assert_eq!(
        rest,
        [
            refusal("c3", "missing_phone", 1_000),
            refusal("c4", "missing_phone", 9_000)
        ]
    );
    assert!(
        s.a.refusals("broadcast:b1", "c4", 2)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.a.refusals("broadcast:none", "", 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Refusals go with the messages' retention: those made at 1,000 are
    // past a horizon of 5,000 (b1's c1, c2, c3 and other's c1), c4 is not.
    let purged = s.b.purge_history(horizon(5_000, 0), 10).await.unwrap();
    assert_eq!(purged.refusals, 4, "{purged:?}");
    assert_eq!(
        s.a.refusals("broadcast:b1", "", 10).await.unwrap(),
        [refusal("c4", "missing_phone", 9_000)]
    );
}

/// A conversion is credited once to the last delivered message in its
/// window; the report counts messages, their planned costs and the
/// conversions by the keys asked for; retention purges old conversions.
pub async fn conversions_are_credited_and_reported(s: Stores) {
    let mut m = message("m1", 1_000, &["twilio"]);
    m.customer_id = Some("ana".into());
    m.region = Some("europe".into());
    m.campaign = Some("broadcast:b1".into());
    insert(&*s.a, m).await;
    let leased = lease_one(&*s.a, 1_000).await;
    s.a.record_attempt(attempt(&leased, 1_000, Outcome::Sent, sent()))
        .await
        .unwrap();
    s.a.apply_provider_status(crossgate::store::ProviderStatus {
        connector: "twilio".into(),
        provider_message_id: "SM1".into(),
        state: "delivered".into(),
        code: None,
        description: None,
        at: 2_000,
    })
    .await
    .unwrap();
    let conversion = |id: &str, at: i64| NewConversion {
        event_id: id.into(),
        customer_id: "ana".into(),
        name: "purchase".into(),
        value: Some(30.0),
        currency: Some("EUR".into()),
        occurred_at: at,
        window_ms: 10_000,
    };
    let credited =
        s.a.record_conversion(conversion("e1", 5_000))
            .await
            .unwrap();
    assert_eq!(credited.last_message_id.as_deref(), Some("m1"));
    assert_eq!(credited.campaign.as_deref(), Some("broadcast:b1"));
    assert_eq!(credited.region.as_deref(), Some("europe"));
    let late =
        s.b.record_conversion(conversion("e2", 50_000))
            .await
            .unwrap();
    assert_eq!(late.last_message_id, None, "outside the window");
    let again =
        s.b.record_conversion(conversion("e1", 99_000))
            .await
            .unwrap();
    assert_eq!(again, credited, "credited once");
    assert_eq!(s.b.conversion("e1").await.unwrap(), Some(credited));

    let report =
        s.b.channel_report(
            0,
            100_000,
            vec![ReportKey::Channel, ReportKey::Campaign],
            100_000,
        )
        .await
        .unwrap();
    let sms = report
        .iter()
        .find(|r| r.key == [Some("sms".to_owned()), Some("broadcast:b1".to_owned())])
        .unwrap();
    assert_eq!((sms.sent, sms.delivered, sms.conversions), (1, 1, 1));
    assert!((sms.cost - 0.07).abs() < 1e-9, "{}", sms.cost);
    assert_eq!(sms.revenue, 30.0);
    let uncredited = report.iter().find(|r| r.key == [None, None]).unwrap();
    assert_eq!((uncredited.sent, uncredited.conversions), (0, 1));
    assert!(
        s.a.channel_report(200_000, 300_000, vec![], 300_000)
            .await
            .unwrap()
            .is_empty()
    );

    // Conversions go with the events they were made from: e1 (at 5,000)
    // is past an events horizon of 10,000, e2 (at 50,000) is not.
    let purged = s.b.purge_history(horizon(0, 10_000), 10).await.unwrap();
    assert_eq!(purged.conversions, 1, "{purged:?}");
    assert_eq!(s.a.conversion("e1").await.unwrap(), None);
    assert_eq!(s.a.conversion("e2").await.unwrap(), Some(late));

    // An event without a usable amount is a conversion without value: it
    // counts, and adds nothing to the revenue.
    let mut valueless = conversion("e3", 60_000);
    valueless.value = None;
    assert_eq!(s.a.record_conversion(valueless).await.unwrap().value, None);
    let report =
        s.b.channel_report(55_000, 100_000, vec![], 100_000)
            .await
            .unwrap();
    assert_eq!(report.len(), 1, "{report:?}");
    assert_eq!((report[0].conversions, report[0].revenue), (1, 0.0));
}

/// The report's whole past days are summed once and kept: a provider's
/// late report or a message stored into a kept day forgets the day (the
/// next report counts it again), and a kept day outlives the purge of its
/// messages.
pub async fn report_days_are_kept_until_their_messages_change(s: Stores) {
    const DAY: i64 = 86_400_000;
    const H: i64 = 3_600_000;
    // Days long ended on every clock, the database's included.
    let d = 20_000 * DAY;
    let now = d + 3 * DAY + 5 * H;
    let mut sms = message("m1", d + 9 * H, &["twilio"]);
    sms.region = Some("europe".into());
    insert(&*s.a, sms).await;
    let leased = lease_one(&*s.a, d + 9 * H).await;
    s.a.record_attempt(attempt(&leased, d + 9 * H, Outcome::Sent, sent()))
        .await
        .unwrap();
    let suppressed = |id: &str, at: i64| {
        let mut m = message(id, at, &["twilio"]);
        m.region = Some("europe".into());
        m.suppressed = Some("opted out".into());
        m
    };
    insert(&*s.a, suppressed("m2", d + DAY + H)).await;
    // Today's message is counted from the messages every time.
    insert(&*s.a, suppressed("m3", now - H)).await;

    let report = async |store: &dyn Store| {
        let rows = store
            .channel_report(d - DAY + 5 * H, now, vec![ReportKey::Region], now)
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].key, [Some("europe".to_owned())]);
        let r = &rows[0];
        (r.sent, r.delivered, r.suppressed)
    };
    assert_eq!(report(&*s.b).await, (1, 0, 2));
    assert_eq!(report(&*s.a).await, (1, 0, 2), "kept, the same");

    // The provider's report two days later forgets day d.
    s.b.apply_provider_status(crossgate::store::ProviderStatus {
        connector: "twilio".into(),
        provider_message_id: "SM1".into(),
        state: "delivered".into(),
        code: None,
        description: None,
        at: d + 2 * DAY,
    })
    .await
    .unwrap();
    assert_eq!(report(&*s.a).await, (1, 1, 2));
    // A message stored into a kept day forgets it.
    insert(&*s.b, suppressed("m4", d + DAY + 2 * H)).await;
    assert_eq!(report(&*s.a).await, (1, 1, 3));

    // The messages of d and d + 1 go with retention; their days' sums stay.
    let purged =
        s.a.purge_history(horizon(d + 2 * DAY, 0), 10)
            .await
            .unwrap();
    assert_eq!(purged.messages, 3, "{purged:?}");
    assert_eq!(report(&*s.b).await, (1, 1, 3));
}

fn progress(cursor: &str, planned: i64, done: bool, lease_until: i64) -> Progress {
    Progress {
        cursor: cursor.into(),
        planned,
        done,
        lease_until,
    }
}
