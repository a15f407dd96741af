//! Customers' feeds in the shared database. Every change is also a
//! `NOTIFY` on [`CHANNEL`], sent when its transaction commits; each node
//! keeps one connection that `LISTEN`s and hands what it hears to its live
//! streams, so an item delivered by one node reaches a customer connected
//! to another.

use super::{PostgresStore, Sql};
use crate::store::feed::{
    COLUMNS, COUNTS, FeedChange, FeedCounts, FeedItem, FeedQuery, FeedStore, Mark, Marked,
    OPENED_GRANULARITY_MS, data_from_json, data_json,
};
use crate::store::{Result, StoreError};
use async_trait::async_trait;
use std::sync::LazyLock;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_postgres::{AsyncMessage, Row};

/// The notification channel feed changes travel on.
const CHANNEL: &str = "crossgate_feed";
/// How long the listener waits before connecting again.
const RECONNECT: Duration = Duration::from_secs(1);

fn item(row: &Row) -> Result<FeedItem> {
    Ok(FeedItem {
        id: row.get(0),
        customer_id: row.get(1),
        channel: row
            .get::<_, String>(2)
            .parse()
            .map_err(StoreError::Corrupt)?,
        title: row.get(3),
        body: row.get(4),
        action_url: row.get(5),
        image_url: row.get(6),
        category: row.get(7),
        data: data_from_json(row.get(8)).map_err(StoreError::Corrupt)?,
        created_at: row.get(9),
        expires_at: row.get(10),
        seen_at: row.get(11),
        read_at: row.get(12),
        archived_at: row.get(13),
    })
}

/// When the customer last opened their feed: a planning fact.
pub async fn opened_at(db: &impl Sql, customer_id: &str) -> Result<Option<i64>> {
    Ok(db
        .opt(
            "SELECT opened_at FROM feeds WHERE customer_id = $1",
            &[&customer_id],
        )
        .await?
        .map(|r| r.get(0)))
}

async fn one(
    db: &impl Sql,
    customer_id: &str,
    id: &str,
    now: i64,
    lock: bool,
) -> Result<Option<FeedItem>> {
    static READ: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {COLUMNS} FROM feed_items
             WHERE id = $1 AND customer_id = $2 AND (expires_at IS NULL OR expires_at > $3)"
        )
    });
    static LOCK: LazyLock<String> = LazyLock::new(|| format!("{} FOR UPDATE", *READ));
    let sql = if lock { &*LOCK } else { &*READ };
    db.opt(sql, &[&id, &customer_id, &now])
        .await?
        .map(|r| item(&r))
        .transpose()
}

async fn notify(db: &impl Sql, change: &FeedChange) -> Result<()> {
    db.exec("SELECT pg_notify($1, $2)", &[&CHANNEL, &change.encode()])
        .await?;
    Ok(())
}

#[async_trait]
impl FeedStore for PostgresStore {
    async fn put_feed_item(&self, item: FeedItem) -> Result<bool> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "WITH i AS (
                     INSERT INTO feed_items ({COLUMNS})
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                     ON CONFLICT (id) DO NOTHING
                     RETURNING id, customer_id)
                 SELECT pg_notify('{CHANNEL}', 'item ' || customer_id || ' ' || id) FROM i"
            )
        });
        let added = self
            .client()
            .await?
            .rows(
                &SQL,
                &[
                    &item.id,
                    &item.customer_id,
                    &item.channel.as_str(),
                    &item.title,
                    &item.body,
                    &item.action_url,
                    &item.image_url,
                    &item.category,
                    &data_json(&item.data),
                    &item.created_at,
                    &item.expires_at,
                    &item.seen_at,
                    &item.read_at,
                    &item.archived_at,
                ],
            )
            .await?;
        Ok(!added.is_empty())
    }

    async fn feed_items(&self, query: FeedQuery) -> Result<Vec<FeedItem>> {
        let (before_at, before_id) = query
            .before
            .clone()
            .map_or((None, None), |(at, id)| (Some(at), Some(id)));
        let sql = format!(
            "SELECT {COLUMNS} FROM feed_items
             WHERE customer_id = $1 AND (expires_at IS NULL OR expires_at > $2)
               AND {}
               AND ($3::bigint IS NULL OR (created_at, id) < ($3, $4::text))
             ORDER BY created_at DESC, id DESC LIMIT $5",
            query.filter.sql()
        );
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        self.client()
            .await?
            .rows(
                &sql,
                &[
                    &query.customer_id,
                    &query.now,
                    &before_at,
                    &before_id,
                    &limit,
                ],
            )
            .await?
            .iter()
            .map(item)
            .collect()
    }

    async fn feed_item(&self, customer_id: &str, id: &str, now: i64) -> Result<Option<FeedItem>> {
        one(&self.client().await?, customer_id, id, now, false).await
    }

    async fn mark_feed_item(
        &self,
        customer_id: &str,
        id: &str,
        mark: Mark,
        now: i64,
    ) -> Result<Option<Marked>> {
        transaction!(self, |tx| async {
            let Some(mut item) = one(&tx, customer_id, id, now, true).await? else {
                return Ok(None);
            };
            let changes = item.apply(mark, now);
            if changes.any() {
                tx.exec(
                    "UPDATE feed_items SET seen_at = $2, read_at = $3, archived_at = $4
                     WHERE id = $1",
                    &[&item.id, &item.seen_at, &item.read_at, &item.archived_at],
                )
                .await?;
                let change = FeedChange::Marked {
                    customer_id: customer_id.to_owned(),
                };
                notify(&tx, &change).await?;
            }
            Ok(Some(Marked { item, changes }))
        }
        .await)
    }

    async fn mark_feed_read(&self, customer_id: &str, now: i64) -> Result<Vec<FeedItem>> {
        // One notification however many rows: PostgreSQL folds identical
        // notifications of one transaction.
        let rows = self
            .client()
            .await?
            .rows(
                &format!(
                    "WITH r AS (
                         UPDATE feed_items SET read_at = $2, seen_at = COALESCE(seen_at, $2)
                         WHERE customer_id = $1 AND read_at IS NULL AND archived_at IS NULL
                           AND (expires_at IS NULL OR expires_at > $2)
                         RETURNING {COLUMNS})
                     SELECT {COLUMNS}, pg_notify('{CHANNEL}', 'marked ' || $1) FROM r"
                ),
                &[&customer_id, &now],
            )
            .await?;
        rows.iter().map(item).collect()
    }

    async fn feed_counts(&self, customer_id: &str, now: i64) -> Result<FeedCounts> {
        let row = self
            .client()
            .await?
            .one(COUNTS, &[&customer_id, &now])
            .await?;
        let count = |i: usize| {
            u64::try_from(row.get::<_, i64>(i))
                .map_err(|_| StoreError::Corrupt("a negative count".into()))
        };
        Ok(FeedCounts {
            unseen: count(0)?,
            unread: count(1)?,
        })
    }

    async fn feed_opened(&self, customer_id: &str, now: i64) -> Result<()> {
        let client = self.client().await?;
        // Most opens change nothing worth a write: read first.
        if opened_at(&client, customer_id)
            .await?
            .is_some_and(|at| at > now - OPENED_GRANULARITY_MS)
        {
            return Ok(());
        }
        client
            .exec(
                "INSERT INTO feeds (customer_id, opened_at) VALUES ($1, $2)
                 ON CONFLICT (customer_id) DO UPDATE SET opened_at = excluded.opened_at
                 WHERE feeds.opened_at < excluded.opened_at",
                &[&customer_id, &now],
            )
            .await?;
        Ok(())
    }

    fn feed_changes(&self) -> broadcast::Receiver<FeedChange> {
        let receiver = self.feed_changes.subscribe();
        self.listener.get_or_init(|| {
            let (config, tls) = self.listen_with.clone();
            listen(config, tls, self.feed_changes.clone())
        });
        receiver
    }
}

/// Listens for every node's feed changes on a connection of its own, for
/// as long as the store lives (dropping it stops the listener); a broken
/// connection is made again, and the streams resync (they may have missed
/// changes meanwhile).
pub struct Listener(tokio::task::AbortHandle);

impl Drop for Listener {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub fn listen(
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    changes: broadcast::Sender<FeedChange>,
) -> Listener {
    let task = tokio::spawn(async move {
        let mut first = true;
        loop {
            match config.connect(tls.clone()).await {
                Ok((client, mut connection)) => {
                    let mut messages =
                        futures::stream::poll_fn(move |cx| connection.poll_message(cx));
                    let listening = async {
                        client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
                        if !first {
                            let _ = changes.send(FeedChange::Resync);
                        }
                        // Keep the client: dropping it would close the connection.
                        std::future::pending::<()>().await;
                        Ok::<(), tokio_postgres::Error>(())
                    };
                    let heard = async {
                        use futures::StreamExt as _;
                        while let Some(message) = messages.next().await {
                            match message {
                                Ok(AsyncMessage::Notification(n)) => {
                                    match FeedChange::decode(n.payload()) {
                                        Some(change) => {
                                            let _ = changes.send(change);
                                        }
                                        None => tracing::warn!(
                                            payload = n.payload(),
                                            "unknown feed notification"
                                        ),
                                    }
                                }
                                Ok(_) => {}
                                Err(e) => {
                                    tracing::warn!("feed listener connection failed: {e}");
                                    return;
                                }
                            }
                        }
                    };
                    // Whichever ends first ends the connection: LISTEN failed,
                    // or the connection broke.
                    tokio::select! {
                        listened = listening => {
                            if let Err(e) = listened {
                                tracing::warn!("cannot listen for feed changes: {e}");
                            }
                        }
                        () = heard => {}
                    }
                }
                Err(e) => tracing::warn!("feed listener cannot connect: {e}"),
            }
            first = false;
            tokio::time::sleep(RECONNECT).await;
        }
    });
    Listener(task.abort_handle())
}
