//! What retention purges, and how.

use super::*;
use crossgate::retention;

/// Keys go once their window has passed, at most `limit` of each kind per
/// call, oldest first.
pub async fn expired_keys_are_purged(s: Stores) {
    for (id, expires_at) in [("m1", 2_000), ("m2", 2_500), ("m3", 9_000)] {
        let mut m = message(id, 1_000, &["twilio"]);
        m.dedup = Some(DedupKey {
            key: format!("k-{id}"),
            expires_at,
        });
        m.idempotency = Some(IdempotencyKey {
            key: format!("i-{id}"),
            request_hash: "h".into(),
            response: "{}".into(),
            expires_at,
        });
        insert(&*s.a, m).await;
    }
    let keys = |n: usize| Purged {
        idempotency_keys: n,
        dedup_keys: n,
        ..Purged::default()
    };
    assert_eq!(s.b.purge_expired_keys(1_500, 10).await.unwrap(), keys(0));
    assert_eq!(s.b.purge_expired_keys(3_000, 1).await.unwrap(), keys(1));
    assert_eq!(s.a.purge_expired_keys(3_000, 10).await.unwrap(), keys(1));
    assert_eq!(s.b.purge_expired_keys(3_000, 10).await.unwrap(), keys(0));
    // m3's keys still hold: the same key replays, the same dedup key is a duplicate.
    let mut again = message("m4", 2_000, &["twilio"]);
    again.idempotency = Some(IdempotencyKey {
        key: "i-m3".into(),
        request_hash: "h".into(),
        response: "{}".into(),
        expires_at: 9_000,
    });
    assert!(matches!(
        s.a.insert_message(again).await.unwrap(),
        Inserted::Replayed { .. }
    ));
}

/// Finished messages and applied events past retention go, oldest first
/// and a batch at a time, messages with their deliveries and attempts;
/// an open message and an event journeys have not applied stay, however old.
pub async fn history_past_retention_is_purged_in_batches(s: Stores) {
    for (id, at) in [
        ("old1", 1_000),
        ("old2", 2_000),
        ("old3", 3_000),
        ("new", 50_000),
    ] {
        insert(&*s.a, message(id, at, &["twilio"])).await;
    }
    for leased in s.a.lease_due(Lease::new(60_000, 10, LEASE)).await.unwrap() {
        if leased.message_id != "old3" {
            s.a.record_attempt(attempt(&leased, 60_000, Outcome::Sent, sent()))
                .await
                .unwrap();
        }
    }
    let events = [("e1", 1_000), ("e2", 2_000), ("e3", 3_000), ("e4", 50_000)]
        .map(|(id, at)| new_event(id, "ada", "visit", at, None));
    s.a.record_events(events.to_vec()).await.unwrap();
    s.a.claim_events(Lease::new(60_000, 10, 60_000))
        .await
        .unwrap();
    s.a.events_handled(vec!["e1".into(), "e2".into(), "e4".into()])
        .await
        .unwrap();

    let mut batches = Vec::new();
    for _ in 0..3 {
        batches.push(s.b.purge_history(horizon(10_000, 10_000), 1).await.unwrap());
    }
    let one = Purged {
        messages: 1,
        events: 1,
        ..Purged::default()
    };
    assert_eq!(batches, [one, one, Purged::default()]);
    for (id, kept) in [
        ("old1", false),
        ("old2", false),
        ("old3", true),
        ("new", true),
    ] {
        assert_eq!(s.a.message(id).await.unwrap().is_some(), kept, "{id}");
    }
    assert_eq!(s.a.count_events("ada", "visit", 0).await.unwrap(), 2);
    // Nothing of old1 is left behind: its id starts afresh.
    insert(&*s.a, message("old1", 70_000, &["twilio"])).await;
    let again = s.b.lease_due(Lease::new(70_000, 10, LEASE)).await.unwrap();
    let old1: Vec<_> = again.iter().filter(|d| d.message_id == "old1").collect();
    assert_eq!(old1.len(), 1, "one delivery");
    assert_eq!(old1[0].message_attempts, 0, "no attempt of the purged one");
}

/// A callback given up on goes once its last attempt is older than
/// message retention, a batch at a time; one still to be tried stays.
pub async fn abandoned_callbacks_past_retention_are_purged(s: Stores) {
    let sent_with_callbacks = |id: &'static str, at: i64| {
        let s = &s;
        async move {
            let mut m = message(id, at, &["twilio"]);
            m.callback_url = Some("https://shop.example/hooks".into());
            insert(&*s.a, m).await;
            let leased = lease_one(&*s.a, at).await;
            s.a.record_attempt(attempt(&leased, at, Outcome::Sent, sent()))
                .await
                .unwrap();
            s.a.lease_callbacks(Lease::new(at + 1_000, 10, LEASE))
                .await
                .unwrap()
        }
    };
    for late in sent_with_callbacks("m2", 20_000).await {
        s.a.finish_callback(late.id, None, true).await.unwrap();
    }
    // Queued, sending, sent: posted, retried later, given up.
    let early = sent_with_callbacks("m1", 1_000).await;
    s.a.finish_callback(early[0].id, None, false).await.unwrap();
    s.a.finish_callback(early[1].id, Some(9_000), false)
        .await
        .unwrap();
    s.a.finish_callback(early[2].id, None, true).await.unwrap();

    let purged = s.b.purge_history(horizon(10_000, 0), 10).await.unwrap();
    assert_eq!(purged.callbacks, 1, "{purged:?}");
    let retried =
        s.b.lease_callbacks(Lease::new(9_000, 10, LEASE))
            .await
            .unwrap();
    assert_eq!(retried.len(), 1, "the callback still to be tried stays");
    assert_eq!(retried[0].id, early[1].id);

    let mut batches = Vec::new();
    for _ in 0..4 {
        batches.push(
            s.b.purge_history(horizon(30_000, 0), 1)
                .await
                .unwrap()
                .callbacks,
        );
    }
    assert_eq!(batches, [1, 1, 1, 0], "m2's three, one per batch");
}

/// A journey run goes with the events' retention once it has ended and
/// the same customer has started the same journey again; the latest run
/// of each journey (what `entry` reads) and active runs stay.
pub async fn superseded_journey_runs_past_retention_are_purged(s: Stores) {
    let run = |id: &str, customer: &str, journey: &str, started_at: i64, ended_at: Option<i64>| {
        let mut run = new_run(id, customer, None);
        run.journey = journey.into();
        run.started_at = started_at;
        run.updated_at = ended_at.unwrap_or(started_at);
        if ended_at.is_some() {
            run.status = "completed".into();
        }
        run
    };
    for r in [
        run("r1", "ada", "welcome", 1_000, Some(2_000)),
        run("r2", "ada", "welcome", 3_000, Some(4_000)),
        run("r3", "ada", "welcome", 5_000, None),
        run("b1", "bob", "welcome", 1_000, Some(2_000)),
        run("c1", "ada", "cart", 1_000, Some(2_000)),
    ] {
        assert!(s.a.insert_run(r).await.unwrap());
    }
    let ids = |runs: Vec<RunRecord>| runs.into_iter().map(|r| r.id).collect::<Vec<_>>();

    let purged = s.b.purge_history(horizon(0, 3_000), 10).await.unwrap();
    assert_eq!(
        purged.journey_runs, 1,
        "r1 only: r2 ended after the horizon"
    );
    let purged = s.b.purge_history(horizon(0, 10_000), 10).await.unwrap();
    assert_eq!(purged.journey_runs, 1, "r2");
    assert_eq!(ids(s.b.customer_runs("ada").await.unwrap()), ["r3", "c1"]);
    assert_eq!(ids(s.b.customer_runs("bob").await.unwrap()), ["b1"]);

    // Superseded while still active: it stays until it has ended.
    assert!(
        s.b.insert_run(run("r4", "ada", "welcome", 6_000, None))
            .await
            .unwrap()
    );
    assert_eq!(
        s.a.purge_history(horizon(0, 10_000), 10)
            .await
            .unwrap()
            .journey_runs,
        0
    );
    let mut ended = run("r3", "ada", "welcome", 5_000, Some(7_000));
    ended.revision = 2;
    assert!(s.a.update_run(ended, 1).await.unwrap());
    assert_eq!(
        s.a.purge_history(horizon(0, 10_000), 10)
            .await
            .unwrap()
            .journey_runs,
        1
    );
    assert_eq!(ids(s.b.customer_runs("ada").await.unwrap()), ["r4", "c1"]);
}

/// More history than one write takes is purged a batch at a time until
/// none is left, and what is newer than retention stays.
pub async fn a_backlog_of_history_is_purged_in_short_writes(s: Stores) {
    const OLD: usize = 1_100;
    let suppressed = |id: String, at: i64| {
        let mut m = message(&id, at, &["twilio"]);
        m.suppressed = Some("opted_out: marketing sms".into());
        m
    };
    for page in 0..OLD / 100 {
        let old = (0..100).map(|i| suppressed(format!("old{page}-{i}"), 1_000));
        s.a.insert_messages(old.collect()).await.unwrap();
    }
    let now = wall_ms();
    insert(&*s.a, suppressed("recent".into(), now - 1_000)).await;
    let retention = RetentionConfig {
        messages: 60_000,
        events: 60_000,
    };
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let purged = retention::purge_history(&*s.b, &retention, now, &stopped)
        .await
        .unwrap();
    assert_eq!((purged.messages, purged.events), (OLD, 0));
    assert!(s.a.message("old0-0").await.unwrap().is_none());
    assert!(s.a.message("recent").await.unwrap().is_some());
}
