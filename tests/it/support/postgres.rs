//! PostgreSQL for tests: a fresh database per test on the server that
//! `CROSSGATE_TEST_POSTGRES_URL` names (`make test` starts one on loopback).
//!
//! Without it these tests cannot run. They then say so on stderr and pass,
//! and `make test` repeats it loudly at the end; under CI (`CI=true`) they
//! fail instead, so CI can never skip them silently.

pub const URL_VAR: &str = "CROSSGATE_TEST_POSTGRES_URL";

/// A new, empty database's URL, or `None` when there is no server to use.
pub async fn fresh_database(test: &str) -> Option<String> {
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
    let name = format!("crossgate_test_{}", uuid::Uuid::now_v7().simple());
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot reach {URL_VAR}: {e}"));
    tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create a test database");
    Some(with_database(&url, &name))
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
