//! Customers' feeds: items kept once, listed a page at a time per
//! customer, marked (first times kept), counted; every node hears of a
//! change; and escalation: the next delivery waits its time after a send,
//! and a read cancels it.

use super::*;
use crossgate::store::ProviderStatus;
use crossgate::store::feed::{FeedChange, FeedCounts, FeedFilter, FeedItem, FeedQuery, Mark};
use std::collections::BTreeMap;

fn item(id: &str, customer: &str, created_at: i64) -> FeedItem {
    FeedItem {
        id: id.into(),
        customer_id: customer.into(),
        channel: Channel::Inbox,
        title: Some(format!("title of {id}")),
        body: format!("body of {id}"),
        action_url: Some("https://shop.example/a".into()),
        image_url: None,
        category: Some("marketing".into()),
        data: BTreeMap::from([("sku".to_owned(), "A-1".to_owned())]),
        created_at,
        expires_at: None,
        seen_at: None,
        read_at: None,
        archived_at: None,
    }
}

fn query(customer: &str, filter: FeedFilter, before: Option<(i64, String)>) -> FeedQuery {
    FeedQuery {
        customer_id: customer.into(),
        filter,
        before,
        limit: 2,
        now: 10_000,
    }
}

fn ids(items: &[FeedItem]) -> Vec<&str> {
    items.iter().map(|i| i.id.as_str()).collect()
}

pub async fn feed_items_are_listed_marked_and_counted_per_customer(s: Stores) {
    for (i, id) in ["i1", "i2", "i3"].iter().enumerate() {
        assert!(
            s.a.put_feed_item(item(id, "ada", 1_000 + i as i64))
                .await
                .unwrap()
        );
    }
    assert!(
        !s.b.put_feed_item(item("i1", "ada", 1_000)).await.unwrap(),
        "a retried delivery stores its item once"
    );
    s.a.put_feed_item(item("other", "bo", 1_500)).await.unwrap();
    let mut in_app = item("gone", "ada", 1_600);
    in_app.channel = Channel::InApp;
    in_app.expires_at = Some(5_000);
    s.a.put_feed_item(in_app).await.unwrap();

    // Newest first, a page at a time; an in-app item past its end is gone.
    let first =
        s.b.feed_items(query("ada", FeedFilter::Active, None))
            .await
            .unwrap();
    assert_eq!(ids(&first), ["i3", "i2"]);
    assert_eq!(first[0], item("i3", "ada", 1_002), "read back as stored");
    let next = Some((first[1].created_at, first[1].id.clone()));
    let second =
        s.b.feed_items(query("ada", FeedFilter::Active, next))
            .await
            .unwrap();
    assert_eq!(ids(&second), ["i1"]);
    assert_eq!(
        s.b.feed_counts("ada", 10_000).await.unwrap(),
        FeedCounts {
            unseen: 3,
            unread: 3
        }
    );
    assert_eq!(
        s.b.feed_counts("ada", 4_000).await.unwrap(),
        FeedCounts {
            unseen: 4,
            unread: 4
        },
        "the in-app item counts while it lasts"
    );

    // Marks: a read is seen too; the first time stays; only one's own.
    let read =
        s.a.mark_feed_item("ada", "i2", Mark::Read, 6_000)
            .await
            .unwrap()
            .unwrap();
    assert!(read.changes.read && read.changes.seen);
    assert_eq!(
        (read.item.seen_at, read.item.read_at),
        (Some(6_000), Some(6_000))
    );
    let again =
        s.b.mark_feed_item("ada", "i2", Mark::Read, 7_000)
            .await
            .unwrap()
            .unwrap();
    assert!(!again.changes.any());
    assert_eq!(again.item.read_at, Some(6_000));
    assert_eq!(
        s.a.mark_feed_item("bo", "i2", Mark::Read, 7_000)
            .await
            .unwrap(),
        None,
        "another customer's item is no item"
    );
    s.a.mark_feed_item("ada", "i1", Mark::Archived, 7_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        s.b.feed_counts("ada", 10_000).await.unwrap(),
        FeedCounts {
            unseen: 1,
            unread: 1
        }
    );
    let unread =
        s.b.feed_items(query("ada", FeedFilter::Unread, None))
            .await
            .unwrap();
    assert_eq!(ids(&unread), ["i3"]);
    let archived =
        s.b.feed_items(query("ada", FeedFilter::Archived, None))
            .await
            .unwrap();
    assert_eq!(ids(&archived), ["i1"]);

    let all_read = s.a.mark_feed_read("ada", 8_000).await.unwrap();
    assert_eq!(ids(&all_read), ["i3"]);
    assert_eq!(
        s.b.feed_counts("ada", 10_000).await.unwrap(),
        FeedCounts::default()
    );
    assert_eq!(
        s.b.feed_counts("bo", 10_000).await.unwrap(),
        FeedCounts {
            unseen: 1,
            unread: 1
        },
        "bo's feed is his own"
    );

    // Opening is kept to the minute, and read as a planning fact.
    s.a.feed_opened("ada", 100_000).await.unwrap();
    s.b.feed_opened("ada", 110_000).await.unwrap();
    let facts =
        s.b.planning_facts(
            crossgate::store::Audience::Customer("ada".into()),
            "customer:ada",
            None,
            true,
        )
        .await
        .unwrap();
    assert_eq!(facts.feed_opened_at, Some(100_000));
    s.a.feed_opened("ada", 200_000).await.unwrap();
    let facts =
        s.a.planning_facts(
            crossgate::store::Audience::Customer("ada".into()),
            "customer:ada",
            None,
            true,
        )
        .await
        .unwrap();
    assert_eq!(facts.feed_opened_at, Some(200_000));
}

pub async fn every_node_hears_of_a_feed_change(s: Stores) {
    let mut heard = s.b.feed_changes();
    // PostgreSQL's listener connects in the background: until it listens,
    // a notification is missed. Put items until one is heard (bounded).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut n = 0;
    let first = loop {
        n += 1;
        let id = format!("i{n}");
        s.a.put_feed_item(item(&id, "ada", 1_000 + n))
            .await
            .unwrap();
        match tokio::time::timeout(std::time::Duration::from_millis(200), heard.recv()).await {
            Ok(change) => break change.unwrap(),
            Err(_) => assert!(std::time::Instant::now() < deadline, "no change heard"),
        }
    };
    assert!(
        matches!(&first, FeedChange::Item { customer_id, .. } if customer_id == "ada"),
        "{first:?}"
    );
    while let Ok(Ok(_)) =
        tokio::time::timeout(std::time::Duration::from_millis(100), heard.recv()).await
    {}
    s.a.mark_feed_item("ada", "i1", Mark::Seen, 2_000)
        .await
        .unwrap()
        .unwrap();
    let marked = tokio::time::timeout(std::time::Duration::from_secs(5), heard.recv())
        .await
        .expect("the mark heard")
        .unwrap();
    assert_eq!(
        marked,
        FeedChange::Marked {
            customer_id: "ada".into()
        }
    );
}

pub async fn an_escalation_waits_and_a_read_ends_it(s: Stores) {
    // Two messages of inbox-then-sms: one read in time, one not.
    for id in ["read", "unread"] {
        let mut m = message(id, 1_000, &["twilio"]);
        m.deliveries[0].channel = Channel::Inbox;
        m.deliveries[0].connector = "inbox".into();
        m.deliveries[0].escalate_after = Some(5_000);
        m.deliveries.push(crossgate::store::NewDelivery {
            connector: "twilio".into(),
            escalate_after: None,
            ends_on_delivery: false,
            ..m.deliveries[0].clone()
        });
        m.deliveries[1].channel = Channel::Sms;
        insert(&*s.a, m).await;
    }
    let leased = s.a.lease_due(Lease::new(1_000, 10, LEASE)).await.unwrap();
    assert_eq!(leased.len(), 2);
    for d in &leased {
        assert_eq!(d.escalate_after, Some(5_000));
        let next = Next::Sent {
            provider_message_id: d.message_id.clone(),
            parts: Vec::new(),
            delivered: true,
            escalate_at: Some(6_001),
        };
        let ended =
            s.a.record_attempt(attempt(d, 1_000, Outcome::Sent, next))
                .await
                .unwrap();
        assert_eq!(ended, Some(MessageStatus::Delivered));
    }
    assert!(
        s.b.lease_due(Lease::new(6_000, 10, LEASE))
            .await
            .unwrap()
            .is_empty(),
        "the escalation waits its time"
    );
    let report = ProviderStatus {
        connector: "inbox".into(),
        provider_message_id: "read".into(),
        state: "read".into(),
        code: None,
        description: None,
        at: 3_000,
    };
    assert_eq!(
        s.b.apply_provider_status(report).await.unwrap().as_deref(),
        Some("read")
    );
    let due = s.b.lease_due(Lease::new(6_001, 10, LEASE)).await.unwrap();
    let escalated: Vec<(&str, &str)> = due
        .iter()
        .map(|d| (d.message_id.as_str(), d.connector.as_str()))
        .collect();
    assert_eq!(
        escalated,
        [("unread", "twilio")],
        "the read one ended its escalation"
    );
    assert_eq!(status(&*s.a, "read").await, MessageStatus::Read);
    assert_eq!(status(&*s.a, "unread").await, MessageStatus::Delivered);

    // The escalated SMS goes: the message keeps its status (the inbox
    // delivered it) but now answers to the SMS provider's id, so that
    // provider's reports find it.
    let ended =
        s.b.record_attempt(attempt(&due[0], 6_001, Outcome::Sent, sent()))
            .await
            .unwrap();
    assert_eq!(ended, None, "nothing finished: it was delivered already");
    let unread = s.a.message("unread").await.unwrap().unwrap();
    assert_eq!(unread.status, MessageStatus::Delivered);
    assert_eq!(unread.delivered_by.as_deref(), Some("twilio"));
    assert_eq!(unread.provider_message_id.as_deref(), Some("SM1"));
    let report = ProviderStatus {
        connector: "twilio".into(),
        provider_message_id: "SM1".into(),
        state: "read".into(),
        code: None,
        description: None,
        at: 7_000,
    };
    assert_eq!(
        s.a.apply_provider_status(report).await.unwrap().as_deref(),
        Some("unread"),
        "the SMS provider's report finds the message"
    );
    assert_eq!(status(&*s.a, "unread").await, MessageStatus::Read);
}

pub async fn feed_items_go_with_message_retention(s: Stores) {
    s.a.put_feed_item(item("old", "ada", 1_000)).await.unwrap();
    s.a.put_feed_item(item("new", "ada", 20_000)).await.unwrap();
    let horizon = Horizon {
        messages: 10_000,
        events: 0,
    };
    let purged = s.b.purge_history(horizon, 10).await.unwrap();
    assert_eq!(purged.feed_items, 1, "{purged:?}");
    let left =
        s.b.feed_items(query("ada", FeedFilter::All, None))
            .await
            .unwrap();
    assert_eq!(ids(&left), ["new"]);
}
