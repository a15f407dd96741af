//! A provider account's rate limit, held by two nodes on one PostgreSQL
//! database: 600 messages queued at once go out at 30 a second, never
//! over it by more than 10%, and none fails for the limit.

use crate::support::child::ChildGateway;
use crate::support::{default_twilio, get_at, post_at, postgres, sms};
use crossgate_tests::ProviderSim;
use std::time::{Duration, Instant};

const MESSAGES: usize = 600;
const RATE: f64 = 30.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_hold_one_accounts_rate_together() {
    let Some(url) = postgres::fresh_database("pacing::two_nodes_hold_one_accounts_rate").await
    else {
        return;
    };
    let sim = ProviderSim::start().await.unwrap();
    let connector = default_twilio(&sim.url()).replace(
        "channel = \"sms\"\n",
        "channel = \"sms\"\nrate = \"30/s\"\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = Vec::new();
    for n in 1..=2 {
        let node_dir = dir.path().join(format!("node-{n}"));
        std::fs::create_dir_all(&node_dir).unwrap();
        let toml = format!("node_name = \"node-{n}\"\n[dispatch]\nconcurrency = 64\n{connector}");
        nodes.push(ChildGateway::spawn_on(&node_dir, &toml, &url).await);
    }
    let client = reqwest::Client::new();
    let (_, listed) = get_at(&client, &nodes[1].url, "/v1/connectors").await;
    assert_eq!(
        listed["connectors"][0]["rate"],
        serde_json::json!({"per_second": 30.0, "burst": 1}),
        "{listed}"
    );
    // Queued at once: half through each node, before any goes out.
    let mut ids = Vec::with_capacity(MESSAGES);
    for i in 0..MESSAGES {
        let node = &nodes[i % 2];
        let (_, answer) = post_at(
            &client,
            &node.url,
            "/v1/messages",
            &sms("+31612345678", &format!("paced {i}")),
        )
        .await;
        ids.push(answer["id"].as_str().expect("accepted").to_owned());
    }
    // Bounded: 600 at 30/s is 20 s; give it 60.
    let deadline = Instant::now() + Duration::from_secs(60);
    while sim.requests().len() < MESSAGES {
        assert!(
            Instant::now() < deadline,
            "only {} sent",
            sim.requests().len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let times: Vec<Instant> = sim.requests().iter().map(|r| r.at).collect();
    assert_eq!(times.len(), MESSAGES, "each message once");
    let span = (*times.last().unwrap() - times[0]).as_secs_f64();
    let rate = (MESSAGES - 1) as f64 / span;
    // Above the limit is the failure this test is for (two nodes each
    // taking the whole rate would be twice it). A machine busy with other
    // tests wakes held sends late and loses turns (24/s once with the whole
    // suite beside it, 20.7/s once with a build beside that), so below is
    // bounded looser: the nodes must still share the rate, not halve it
    // (15/s).
    assert!(
        (RATE * 0.6..=RATE * 1.1).contains(&rate),
        "{rate:.1}/s over {span:.1} s"
    );
    // No five seconds of it above the limit by more than 10%. Turns are
    // spaced by the limit, but the simulator sees when requests arrive:
    // sends held for their turns that a busy machine wakes late arrive
    // together (68 in two seconds once, with builds running beside it), so
    // the window is long enough for such a stall to even out.
    let window = Duration::from_secs(5);
    let busiest = times
        .iter()
        .map(|start| {
            times
                .iter()
                .filter(|t| **t >= *start && **t < *start + window)
                .count()
        })
        .max()
        .unwrap();
    assert!(
        busiest as f64 <= window.as_secs_f64() * RATE * 1.1,
        "{busiest} in {window:?}"
    );
    // Nothing failed for the limit: every message was sent, once.
    for node in &nodes {
        node.quiesce().await;
    }
    for id in ids.iter().step_by(37) {
        let (_, message) = get_at(&client, &nodes[0].url, &format!("/v1/messages/{id}")).await;
        assert_eq!(message["status"], "sent", "{message}");
        assert_eq!(
            message["attempts"].as_array().unwrap().len(),
            1,
            "{message}"
        );
    }
}
