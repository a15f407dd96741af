//! What journey tests do over and over: post events, move the clock, read
//! a customer's runs until one is as expected, and read back the SMS texts
//! the provider got, each bounded in time.

use super::TestGateway;
use crossgate_tests::ProviderSim;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// How long a test waits for the runner to do something.
pub const RUNNER_TIMEOUT: Duration = Duration::from_secs(20);

/// `POST /v1/events` (one event or `{"events": [...]}`), expecting `202`.
pub async fn post_events(gw: &TestGateway, body: &Value) -> Value {
    let (status, answer) = gw.post("/v1/events", body).await;
    assert_eq!(status, 202, "{answer}");
    answer
}

/// Move the gateway's manual clock forward by `by` (`"1h"`); the time it
/// then shows.
pub async fn advance(gw: &TestGateway, by: &str) -> jiff::Timestamp {
    let (status, answer) = gw.post("/v1/admin/clock", &json!({"advance": by})).await;
    assert_eq!(status, 200, "{answer}");
    answer["now"].as_str().unwrap().parse().unwrap()
}

/// A customer's runs, newest first (the first page).
pub async fn runs(gw: &TestGateway, customer: &str) -> Vec<Value> {
    gw.get_ok(&format!("/v1/customers/{customer}/journeys"))
        .await["runs"]
        .as_array()
        .unwrap()
        .clone()
}

/// A customer's runs of `journey`, newest first.
pub async fn runs_of(gw: &TestGateway, customer: &str, journey: &str) -> Vec<Value> {
    let all = runs(gw, customer).await;
    all.into_iter()
        .filter(|r| r["journey"] == journey)
        .collect()
}

/// Wait until the customer's newest run of `journey` satisfies `done`.
pub async fn run_until(
    gw: &TestGateway,
    customer: &str,
    journey: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + RUNNER_TIMEOUT;
    loop {
        let found = runs_of(gw, customer, journey).await.into_iter().next();
        if let Some(run) = &found
            && done(run)
        {
            return run.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{journey} of {customer}: {found:#?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The SMS texts the provider got, in order.
pub fn texts(sim: &ProviderSim) -> Vec<String> {
    sim.requests()
        .iter()
        .filter(|r| r.path.contains("/Accounts/"))
        .map(|r| r.field("Body").unwrap_or_default().to_owned())
        .collect()
}

/// The SMS texts once there are `n` and the gateway is quiet (so no more
/// are on their way), in order.
pub async fn texts_settle_at(gw: &TestGateway, sim: &ProviderSim, n: usize) -> Vec<String> {
    let deadline = Instant::now() + RUNNER_TIMEOUT;
    while texts(sim).len() < n {
        assert!(Instant::now() < deadline, "texts: {:?}", texts(sim));
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    gw.quiesce().await;
    texts(sim)
}

/// A customer reachable by SMS at `phone`, in UTC.
pub async fn sms_customer(gw: &TestGateway, id: &str, phone: &str) {
    let profile = json!({"addresses": {"phone": phone}, "timezone": "UTC"});
    assert_eq!(gw.put_customer(id, &profile).await.0, 201);
}
