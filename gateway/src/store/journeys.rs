//! What journeys keep: customer events until their journeys have seen them,
//! each journey version runs were started on, and runs with their timers.
//! Any node may take any work: events and due runs are leased, and a run is
//! written only over the revision it was read at.

use super::error::Result;
use super::queue::Lease;
use async_trait::async_trait;

/// A run's columns, in the order both backends read them back into a
/// [`RunRecord`].
pub const RUN_COLUMNS: &str =
    "id, journey, version, customer_id, status, state, wake_at, revision, started_at, updated_at";

/// An event as the platform sent it, validated.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: String,
    pub customer_id: String,
    pub name: String,
    /// JSON object.
    pub properties: String,
    pub occurred_at: i64,
    pub received_at: i64,
    /// Scoped by caller: the same key names the same event.
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventInserted {
    New,
    /// An event with the same idempotency key is stored already.
    Duplicate {
        id: String,
    },
}

/// A stored event, for journeys to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    pub id: String,
    pub customer_id: String,
    pub name: String,
    pub properties: String,
    pub occurred_at: i64,
    pub received_at: i64,
}

/// A journey as configured when a run started on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JourneyVersion {
    /// A hash of the journey's configuration.
    pub version: String,
    pub journey: String,
    /// The configuration, JSON.
    pub config: String,
    /// When this node first ran it.
    pub created_at: i64,
}

/// A run: its journey version, its customer and its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub id: String,
    pub journey: String,
    pub version: String,
    pub customer_id: String,
    /// `active`, `completed`, `exited`, `converted`.
    pub status: String,
    /// The engine's state, JSON.
    pub state: String,
    /// When the clock moves it on (active runs that wait).
    pub wake_at: Option<i64>,
    /// Bumped by every write: a writer names the revision it read.
    pub revision: i64,
    pub started_at: i64,
    pub updated_at: i64,
}

/// A customer's arm in a journey step's experiment, from their first run
/// through it, with the message it made (none for the holdout, or when
/// nothing was sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmRecord {
    pub journey: String,
    pub step: String,
    pub customer_id: String,
    pub arm: String,
    pub run_id: String,
    pub message_id: Option<String>,
    pub assigned_at: i64,
}

/// What the store counts of one arm (see [`crate::journeys::experiments::report`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ArmTotals {
    pub arm: String,
    pub customers: u64,
    /// Customers whose message left (sent, delivered or read).
    pub sent: u64,
    pub delivered: u64,
    /// Customers with a conversion within the window after their assignment.
    pub conversions: u64,
    /// What the arm's sent deliveries cost.
    pub cost: f64,
}

/// [`JourneyStore::record_arm`]'s statement, the same in both stores.
pub(crate) const RECORD_ARM: &str = "INSERT INTO experiment_arms
     (journey, step, customer_id, arm, run_id, message_id, assigned_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (journey, step, customer_id) DO NOTHING";

/// [`JourneyStore::arm_totals`]' statement, the same in both stores.
/// The oldest experiment arms dealt before `$1`, `$2` of them: they go with
/// the events past retention (the report counts what is kept).
pub(crate) const PURGE_ARMS: &str = "DELETE FROM experiment_arms
     WHERE (journey, step, customer_id) IN (
         SELECT journey, step, customer_id FROM experiment_arms WHERE assigned_at < $1
         ORDER BY assigned_at LIMIT $2)";

pub(crate) const ARM_TOTALS: &str = "SELECT a.arm, COUNT(*),
       SUM(CASE WHEN m.status IN ('sent', 'delivered', 'read') THEN 1 ELSE 0 END),
       SUM(CASE WHEN m.status IN ('delivered', 'read') THEN 1 ELSE 0 END),
       SUM(CASE WHEN EXISTS (SELECT 1 FROM conversions c
                             WHERE c.customer_id = a.customer_id
                               AND c.occurred_at >= a.assigned_at
                               AND c.occurred_at <= a.assigned_at + $3)
                THEN 1 ELSE 0 END),
       SUM(COALESCE((SELECT SUM(d.cost) FROM deliveries d
                     WHERE d.message_id = a.message_id AND d.state = 'sent'), 0))
     FROM experiment_arms a
     LEFT JOIN messages m ON m.id = a.message_id
     WHERE a.journey = $1 AND a.step = $2
     GROUP BY a.arm ORDER BY a.arm";

/// [`JourneyStore::first_event_since`]'s statement, the same in both stores.
pub(crate) const FIRST_EVENT_SINCE: &str = "SELECT id, occurred_at FROM events
     WHERE customer_id = $1 AND name = $2 AND occurred_at >= $3 AND id <> $4
     ORDER BY occurred_at, received_at LIMIT 1";

/// [`JourneyStore::run_counts`]' statement, the same in both stores.
pub(crate) const RUN_COUNTS: &str =
    "SELECT status, COUNT(*) FROM journey_runs WHERE journey = $1 GROUP BY status ORDER BY status";

/// Claimed events in the order journeys apply them: a customer's together,
/// by when they happened, then by when they arrived.
pub fn in_applying_order(events: &mut [EventRecord]) {
    events.sort_by(|a, b| {
        (&a.customer_id, a.occurred_at, a.received_at).cmp(&(
            &b.customer_id,
            b.occurred_at,
            b.received_at,
        ))
    });
}

#[async_trait]
pub trait JourneyStore: Send + Sync {
    /// Store events durably; a repeated idempotency key stores nothing.
    async fn record_events(&self, events: Vec<NewEvent>) -> Result<Vec<EventInserted>>;

    /// Lease the events journeys have not applied yet, with every other
    /// unapplied event of the same customers, so one node applies one
    /// customer's events in order. Oldest customers first, up to `limit` events' worth.
    async fn claim_events(&self, lease: Lease) -> Result<Vec<EventRecord>>;

    /// Journeys have applied these events.
    async fn events_handled(&self, ids: Vec<String>) -> Result<()>;

    /// How many times `customer_id` did `name` since `since`. Only the
    /// store suite reads it today, to see what each store kept: segments
    /// read profiles, and journey branches the profile, the event and the
    /// run's steps.
    async fn count_events(&self, customer_id: &str, name: &str, since: i64) -> Result<u64>;

    /// The customer's earliest stored event named `name` that occurred at
    /// or after `since`, other than `except` (an event id): as
    /// `(id, occurred_at)`. A run starting on a trigger asks it for its
    /// exit and goal events, which may have arrived before the trigger.
    async fn first_event_since(
        &self,
        customer_id: &str,
        name: &str,
        since: i64,
        except: &str,
    ) -> Result<Option<(String, i64)>>;

    /// Keep a customer's arm; only their first assignment in a step counts.
    async fn record_arm(&self, arm: ArmRecord) -> Result<()>;

    /// Each arm of a step's experiment, counted, with conversions within
    /// `window_ms` after each customer's assignment (on the analytics
    /// connection).
    async fn arm_totals(&self, journey: &str, step: &str, window_ms: i64)
    -> Result<Vec<ArmTotals>>;

    /// Keep a journey version; storing one twice is harmless.
    async fn put_journey_version(&self, version: JourneyVersion) -> Result<()>;

    async fn journey_version(&self, version: &str) -> Result<Option<JourneyVersion>>;

    /// Store a new run; `false` when a run with its id exists (a journey
    /// entered once per customer names its runs after them).
    async fn insert_run(&self, run: RunRecord) -> Result<bool>;

    /// Write `run` over revision `read_at`; `false` when someone else wrote
    /// it since (read it again). Releases the run's lease.
    async fn update_run(&self, run: RunRecord, read_at: i64) -> Result<bool>;

    async fn run(&self, id: &str) -> Result<Option<RunRecord>>;

    /// A customer's runs, newest first.
    async fn customer_runs(&self, customer_id: &str) -> Result<Vec<RunRecord>>;

    /// At most `limit` of a customer's runs, newest first, after the run
    /// `after` (the last of the previous page) when given: what the API
    /// lists, a page at a time, however many runs a customer has.
    async fn customer_runs_page(
        &self,
        customer_id: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Vec<RunRecord>>;

    /// How many runs of `journey` are in each status, by status (the
    /// console's; on the analytics connection).
    async fn run_counts(&self, journey: &str) -> Result<Vec<(String, u64)>>;

    /// Lease active runs whose timer is due.
    async fn lease_due_runs(&self, lease: Lease) -> Result<Vec<RunRecord>>;
}
