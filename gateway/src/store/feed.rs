//! Customers' feeds as the stores keep them: the items the `inbox` and
//! `in_app` channels delivered, what the customer did with each, when each
//! feed was last opened, and the changes every node's live streams hear of.

use super::error::Result;
use crate::message::Channel;
use async_trait::async_trait;
use std::collections::BTreeMap;

/// One item of a customer's feed. Its id is its message's.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedItem {
    pub id: String,
    pub customer_id: String,
    /// `inbox` or `in_app`.
    pub channel: Channel,
    pub title: Option<String>,
    pub body: String,
    pub action_url: Option<String>,
    pub image_url: Option<String>,
    pub category: Option<String>,
    /// The message's `data:*` metadata, without the prefix.
    pub data: BTreeMap<String, String>,
    pub created_at: i64,
    /// An in-app item is gone after this, seen or not.
    pub expires_at: Option<i64>,
    pub seen_at: Option<i64>,
    pub read_at: Option<i64>,
    pub archived_at: Option<i64>,
}

/// What a customer does to an item. Each implies the ones before it: a
/// read item was seen; an archived one was seen (not necessarily read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Seen,
    Read,
    Archived,
}

impl FeedItem {
    /// Apply `mark` at `now`; what it changed. The first time of each
    /// stays: marking again is a no-op.
    pub fn apply(&mut self, mark: Mark, now: i64) -> Changes {
        let seen = self.seen_at.is_none();
        self.seen_at.get_or_insert(now);
        let read = mark == Mark::Read && self.read_at.is_none();
        let archived = mark == Mark::Archived && self.archived_at.is_none();
        if read {
            self.read_at = Some(now);
        }
        if archived {
            self.archived_at = Some(now);
        }
        Changes {
            seen,
            read,
            archived,
        }
    }

    /// Still shown at `now`: an in-app item is gone after its end.
    pub fn is_live(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|end| end > now)
    }
}

/// The columns an item is read from, in [`FeedItem`]'s order; both stores
/// select them and map rows the same way.
pub(crate) const COLUMNS: &str = "id, customer_id, channel, title, body, action_url, image_url, \
     category, data, created_at, expires_at, seen_at, read_at, archived_at";

/// The counts' query over one customer's live items (`$1` customer, `$2`
/// now; SQLite numbers `$n` by first appearance, so they appear in order).
pub(crate) const COUNTS: &str =
    "SELECT COALESCE(SUM(CASE WHEN seen_at IS NULL THEN 1 ELSE 0 END), 0),
            COALESCE(SUM(CASE WHEN read_at IS NULL THEN 1 ELSE 0 END), 0)
     FROM feed_items
     WHERE customer_id = $1 AND archived_at IS NULL AND (expires_at IS NULL OR expires_at > $2)";

/// `data` as stored: JSON text.
pub(crate) fn data_json(data: &BTreeMap<String, String>) -> String {
    serde_json::to_string(data).expect("a map of strings serialises")
}

pub(crate) fn data_from_json(text: &str) -> std::result::Result<BTreeMap<String, String>, String> {
    serde_json::from_str(text).map_err(|e| format!("feed item data: {e}"))
}

impl std::str::FromStr for Mark {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "seen" => Ok(Mark::Seen),
            "read" => Ok(Mark::Read),
            "archive" => Ok(Mark::Archived),
            _ => Err(format!(
                "unknown action {s:?}, expected one of seen, read, archive"
            )),
        }
    }
}

/// Which items a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FeedFilter {
    /// Everything not archived.
    #[default]
    Active,
    Unseen,
    Unread,
    Archived,
    /// Archived or not.
    All,
}

impl std::str::FromStr for FeedFilter {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "active" => Ok(FeedFilter::Active),
            "unseen" => Ok(FeedFilter::Unseen),
            "unread" => Ok(FeedFilter::Unread),
            "archived" => Ok(FeedFilter::Archived),
            "all" => Ok(FeedFilter::All),
            _ => Err(format!(
                "unknown status {s:?}, expected one of active, unseen, unread, archived, all"
            )),
        }
    }
}

impl FeedFilter {
    /// The SQL condition on `feed_items`, the same in both stores.
    pub(crate) fn sql(self) -> &'static str {
        match self {
            FeedFilter::Active => "archived_at IS NULL",
            FeedFilter::Unseen => "archived_at IS NULL AND seen_at IS NULL",
            FeedFilter::Unread => "archived_at IS NULL AND read_at IS NULL",
            FeedFilter::Archived => "archived_at IS NOT NULL",
            FeedFilter::All => "TRUE",
        }
    }
}

/// A page of one customer's feed, newest first.
#[derive(Debug, Clone)]
pub struct FeedQuery {
    pub customer_id: String,
    pub filter: FeedFilter,
    /// Items older than this `(created_at, id)`: the previous page's last.
    pub before: Option<(i64, String)>,
    pub limit: usize,
    /// In-app items past their end are left out.
    pub now: i64,
}

/// What a badge shows: items not archived and not seen, not read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FeedCounts {
    pub unseen: u64,
    pub unread: u64,
}

/// What marking an item changed: each is `true` only the first time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    pub seen: bool,
    pub read: bool,
    pub archived: bool,
}

impl Changes {
    pub fn any(self) -> bool {
        self.seen || self.read || self.archived
    }
}

/// What [`FeedStore::mark_feed_item`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Marked {
    pub item: FeedItem,
    /// Marking twice changes nothing.
    pub changes: Changes,
}

/// A change to one customer's feed, heard by every node's live streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedChange {
    /// A new item: streams send it.
    Item {
        customer_id: String,
        item_id: String,
    },
    /// Items were marked: streams send the counts again.
    Marked { customer_id: String },
    /// Changes may have been missed (the listening connection dropped):
    /// every stream sends its counts again.
    Resync,
}

impl FeedChange {
    /// As one notification's text: `item <customer> <item>` or `marked <customer>`.
    pub fn encode(&self) -> String {
        match self {
            FeedChange::Item {
                customer_id,
                item_id,
            } => format!("item {customer_id} {item_id}"),
            FeedChange::Marked { customer_id } => format!("marked {customer_id}"),
            FeedChange::Resync => "resync".to_owned(),
        }
    }

    /// Customer and item ids hold no spaces ([`crate::customer::check_id`]).
    pub fn decode(text: &str) -> Option<FeedChange> {
        let mut words = text.split(' ');
        match (words.next()?, words.next(), words.next(), words.next()) {
            ("item", Some(customer), Some(item), None) => Some(FeedChange::Item {
                customer_id: customer.to_owned(),
                item_id: item.to_owned(),
            }),
            ("marked", Some(customer), None, None) => Some(FeedChange::Marked {
                customer_id: customer.to_owned(),
            }),
            ("resync", None, None, None) => Some(FeedChange::Resync),
            _ => None,
        }
    }
}

/// How many changes a node's streams may fall behind before they resync.
pub const CHANGES_BUFFER: usize = 4096;

/// Customers' feeds.
#[async_trait]
pub trait FeedStore: Send + Sync {
    /// Keep a delivered item; `false` when it was there already (a
    /// delivery retried after its first write). Every node hears of it.
    async fn put_feed_item(&self, item: FeedItem) -> Result<bool>;

    async fn feed_items(&self, query: FeedQuery) -> Result<Vec<FeedItem>>;

    /// The customer's own item, if it is theirs and still shown.
    async fn feed_item(&self, customer_id: &str, id: &str, now: i64) -> Result<Option<FeedItem>>;

    /// Mark the customer's own item; `None` when they have no such item
    /// (another customer's is no different from none). Every node hears of
    /// a change.
    async fn mark_feed_item(
        &self,
        customer_id: &str,
        id: &str,
        mark: Mark,
        now: i64,
    ) -> Result<Option<Marked>>;

    /// Mark every unread item of the customer read; those items, as they are now.
    async fn mark_feed_read(&self, customer_id: &str, now: i64) -> Result<Vec<FeedItem>>;

    async fn feed_counts(&self, customer_id: &str, now: i64) -> Result<FeedCounts>;

    /// The customer opened their feed at `now` (kept to the minute).
    async fn feed_opened(&self, customer_id: &str, now: i64) -> Result<()>;

    /// Changes to any feed, from this node and (PostgreSQL) every other.
    fn feed_changes(&self) -> tokio::sync::broadcast::Receiver<FeedChange>;
}

/// Feed items go with their messages' retention: the oldest `$2` made
/// before `$1`, the same SQL in both stores.
pub(crate) const PURGE: &str = "DELETE FROM feed_items WHERE id IN (
     SELECT id FROM feed_items WHERE created_at < $1 ORDER BY created_at LIMIT $2)";

/// How often a feed's opening is written: planning needs days, not seconds.
pub(crate) const OPENED_GRANULARITY_MS: i64 = 60_000;
