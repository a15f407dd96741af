//! What campaigns keep: segments defined over the API, broadcasts with how
//! far their fan-out got, and per-campaign counts of their messages. A
//! broadcast is leased to one node at a time; its cursor moves only under
//! that lease, so a restart or another node resumes where it stopped.

use super::error::Result;
use super::reports::{ConversionRecord, NewConversion, ReportKey, ReportRow};
use super::segments::SegmentQuery;
use async_trait::async_trait;

/// A broadcast and how far its fan-out got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastRecord {
    pub id: String,
    /// The request, JSON.
    pub definition: String,
    /// `scheduled`, `planning`, `planned`, `cancelled`.
    pub status: String,
    /// The last member planned (members go in customer-id order).
    pub cursor: String,
    pub planned: i64,
    /// Not planned before this time (`send_at`).
    pub start_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// How many of a campaign's messages are in one status (and, for
/// `suppressed` and `failed`, for one reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCount {
    pub status: String,
    /// The reason's code: what stands before the first `:` of the message's
    /// `status_reason`.
    pub reason: Option<String>,
    pub count: i64,
}

/// A member a campaign could not send to: nothing was stored for them but this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedMember {
    pub customer_id: String,
    /// The error code the send would have been answered with (`missing_phone`).
    pub code: String,
    pub message: String,
    pub refused_at: i64,
}

/// A page of a broadcast's fan-out, as the node doing it records it.
#[derive(Debug, Clone)]
pub struct Progress {
    /// The last member planned: the next page starts after it.
    pub cursor: String,
    /// Members this page planned.
    pub planned: i64,
    /// The segment has no members left.
    pub done: bool,
    /// Until when this node keeps the fan-out (`now` hands it over).
    pub lease_until: i64,
}

impl Progress {
    /// No page planned: the fan-out is only held until `lease_until` (or,
    /// at `now`, handed over).
    pub fn held(cursor: String, lease_until: i64) -> Progress {
        Progress {
            cursor,
            planned: 0,
            done: false,
            lease_until,
        }
    }

    /// The broadcast's status after this page.
    pub fn status(&self) -> &'static str {
        if self.done { "planned" } else { "planning" }
    }
}

#[async_trait]
pub trait CampaignStore: Send + Sync {
    /// Up to `limit` member ids after `after`, in order.
    async fn segment_members(
        &self,
        query: SegmentQuery,
        after: String,
        limit: usize,
    ) -> Result<Vec<String>>;

    async fn segment_count(&self, query: SegmentQuery) -> Result<u64>;

    /// Create or replace a segment defined over the API; `true` when created.
    async fn put_segment(&self, name: &str, definition: String, now: i64) -> Result<bool>;

    async fn segment(&self, name: &str) -> Result<Option<String>>;

    async fn insert_broadcast(&self, broadcast: BroadcastRecord) -> Result<()>;

    async fn broadcast(&self, id: &str) -> Result<Option<BroadcastRecord>>;

    /// Up to `limit` broadcasts, newest first, created before broadcast
    /// `before` (ids sort by creation), only those in `status` if given.
    async fn list_broadcasts(
        &self,
        status: Option<String>,
        before: Option<String>,
        limit: usize,
    ) -> Result<Vec<BroadcastRecord>>;

    /// One broadcast due for fan-out (scheduled and due, or planning) whose
    /// lease ran out, now leased until `now + lease_ms`.
    async fn lease_broadcast(&self, now: i64, lease_ms: i64) -> Result<Option<BroadcastRecord>>;

    /// Record a page of fan-out ([`Progress`]). `false` when the broadcast
    /// was cancelled meanwhile.
    async fn advance_broadcast(&self, id: &str, progress: Progress, now: i64) -> Result<bool>;

    /// Stop a broadcast's fan-out; `false` when it was already over.
    async fn cancel_broadcast(&self, id: &str, now: i64) -> Result<bool>;

    /// Keep why these members got nothing; a member refused before keeps
    /// their first refusal, so a page planned again counts nobody twice.
    async fn record_refusals(&self, campaign: &str, refusals: Vec<RefusedMember>) -> Result<()>;

    /// Up to `limit` of the campaign's refusals after customer `after`, in
    /// customer-id order.
    async fn refusals(
        &self,
        campaign: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<RefusedMember>>;

    /// The campaign's messages by status and reason, and its refused
    /// members as status `refused` by code.
    async fn campaign_progress(&self, campaign: &str) -> Result<Vec<StatusCount>>;

    /// Cancel every message of the campaign that has not left yet.
    async fn cancel_campaign(&self, campaign: &str, now: i64) -> Result<usize>;

    /// Credit a conversion to the customer's last (and first) message
    /// delivered or read within its window; once per event.
    async fn record_conversion(&self, conversion: NewConversion) -> Result<ConversionRecord>;

    async fn conversion(&self, event_id: &str) -> Result<Option<ConversionRecord>>;

    /// Messages created and conversions made in `[from, to)`, by `keys`;
    /// the whole days that ended before `now` are summed once and kept
    /// ([`super::report_days`]).
    async fn channel_report(
        &self,
        from: i64,
        to: i64,
        keys: Vec<ReportKey>,
        now: i64,
    ) -> Result<Vec<ReportRow>>;
}
