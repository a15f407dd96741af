//! Durable state: messages, their deliveries and every attempt.
//!
//! [`Store`] is the seam between the gateway and its database: SQLite is the
//! embedded default for one process; PostgreSQL serves several nodes on one
//! database. Both keep the same contract (tests/it/store runs one suite on
//! both) and the same numbered schema ([`migrations`]). Times are
//! milliseconds since the Unix epoch.

pub mod campaigns;
pub mod customers;
mod error;
pub mod feed;
pub mod health;
pub mod journeys;
pub mod messages;
pub mod migrations;
pub mod outage_log;
pub mod outbox;
pub mod pace;
pub mod parts;
pub(crate) mod postgres;
pub mod queue;
pub mod replies;
pub mod report_days;
pub mod reports;
pub mod search;
pub mod segments;
pub mod sessions;
mod sqlite;

/// Rows, index entries and log bytes the SQLite writer wrote, for `make bench`.
pub use sqlite::write_counts;

pub use customers::{Audience, CustomerRecord, CustomerStore, DeadAddress, PlanningFacts};
pub use error::{Outage, Result, StoreError};
pub use messages::{
    AttemptRecord, CancelReport, DedupKey, IdempotencyKey, Inserted, MessageRecord, MessageStore,
    NewDelivery, NewMessage, OPEN, ProviderStatus, StatusEventRecord,
};
pub(crate) use messages::{counted_by_caps, ends_escalation_on_cancel, may_cancel};
pub use outbox::{Callback, OutboxStore};
pub use postgres::PostgresStore;
pub(crate) use queue::interrupted_message;
pub use queue::{AttemptResult, Lease, LeasedDelivery, Next, QueueHealth, QueueStore};
pub use sqlite::SqliteStore;

use crate::config::Database;
use async_trait::async_trait;
use replies::{NewReply, ReplyRecorded};
use std::sync::Arc;

/// How long one statement of a report or a segment count may run: past it
/// the request gets `503` and asks for less, and the database is free again.
pub const ANALYTICS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What a purge deleted ([`Store::purge_history`] counts messages, events
/// and what goes with them, [`Store::purge_expired_keys`] keys), or a run of
/// them together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub messages: usize,
    pub events: usize,
    /// Status and reply callbacks given up on.
    pub callbacks: usize,
    /// Conversions, which go with the events they were made from.
    pub conversions: usize,
    /// Members campaigns sent nothing to, which go with the messages.
    pub refusals: usize,
    /// Journey runs a later run superseded, which go with the events.
    pub journey_runs: usize,
    /// Customers' arms in journey experiments, which go with the events.
    pub experiment_arms: usize,
    pub idempotency_keys: usize,
    pub dedup_keys: usize,
    /// Consent requests whose window ended.
    pub consent_requests: usize,
    /// Customers' feed items, which go with the messages' retention.
    pub feed_items: usize,
}

impl Purged {
    /// Whether any kind reached `limit`: more of it may be waiting.
    pub fn reached(&self, limit: usize) -> bool {
        [
            self.messages,
            self.events,
            self.callbacks,
            self.conversions,
            self.refusals,
            self.journey_runs,
            self.experiment_arms,
            self.idempotency_keys,
            self.dedup_keys,
            self.consent_requests,
            self.feed_items,
        ]
        .into_iter()
        .any(|n| n >= limit)
    }

    pub fn is_empty(&self) -> bool {
        *self == Purged::default()
    }
}

impl std::ops::AddAssign for Purged {
    fn add_assign(&mut self, other: Purged) {
        self.messages += other.messages;
        self.events += other.events;
        self.callbacks += other.callbacks;
        self.conversions += other.conversions;
        self.refusals += other.refusals;
        self.journey_runs += other.journey_runs;
        self.experiment_arms += other.experiment_arms;
        self.idempotency_keys += other.idempotency_keys;
        self.dedup_keys += other.dedup_keys;
        self.consent_requests += other.consent_requests;
        self.feed_items += other.feed_items;
    }
}

/// Where retention ends: history older than this goes. Messages (with
/// their deliveries, attempts, callbacks given up on and campaign refusals)
/// by when they were created; events (with conversions and superseded
/// journey runs) by when they arrived or ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Horizon {
    pub messages: i64,
    pub events: i64,
}

/// Everything Crossgate keeps, one aggregate a trait (each backend
/// implements each in the file of the same name), and what belongs to the
/// store as a whole: readiness, its own secrets and purging.
#[async_trait]
pub trait Store:
    MessageStore
    + QueueStore
    + CustomerStore
    + OutboxStore
    + journeys::JourneyStore
    + campaigns::CampaignStore
    + feed::FeedStore
    + sessions::SessionStore
    + health::HealthStore
    + pace::PaceStore
    + Send
    + Sync
    + 'static
{
    /// Record a customer's reply: a `message.received` event per customer
    /// and, when the platform listens, its callback, in one transaction and
    /// once per provider reply id.
    async fn record_reply(&self, reply: NewReply) -> Result<ReplyRecorded>;

    /// Whether the store can be read and written now: for `/readyz`.
    async fn ping(&self, now: i64) -> Result<()>;

    /// What some node has to do at `now` ([`DueWork`]), read at once.
    async fn due_work(&self, now: i64) -> Result<DueWork>;

    /// The secret stored under `name`; `candidate` becomes it when there is
    /// none yet. Every node asks with a candidate of its own and all get the
    /// first one stored.
    async fn shared_secret(&self, name: &str, candidate: &str, now: i64) -> Result<String>;

    /// Forget up to `limit` idempotency keys and `limit` dedup keys whose
    /// window has passed at `now`; how many went. Called until it purges
    /// less than `limit` of each, so one call is one short write.
    async fn purge_expired_keys(&self, now: i64, limit: usize) -> Result<Purged>;

    /// Delete up to `limit` finished messages created before
    /// `before.messages` (with their deliveries, attempts and status
    /// history), up to `limit` applied events received before
    /// `before.events`, up to `limit` conversions that occurred before
    /// `before.events`, up to `limit` callbacks given up on whose last
    /// attempt was due before `before.messages`, up to `limit` campaign
    /// refusals made before `before.messages` and up to `limit` superseded
    /// journey runs that ended before `before.events`, oldest first. Open
    /// messages, unapplied events, callbacks still to be tried, active runs
    /// and each customer's latest run of a journey stay whatever their age.
    /// Called until it purges less than `limit` of each, so one call is one
    /// short write.
    async fn purge_history(&self, before: Horizon, limit: usize) -> Result<Purged>;

    /// A report on a message (its provider's, or what the customer did in
    /// their feed) moves its status forward and, for a customer's message,
    /// is that customer's event (`message.delivered`, `message.read`, ...):
    /// journeys wait for it and branch on it. The message id, or `None`
    /// when no message has the report's provider id.
    async fn apply_report(
        &self,
        report: ProviderStatus,
        channel: crate::message::Channel,
    ) -> Result<Option<String>> {
        let (state, at, connector) = (report.state.clone(), report.at, report.connector.clone());
        let Some(message_id) = self.apply_provider_status(report).await? else {
            return Ok(None);
        };
        let Some(customer_id) = self.message(&message_id).await?.and_then(|m| m.customer_id) else {
            return Ok(Some(message_id));
        };
        let properties = serde_json::json!({
            "message_id": message_id,
            "channel": channel,
            "connector": connector,
        });
        self.record_events(vec![journeys::NewEvent {
            id: format!("evt_{}", uuid::Uuid::now_v7().simple()),
            customer_id,
            name: format!("message.{state}"),
            properties: properties.to_string(),
            occurred_at: at,
            received_at: at,
            // A report repeated is one event.
            idempotency_key: Some(format!("provider:{message_id}:{state}")),
        }])
        .await?;
        Ok(Some(message_id))
    }
}

/// Work due at a moment, on every node: when all of it is zero the gateway
/// is quiet, and nothing more happens until the clock reaches what is
/// scheduled or a request arrives (`GET /v1/admin/work`: a drain, a
/// rehearsal, a test that checks that nothing else is sent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DueWork {
    /// Deliveries due or being attempted.
    pub deliveries: u64,
    /// Events journeys have not applied yet.
    pub events: u64,
    /// Active journey runs whose timer is due.
    pub journey_runs: u64,
    /// Broadcasts due to start or fanning out.
    pub broadcasts: u64,
    /// Status callbacks due or being posted.
    pub callbacks: u64,
}

impl DueWork {
    pub fn is_quiet(&self) -> bool {
        *self == DueWork::default()
    }

    /// The one statement both stores count it with, `now` bound as `param`.
    fn sql(param: &str) -> String {
        use crate::message::DeliveryState;
        format!(
            "SELECT
                 (SELECT COUNT(*) FROM deliveries
                  WHERE (state = '{pending}' AND due_at <= {param}) OR state = '{leased}'),
                 (SELECT COUNT(*) FROM events WHERE NOT handled),
                 (SELECT COUNT(*) FROM journey_runs WHERE status = 'active' AND wake_at <= {param}),
                 (SELECT COUNT(*) FROM broadcasts
                  WHERE (status = 'scheduled' AND start_at <= {param}) OR status = 'planning'),
                 (SELECT COUNT(*) FROM callbacks_outbox
                  WHERE (state = 'pending' AND due_at <= {param}) OR state = 'leased')",
            pending = DeliveryState::Pending.as_str(),
            leased = DeliveryState::Leased.as_str(),
        )
    }

    fn from_counts(counts: [i64; 5]) -> DueWork {
        let [deliveries, events, journey_runs, broadcasts, callbacks] =
            counts.map(|n| u64::try_from(n).unwrap_or(0));
        DueWork {
            deliveries,
            events,
            journey_runs,
            broadcasts,
            callbacks,
        }
    }
}

/// Open the configured store, bringing its schema up to date.
/// `node` names this process in attempt histories.
pub async fn open(
    database: &Database,
    max_connections: usize,
    node: &str,
    now: i64,
) -> Result<Arc<dyn Store>> {
    Ok(match database {
        Database::Sqlite(path) => Arc::new(SqliteStore::open(path, node, now)?),
        Database::Postgres(url) => Arc::new(PostgresStore::open(url, max_connections, node).await?),
    })
}

/// Where the configured database stands against this build's schema,
/// changing nothing: `crossgate migrate --check`.
pub async fn schema_status(database: &Database) -> Result<migrations::SchemaStatus> {
    match database {
        Database::Sqlite(path) => sqlite::migrations::status(path),
        Database::Postgres(url) => postgres::migrations::status(url).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{DeliveryState, MessageStatus};

    /// Every delivery state the backends' SQL spells out (`state = 'x'`,
    /// `state IN ('x', 'y')`, a `CASE` choosing one) is one `DeliveryState`
    /// names: a typo or a state only one backend knows fails here. (The
    /// callbacks outbox's statements are passed over: its states are its own.)
    #[test]
    fn the_stores_sql_names_only_delivery_states_the_type_has() {
        let sources = [
            include_str!("sqlite/messages.rs"),
            include_str!("sqlite/queue.rs"),
            include_str!("sqlite/customers.rs"),
            include_str!("sqlite/mod.rs"),
            include_str!("postgres/messages.rs"),
            include_str!("postgres/queue.rs"),
            include_str!("postgres/recorder.rs"),
            include_str!("postgres/customers.rs"),
            include_str!("postgres/mod.rs"),
        ];
        let mut seen = 0;
        for source in sources {
            for (at, _) in source.match_indices("state") {
                // The callbacks outbox has states of its own.
                let statement = &source[source[..at].rfind('"').unwrap_or(0)..at];
                if statement.contains("callbacks_outbox") {
                    continue;
                }
                let rest = source[at + "state".len()..].trim_start();
                let list = if let Some(one) = rest.strip_prefix('=') {
                    one.trim_start()
                        .strip_prefix('\'')
                        .and_then(|s| s.split_once('\''))
                        .map(|(name, _)| vec![name])
                } else if let Some(list) = rest.strip_prefix("IN (") {
                    list.split_once(')').map(|(names, _)| {
                        names
                            .split(',')
                            .map(|n| n.trim().trim_matches('\''))
                            .collect()
                    })
                } else {
                    None
                };
                for name in list.unwrap_or_default() {
                    if name.starts_with('$') || name.starts_with('?') || name.is_empty() {
                        continue;
                    }
                    assert!(
                        name.parse::<DeliveryState>().is_ok(),
                        "{name:?} is not a delivery state"
                    );
                    seen += 1;
                }
            }
            for (at, _) in source.match_indices("WHEN seq = 0 THEN '") {
                let case = &source[at..source[at..].find("END").map_or(at, |end| at + end)];
                for name in case.split('\'').skip(1).step_by(2) {
                    assert!(name.parse::<DeliveryState>().is_ok(), "{name:?}");
                    seen += 1;
                }
            }
        }
        assert!(seen > 20, "the scan found {seen} names: has the SQL moved?");
    }

    #[test]
    fn a_provider_report_moves_a_message_only_forward() {
        let report = |state: &str| ProviderStatus {
            connector: "twilio".into(),
            provider_message_id: "SM1".into(),
            state: state.into(),
            code: Some("30003".into()),
            description: None,
            at: 0,
        };
        assert_eq!(
            report("delivered").moves(MessageStatus::Sent),
            Some((MessageStatus::Delivered, None))
        );
        let (failed, reason) = report("failed").moves(MessageStatus::Sent).unwrap();
        assert_eq!(failed, MessageStatus::Failed);
        assert!(reason.unwrap().contains("(30003)"));
        assert_eq!(report("delivered").moves(MessageStatus::Read), None);
        assert_eq!(
            report("read").moves(MessageStatus::Sending),
            None,
            "still ours"
        );
        assert_eq!(report("queued").moves(MessageStatus::Sent), None);
        assert!(may_cancel(MessageStatus::Queued, false));
        assert!(!may_cancel(MessageStatus::Queued, true), "in flight");
        assert!(!may_cancel(MessageStatus::Sent, false));
    }
}
