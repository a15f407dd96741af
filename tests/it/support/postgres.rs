//! PostgreSQL for tests: a fresh database per test on the server that
//! `CROSSGATE_TEST_POSTGRES_URL` names (`make test` starts one on loopback).
//!
//! Without it these tests cannot run. They then say so on stderr and pass,
//! and `make test` repeats it loudly at the end; under CI (`CI=true`) they
//! fail instead, so CI can never skip them silently.

use tokio_postgres::error::SqlState;

pub const URL_VAR: &str = "CROSSGATE_TEST_POSTGRES_URL";

/// A new database already at this build's schema, or `None` when there is
/// no server to use: a copy of a template migrated once per test run
/// (`CREATE DATABASE ... TEMPLATE`), so the store suite does not migrate a
/// database per test.
pub async fn migrated_database(test: &str) -> Option<String> {
    static TEMPLATE: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    /// One copy at a time: PostgreSQL refuses to copy a template another
    /// session is copying or connected to.
    static COPYING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let server = server_url(test)?;
    let template = TEMPLATE
        .get_or_init(|| async {
            let name = create(&server, "crossgate_template").await;
            let url = with_database(&server, &name);
            let store = crossgate::store::open(
                &crossgate::config::Database::Postgres(url),
                1,
                "template",
                crossgate::clock::wall_ms(),
            )
            .await
            .expect("migrate the template database");
            drop(store);
            name
        })
        .await;
    let _one_at_a_time = COPYING.lock().await;
    let name = format!("crossgate_test_{}", uuid::Uuid::now_v7().simple());
    let client = connect(&server).await;
    // The template's pool may still be closing its connection: a bounded wait.
    for tries_left in (0..50).rev() {
        match client
            .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
            .await
        {
            Ok(()) => break,
            Err(e) if tries_left > 0 && e.code() == Some(&SqlState::OBJECT_IN_USE) => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("copy the template database: {e}"),
        }
    }
    Some(with_database(&server, &name))
}

/// A new, empty database's URL, or `None` when there is no server to use.
pub async fn fresh_database(test: &str) -> Option<String> {
    let server = server_url(test)?;
    let name = create(&server, "crossgate_test").await;
    Some(with_database(&server, &name))
}

/// The server's URL, or `None` (outside CI) when there is none.
fn server_url(test: &str) -> Option<String> {
    let Ok(url) = std::env::var(URL_VAR) else {
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
        assert!(
            !ci,
            "{test} needs PostgreSQL and CI=true: set {URL_VAR} (make test starts a server)"
        );
        eprintln!(
            "SKIPPED {test}: no PostgreSQL; set {URL_VAR}=postgres://USER@127.0.0.1:PORT/postgres"
        );
        return None;
    };
    Some(url)
}

async fn connect(server: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(server, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot reach {URL_VAR}: {e}"));
    tokio::spawn(connection);
    client
}

/// An empty database named `prefix_<unique>`; its name.
async fn create(server: &str, prefix: &str) -> String {
    let name = format!("{prefix}_{}", uuid::Uuid::now_v7().simple());
    connect(server)
        .await
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create a test database");
    name
}

/// `url` pointing at database `name` instead of its own.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let (host, _) = base
        .rsplit_once('/')
        .filter(|(host, _)| host.contains("://") && !host.ends_with('/'))
        .unwrap_or((base, ""));
    match query {
        Some(query) => format!("{host}/{name}?{query}"),
        None => format!("{host}/{name}"),
    }
}
