//! Customers' feeds in the file. Changes are heard in this process only:
//! one process owns an SQLite file.

use super::SqliteStore;
use crate::store::Result;
use crate::store::StoreError;
use crate::store::feed::{
    COLUMNS, COUNTS, FeedChange, FeedCounts, FeedItem, FeedQuery, FeedStore, Mark, Marked,
    OPENED_GRANULARITY_MS, data_from_json, data_json,
};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension as _, Row, params};

fn item(row: &Row<'_>) -> rusqlite::Result<FeedItem> {
    let corrupt = |i: usize, e: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    };
    Ok(FeedItem {
        id: row.get(0)?,
        customer_id: row.get(1)?,
        channel: row
            .get::<_, String>(2)?
            .parse()
            .map_err(|e| corrupt(2, e))?,
        title: row.get(3)?,
        body: row.get(4)?,
        action_url: row.get(5)?,
        image_url: row.get(6)?,
        category: row.get(7)?,
        data: data_from_json(&row.get::<_, String>(8)?).map_err(|e| corrupt(8, e))?,
        created_at: row.get(9)?,
        expires_at: row.get(10)?,
        seen_at: row.get(11)?,
        read_at: row.get(12)?,
        archived_at: row.get(13)?,
    })
}

fn one(conn: &Connection, customer_id: &str, id: &str, now: i64) -> Result<Option<FeedItem>> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT {COLUMNS} FROM feed_items
             WHERE id = ?1 AND customer_id = ?2 AND (expires_at IS NULL OR expires_at > ?3)"
        )
    });
    Ok(conn
        .prepare_cached(&SQL)?
        .query_row(params![id, customer_id, now], item)
        .optional()?)
}

/// When the customer last opened their feed: a planning fact.
pub fn opened_at(conn: &Connection, customer_id: &str) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT opened_at FROM feeds WHERE customer_id = ?1")?
        .query_row(params![customer_id], |r| r.get(0))
        .optional()?)
}

impl SqliteStore {
    fn heard(&self, change: FeedChange) {
        // Nobody listening is fine: no stream is open.
        let _ = self.feed_changes.send(change);
    }
}

#[async_trait]
impl FeedStore for SqliteStore {
    async fn put_feed_item(&self, item: FeedItem) -> Result<bool> {
        let (customer_id, item_id) = (item.customer_id.clone(), item.id.clone());
        let added = self
            .write(move |conn| {
                let added = conn
                    .prepare_cached(&format!(
                        "INSERT INTO feed_items ({COLUMNS})
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
                         ON CONFLICT (id) DO NOTHING"
                    ))?
                    .execute(params![
                        item.id,
                        item.customer_id,
                        item.channel.as_str(),
                        item.title,
                        item.body,
                        item.action_url,
                        item.image_url,
                        item.category,
                        data_json(&item.data),
                        item.created_at,
                        item.expires_at,
                        item.seen_at,
                        item.read_at,
                        item.archived_at,
                    ])?;
                Ok(added > 0)
            })
            .await?;
        if added {
            self.heard(FeedChange::Item {
                customer_id,
                item_id,
            });
        }
        Ok(added)
    }

    async fn feed_items(&self, query: FeedQuery) -> Result<Vec<FeedItem>> {
        self.read(move |conn| {
            let (before_at, before_id) = query
                .before
                .clone()
                .map_or((None, None), |(at, id)| (Some(at), Some(id)));
            let sql = format!(
                "SELECT {COLUMNS} FROM feed_items
                 WHERE customer_id = ?1 AND (expires_at IS NULL OR expires_at > ?2)
                   AND {}
                   AND (?3 IS NULL OR (created_at, id) < (?3, ?4))
                 ORDER BY created_at DESC, id DESC LIMIT ?5",
                query.filter.sql()
            );
            let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
            let items = conn
                .prepare_cached(&sql)?
                .query_map(
                    params![query.customer_id, query.now, before_at, before_id, limit],
                    item,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(items)
        })
        .await
    }

    async fn feed_item(&self, customer_id: &str, id: &str, now: i64) -> Result<Option<FeedItem>> {
        let (customer_id, id) = (customer_id.to_owned(), id.to_owned());
        self.read_small(move |conn| one(conn, &customer_id, &id, now))
            .await
    }

    async fn mark_feed_item(
        &self,
        customer_id: &str,
        id: &str,
        mark: Mark,
        now: i64,
    ) -> Result<Option<Marked>> {
        let (customer, id) = (customer_id.to_owned(), id.to_owned());
        let marked = self
            .write(move |conn| {
                let Some(mut item) = one(conn, &customer, &id, now)? else {
                    return Ok(None);
                };
                let changes = item.apply(mark, now);
                if changes.any() {
                    conn.prepare_cached(
                        "UPDATE feed_items SET seen_at = ?2, read_at = ?3, archived_at = ?4
                         WHERE id = ?1",
                    )?
                    .execute(params![
                        item.id,
                        item.seen_at,
                        item.read_at,
                        item.archived_at
                    ])?;
                }
                Ok(Some(Marked { item, changes }))
            })
            .await?;
        if marked.as_ref().is_some_and(|m| m.changes.any()) {
            self.heard(FeedChange::Marked {
                customer_id: customer_id.to_owned(),
            });
        }
        Ok(marked)
    }

    async fn mark_feed_read(&self, customer_id: &str, now: i64) -> Result<Vec<FeedItem>> {
        let customer = customer_id.to_owned();
        let read = self
            .write(move |conn| {
                let items = conn
                    .prepare_cached(&format!(
                        "UPDATE feed_items SET read_at = ?2, seen_at = COALESCE(seen_at, ?2)
                         WHERE customer_id = ?1 AND read_at IS NULL AND archived_at IS NULL
                           AND (expires_at IS NULL OR expires_at > ?2)
                         RETURNING {COLUMNS}"
                    ))?
                    .query_map(params![customer, now], item)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(items)
            })
            .await?;
        if !read.is_empty() {
            self.heard(FeedChange::Marked {
                customer_id: customer_id.to_owned(),
            });
        }
        Ok(read)
    }

    async fn feed_counts(&self, customer_id: &str, now: i64) -> Result<FeedCounts> {
        let customer = customer_id.to_owned();
        self.read_small(move |conn| {
            let (unseen, unread): (i64, i64) = conn
                .prepare_cached(COUNTS)?
                .query_row(params![customer, now], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(FeedCounts {
                unseen: u64::try_from(unseen)
                    .map_err(|_| StoreError::Corrupt("a negative count".into()))?,
                unread: u64::try_from(unread)
                    .map_err(|_| StoreError::Corrupt("a negative count".into()))?,
            })
        })
        .await
    }

    async fn feed_opened(&self, customer_id: &str, now: i64) -> Result<()> {
        let customer = customer_id.to_owned();
        // Most opens change nothing worth a write: read first.
        let last = {
            let customer = customer.clone();
            self.read_small(move |conn| opened_at(conn, &customer))
                .await?
        };
        if last.is_some_and(|at| at > now - OPENED_GRANULARITY_MS) {
            return Ok(());
        }
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO feeds (customer_id, opened_at) VALUES (?1, ?2)
                 ON CONFLICT (customer_id) DO UPDATE SET opened_at = excluded.opened_at
                 WHERE feeds.opened_at < excluded.opened_at",
            )?
            .execute(params![customer, now])?;
            Ok(())
        })
        .await
    }

    fn feed_changes(&self) -> tokio::sync::broadcast::Receiver<FeedChange> {
        self.feed_changes.subscribe()
    }
}
