//! Events, journey runs and replies.

use super::*;
use crossgate::store::journeys::ArmRecord;
use crossgate::store::reports::NewConversion;

/// Events are stored once per idempotency key, claimed by one node at a
/// time with every other unapplied event of the same customer, in the
/// order they happened, and never again once handled.
pub async fn events_are_claimed_per_customer_once(s: Stores) {
    let stored =
        s.a.record_events(vec![
            new_event("e1", "ada", "purchase", 3_000, Some("k1")),
            new_event("e2", "ada", "signed_up", 1_000, None),
            new_event("e3", "bob", "signed_up", 2_000, None),
        ])
        .await
        .unwrap();
    assert_eq!(stored, vec![EventInserted::New; 3]);
    let again =
        s.b.record_events(vec![new_event("e9", "ada", "purchase", 3_000, Some("k1"))])
            .await
            .unwrap();
    assert_eq!(again, vec![EventInserted::Duplicate { id: "e1".into() }]);
    assert_eq!(s.b.count_events("ada", "purchase", 0).await.unwrap(), 1);

    let claimed =
        s.a.claim_events(Lease::new(5_000, 10, 60_000))
            .await
            .unwrap();
    let order: Vec<&str> = claimed.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(order, ["e2", "e1", "e3"], "per customer, as they happened");
    assert_eq!(claimed[1].properties, r#"{"total":42}"#);
    // Leased: the other node gets nothing until the lease runs out.
    assert!(
        s.b.claim_events(Lease::new(5_000, 10, 60_000))
            .await
            .unwrap()
            .is_empty()
    );
    s.a.events_handled(vec!["e1".into(), "e2".into()])
        .await
        .unwrap();
    let retaken =
        s.b.claim_events(Lease::new(70_000, 10, 60_000))
            .await
            .unwrap();
    let ids: Vec<&str> = retaken.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(
        ids,
        ["e3"],
        "handled events are done; an expired lease is taken over"
    );
}

/// The earliest event of a name that occurred at or after a time, other
/// than the one asking: how a run starting on a late trigger finds the exit
/// that arrived before it, whether or not journeys applied that exit yet.
pub async fn the_first_event_since_a_trigger_is_found_whatever_its_arrival(s: Stores) {
    s.a.record_events(vec![
        new_event("p1", "ada", "purchase", 1_000, None),
        new_event("p3", "ada", "purchase", 3_000, None),
        new_event("p2", "ada", "purchase", 2_000, None),
        new_event("c1", "ada", "cart_abandoned", 1_500, None),
        new_event("q1", "bob", "purchase", 2_500, None),
    ])
    .await
    .unwrap();
    s.a.events_handled(vec!["p2".into()]).await.unwrap();
    let first = |since, except: &'static str| {
        let b = s.b.clone();
        async move {
            b.first_event_since("ada", "purchase", since, except)
                .await
                .unwrap()
        }
    };
    assert_eq!(first(1_500, "c1").await, Some(("p2".into(), 2_000)));
    assert_eq!(
        first(2_000, "c1").await,
        Some(("p2".into(), 2_000)),
        "at the trigger's time counts"
    );
    assert_eq!(
        first(1_000, "p1").await,
        Some(("p2".into(), 2_000)),
        "not the asking event"
    );
    assert_eq!(first(3_001, "c1").await, None);
    assert_eq!(
        s.b.first_event_since("bob", "signed_up", 0, "x")
            .await
            .unwrap(),
        None
    );
}

/// A customer's arm is kept from their first assignment; each arm is
/// counted with the conversions that came within the window after it.
pub async fn experiment_arms_are_kept_once_and_counted(s: Stores) {
    let arm = |customer: &str, arm: &str, run: &str, at: i64| ArmRecord {
        journey: "promo".into(),
        step: "offer".into(),
        customer_id: customer.into(),
        arm: arm.into(),
        run_id: run.into(),
        message_id: None,
        assigned_at: at,
    };
    s.a.record_arm(arm("ada", "a", "r1", 1_000)).await.unwrap();
    s.b.record_arm(arm("ada", "b", "r2", 2_000)).await.unwrap();
    s.a.record_arm(arm("bob", "holdout", "r3", 1_000))
        .await
        .unwrap();
    s.a.record_arm(arm("cy", "a", "r4", 1_000)).await.unwrap();
    let conversion = |id: &str, customer: &str, at: i64| NewConversion {
        event_id: id.into(),
        customer_id: customer.into(),
        name: "purchase".into(),
        value: Some(10.0),
        currency: Some("EUR".into()),
        occurred_at: at,
        window_ms: 5_000,
    };
    // Ada buys within the window, Bob (held out) too, Cy only after it.
    for (id, customer, at) in [
        ("p1", "ada", 3_000),
        ("p2", "bob", 4_000),
        ("p3", "cy", 9_000),
    ] {
        s.a.record_conversion(conversion(id, customer, at))
            .await
            .unwrap();
    }
    let totals = s.b.arm_totals("promo", "offer", 5_000).await.unwrap();
    let figures: Vec<(&str, u64, u64, u64)> = totals
        .iter()
        .map(|t| (t.arm.as_str(), t.customers, t.sent, t.conversions))
        .collect();
    assert_eq!(figures, [("a", 2, 0, 1), ("holdout", 1, 0, 1)]);
    assert!(
        s.a.arm_totals("promo", "other", 5_000)
            .await
            .unwrap()
            .is_empty()
    );

    // Arms go with the events' retention, the oldest first, a batch at a time.
    let arms = async |limit| {
        let purged = s.a.purge_history(horizon(0, 1_500), limit).await.unwrap();
        purged.experiment_arms
    };
    assert_eq!(arms(2).await, 2);
    assert_eq!(arms(2).await, 1);
    assert!(
        s.b.arm_totals("promo", "offer", 5_000)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Runs are written over the revision they were read at, leased when due,
/// and read back per customer; versions are kept once.
pub async fn runs_are_written_by_revision_and_leased_when_due(s: Stores) {
    s.a.put_journey_version(JourneyVersion {
        version: "v1".into(),
        journey: "welcome".into(),
        config: "{}".into(),
        created_at: wall_ms(),
    })
    .await
    .unwrap();
    s.b.put_journey_version(JourneyVersion {
        version: "v1".into(),
        journey: "welcome".into(),
        config: "{}".into(),
        created_at: wall_ms(),
    })
    .await
    .unwrap();
    assert_eq!(
        s.b.journey_version("v1").await.unwrap().unwrap().journey,
        "welcome"
    );
    assert!(
        s.a.insert_run(new_run("r1", "ada", Some(5_000)))
            .await
            .unwrap()
    );
    assert!(
        !s.b.insert_run(new_run("r1", "ada", None)).await.unwrap(),
        "one run per id"
    );
    assert!(s.a.insert_run(new_run("r2", "ada", None)).await.unwrap());

    assert!(
        s.a.lease_due_runs(Lease::new(4_999, 10, 30_000))
            .await
            .unwrap()
            .is_empty()
    );
    let due =
        s.a.lease_due_runs(Lease::new(5_000, 10, 30_000))
            .await
            .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].id, "r1");
    assert!(
        s.b.lease_due_runs(Lease::new(6_000, 10, 30_000))
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );

    // Node b read revision 1 too: only the first writer wins.
    let mut moved = due[0].clone();
    moved.revision = 2;
    moved.wake_at = None;
    moved.status = "completed".into();
    assert!(s.a.update_run(moved.clone(), 1).await.unwrap());
    assert!(
        !s.b.update_run(moved, 1).await.unwrap(),
        "a stale revision writes nothing"
    );
    let read = s.b.run("r1").await.unwrap().unwrap();
    assert_eq!(
        (read.status.as_str(), read.revision, read.wake_at),
        ("completed", 2, None)
    );
    let runs = s.b.customer_runs("ada").await.unwrap();
    assert_eq!(runs.len(), 2);
    assert!(s.b.customer_runs("bob").await.unwrap().is_empty());
    // An erased customer takes their runs and events along.
    s.a.record_events(vec![new_event("e1", "ada", "x", 1, None)])
        .await
        .unwrap();
    s.a.delete_customer("ada", wall_ms()).await.unwrap();
    assert!(s.b.customer_runs("ada").await.unwrap().is_empty());
    assert_eq!(s.b.count_events("ada", "x", 0).await.unwrap(), 0);
}

/// A customer's reply is recorded once, whichever node hears it again: an
/// event for every customer it belongs to (the answered message's and the
/// address's owners) and one callback, where the answered message's
/// statuses go.
pub async fn a_reply_is_recorded_once_for_its_customers(s: Stores) {
    let mut m = message("m1", 1_000, &["twilio"]);
    m.customer_id = Some("bob".into());
    m.callback_url = Some("https://shop.example/hooks".into());
    insert(&*s.a, m).await;
    let leased = lease_one(&*s.a, 1_000).await;
    s.a.record_attempt(attempt(&leased, 1_000, Outcome::Sent, sent()))
        .await
        .unwrap();
    for status in
        s.a.lease_callbacks(Lease::new(1_500, 10, LEASE))
            .await
            .unwrap()
    {
        s.a.finish_callback(status.id, None, false).await.unwrap();
    }
    s.a.put_customer("ana", profile("+31611111111"), 1_000)
        .await
        .unwrap();

    let reply = NewReply {
        connector: "twilio".into(),
        channel: Channel::Sms,
        address: "+31611111111".into(),
        text: "Friday?\nOr Saturday.".into(),
        provider_message_id: "SMr1".into(),
        in_reply_to: Some("SM1".into()),
        received_at: 2_000,
        callback_url: Some("https://shop.example/replies".into()),
    };
    let recorded = s.a.record_reply(reply.clone()).await.unwrap();
    assert_eq!(
        recorded,
        ReplyRecorded {
            duplicate: false,
            in_reply_to: Some("m1".into()),
            customers: vec!["ana".into(), "bob".into()],
            callback_queued: true,
        }
    );
    assert!(s.b.record_reply(reply).await.unwrap().duplicate);

    let events =
        s.b.claim_events(Lease::new(3_000, 10, 60_000))
            .await
            .unwrap();
    let whose: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.customer_id.as_str(), e.name.as_str()))
        .collect();
    assert_eq!(
        whose,
        [("ana", "message.received"), ("bob", "message.received")]
    );
    let properties: serde_json::Value = serde_json::from_str(&events[0].properties).unwrap();
    assert_eq!(properties["text"], "Friday?\nOr Saturday.");
    assert_eq!(properties["in_reply_to"], "m1");

    let callbacks =
        s.b.lease_callbacks(Lease::new(3_000, 10, LEASE))
            .await
            .unwrap();
    assert_eq!(callbacks.len(), 1, "one reply, one callback");
    assert_eq!(callbacks[0].url, "https://shop.example/hooks");
    let payload: serde_json::Value = serde_json::from_str(&callbacks[0].payload).unwrap();
    assert_eq!(payload["type"], "message.received");
    assert_eq!(payload["customer_ids"], serde_json::json!(["ana", "bob"]));
    assert_eq!(payload["from"], "+31611111111");
}

/// A customer's runs a page at a time, newest first, each run once, and
/// nobody else's.
pub async fn a_customers_runs_are_read_a_page_at_a_time(s: Stores) {
    for (id, customer, started_at) in [
        ("r1", "ada", 1_000),
        ("r2", "ada", 2_000),
        ("r3", "ada", 2_000),
        ("r4", "ada", 3_000),
        ("b1", "bob", 2_500),
    ] {
        let mut run = new_run(id, customer, None);
        run.started_at = started_at;
        assert!(s.a.insert_run(run).await.unwrap());
    }
    let ids = |runs: Vec<RunRecord>| runs.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let first = ids(s.b.customer_runs_page("ada", 2, None).await.unwrap());
    assert_eq!(first, ["r4", "r3"]);
    let second = ids(s.b.customer_runs_page("ada", 2, Some("r3")).await.unwrap());
    assert_eq!(second, ["r2", "r1"], "a tie on start time is broken by id");
    assert!(
        s.b.customer_runs_page("ada", 2, Some("r1"))
            .await
            .unwrap()
            .is_empty()
    );
    // Another customer's run is no cursor into this one's.
    assert!(
        s.b.customer_runs_page("ada", 2, Some("b1"))
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn runs_are_counted_by_journey_and_status(s: Stores) {
    for (id, customer, status) in [
        ("r1", "ada", "active"),
        ("r2", "bo", "converted"),
        ("r3", "cy", "converted"),
        ("r4", "di", "exited"),
    ] {
        let mut run = new_run(id, customer, None);
        run.status = status.into();
        assert!(s.a.insert_run(run).await.unwrap());
    }
    let mut other = new_run("r5", "ada", None);
    other.journey = "another".into();
    assert!(s.a.insert_run(other).await.unwrap());
    let journey = new_run("x", "x", None).journey;
    let counts = s.b.run_counts(&journey).await.unwrap();
    assert_eq!(
        counts,
        [
            ("active".to_owned(), 1),
            ("converted".to_owned(), 2),
            ("exited".to_owned(), 1)
        ]
    );
    assert!(s.b.run_counts("nobody's").await.unwrap().is_empty());
}
