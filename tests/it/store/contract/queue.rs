//! Leasing, falling back and expiring: the delivery queue.

use super::*;

pub async fn a_lease_is_exclusive_until_it_runs_out(s: Stores) {
    insert(&*s.a, message("m1", 1_000, &["twilio"])).await;
    let first = s.a.lease_due(Lease::new(1_000, 10, LEASE)).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].content.text, "hello from m1");
    assert!(
        s.b.lease_due(Lease::new(1_000, 10, LEASE))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.b.lease_due(Lease::new(1_000 + LEASE as i64 - 1, 10, LEASE))
            .await
            .unwrap()
            .is_empty()
    );

    // The first holder went quiet: the other node takes it over, and the
    // history says the provider may have it already.
    let later = 1_000 + LEASE as i64;
    let taken = s.b.lease_due(Lease::new(later, 10, LEASE)).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].delivery_id, first[0].delivery_id);
    let record = s.a.message("m1").await.unwrap().unwrap();
    assert_eq!(record.attempts.len(), 1);
    assert_eq!(record.attempts[0].outcome, Outcome::Interrupted);
    // Put down to the node whose attempt was cut short, not the one taking over.
    assert_eq!(record.attempts[0].node.as_deref(), Some(s.a_node));

    s.b.record_attempt(attempt(&taken[0], later, Outcome::Sent, sent()))
        .await
        .unwrap();
    let record = s.a.message("m1").await.unwrap().unwrap();
    assert_eq!(record.status, MessageStatus::Sent);
    assert_eq!(record.attempts[1].node.as_deref(), Some(s.b_node));
}

pub async fn concurrent_leases_never_share_a_delivery(s: Stores) {
    for i in 0..60 {
        insert(&*s.a, message(&format!("m{i:02}"), 1_000, &["twilio"])).await;
    }
    let lease = |store: std::sync::Arc<dyn Store>| async move {
        let mut got = Vec::new();
        for _ in 0..10 {
            got.extend(store.lease_due(Lease::new(2_000, 7, LEASE)).await.unwrap());
        }
        got
    };
    let (a, b, c) = tokio::join!(lease(s.a.clone()), lease(s.b.clone()), lease(s.b.clone()));
    let ids: Vec<i64> = [a, b, c].iter().flatten().map(|d| d.delivery_id).collect();
    let unique: HashSet<i64> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique.len(), "a delivery was leased twice");
    assert_eq!(unique.len(), 60);
}

pub async fn only_the_lease_holder_finishes_a_message(s: Stores) {
    insert(&*s.a, message("m1", 1_000, &["twilio"])).await;
    let leased = lease_one(&*s.a, 1_000).await;
    let mut stale = attempt(&leased, 1_000, Outcome::Sent, sent());
    stale.lease_until -= 1;
    s.b.record_attempt(stale).await.unwrap();
    let record = s.a.message("m1").await.unwrap().unwrap();
    assert_eq!(record.status, MessageStatus::Sending);
    assert_eq!(record.attempts.len(), 1, "the stale attempt is history");

    let ended =
        s.a.record_attempt(attempt(&leased, 1_000, Outcome::Sent, sent()))
            .await
            .unwrap();
    assert_eq!(ended, Some(MessageStatus::Sent));
    let record = s.b.message("m1").await.unwrap().unwrap();
    assert_eq!(record.delivered_by.as_deref(), Some("twilio"));
    assert_eq!(record.delivered_channel, Some(Channel::Sms));
    assert_eq!(record.provider_message_id.as_deref(), Some("SM1"));
    let numbers: Vec<u32> = record.attempts.iter().map(|a| a.number).collect();
    assert_eq!(numbers, [1, 2]);
    assert!(
        s.a.lease_due(Lease::new(5_000, 10, LEASE))
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn a_failed_delivery_falls_back_then_the_message_fails(s: Stores) {
    insert(&*s.a, message("m1", 1_000, &["twilio", "backup"])).await;
    let first = lease_one(&*s.a, 1_000).await;
    assert_eq!(first.connector, "twilio");
    s.a.record_attempt(attempt(
        &first,
        1_000,
        Outcome::Retryable,
        Next::RetryAt(3_000),
    ))
    .await
    .unwrap();
    assert!(
        s.b.lease_due(Lease::new(2_999, 10, LEASE))
            .await
            .unwrap()
            .is_empty()
    );
    let retried = lease_one(&*s.b, 3_000).await;
    assert_eq!(
        (retried.connector.as_str(), retried.attempts),
        ("twilio", 1)
    );
    assert_eq!(retried.message_attempts, 1);
    let ended =
        s.b.record_attempt(attempt(&retried, 3_000, Outcome::Permanent, give_up()))
            .await
            .unwrap();
    assert_eq!(ended, None, "the fallback is still to come");

    let fallback = lease_one(&*s.a, 3_001).await;
    assert_eq!(fallback.connector, "backup");
    let ended =
        s.a.record_attempt(attempt(&fallback, 3_001, Outcome::Permanent, give_up()))
            .await
            .unwrap();
    assert_eq!(ended, Some(MessageStatus::Failed));
    let record = s.b.message("m1").await.unwrap().unwrap();
    assert_eq!(record.status_reason.as_deref(), Some("provider refused"));
    assert_eq!(record.attempts.len(), 3);
}

pub async fn a_message_past_its_ttl_expires_instead_of_being_leased(s: Stores) {
    let mut m = message("m1", 1_000, &["twilio"]);
    m.expires_at = Some(2_000);
    insert(&*s.a, m).await;
    insert(&*s.a, message("m2", 1_000, &["twilio"])).await;
    let leased = s.b.lease_due(Lease::new(2_000, 10, LEASE)).await.unwrap();
    let ids: Vec<&str> = leased.iter().map(|d| d.message_id.as_str()).collect();
    assert_eq!(ids, ["m2"]);
    assert_eq!(status(&*s.a, "m1").await, MessageStatus::Expired);
}

pub async fn backlog_and_due_times_count_every_node(s: Stores) {
    for i in 0..3 {
        insert(&*s.a, message(&format!("m{i}"), 1_000, &["twilio"])).await;
    }
    let mut later = message("later", 1_000, &["twilio"]);
    later.send_at = Some(9_000);
    insert(&*s.b, later).await;
    assert_eq!(s.a.next_due_at().await.unwrap(), Some(1_000));
    assert_eq!(s.b.backlog(2_000).await.unwrap(), 3);
    s.a.lease_due(Lease::new(2_000, 2, LEASE)).await.unwrap();
    assert_eq!(
        s.b.backlog(2_000).await.unwrap(),
        3,
        "leased ones are in flight"
    );
    assert_eq!(
        s.a.queue_health(2_000).await.unwrap().oldest_due_at,
        Some(1_000)
    );
    assert_eq!(status(&*s.a, "later").await, MessageStatus::Scheduled);
}

/// Due work is counted on every node: a due delivery until its attempt is
/// recorded (leased counts too), not one scheduled for later; an event until
/// journeys applied it.
pub async fn due_work_counts_what_some_node_must_still_do(s: Stores) {
    assert!(s.a.due_work(1_000).await.unwrap().is_quiet());
    insert(&*s.a, message("m1", 1_000, &["twilio"])).await;
    let mut later = message("m2", 1_000, &["twilio"]);
    later.send_at = Some(50_000);
    insert(&*s.a, later).await;
    s.a.record_events(vec![new_event("e1", "ada", "signed_up", 1_000, None)])
        .await
        .unwrap();
    let due = s.b.due_work(2_000).await.unwrap();
    assert_eq!((due.deliveries, due.events), (1, 1), "{due:?}");

    let leased = s.a.lease_due(Lease::new(2_000, 10, LEASE)).await.unwrap();
    assert_eq!(
        s.b.due_work(2_000).await.unwrap().deliveries,
        1,
        "in flight"
    );
    s.a.record_attempt(attempt(&leased[0], 2_100, Outcome::Sent, sent()))
        .await
        .unwrap();
    s.a.events_handled(vec!["e1".into()]).await.unwrap();
    assert!(s.b.due_work(2_200).await.unwrap().is_quiet());
    assert_eq!(
        s.b.due_work(50_000).await.unwrap().deliveries,
        1,
        "the scheduled one, once its time comes"
    );
}

/// A message its provider split (a long SMS) answers to every part's id,
/// and is as far as its slowest part: delivered once all are, failed as
/// soon as one is, whichever node records the attempt and the reports.
pub async fn a_split_message_is_as_far_as_its_slowest_part(s: Stores) {
    use crossgate::store::ProviderStatus;
    let report = |id: &str, state: &str, at: i64| ProviderStatus {
        connector: "twilio".into(),
        provider_message_id: id.into(),
        state: state.into(),
        code: (state == "failed").then(|| "30008".to_owned()),
        description: None,
        at,
    };
    for (m, first, rest) in [("m1", "P1", ["P2", "P3"]), ("m2", "Q1", ["Q2", "Q3"])] {
        insert(&*s.a, message(m, 1_000, &["twilio"])).await;
        let leased = lease_one(&*s.a, 1_000).await;
        let split = Next::Sent {
            provider_message_id: first.into(),
            parts: rest.iter().map(|p| p.to_string()).collect(),
            delivered: false,
            escalate_at: None,
        };
        let ended =
            s.b.record_attempt(attempt(&leased, 1_000, Outcome::Sent, split))
                .await
                .unwrap();
        assert_eq!(ended, Some(MessageStatus::Sent));
    }
    for (part, after) in [
        ("P3", MessageStatus::Sent),
        ("P1", MessageStatus::Sent),
        ("P2", MessageStatus::Delivered),
    ] {
        let matched =
            s.a.apply_provider_status(report(part, "delivered", 2_000))
                .await;
        assert_eq!(matched.unwrap().as_deref(), Some("m1"), "{part}");
        assert_eq!(status(&*s.b, "m1").await, after, "after {part}");
    }
    // A late "sent" for a delivered part changes nothing.
    s.b.apply_provider_status(report("P2", "sent", 2_500))
        .await
        .unwrap();
    assert_eq!(status(&*s.a, "m1").await, MessageStatus::Delivered);
    let history = s.a.message("m1").await.unwrap().unwrap().events;
    assert_eq!(history.len(), 4, "every part's report is history");

    s.b.apply_provider_status(report("Q1", "delivered", 3_000))
        .await
        .unwrap();
    s.a.apply_provider_status(report("Q3", "failed", 3_000))
        .await
        .unwrap();
    let m2 = s.b.message("m2").await.unwrap().unwrap();
    assert_eq!(m2.status, MessageStatus::Failed, "{:?}", m2.status_reason);
}

/// Failover on silence: a sent delivery whose connector expects a report
/// hands on to the next at its time, unless a report of delivery came
/// first (then what waits is cancelled), on whichever node.
pub async fn a_report_of_delivery_ends_a_failover_on_silence(s: Stores) {
    use crossgate::store::ProviderStatus;
    for id in ["reported", "silent"] {
        let mut m = message(id, 1_000, &["vonage", "twilio"]);
        m.deliveries[0].escalate_after = Some(5_000);
        m.deliveries[0].ends_on_delivery = true;
        insert(&*s.a, m).await;
    }
    let leased = s.a.lease_due(Lease::new(1_000, 10, LEASE)).await.unwrap();
    assert_eq!(leased.len(), 2);
    for d in &leased {
        assert_eq!(
            (d.connector.as_str(), d.escalate_after),
            ("vonage", Some(5_000))
        );
        let next = Next::Sent {
            provider_message_id: format!("V-{}", d.message_id),
            parts: Vec::new(),
            delivered: false,
            escalate_at: Some(6_000),
        };
        let ended =
            s.b.record_attempt(attempt(d, 1_000, Outcome::Sent, next))
                .await
                .unwrap();
        assert_eq!(ended, Some(MessageStatus::Sent));
    }
    let report = ProviderStatus {
        connector: "vonage".into(),
        provider_message_id: "V-reported".into(),
        state: "delivered".into(),
        code: None,
        description: None,
        at: 3_000,
    };
    assert_eq!(
        s.b.apply_provider_status(report).await.unwrap().as_deref(),
        Some("reported")
    );
    assert!(
        s.a.lease_due(Lease::new(5_999, 10, LEASE))
            .await
            .unwrap()
            .is_empty(),
        "the failover waits its time"
    );
    let due = s.a.lease_due(Lease::new(6_000, 10, LEASE)).await.unwrap();
    let went: Vec<(&str, &str)> = due
        .iter()
        .map(|d| (d.message_id.as_str(), d.connector.as_str()))
        .collect();
    assert_eq!(
        went,
        [("silent", "twilio")],
        "the reported one stays delivered"
    );
    assert_eq!(status(&*s.b, "reported").await, MessageStatus::Delivered);
}

/// A rate-limited connector's turns come from one timeline whichever node
/// asks; one too far ahead gives none; a provider's pause holds for all;
/// a delivery given back is due again with no attempt counted.
pub async fn turns_are_taken_from_one_timeline(s: Stores) {
    use crossgate::store::pace::{Ask, Turns};
    let ask = |now| Ask {
        connector: "twilio",
        n: 3,
        interval: 1_000,
        burst: 1,
        max_ahead: 6_000,
        now,
    };
    assert_eq!(
        s.a.take_turns(ask(10_000)).await.unwrap(),
        Turns::Granted { first: 10_000 }
    );
    assert_eq!(
        s.b.take_turns(ask(10_000)).await.unwrap(),
        Turns::Granted { first: 13_000 }
    );
    assert_eq!(
        s.a.take_turns(ask(10_000)).await.unwrap(),
        Turns::Granted { first: 16_000 }
    );
    // Six seconds ahead is as far as it goes.
    assert_eq!(
        s.b.take_turns(ask(10_000)).await.unwrap(),
        Turns::Full { free: 19_000 }
    );
    s.b.hold_turns("twilio", 40_000).await.unwrap();
    assert_eq!(
        s.b.take_turns(ask(36_000)).await.unwrap(),
        Turns::Granted { first: 40_000 }
    );

    insert(&*s.a, message("m1", 1_000, &["twilio"])).await;
    let leased = lease_one(&*s.a, 1_000).await;
    assert!(
        s.b.postpone(leased.delivery_id, leased.lease_until, 9_000)
            .await
            .unwrap()
    );
    assert!(
        !s.b.postpone(leased.delivery_id, leased.lease_until, 9_000)
            .await
            .unwrap(),
        "only the lease's holder gives it back"
    );
    assert!(
        s.a.lease_due(Lease::new(8_999, 10, LEASE))
            .await
            .unwrap()
            .is_empty()
    );
    let again = lease_one(&*s.a, 9_000).await;
    assert_eq!(
        (again.attempts, again.message_attempts),
        (0, 0),
        "no attempt counted"
    );
}
