//! Accepting messages: idempotency and dedup keys, pages, cancellation, provider reports, what a message said; and the keys and secrets the gateway keeps for itself.

use super::*;

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
    let leased = s.a.lease_due(Lease::new(1_000, 2, LEASE)).await.unwrap();
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
        s.a.lease_due(Lease::new(60_000, 10, 1))
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

pub async fn provider_reports_move_status_forward_only(s: Stores) {
    insert(&*s.a, message("m1", 1_000, &["twilio"])).await;
    let leased = lease_one(&*s.a, 1_000).await;
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
    let mut leased = s.b.lease_due(Lease::new(1_000, 10, LEASE)).await.unwrap();
    leased.sort_by(|a, b| a.message_id.cmp(&b.message_id));
    let texts: Vec<&str> = leased.iter().map(|d| d.content.text.as_str()).collect();
    assert_eq!(
        texts,
        ["Hoi Ada, bestelling A-1 is bevestigd.", "hello from m2"]
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

pub async fn messages_are_found_newest_first_a_page_at_a_time(s: Stores) {
    use crossgate::store::search::MessageQuery;
    for (id, at, customer) in [
        ("m1", 1_000, Some("ada")),
        ("m2", 2_000, Some("ada")),
        ("m3", 2_000, Some("ada")),
        ("m4", 3_000, Some("bo")),
        ("m5", 4_000, None),
    ] {
        let mut m = message(id, at, &["twilio"]);
        m.customer_id = customer.map(str::to_owned);
        m.category = Some("marketing".into());
        m.campaign = (id == "m4").then(|| "broadcast:b1".to_owned());
        insert(&*s.a, m).await;
    }
    let query = |customer: Option<&str>, before: Option<(i64, String)>| MessageQuery {
        customer_id: customer.map(str::to_owned),
        from: 0,
        to: 10_000,
        before,
        limit: 2,
        ..MessageQuery::default()
    };
    let ids = |found: &[crossgate::store::search::MessageSummary]| -> Vec<String> {
        found.iter().map(|m| m.id.clone()).collect()
    };
    let first = s.b.search_messages(query(Some("ada"), None)).await.unwrap();
    assert_eq!(ids(&first), ["m3", "m2"], "newest first, ties by id");
    let last = &first[1];
    let next =
        s.b.search_messages(query(Some("ada"), Some((last.created_at, last.id.clone()))))
            .await
            .unwrap();
    assert_eq!(ids(&next), ["m1"]);
    assert_eq!(next[0].status, MessageStatus::Queued);
    assert_eq!(next[0].recipient, "+31612345678");

    let everyone = s.a.search_messages(query(None, None)).await.unwrap();
    assert_eq!(ids(&everyone), ["m5", "m4"]);
    let in_range = MessageQuery {
        from: 2_000,
        to: 3_000,
        limit: 10,
        ..MessageQuery::default()
    };
    assert_eq!(
        ids(&s.a.search_messages(in_range).await.unwrap()),
        ["m3", "m2"],
        "from inclusive, to exclusive"
    );
    let by_campaign = MessageQuery {
        campaign: Some("broadcast:b1".into()),
        recipient: Some("+31612345678".into()),
        channel: Some(Channel::Sms),
        status: Some(MessageStatus::Queued),
        category: Some("marketing".into()),
        from: 0,
        to: 10_000,
        limit: 10,
        ..MessageQuery::default()
    };
    assert_eq!(
        ids(&s.a.search_messages(by_campaign).await.unwrap()),
        ["m4"]
    );
    let m4 = s.b.message("m4").await.unwrap().unwrap();
    assert_eq!(
        m4.campaign.as_deref(),
        Some("broadcast:b1"),
        "read back with the message"
    );
    let none = MessageQuery {
        status: Some(MessageStatus::Read),
        from: 0,
        to: 10_000,
        limit: 10,
        ..MessageQuery::default()
    };
    assert!(s.a.search_messages(none).await.unwrap().is_empty());
}
