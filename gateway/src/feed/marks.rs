//! What a customer does in their feed, and what it does to the message:
//! reading an inbox item makes its message `read` (and the customer's
//! `message.read` event), seeing an in-app message makes it `delivered`;
//! either ends the message's escalation, so no later channel goes. The
//! same path as a provider's report, so journeys, reports and attribution
//! see a feed read as they see an email open.

use crate::message::Channel;
use crate::metrics::Metrics;
use crate::store::feed::{Changes, FeedItem, Mark};
use crate::store::{ProviderStatus, Store, StoreError};

/// Who marks, and with what.
pub struct Marking<'a> {
    pub store: &'a dyn Store,
    pub metrics: &'a Metrics,
    pub now: i64,
}

/// Mark the customer's own item; `None` when they have no such item.
pub async fn mark(
    by: &Marking<'_>,
    customer_id: &str,
    id: &str,
    mark: Mark,
) -> Result<Option<FeedItem>, StoreError> {
    let Some(marked) = by
        .store
        .mark_feed_item(customer_id, id, mark, by.now)
        .await?
    else {
        return Ok(None);
    };
    report(by, &marked.item, marked.changes).await?;
    Ok(Some(marked.item))
}

/// Mark every unread item read; how many were.
pub async fn mark_all_read(by: &Marking<'_>, customer_id: &str) -> Result<usize, StoreError> {
    let read = by.store.mark_feed_read(customer_id, by.now).await?;
    for item in &read {
        // Seen by this very mark when its seen time is now.
        let changes = Changes {
            seen: item.seen_at == Some(by.now),
            read: true,
            archived: false,
        };
        report(by, item, changes).await?;
    }
    Ok(read.len())
}

/// The message's side of a change: what its channel reports.
async fn report(by: &Marking<'_>, item: &FeedItem, changes: Changes) -> Result<(), StoreError> {
    let mut states = Vec::new();
    if changes.seen && item.channel == Channel::InApp {
        states.push(("delivered", "seen in the app"));
    }
    if changes.read {
        states.push(("read", "read in the customer's feed"));
        by.metrics
            .feed_read((by.now - item.created_at).max(0) as f64 / 1000.0);
    }
    for (state, description) in states {
        let report = ProviderStatus {
            connector: item.channel.as_str().to_owned(),
            provider_message_id: item.id.clone(),
            state: state.to_owned(),
            code: None,
            description: Some(description.to_owned()),
            at: by.now,
        };
        by.store.apply_report(report, item.channel).await?;
    }
    Ok(())
}
