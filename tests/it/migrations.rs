//! Schema migrations: a database from the release before versioning is
//! brought up to date at start and keeps every message; one from a newer
//! build is refused; `crossgate migrate --check` reports without changing.

use crate::support::child::ChildGateway;
use crate::support::{default_twilio, repo_root};
use crossgate_tests::ProviderSim;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const SENT: &str = "msg_01a2325e566772d28a00c73e8f9ab28b";
const SCHEDULED: &str = "msg_01a2325e64ed714abc6bc180001266a2";
const PENDING: &str = "msg_01a2325e77e9713c856e5401f6378237";

/// `crossgate migrate` on a config in `dir` that names only the database.
fn migrate(dir: &Path, storage_url: &str, args: &[&str]) -> Output {
    let config = dir.join("migrate.toml");
    std::fs::write(&config, format!("[storage]\nurl = \"{storage_url}\"\n")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_crossgate"))
        .arg("migrate")
        .args(args)
        .arg("--config")
        .arg(&config)
        .output()
        .expect("run crossgate migrate")
}

/// `crossgate migrate` on the test's SQLite file.
fn migrate_sqlite(dir: &Path, args: &[&str]) -> Output {
    let url = format!("sqlite://{}", dir.join("crossgate.db").display());
    migrate(dir, &url, args)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn get(gateway: &ChildGateway, path: &str) -> Value {
    reqwest::get(format!("{}{path}", gateway.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_previous_release_database_is_migrated_and_keeps_its_messages() {
    let dir = tempfile::tempdir().unwrap();
    let fixture =
        std::fs::read_to_string(repo_root().join("tests/fixtures/previous-release.sql")).unwrap();
    rusqlite::Connection::open(dir.path().join("crossgate.db"))
        .unwrap()
        .execute_batch(&fixture)
        .unwrap();

    let check = migrate_sqlite(dir.path(), &["--check"]);
    assert!(check.status.success(), "{}", text(&check.stderr));
    let report = text(&check.stdout);
    assert!(
        report.contains("schema version 0; would apply:"),
        "{report}"
    );
    assert!(report.contains("1  messages, deliveries"), "{report}");
    assert!(report.contains("2  attempts record the node"), "{report}");
    let untouched = rusqlite::Connection::open(dir.path().join("crossgate.db")).unwrap();
    let versioned: bool = untouched
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'schema_migrations')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!versioned, "--check changed the file");
    drop(untouched);

    // The provider is back: the message that waited through the upgrade goes out.
    let sim = ProviderSim::start().await.unwrap();
    let toml = format!("node_name = \"upgraded\"\n{}", default_twilio(&sim.url()));
    let gateway = ChildGateway::spawn(dir.path(), &toml).await;

    let sent = get(&gateway, &format!("/v1/messages/{SENT}")).await;
    assert_eq!(sent["status"], "sent", "{sent}");
    assert_eq!(sent["attempts"].as_array().unwrap().len(), 1);
    assert!(
        sent["attempts"][0].get("node").is_none(),
        "written before nodes were recorded"
    );
    let customer = get(&gateway, "/v1/customers/cust-7").await;
    assert_eq!(
        customer["addresses"]["email"], "ana@shop.example",
        "{customer}"
    );
    let suppression = get(&gateway, "/v1/suppressions/email/bounced@shop.example").await;
    assert_eq!(suppression["reason"], "bounce", "{suppression}");

    let deadline = Instant::now() + Duration::from_secs(30);
    let pending = loop {
        let message = get(&gateway, &format!("/v1/messages/{PENDING}")).await;
        if message["status"] == "sent" {
            break message;
        }
        assert!(Instant::now() < deadline, "never delivered: {message}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let attempts = pending["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 4, "{pending}");
    assert_eq!(attempts[3]["node"], "upgraded");
    assert_eq!(
        sim.requests()[0].field("Body"),
        Some("Queued before the upgrade")
    );

    // The scheduled reminder keeps its keys: its cancel_key still cancels it.
    let cancelled: Value = reqwest::Client::new()
        .post(format!("{}/v1/cancellations", gateway.url))
        .json(&serde_json::json!({"to": {"phone": "+31612345678"}, "cancel_key": "cart-55"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        cancelled["cancelled_ids"],
        serde_json::json!([SCHEDULED]),
        "{cancelled}"
    );
    drop(gateway);

    let check = migrate_sqlite(dir.path(), &["--check"]);
    let report = text(&check.stdout);
    assert!(report.contains(&up_to_date()), "{report}");

    // A build that knows fewer versions than the file refuses to touch it.
    rusqlite::Connection::open(dir.path().join("crossgate.db"))
        .unwrap()
        .execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 0)",
            [],
        )
        .unwrap();
    let refused = migrate_sqlite(dir.path(), &["--check"]);
    assert!(!refused.status.success());
    let why = text(&refused.stderr);
    assert!(why.contains("schema version 99"), "{why}");
    assert!(why.contains("newer Crossgate"), "{why}");
    let serve = Command::new(env!("CARGO_BIN_EXE_crossgate"))
        .args(["serve", "--config"])
        .arg(dir.path().join("crossgate.toml"))
        .output()
        .unwrap();
    assert!(!serve.status.success());
    assert!(
        text(&serve.stderr).contains("newer Crossgate"),
        "{}",
        text(&serve.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_is_migrated_and_refused_when_newer() {
    let Some(url) =
        crate::support::postgres::fresh_database("migrations::postgres_is_migrated").await
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| migrate(dir.path(), &url, args);
    let report = text(&run(&["--check"]).stdout);
    assert!(
        report.contains("schema version 0; would apply:"),
        "{report}"
    );
    let applied = run(&[]);
    assert!(applied.status.success(), "{}", text(&applied.stderr));
    let report = text(&run(&["--check"]).stdout);
    assert!(report.contains(&up_to_date()), "{report}");

    let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    db.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 0)",
        &[],
    )
    .await
    .unwrap();
    let refused = run(&["--check"]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("newer Crossgate"),
        "{}",
        text(&refused.stderr)
    );
}

/// What `migrate --check` says of a database at this build's version.
fn up_to_date() -> String {
    format!(
        "schema version {}, up to date",
        crossgate::store::migrations::STEPS.len()
    )
}
