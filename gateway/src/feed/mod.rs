//! The customer's own feed: the two channels the gateway delivers itself
//! (`inbox`, kept until archived, and `in_app`, shown while the app is
//! open and gone after its ttl), the tokens customers read it with, the
//! live streams that carry new items and counts to their devices on every
//! node, and what reading an item does to its message.
//!
//! Delivering is an attempt like any other (the dispatcher leases it,
//! retries it, falls back, records it): only the call is a store write
//! instead of a plugin's provider call. So quiet hours, schedules,
//! cancellation, fallback and escalation treat the feed like any channel.

pub mod live;
mod marks;
pub mod tokens;

pub use marks::{Marking, mark, mark_all_read};

use crate::message::Channel;
use crate::metrics::Metrics;
use crate::plugins::{Delivered, Failure, Receipt};
use crate::store::LeasedDelivery;
use crate::store::Store;
use crate::store::feed::FeedItem;
use std::sync::Arc;

/// The metadata keys that are links on a feed item.
pub const LINKS: [&str; 2] = ["action_url", "image_url"];

/// An absolute `https` or `http` URL: what a feed item may link to, so no
/// `javascript:` URL reaches a page that shows it.
pub fn is_web_link(url: &str) -> bool {
    url.parse::<http::Uri>()
        .ok()
        .is_some_and(|uri| crate::origin::Origin::of(&uri).is_ok())
}

/// The feed item a delivery puts in its customer's feed (the delivery's
/// address is the customer id; the item's id is its message's).
pub fn item(d: &LeasedDelivery, in_app_ttl: i64, now: i64) -> FeedItem {
    let content = &d.content;
    let link = |key: &str| {
        content
            .metadata
            .get(key)
            .filter(|url| is_web_link(url))
            .cloned()
    };
    FeedItem {
        id: d.message_id.clone(),
        customer_id: d.address.clone(),
        channel: d.channel,
        title: content.subject.clone(),
        body: content.text.clone(),
        action_url: link("action_url"),
        image_url: link("image_url"),
        category: d.category.clone(),
        data: content
            .metadata
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("data:")?.to_owned(), v.clone())))
            .collect(),
        created_at: now,
        expires_at: (d.channel == Channel::InApp).then(|| now.saturating_add(in_app_ttl)),
        seen_at: None,
        read_at: None,
        archived_at: None,
    }
}

/// Delivers the feed channels' attempts: the item goes into the store,
/// which tells every node's live streams.
pub struct Deliverer {
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    in_app_ttl: i64,
}

impl Deliverer {
    pub fn new(store: Arc<dyn Store>, metrics: Arc<Metrics>, in_app_ttl: i64) -> Self {
        Deliverer {
            store,
            metrics,
            in_app_ttl,
        }
    }

    /// One attempt. A store that cannot take the item now is a retryable
    /// failure, like a provider that is down. An inbox item is delivered
    /// once stored; an in-app one only once the customer saw it.
    pub async fn deliver(&self, d: &LeasedDelivery, now: i64) -> Delivered {
        let result = self.put(d, now).await;
        Delivered {
            result,
            dead_addresses: Vec::new(),
        }
    }

    async fn put(&self, d: &LeasedDelivery, now: i64) -> Result<Receipt, Failure> {
        let unavailable = |e: crate::store::StoreError| Failure {
            retryable: e.is_transient(),
            retry_after: None,
            code: "feed_unavailable".to_owned(),
            message: format!("cannot store the feed item: {e}"),
        };
        let added = self
            .store
            .put_feed_item(item(d, self.in_app_ttl, now))
            .await
            .map_err(unavailable)?;
        if added {
            self.metrics.feed_item(d.channel.as_str());
        }
        Ok(Receipt {
            provider_message_id: d.message_id.clone(),
            parts: Vec::new(),
            delivered: d.channel == Channel::Inbox,
        })
    }
}
