//! Status callbacks: the outbox.

use super::*;

pub async fn the_outbox_holds_every_status_change_until_posted(s: Stores) {
    let mut m = message("m1", 1_000, &["twilio"]);
    m.callback_url = Some("https://shop.example/hooks".into());
    insert(&*s.a, m).await;
    let leased = lease_one(&*s.a, 1_000).await;
    s.a.record_attempt(attempt(&leased, 1_000, Outcome::Sent, sent()))
        .await
        .unwrap();
    assert_eq!(s.a.queue_health(2_000).await.unwrap().outbox, 3);

    let first =
        s.a.lease_callbacks(Lease::new(2_000, 10, LEASE))
            .await
            .unwrap();
    assert!(
        s.b.lease_callbacks(Lease::new(2_000, 10, LEASE))
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
        s.b.lease_callbacks(Lease::new(8_999, 10, LEASE))
            .await
            .unwrap()
            .is_empty()
    );
    let retried =
        s.b.lease_callbacks(Lease::new(9_000, 10, LEASE))
            .await
            .unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!((retried[0].id, retried[0].attempts), (first[1].id, 1));
}

pub async fn a_messages_callbacks_are_read_back_in_order(s: Stores) {
    let mut m = message("m1", 1_000, &["twilio"]);
    m.callback_url = Some("https://shop.example/hooks".into());
    insert(&*s.a, m).await;
    let leased = lease_one(&*s.a, 1_000).await;
    s.a.record_attempt(attempt(&leased, 1_000, Outcome::Sent, sent()))
        .await
        .unwrap();
    insert(&*s.a, message("m2", 1_000, &["twilio"])).await;
    let callbacks = s.b.callbacks_of("m1").await.unwrap();
    let said: Vec<String> = callbacks
        .iter()
        .map(|c| {
            let payload: serde_json::Value = serde_json::from_str(&c.payload).unwrap();
            payload["status"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        said,
        ["queued", "sending", "sent"],
        "every change, in order"
    );
    assert!(
        callbacks
            .iter()
            .all(|c| c.url == "https://shop.example/hooks")
    );
    assert!(
        callbacks
            .iter()
            .all(|c| c.state == "pending" && c.attempts == 0)
    );
    assert!(s.b.callbacks_of("m2").await.unwrap().is_empty());
}
