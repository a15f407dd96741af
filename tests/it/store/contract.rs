//! What every store promises, whatever it runs on.

use super::{Stores, message};
use crossgate::config::RetentionConfig;
use crossgate::customer::{Consent, ConsentStatus, Profile, Suppression, SuppressionReason};
use crossgate::message::{Channel, MessageStatus, Outcome};
use crossgate::retention;
use crossgate::store::campaigns::{BroadcastRecord, RefusedMember};
use crossgate::store::journeys::{EventInserted, JourneyVersion, NewEvent, RunRecord};
use crossgate::store::now_ms;
use crossgate::store::replies::{NewReply, ReplyRecorded};
use crossgate::store::reports::{NewConversion, ReportKey};
use crossgate::store::segments::SegmentQuery;
use crossgate::store::{
    AttemptRecord, AttemptResult, DedupKey, IdempotencyKey, Inserted, LeasedDelivery, Next, Purged,
    Store,
};
use std::collections::HashSet;

const LEASE: u64 = 30_000;

fn attempt(d: &LeasedDelivery, at: i64, outcome: Outcome, next: Next) -> AttemptResult {
    AttemptResult {
        delivery_id: d.delivery_id,
        message_id: d.message_id.clone(),
        lease_until: d.lease_until,
        attempt: AttemptRecord {
            number: d.message_attempts + 1,
            connector: d.connector.clone(),
            channel: d.channel,
            started_at: at,
            finished_at: at + 1,
            outcome,
            provider_message_id: matches!(next, Next::Sent { .. }).then(|| "SM1".to_owned()),
            error_code: None,
            error_message: None,
            retry_at: None,
            node: None,
        },
        next,
    }
}

fn sent() -> Next {
    Next::Sent {
        provider_message_id: "SM1".into(),
    }
}

fn give_up() -> Next {
    Next::GiveUp {
        reason: "provider refused".into(),
        ending: MessageStatus::Failed,
    }
}

async fn status(store: &dyn Store, id: &str) -> MessageStatus {
    store.message(id).await.unwrap().unwrap().status
}

async fn insert(store: &dyn Store, m: crossgate::store::NewMessage) {
    assert_eq!(store.insert_message(m).await.unwrap(), Inserted::New);
}

pub async fn a_lease_is_exclusive_until_it_runs_out(s: Stores) {
    insert(&*s.a, message("m1", 1_000, &["twilio"])).await;
    let first = s.a.lease_due(1_000, 10, LEASE).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].content.text, "hello from m1");
    assert!(s.b.lease_due(1_000, 10, LEASE).await.unwrap().is_empty());
    assert!(
        s.b.lease_due(1_000 + LEASE as i64 - 1, 10, LEASE)
            .await
            .unwrap()
            .is_empty()
    );

    // The first holder went quiet: the other node takes it over, and the
    // history says the provider may have it already.
    let later = 1_000 + LEASE as i64;
    let taken = s.b.lease_due(later, 10, LEASE).await.unwrap();
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
            got.extend(store.lease_due(2_000, 7, LEASE).await.unwrap());
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
    let leased = s.a.lease_due(1_000, 10, LEASE).await.unwrap().remove(0);
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
    assert!(s.a.lease_due(5_000, 10, LEASE).await.unwrap().is_empty());
}

pub async fn a_failed_delivery_falls_back_then_the_message_fails(s: Stores) {
    insert(&*s.a, message("m1", 1_000, &["twilio", "backup"])).await;
    let first = s.a.lease_due(1_000, 10, LEASE).await.unwrap().remove(0);
    assert_eq!(first.connector, "twilio");
    s.a.record_attempt(attempt(
        &first,
        1_000,
        Outcome::Retryable,
        Next::RetryAt(3_000),
    ))
    .await
    .unwrap();
    assert!(s.b.lease_due(2_999, 10, LEASE).await.unwrap().is_empty());
    let retried = s.b.lease_due(3_000, 10, LEASE).await.unwrap().remove(0);
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

    let fallback = s.a.lease_due(3_001, 10, LEASE).await.unwrap().remove(0);
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
    let leased = s.b.lease_due(2_000, 10, LEASE).await.unwrap();
    let ids: Vec<&str> = leased.iter().map(|d| d.message_id.as_str()).collect();
    assert_eq!(ids, ["m2"]);
    assert_eq!(status(&*s.a, "m1").await, MessageStatus::Expired);
}

pub async fn racing_idempotency_keys_store_one_message(s: Stores) {
    let with_key = |id: &str, hash: &str| {
        let mut m = message(id, 1_000, &["twilio"]);
        m.idempotency = Some(IdempotencyKey {
            key: "shop:order-7".into(),
            request_hash: hash.into(),
            response: format!("{{\"id\":\"{id}\"}}"),
            expires_at: 100_000,
        });
        m
    };
    let racers = (0..8).map(|i| {
        let store = if i % 2 == 0 { s.a.clone() } else { s.b.clone() };
        let m = with_key(&format!("m{i}"), "same");
        async move { store.insert_message(m).await.unwrap() }
    });
    let results = futures::future::join_all(racers).await;
    let new = results.iter().filter(|r| **r == Inserted::New).count();
    assert_eq!(new, 1, "{results:?}");
    let winner = (0..8)
        .find(|i| results[*i] == Inserted::New)
        .map(|i| format!("m{i}"))
        .unwrap();
    for r in &results {
        if let Inserted::Replayed { response } = r {
            assert_eq!(response, &format!("{{\"id\":\"{winner}\"}}"));
        } else {
            assert_eq!(r, &Inserted::New);
        }
    }
    let reused = s.b.insert_message(with_key("other", "different")).await;
    assert_eq!(reused.unwrap(), Inserted::KeyReused);
    assert!(s.a.message("other").await.unwrap().is_none());
}

/// A broadcast's page: every message stored, the answers in the page's
/// order however the backend splits it, and the same page again replayed.
pub async fn a_page_of_messages_is_answered_in_order(s: Stores) {
    let page = || {
        (0..70)
            .map(|i| {
                let mut m = message(&format!("p{i:02}"), 1_000, &["twilio"]);
                m.idempotency = Some(IdempotencyKey {
                    key: format!("broadcast:b1:c{i:02}"),
                    request_hash: "member".into(),
                    response: format!("p{i:02}"),
                    expires_at: 100_000,
                });
                m
            })
            .collect::<Vec<_>>()
    };
    let first = s.a.insert_messages(page()).await.unwrap();
    assert_eq!(first.len(), 70);
    assert!(first.iter().all(|i| *i == Inserted::New), "{first:?}");
    for i in [0, 31, 32, 69] {
        let id = format!("p{i:02}");
        assert_eq!(status(s.b.as_ref(), &id).await, MessageStatus::Queued);
    }
    let again = s.b.insert_messages(page()).await.unwrap();
    let replayed: Vec<String> = again
        .into_iter()
        .map(|i| match i {
            Inserted::Replayed { response } => response,
            other => panic!("expected a replay, got {other:?}"),
        })
        .collect();
    let ids: Vec<String> = (0..70).map(|i| format!("p{i:02}")).collect();
    assert_eq!(replayed, ids);
}

pub async fn dedup_keys_hold_until_they_expire(s: Stores) {
    let with_dedup = |id: &str, at: i64| {
        let mut m = message(id, at, &["twilio"]);
        m.dedup = Some(DedupKey {
            key: "cart-7".into(),
            expires_at: at + 10_000,
        });
        m
    };
    insert(&*s.a, with_dedup("m1", 1_000)).await;
    let duplicate = s.b.insert_message(with_dedup("m2", 2_000)).await.unwrap();
    assert_eq!(
        duplicate,
        Inserted::Duplicate {
            message_id: "m1".into(),
            status: MessageStatus::Queued
        }
    );
    assert!(s.a.message("m2").await.unwrap().is_none());
    insert(&*s.b, with_dedup("m3", 11_000)).await;
}

pub async fn cancellation_stops_what_has_not_left(s: Stores) {
    for id in ["m1", "m2", "m3"] {
        let mut m = message(id, 1_000, &["twilio"]);
        m.cancel_key = Some("cart-7".into());
        if id == "m3" {
            m.send_at = Some(50_000);
        }
        insert(&*s.a, m).await;
    }
    // m1 and m2 are leased; m1 then goes out.
    let leased = s.a.lease_due(1_000, 2, LEASE).await.unwrap();
    assert_eq!(leased.len(), 2);
    let m1 = leased.iter().find(|d| d.message_id == "m1").unwrap();
    s.a.record_attempt(attempt(m1, 1_000, Outcome::Sent, sent()))
        .await
        .unwrap();

    let report =
        s.b.cancel("phone:+31612345678", "cart-7", 2_000)
            .await
            .unwrap();
    assert_eq!(report.cancelled, ["m3"]);
    let mut not: Vec<(String, MessageStatus)> = report.not_cancelled;
    not.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        not,
        [
            ("m1".to_owned(), MessageStatus::Sent),
            ("m2".to_owned(), MessageStatus::Sending)
        ]
    );
    assert_eq!(status(&*s.a, "m3").await, MessageStatus::Cancelled);
    assert!(
        s.a.lease_due(60_000, 10, 1)
            .await
            .unwrap()
            .iter()
            .all(|d| d.message_id == "m2")
    );
    let other_scope =
        s.a.cancel("phone:+31699999999", "cart-7", 2_000)
            .await
            .unwrap();
    assert!(other_scope.cancelled.is_empty() && other_scope.not_cancelled.is_empty());
}

pub async fn the_outbox_holds_every_status_change_until_posted(s: Stores) {
    let mut m = message("m1", 1_000, &["twilio"]);
    m.callback_url = Some("https://shop.example/hooks".into());
    insert(&*s.a, m).await;
    let leased = s.a.lease_due(1_000, 10, LEASE).await.unwrap().remove(0);
    s.a.record_attempt(attempt(&leased, 1_000, Outcome::Sent, sent()))
        .await
        .unwrap();
    assert_eq!(s.a.queue_health(2_000).await.unwrap().outbox, 3);

    let first = s.a.lease_callbacks(2_000, 10, LEASE).await.unwrap();
    assert!(
        s.b.lease_callbacks(2_000, 10, LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    let payloads: Vec<serde_json::Value> = first
        .iter()
        .map(|c| serde_json::from_str(&c.payload).unwrap())
        .collect();
    let seen: Vec<(i64, &str)> = payloads
        .iter()
        .map(|p| {
            (
                p["sequence"].as_i64().unwrap(),
                p["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen, [(1, "queued"), (2, "sending"), (3, "sent")]);
    assert_eq!(payloads[2]["delivered_by"], "twilio");
    assert_eq!(payloads[2]["provider_message_id"], "SM1");
    assert_eq!(payloads[0]["at"], "1970-01-01T00:00:01.000Z");
    assert!(first.iter().all(|c| c.url == "https://shop.example/hooks"));

    s.a.finish_callback(first[0].id, None, false).await.unwrap();
    s.a.finish_callback(first[1].id, Some(9_000), false)
        .await
        .unwrap();
    s.a.finish_callback(first[2].id, None, true).await.unwrap();
    assert_eq!(s.b.queue_health(2_000).await.unwrap().outbox, 1);
    assert!(
        s.b.lease_callbacks(8_999, 10, LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    let retried = s.b.lease_callbacks(9_000, 10, LEASE).await.unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!((retried[0].id, retried[0].attempts), (first[1].id, 1));
}

pub async fn provider_reports_move_status_forward_only(s: Stores) {
    insert(&*s.a, message("m1", 1_000, &["twilio"])).await;
    let leased = s.a.lease_due(1_000, 10, LEASE).await.unwrap().remove(0);
    s.a.record_attempt(attempt(&leased, 1_000, Outcome::Sent, sent()))
        .await
        .unwrap();
    let report = |state: &str, at: i64| crossgate::store::ProviderStatus {
        connector: "twilio".into(),
        provider_message_id: "SM1".into(),
        state: state.into(),
        code: None,
        description: None,
        at,
    };
    let found = s.b.apply_provider_status(report("delivered", 2_000)).await;
    assert_eq!(found.unwrap().as_deref(), Some("m1"));
    s.a.apply_provider_status(report("sent", 3_000))
        .await
        .unwrap();
    let record = s.a.message("m1").await.unwrap().unwrap();
    assert_eq!(record.status, MessageStatus::Delivered);
    let states: Vec<&str> = record.events.iter().map(|e| e.state.as_str()).collect();
    assert_eq!(states, ["delivered", "sent"]);
    let mut unknown = report("delivered", 4_000);
    unknown.provider_message_id = "SM404".into();
    assert_eq!(s.a.apply_provider_status(unknown).await.unwrap(), None);
}

fn profile(phone: &str) -> Profile {
    serde_json::from_value(serde_json::json!({
        "addresses": { "phone": phone, "email": "ana@shop.example" },
        "country": "NL"
    }))
    .unwrap()
}

pub async fn profiles_index_addresses_and_erasure_cancels(s: Stores) {
    assert!(
        s.a.put_customer("c1", profile("+31611111111"), 1_000)
            .await
            .unwrap()
    );
    assert!(
        !s.b.put_customer("c1", profile("+31622222222"), 2_000)
            .await
            .unwrap()
    );
    let record = s.a.customer("c1").await.unwrap().unwrap();
    assert_eq!((record.created_at, record.updated_at), (1_000, 2_000));

    let owners = |phone: &str| crossgate::store::Audience::Address {
        channel: Channel::Sms,
        address: phone.into(),
    };
    let facts =
        s.b.planning_facts(owners("+31622222222"), "phone:+31622222222", None);
    assert_eq!(facts.await.unwrap().profiles.len(), 1);
    let facts =
        s.b.planning_facts(owners("+31611111111"), "phone:+31611111111", None);
    assert!(
        facts.await.unwrap().profiles.is_empty(),
        "the old number left the index"
    );

    let opted_out = Consent {
        status: ConsentStatus::OptedOut,
        at: jiff::Timestamp::from_second(3).unwrap(),
        source: Some("sms-keyword".into()),
    };
    let changed =
        s.a.consent_by_address(
            "+31622222222",
            Channel::Sms,
            vec!["marketing".into()],
            opted_out,
            3_000,
        )
        .await
        .unwrap();
    assert_eq!(changed, 1);
    let record = s.b.customer("c1").await.unwrap().unwrap();
    assert_eq!(
        record.profile.consent[&Channel::Sms]["marketing"].status,
        ConsentStatus::OptedOut
    );

    let mut pending = message("m1", 4_000, &["twilio"]);
    pending.customer_id = Some("c1".into());
    pending.scope = "customer:c1".into();
    insert(&*s.a, pending).await;
    assert!(s.b.delete_customer("c1").await.unwrap());
    assert!(s.a.customer("c1").await.unwrap().is_none());
    let erased = s.a.message("m1").await.unwrap().unwrap();
    assert_eq!(erased.status, MessageStatus::Cancelled);
    assert!(!s.a.delete_customer("c1").await.unwrap());
}

pub async fn suppressions_keep_a_persons_wish_over_a_finding(s: Stores) {
    let entry = |reason, source: &str| Suppression {
        channel: Channel::Email,
        address: "ana@shop.example".into(),
        reason,
        source: source.into(),
        note: None,
        created_at: 1_000,
    };
    assert!(
        s.a.suppress(entry(SuppressionReason::OptOut, "sendgrid"))
            .await
            .unwrap()
    );
    assert!(
        !s.b.suppress(entry(SuppressionReason::Bounce, "sendgrid"))
            .await
            .unwrap()
    );
    let found =
        s.a.suppressions(vec![(Channel::Email, "ana@shop.example".into())])
            .await
            .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].reason, SuppressionReason::OptOut);

    // Staff may replace it; a START lifts only an opt-out.
    let created =
        s.b.put_suppression(entry(SuppressionReason::Bounce, "api"))
            .await;
    assert!(!created.unwrap(), "it replaced an entry");
    let lifted =
        s.a.delete_suppression(
            Channel::Email,
            "ana@shop.example",
            Some(SuppressionReason::OptOut),
        )
        .await;
    assert!(!lifted.unwrap());
    assert!(
        s.a.delete_suppression(Channel::Email, "ana@shop.example", None)
            .await
            .unwrap()
    );
    assert!(
        s.b.suppressions(vec![(Channel::Email, "ana@shop.example".into())])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.a.suppress(entry(SuppressionReason::Bounce, "sendgrid"))
            .await
            .unwrap()
    );
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
    s.a.lease_due(2_000, 2, LEASE).await.unwrap();
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

/// A template send's record (template, locale, what each channel rendered)
/// and each delivery's own content come back as stored, whichever write
/// path stored them (batched, or in a transaction with keys) and whichever
/// node reads them.
pub async fn what_a_message_said_is_read_back_as_stored(s: Stores) {
    let template = r#"{"name":"order_confirmation","locale":"nl","channels":{"sms":{"text":"Hoi","segments":1}}}"#;
    let mut plain = message("m1", 1_000, &["twilio"]);
    plain.template = Some(template.into());
    plain.plan = Some(r#"{"category":"transactional"}"#.into());
    plain.deliveries[0].content = Some(crossgate::message::Content {
        text: "Hoi Ada, bestelling A-1 is bevestigd.".into(),
        ..Default::default()
    });
    let mut keyed = message("m2", 1_000, &["twilio"]);
    keyed.template = Some(template.replace("Hoi", "Hallo"));
    keyed.idempotency = Some(IdempotencyKey {
        key: "k".into(),
        request_hash: "h".into(),
        response: "{}".into(),
        expires_at: 100_000,
    });
    insert(&*s.a, plain).await;
    insert(&*s.a, keyed).await;

    let m1 = s.b.message("m1").await.unwrap().unwrap();
    assert_eq!(m1.template.as_deref(), Some(template));
    assert_eq!(m1.plan.as_deref(), Some(r#"{"category":"transactional"}"#));
    let m2 = s.b.message("m2").await.unwrap().unwrap();
    assert!(m2.template.unwrap().contains("Hallo"));
    let mut leased = s.b.lease_due(1_000, 10, LEASE).await.unwrap();
    leased.sort_by(|a, b| a.message_id.cmp(&b.message_id));
    let texts: Vec<&str> = leased.iter().map(|d| d.content.text.as_str()).collect();
    assert_eq!(
        texts,
        ["Hoi Ada, bestelling A-1 is bevestigd.", "hello from m2"]
    );
}

fn new_event(id: &str, customer: &str, name: &str, at: i64, key: Option<&str>) -> NewEvent {
    NewEvent {
        id: id.into(),
        customer_id: customer.into(),
        name: name.into(),
        properties: r#"{"total":42}"#.into(),
        occurred_at: at,
        received_at: at,
        idempotency_key: key.map(str::to_owned),
    }
}

fn new_run(id: &str, customer: &str, wake_at: Option<i64>) -> RunRecord {
    RunRecord {
        id: id.into(),
        journey: "welcome".into(),
        version: "v1".into(),
        customer_id: customer.into(),
        status: "active".into(),
        state: r#"{"step":1}"#.into(),
        wake_at,
        revision: 1,
        started_at: 1_000,
        updated_at: 1_000,
    }
}

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

    let claimed = s.a.claim_events(5_000, 10, 60_000).await.unwrap();
    let order: Vec<&str> = claimed.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(order, ["e2", "e1", "e3"], "per customer, as they happened");
    assert_eq!(claimed[1].properties, r#"{"total":42}"#);
    // Leased: the other node gets nothing until the lease runs out.
    assert!(
        s.b.claim_events(5_000, 10, 60_000)
            .await
            .unwrap()
            .is_empty()
    );
    s.a.events_handled(vec!["e1".into(), "e2".into()])
        .await
        .unwrap();
    let retaken = s.b.claim_events(70_000, 10, 60_000).await.unwrap();
    let ids: Vec<&str> = retaken.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(
        ids,
        ["e3"],
        "handled events are done; an expired lease is taken over"
    );
}

/// Runs are written over the revision they were read at, leased when due,
/// and read back per customer; versions are kept once.
pub async fn runs_are_written_by_revision_and_leased_when_due(s: Stores) {
    s.a.put_journey_version(JourneyVersion {
        version: "v1".into(),
        journey: "welcome".into(),
        config: "{}".into(),
    })
    .await
    .unwrap();
    s.b.put_journey_version(JourneyVersion {
        version: "v1".into(),
        journey: "welcome".into(),
        config: "{}".into(),
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
        s.a.lease_due_runs(4_999, 10, 30_000)
            .await
            .unwrap()
            .is_empty()
    );
    let due = s.a.lease_due_runs(5_000, 10, 30_000).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].id, "r1");
    assert!(
        s.b.lease_due_runs(6_000, 10, 30_000)
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
    s.a.delete_customer("ada").await.unwrap();
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
    let leased = s.a.lease_due(1_000, 10, LEASE).await.unwrap().remove(0);
    s.a.record_attempt(attempt(&leased, 1_000, Outcome::Sent, sent()))
        .await
        .unwrap();
    for status in s.a.lease_callbacks(1_500, 10, LEASE).await.unwrap() {
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

    let events = s.b.claim_events(3_000, 10, 60_000).await.unwrap();
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

    let callbacks = s.b.lease_callbacks(3_000, 10, LEASE).await.unwrap();
    assert_eq!(callbacks.len(), 1, "one reply, one callback");
    assert_eq!(callbacks[0].url, "https://shop.example/hooks");
    let payload: serde_json::Value = serde_json::from_str(&callbacks[0].payload).unwrap();
    assert_eq!(payload["type"], "message.received");
    assert_eq!(payload["customer_ids"], serde_json::json!(["ana", "bob"]));
    assert_eq!(payload["from"], "+31611111111");
}

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
    assert!(s.a.delete_customer("c1").await.unwrap());
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
        s.a.advance_broadcast("b1", "c2", 2, false, 13_000, 3_000)
            .await
            .unwrap()
    );

    // The first node is gone: after its lease, the other resumes at c2.
    let resumed = s.b.lease_broadcast(13_000, 10_000).await.unwrap().unwrap();
    assert_eq!((resumed.cursor.as_str(), resumed.planned), ("c2", 2));
    assert!(
        s.b.advance_broadcast("b1", "c4", 2, true, 23_000, 14_000)
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
        !s.a.advance_broadcast("later", "c9", 1, false, 70_000, 62_000)
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
    let purged = s.b.purge_history(5_000, 0, 10).await.unwrap();
    assert_eq!(purged.refusals, 4, "{purged:?}");
    assert_eq!(
        s.a.refusals("broadcast:b1", "", 10).await.unwrap(),
        [refusal("c4", "missing_phone", 9_000)]
    );
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
    for leased in s.a.lease_due(60_000, 10, LEASE).await.unwrap() {
        if leased.message_id != "old3" {
            s.a.record_attempt(attempt(&leased, 60_000, Outcome::Sent, sent()))
                .await
                .unwrap();
        }
    }
    let events = [("e1", 1_000), ("e2", 2_000), ("e3", 3_000), ("e4", 50_000)]
        .map(|(id, at)| new_event(id, "ada", "visit", at, None));
    s.a.record_events(events.to_vec()).await.unwrap();
    s.a.claim_events(60_000, 10, 60_000).await.unwrap();
    s.a.events_handled(vec!["e1".into(), "e2".into(), "e4".into()])
        .await
        .unwrap();

    let mut batches = Vec::new();
    for _ in 0..3 {
        batches.push(s.b.purge_history(10_000, 10_000, 1).await.unwrap());
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
    let again = s.b.lease_due(70_000, 10, LEASE).await.unwrap();
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
            let leased = s.a.lease_due(at, 10, LEASE).await.unwrap().remove(0);
            s.a.record_attempt(attempt(&leased, at, Outcome::Sent, sent()))
                .await
                .unwrap();
            s.a.lease_callbacks(at + 1_000, 10, LEASE).await.unwrap()
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

    let purged = s.b.purge_history(10_000, 0, 10).await.unwrap();
    assert_eq!(purged.callbacks, 1, "{purged:?}");
    let retried = s.b.lease_callbacks(9_000, 10, LEASE).await.unwrap();
    assert_eq!(retried.len(), 1, "the callback still to be tried stays");
    assert_eq!(retried[0].id, early[1].id);

    let mut batches = Vec::new();
    for _ in 0..4 {
        batches.push(s.b.purge_history(30_000, 0, 1).await.unwrap().callbacks);
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

    let purged = s.b.purge_history(0, 3_000, 10).await.unwrap();
    assert_eq!(
        purged.journey_runs, 1,
        "r1 only: r2 ended after the horizon"
    );
    let purged = s.b.purge_history(0, 10_000, 10).await.unwrap();
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
        s.a.purge_history(0, 10_000, 10).await.unwrap().journey_runs,
        0
    );
    let mut ended = run("r3", "ada", "welcome", 5_000, Some(7_000));
    ended.revision = 2;
    assert!(s.a.update_run(ended, 1).await.unwrap());
    assert_eq!(
        s.a.purge_history(0, 10_000, 10).await.unwrap().journey_runs,
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
    let now = now_ms();
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

/// A conversion is credited once to the last delivered message in its
/// window; the report counts messages, their planned costs and the
/// conversions by the keys asked for; retention purges old conversions.
pub async fn conversions_are_credited_and_reported(s: Stores) {
    let mut m = message("m1", 1_000, &["twilio"]);
    m.customer_id = Some("ana".into());
    m.region = Some("europe".into());
    m.campaign = Some("broadcast:b1".into());
    insert(&*s.a, m).await;
    let leased = s.a.lease_due(1_000, 10, LEASE).await.unwrap().remove(0);
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
        s.b.channel_report(0, 100_000, vec![ReportKey::Channel, ReportKey::Campaign])
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
        s.a.channel_report(200_000, 300_000, vec![])
            .await
            .unwrap()
            .is_empty()
    );

    // Conversions go with the events they were made from: e1 (at 5,000)
    // is past an events horizon of 10,000, e2 (at 50,000) is not.
    let purged = s.b.purge_history(0, 10_000, 10).await.unwrap();
    assert_eq!(purged.conversions, 1, "{purged:?}");
    assert_eq!(s.a.conversion("e1").await.unwrap(), None);
    assert_eq!(s.a.conversion("e2").await.unwrap(), Some(late));

    // An event without a usable amount is a conversion without value: it
    // counts, and adds nothing to the revenue.
    let mut valueless = conversion("e3", 60_000);
    valueless.value = None;
    assert_eq!(s.a.record_conversion(valueless).await.unwrap().value, None);
    let report = s.b.channel_report(55_000, 100_000, vec![]).await.unwrap();
    assert_eq!(report.len(), 1, "{report:?}");
    assert_eq!((report[0].conversions, report[0].revenue), (1, 0.0));
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

/// The first secret stored under a name is everyone's; a key claimed once
/// is taken until released, and purged with the other keys once expired.
pub async fn shared_secrets_and_claimed_keys_are_one_for_every_node(s: Stores) {
    let first =
        s.a.shared_secret("unsubscribe", "from-a", 1_000)
            .await
            .unwrap();
    let second =
        s.b.shared_secret("unsubscribe", "from-b", 2_000)
            .await
            .unwrap();
    assert_eq!((first.as_str(), second.as_str()), ("from-a", "from-a"));

    assert!(s.a.claim_key("webhook:twilio:abc", 5_000).await.unwrap());
    assert!(!s.b.claim_key("webhook:twilio:abc", 5_000).await.unwrap());
    s.b.release_key("webhook:twilio:abc").await.unwrap();
    assert!(s.b.claim_key("webhook:twilio:abc", 5_000).await.unwrap());
    let purged = s.a.purge_expired_keys(5_000, 10).await.unwrap();
    assert_eq!(purged.idempotency_keys, 1);
    assert!(s.a.claim_key("webhook:twilio:abc", 9_000).await.unwrap());
}

/// START lifts the consent a keyword STOP withdrew, and only that.
pub async fn start_lifts_only_what_stop_withdrew(s: Stores) {
    let profile: Profile =
        serde_json::from_value(serde_json::json!({"addresses": {"phone": "+31622222222"}}))
            .unwrap();
    s.a.put_customer("c1", profile.validate().unwrap(), 1_000)
        .await
        .unwrap();
    let keyword = |status| Consent {
        status,
        at: jiff::Timestamp::from_second(2).unwrap(),
        source: Some(crossgate::customer::keyword_source("twilio", status)),
    };
    let categories = vec!["marketing".to_owned(), "news".to_owned()];
    let stopped =
        s.a.consent_by_address(
            "+31622222222",
            Channel::Sms,
            categories.clone(),
            keyword(ConsentStatus::OptedOut),
            2_000,
        )
        .await
        .unwrap();
    assert_eq!(stopped, 1);
    // Support decides about news itself.
    let support = Consent {
        status: ConsentStatus::OptedOut,
        at: jiff::Timestamp::from_second(3).unwrap(),
        source: Some("support".into()),
    };
    s.b.update_consent("c1", vec![(Channel::Sms, "news".into(), support)], 3_000)
        .await
        .unwrap();
    let started =
        s.b.consent_by_address(
            "+31622222222",
            Channel::Sms,
            categories.clone(),
            keyword(ConsentStatus::OptedIn),
            4_000,
        )
        .await
        .unwrap();
    assert_eq!(started, 1);
    let consent = s.a.customer("c1").await.unwrap().unwrap().profile.consent;
    assert!(
        !consent[&Channel::Sms].contains_key("marketing"),
        "{consent:?}"
    );
    assert_eq!(
        consent[&Channel::Sms]["news"].source.as_deref(),
        Some("support")
    );
    // Nothing left to lift: nothing changes.
    let again =
        s.b.consent_by_address(
            "+31622222222",
            Channel::Sms,
            categories,
            keyword(ConsentStatus::OptedIn),
            5_000,
        )
        .await
        .unwrap();
    assert_eq!(again, 0);
}

/// A YES confirms the latest open consent request of a customer who owns
/// the address, whose message reached them on that channel: once, within
/// its window; the request goes once its window has passed.
pub async fn a_consent_request_is_confirmed_once_within_its_window(s: Stores) {
    use crossgate::customer::double_opt_in::ConsentRequest;
    s.a.put_customer("c1", profile("+31612345678").validate().unwrap(), 1_000)
        .await
        .unwrap();
    for id in ["m1", "m2"] {
        let mut asking = message(id, 1_000, &["twilio"]);
        asking.customer_id = Some("c1".into());
        insert(&*s.a, asking).await;
    }
    for leased in s.a.lease_due(1_000, 10, LEASE).await.unwrap() {
        s.a.record_attempt(attempt(&leased, 1_500, Outcome::Sent, sent()))
            .await
            .unwrap();
    }
    let request = |id: &str, open_until| ConsentRequest {
        message_id: id.into(),
        customer_id: "c1".into(),
        category: "marketing".into(),
        created_at: 1_000,
        open_until,
    };
    s.a.request_consent(request("m1", 2_000)).await.unwrap();
    s.a.request_consent(request("m2", 10_000)).await.unwrap();
    // Not on a channel the message did not take.
    assert!(
        s.b.confirm_consent(Channel::Email, "ana@shop.example", 3_000)
            .await
            .unwrap()
            .is_none()
    );
    let confirmed =
        s.b.confirm_consent(Channel::Sms, "+31612345678", 3_000)
            .await
            .unwrap()
            .expect("m2 is open");
    assert_eq!(
        (
            confirmed.customer_id.as_str(),
            confirmed.message_id.as_str()
        ),
        ("c1", "m2")
    );
    let consent = s.a.customer("c1").await.unwrap().unwrap().profile.consent;
    let given = &consent[&Channel::Sms]["marketing"];
    assert_eq!(given.status, ConsentStatus::OptedIn);
    assert_eq!(given.source.as_deref(), Some("double-opt-in m2"));
    // m1's window has passed and m2 is confirmed: nothing is left to confirm.
    assert!(
        s.b.confirm_consent(Channel::Sms, "+31612345678", 3_500)
            .await
            .unwrap()
            .is_none()
    );
    let purged = s.a.purge_expired_keys(10_000, 10).await.unwrap();
    assert_eq!(purged.consent_requests, 2);
}
