use super::*;
use crossgate::store::health::{SecondCount, StoredCircuit};

/// Every node's attempts add up per connector and second; seconds past
/// the window are forgotten; a circuit moves once, by whichever node names
/// the state it leaves first.
pub async fn connectors_health_is_shared_by_every_node(s: Stores) {
    let count = |second, ok, failed| SecondCount { second, ok, failed };
    s.a.share_health("node-a", vec![("vonage".into(), count(100, 3, 1))], 0, 0)
        .await
        .unwrap();
    s.a.share_health("node-a", vec![("vonage".into(), count(100, 1, 1))], 0, 0)
        .await
        .unwrap();
    let shared =
        s.b.share_health(
            "node-b",
            vec![
                ("vonage".into(), count(100, 0, 2)),
                ("vonage".into(), count(90, 5, 0)),
                ("twilio".into(), count(101, 7, 0)),
            ],
            95,
            100,
        )
        .await
        .unwrap();
    let mut counts = shared.counts.clone();
    counts.sort_by(|a, b| (&a.0, a.1.second).cmp(&(&b.0, b.1.second)));
    assert_eq!(
        counts,
        [
            ("twilio".to_owned(), count(101, 7, 0)),
            ("vonage".to_owned(), count(100, 4, 4)),
        ]
    );
    let forgotten = s.a.share_health("node-a", Vec::new(), 0, 0).await.unwrap();
    assert!(
        forgotten.counts.iter().all(|(_, c)| c.second >= 95),
        "second 90 was forgotten: {:?}",
        forgotten.counts
    );

    let open = StoredCircuit {
        connector: "vonage".into(),
        state: "open".into(),
        since: 1_000,
        reason: "4 of 8 attempts failed within 1m".into(),
    };
    assert!(s.a.move_circuit(None, &open).await.unwrap());
    assert!(!s.b.move_circuit(None, &open).await.unwrap(), "opened once");
    let half_open = StoredCircuit {
        state: "half_open".into(),
        since: 31_000,
        reason: "probing after 30s".into(),
        ..open.clone()
    };
    assert!(
        s.b.move_circuit(Some(("open", 1_000)), &half_open)
            .await
            .unwrap()
    );
    assert!(
        !s.a.move_circuit(Some(("open", 1_000)), &half_open)
            .await
            .unwrap(),
        "a node that read the old state moves nothing"
    );
    let circuits =
        s.a.share_health("node-a", Vec::new(), 0, 0)
            .await
            .unwrap()
            .circuits;
    assert_eq!(circuits, [half_open]);
}
