//! Profiles, the address index, suppressions, keyword consent and consent requests.

use super::*;

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
        s.b.planning_facts(owners("+31622222222"), "phone:+31622222222", None, false);
    assert_eq!(facts.await.unwrap().profiles.len(), 1);
    let facts =
        s.b.planning_facts(owners("+31611111111"), "phone:+31611111111", None, false);
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
    assert!(s.b.delete_customer("c1", wall_ms()).await.unwrap());
    assert!(s.a.customer("c1").await.unwrap().is_none());
    let erased = s.a.message("m1").await.unwrap().unwrap();
    assert_eq!(erased.status, MessageStatus::Cancelled);
    assert!(!s.a.delete_customer("c1", wall_ms()).await.unwrap());
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

/// START lifts the consent a keyword STOP withdrew, and only that.
pub async fn start_lifts_only_what_stop_withdrew(s: Stores) {
    let profile: Profile =
        serde_json::from_value(serde_json::json!({"addresses": {"phone": "+31622222222"}}))
            .unwrap();
    s.a.put_customer("c1", profile.validate(1_000).unwrap(), 1_000)
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
    s.a.put_customer(
        "c1",
        profile("+31612345678").validate(1_000).unwrap(),
        1_000,
    )
    .await
    .unwrap();
    for id in ["m1", "m2"] {
        let mut asking = message(id, 1_000, &["twilio"]);
        asking.customer_id = Some("c1".into());
        insert(&*s.a, asking).await;
    }
    for leased in s.a.lease_due(Lease::new(1_000, 10, LEASE)).await.unwrap() {
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

/// A dead address is suppressed and leaves the profiles that hold it: the
/// customer a message was for, or, when a provider's report names no
/// message, every customer with it.
pub async fn a_dead_address_is_suppressed_and_forgotten(s: Stores) {
    s.a.put_customer("c1", profile("+31611111111"), 1_000)
        .await
        .unwrap();
    s.a.put_customer("c2", profile("+31622222222"), 1_000)
        .await
        .unwrap();
    let mut m = message("m1", 1_000, &["twilio"]);
    m.customer_id = Some("c1".into());
    insert(&*s.a, m).await;
    let dead = |address: &str| {
        Suppression::dead_address(Channel::Sms, address.into(), "twilio", None, 2_000)
    };
    let done =
        s.b.address_is_dead(dead("+31611111111"), Some("m1".into()), 2_000)
            .await
            .unwrap();
    assert!(done.suppressed);
    assert_eq!(done.forgotten_by, ["c1"]);
    let c1 = s.a.customer("c1").await.unwrap().unwrap();
    assert_eq!(c1.profile.addresses.phone, None);
    let entry =
        s.a.suppressions(vec![(Channel::Sms, "+31611111111".into())])
            .await
            .unwrap();
    assert_eq!(entry[0].reason, SuppressionReason::DeadAddress);

    // Both hold the email: a bounce naming no message takes it from each.
    let email = Suppression::dead_address(
        Channel::Email,
        "ana@shop.example".into(),
        "sendgrid",
        Some("550 5.1.1".into()),
        3_000,
    );
    assert_eq!(email.reason, SuppressionReason::Bounce);
    let done = s.a.address_is_dead(email, None, 3_000).await.unwrap();
    let mut forgotten = done.forgotten_by.clone();
    forgotten.sort();
    assert_eq!(forgotten, ["c1", "c2"]);
    let c2 = s.b.customer("c2").await.unwrap().unwrap();
    assert_eq!(c2.profile.addresses.email, None);
    assert_eq!(c2.profile.addresses.phone.as_deref(), Some("+31622222222"));
}

pub async fn console_sessions_end_everywhere_and_expire(s: Stores) {
    use crossgate::store::sessions::ConsoleSession;
    let session = ConsoleSession {
        id: "hash-of-a-cookie".into(),
        key_name: "viewer".into(),
        admin: false,
        csrf: "check".into(),
        created_at: 1_000,
        expires_at: 9_000,
    };
    s.a.start_session(session.clone()).await.unwrap();
    assert_eq!(
        s.b.session("hash-of-a-cookie", 2_000).await.unwrap(),
        Some(session.clone())
    );
    assert_eq!(
        s.b.session("hash-of-a-cookie", 9_000).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(s.b.session("another", 2_000).await.unwrap(), None);
    assert!(s.b.end_session("hash-of-a-cookie", 3_000).await.unwrap());
    assert!(!s.a.end_session("hash-of-a-cookie", 3_001).await.unwrap());
    assert_eq!(
        s.a.session("hash-of-a-cookie", 3_500).await.unwrap(),
        None,
        "signed out on every node"
    );
}
