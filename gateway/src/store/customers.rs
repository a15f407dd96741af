//! Customers as the stores keep them: profiles, consent, suppressions and
//! the facts one send is planned on.

use super::error::Result;
use crate::customer::double_opt_in::{Confirmed, ConsentRequest};
use crate::customer::{Consent, Profile, Suppression};
use crate::message::Channel;
use async_trait::async_trait;

/// A stored customer profile.
#[derive(Debug, Clone)]
pub struct CustomerRecord {
    pub profile: Profile,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Whom a send is for.
#[derive(Debug, Clone)]
pub enum Audience {
    Customer(String),
    /// An address in [`crate::customer::address_key`] form.
    Address {
        channel: Channel,
        address: String,
    },
}

/// See [`Store::planning_facts`].
#[derive(Debug, Clone, Default)]
pub struct PlanningFacts {
    /// The customer (none when unknown), or every owner of the address.
    pub profiles: Vec<Profile>,
    pub suppressions: Vec<Suppression>,
    pub recent: u32,
    /// When the customer last opened their feed (a customer audience only).
    pub feed_opened_at: Option<i64>,
}

/// What [`CustomerStore::address_is_dead`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadAddress {
    /// The suppression entry is now the address's.
    pub suppressed: bool,
    /// The customers whose profile lost the address.
    pub forgotten_by: Vec<String>,
}

/// Profiles, consent and suppressions, and what planning reads of them.
#[async_trait]
pub trait CustomerStore: Send + Sync {
    /// Create or replace a profile; `true` when it was created.
    async fn put_customer(&self, id: &str, profile: Profile, now: i64) -> Result<bool>;

    async fn customer(&self, id: &str) -> Result<Option<CustomerRecord>>;

    /// Change consent only; `None` when there is no such customer.
    async fn update_consent(
        &self,
        id: &str,
        changes: Vec<(Channel, String, Consent)>,
        now: i64,
    ) -> Result<Option<Profile>>;

    /// Erase a profile and the addresses its messages were sent to; `false`
    /// when there was none.
    async fn delete_customer(&self, id: &str, now: i64) -> Result<bool>;

    /// What planning one send needs, read together (one trip to the
    /// store on the accept path): the customer, or the customers who own
    /// the address; the suppressions of the addresses the plan may use;
    /// under a frequency cap, how many messages of `category` went to `scope`
    /// since `since`; and, with `feed` (the feed channels are on), when a
    /// customer last opened their feed.
    async fn planning_facts(
        &self,
        audience: Audience,
        scope: &str,
        cap: Option<(String, i64)>,
        feed: bool,
    ) -> Result<PlanningFacts>;

    /// The suppression-list entries of these addresses ([`crate::customer::address_key`] form).
    async fn suppressions(&self, addresses: Vec<(Channel, String)>) -> Result<Vec<Suppression>>;

    /// Add an automatic suppression (opt-out, bounce, dead address). An
    /// entry for a person's own wish (opt-out, staff) is never replaced by a
    /// deliverability one. Returns whether the entry was written.
    async fn suppress(&self, suppression: Suppression) -> Result<bool>;

    /// Support staff: create or replace an entry; `true` when it was created.
    async fn put_suppression(&self, suppression: Suppression) -> Result<bool>;

    /// Remove an address's entry, only when it has `reason` if one is given
    /// (a START lifts an opt-out, not a bounce). `true` when one was removed.
    async fn delete_suppression(
        &self,
        channel: Channel,
        address: &str,
        reason: Option<crate::customer::SuppressionReason>,
    ) -> Result<bool>;

    /// An inbound keyword for every customer reached at `address` on
    /// `channel` ([`crate::customer::Profile::apply_keyword`]): STOP
    /// withdraws consent in every category, START lifts only what a STOP
    /// withdrew. Returns how many customers changed.
    async fn consent_by_address(
        &self,
        address: &str,
        channel: Channel,
        categories: Vec<String>,
        consent: Consent,
        now: i64,
    ) -> Result<usize>;

    /// A provider said an address is dead (`dead`, made by
    /// [`Suppression::dead_address`]): it goes on the suppression list and
    /// the profiles holding it lose it, so their next address of the kind
    /// takes over: the profile of the customer `message_id` was for, or,
    /// when the report names no message, of every customer who has it. In
    /// one transaction.
    async fn address_is_dead(
        &self,
        dead: Suppression,
        message_id: Option<String>,
        now: i64,
    ) -> Result<DeadAddress>;

    /// Keep a message's request for its customer's consent, awaiting a YES.
    async fn request_consent(&self, request: ConsentRequest) -> Result<()>;

    /// A YES from `address` on `channel` at `now`: the latest open request
    /// of a customer who owns the address, whose message reached them on
    /// that channel, is confirmed and its consent granted; what it granted.
    async fn confirm_consent(
        &self,
        channel: Channel,
        address: &str,
        now: i64,
    ) -> Result<Option<Confirmed>>;
}
