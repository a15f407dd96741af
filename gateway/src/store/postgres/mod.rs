//! The shared store: several gateway nodes on one PostgreSQL database.
//!
//! Every node is stateless; the database is the only coordination. A due
//! delivery is claimed with `FOR UPDATE SKIP LOCKED` under a lease, so one
//! node works on it at a time and the others skip it without waiting; a
//! lease that runs out (its node died or stalled) is taken over by whoever
//! leases next, after an `interrupted` attempt is recorded. Idempotency and
//! dedup keys are unique in the database, so two nodes racing on one key
//! cannot both win: the loser's transaction conflicts, runs again, and then
//! sees the winner's message.
//!
//! Unlike SQLite, nothing is recovered at start: other nodes' leases are
//! alive, and expire on their own.
//!
//! Split as the SQLite store is: [`queue`], [`messages`], [`outbox`],
//! [`customers`]; [`migrations`] holds the schema.

mod batch;
pub mod migrations;
mod recorder;

use super::{DueWork, Purged, Store, StoreError};
use crate::store::Outage;
use crate::store::replies::{NewReply, ReplyRecorded};
use crate::store::{Horizon, Result};
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

/// A transaction that lost a race (deadlock, a key another node just
/// took) runs again at most this often.
pub(crate) const CONFLICT_RETRIES: u32 = 5;
/// How long a request waits for a connection before the database counts
/// as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const PING_TIMEOUT: Duration = Duration::from_secs(2);

pub type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// What queries run on: a pooled connection or a transaction on one. Each
/// statement is prepared once per connection and reused.
#[async_trait]
pub trait Sql: Sync {
    async fn rows(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>>;
    /// Rows changed.
    async fn exec(&self, sql: &str, params: Params<'_>) -> Result<u64>;

    async fn opt(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>> {
        Ok(self.rows(sql, params).await?.into_iter().next())
    }

    async fn one(&self, sql: &str, params: Params<'_>) -> Result<Row> {
        self.opt(sql, params)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("no row from: {sql}")))
    }
}

/// Both run a statement the same way: prepared once, then executed.
macro_rules! prepared {
    ($($client:ty),*) => {$(
        #[async_trait]
        impl Sql for $client {
            async fn rows(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
                let statement = self.prepare_cached(sql).await?;
                Ok(self.query(&statement, params).await?)
            }

            async fn exec(&self, sql: &str, params: Params<'_>) -> Result<u64> {
                let statement = self.prepare_cached(sql).await?;
                Ok(self.execute(&statement, params).await?)
            }
        }
    )*};
}

prepared!(deadpool_postgres::Transaction<'_>, Object);

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        let Some(db) = e.as_db_error() else {
            let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
            return if e.is_closed() || io {
                // No answer from the server: the connection broke or never was.
                StoreError::Unavailable(e.to_string())
            } else {
                StoreError::Database(e.to_string())
            };
        };
        let text = format!("{} ({})", db.message(), db.code().code());
        let code = db.code().code();
        match *db.code() {
            SqlState::T_R_DEADLOCK_DETECTED | SqlState::T_R_SERIALIZATION_FAILURE => {
                StoreError::Conflict(text)
            }
            // The server is going away or not taking work now (57P01 an
            // administrator's restart, 57P03 still starting, class 08 a
            // broken connection, class 53 no disk, memory or connections
            // left, 57014 a statement timeout): the same request later will
            // be taken.
            _ if code.starts_with("08") => StoreError::Unavailable(text),
            _ if code == "53100" => StoreError::Outage(Outage::DiskFull, text),
            _ if code.starts_with("53") => StoreError::Outage(Outage::Resources, text),
            _ if code == "57014" => StoreError::Outage(Outage::TimeLimit, text),
            _ if code.starts_with("57") => StoreError::Outage(Outage::Restarting, text),
            _ => StoreError::Database(text),
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Unavailable(format!("no database connection: {e}"))
    }
}

/// Run `$body` (which uses the transaction `$tx`) and commit. A conflict
/// (deadlock, serialization failure, a key another node took first) rolls
/// it back and runs it again, against what the winner committed.
macro_rules! transaction {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let mut tries = 0;
        loop {
            let mut client = $store.client().await?;
            let $tx = client.transaction().await?;
            match $body {
                Ok(value) => {
                    $tx.commit().await?;
                    break Ok(value);
                }
                Err($crate::store::StoreError::Conflict(why)) if tries < $crate::store::postgres::CONFLICT_RETRIES => {
                    tries += 1;
                    tracing::debug!(%why, tries, "transaction conflicted; running it again");
                }
                Err(e) => break Err(e),
            }
        }
    }};
}

// After `transaction!`, which they use.
mod campaigns;
mod customers;
mod feed;
mod health;
mod journeys;
mod messages;
mod outbox;
mod pace;
mod queue;
mod report_days;
mod sessions;

pub struct PostgresStore {
    pool: Pool,
    /// Reports and segment counts: their own few connections, each
    /// statement under [`crate::store::ANALYTICS_TIMEOUT`], so a long report
    /// never takes the connections sends are planned and recorded with.
    analytics: Pool,
    /// Recorded with every attempt.
    node: Arc<str>,
    attempts: batch::Batcher<recorder::Attempts>,
    messages: batch::Batcher<messages::Inserts>,
    /// Changes to customers' feeds on any node, heard through `LISTEN`.
    feed_changes: tokio::sync::broadcast::Sender<crate::store::feed::FeedChange>,
    /// How the listener connects, and the listener once something listens
    /// (a gateway without the feed channels keeps no such connection).
    listen_with: (
        tokio_postgres::Config,
        tokio_postgres_rustls::MakeRustlsConnect,
    ),
    listener: std::sync::OnceLock<feed::Listener>,
}

impl PostgresStore {
    /// Connect, bring the schema up to date (one node at a time), and
    /// keep up to `max_connections` connections.
    pub async fn open(url: &str, max_connections: usize, node: &str) -> Result<PostgresStore> {
        let analytics = pool(url, ANALYTICS_CONNECTIONS)?;
        let pool = pool(url, max_connections)?;
        let mut client = pool.get().await?;
        migrations::apply(&mut client, &crate::config::without_password(url)).await?;
        customers::build_trait_index(&client).await?;
        drop(client);
        let node: Arc<str> = Arc::from(node);
        let feed_changes = tokio::sync::broadcast::channel(crate::store::feed::CHANGES_BUFFER).0;
        Ok(PostgresStore {
            feed_changes,
            listen_with: connect_with(url)?,
            listener: std::sync::OnceLock::new(),
            attempts: batch::Batcher::start(
                pool.clone(),
                recorder::Attempts { node: node.clone() },
            ),
            messages: batch::Batcher::start(pool.clone(), messages::Inserts),
            pool,
            analytics,
            node,
        })
    }

    async fn client(&self) -> Result<Object> {
        Ok(self.pool.get().await?)
    }

    /// A connection of the analytics pool, its statements bounded in time.
    async fn analyst(&self) -> Result<Object> {
        let client = self.analytics.get().await?;
        let ms = crate::store::ANALYTICS_TIMEOUT.as_millis();
        client
            .batch_execute(&format!("SET statement_timeout = {ms}"))
            .await?;
        Ok(client)
    }
}

/// Connections of the analytics pool.
const ANALYTICS_CONNECTIONS: usize = 2;

/// A pool of connections; TLS as the URL's `sslmode` asks (`prefer`, the
/// default, uses it when the server offers it), verified against the
/// web's root certificates.
pub fn pool(url: &str, max_connections: usize) -> Result<Pool> {
    let (config, tls) = connect_with(url)?;
    let manager = Manager::from_config(
        config,
        tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(max_connections)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(CONNECT_TIMEOUT))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .build()
        .map_err(|e| StoreError::Database(format!("cannot build the connection pool: {e}")))
}

/// The URL's settings and the TLS every connection uses.
fn connect_with(
    url: &str,
) -> Result<(
    tokio_postgres::Config,
    tokio_postgres_rustls::MakeRustlsConnect,
)> {
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| StoreError::Database(format!("not a PostgreSQL URL: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Database(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok((config, tokio_postgres_rustls::MakeRustlsConnect::new(tls)))
}

/// A count or number column, read as the unsigned value it always is.
fn count(row: &Row, column: usize) -> u32 {
    u32::try_from(row.get::<_, i64>(column)).unwrap_or(0)
}

#[async_trait]
impl Store for PostgresStore {
    async fn record_reply(&self, reply: NewReply) -> Result<ReplyRecorded> {
        transaction!(self, |tx| journeys::record_reply(&tx, &reply).await)
    }

    /// Answers within [`PING_TIMEOUT`] either way: a load balancer's health
    /// check should not wait out the pool's connect timeout.
    async fn due_work(&self, now: i64) -> Result<DueWork> {
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| DueWork::sql("$1"));
        let row = self.client().await?.one(&SQL, &[&now]).await?;
        Ok(DueWork::from_counts([0, 1, 2, 3, 4].map(|i| row.get(i))))
    }

    async fn ping(&self, now: i64) -> Result<()> {
        // A row written, not only read: a server that cannot write (a full
        // disk, a read-only standby) is not ready.
        let ping = async {
            self.client()
                .await?
                .exec(
                    "INSERT INTO gateway_state (name, value, updated_at)
                     VALUES ('readiness-probe', '', $1)
                     ON CONFLICT (name) DO UPDATE SET updated_at = excluded.updated_at",
                    &[&now],
                )
                .await
        };
        match tokio::time::timeout(PING_TIMEOUT, ping).await {
            Ok(answer) => answer.map(|_| ()),
            Err(_) => Err(StoreError::Unavailable(format!(
                "no answer within {} s",
                PING_TIMEOUT.as_secs()
            ))),
        }
    }

    async fn shared_secret(&self, name: &str, candidate: &str, now: i64) -> Result<String> {
        let client = self.client().await?;
        client
            .exec(
                "INSERT INTO gateway_state (name, value, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO NOTHING",
                &[&name, &candidate, &now],
            )
            .await?;
        let row = client
            .rows("SELECT value FROM gateway_state WHERE name = $1", &[&name])
            .await?;
        row.first()
            .map(|r| r.get(0))
            .ok_or_else(|| StoreError::Database(format!("secret {name:?} vanished")))
    }

    async fn purge_history(&self, before: Horizon, limit: usize) -> Result<Purged> {
        messages::purge_history(&self.client().await?, before, limit).await
    }

    async fn purge_expired_keys(&self, now: i64, limit: usize) -> Result<Purged> {
        messages::purge_expired_keys(&self.client().await?, now, limit).await
    }
}
