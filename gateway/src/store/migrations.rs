//! Versioned, forward-only schema changes, the same numbering in every
//! backend: version N means the same tables and columns in SQLite and in
//! PostgreSQL, each spelled in its own dialect, or once below when both
//! take the same SQL.
//!
//! A database records the versions applied to it (`schema_migrations`). At
//! start the missing ones run in order, each in its own transaction; a
//! database that records a version this build does not know was written by
//! a newer build, and is refused rather than written to with an older idea
//! of its tables.

use super::error::Result;
use super::error::StoreError;
use std::borrow::Cow;

/// One step. Its SQL never changes once released: a fix is a new step.
#[derive(Debug, Clone)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: Cow<'static, str>,
}

/// What each version does, the same in every backend: version N is
/// `STEPS[N - 1]`. Each backend pairs these with its own SQL ([`step`]).
pub const STEPS: [&str; 21] = [
    "messages, deliveries, attempts, keys, outbox, customers, suppressions",
    "attempts record the node that made them",
    "messages record the template, locale and content each channel rendered",
    "customer events, journey versions and journey runs",
    "campaigns: messages' campaign, customer traits, segments and broadcasts",
    "members a campaign sent nothing to, and why; events by arrival and keys by expiry, for purging",
    "members a campaign sent nothing to, by when, for purging",
    "journey runs a later run of the same journey superseded, by when they ended, for purging",
    "values the gateway keeps for itself (a secret it made, its readiness probe), shared by every node; the node holding each delivery's lease; consent requests awaiting a YES",
    "a conversion may have no value (its event carried none that is an amount)",
    "customers' feeds: inbox and in-app items, and when each feed was last opened; escalation after a delivery",
    "messages found by customer and by recipient, newest first",
    "the console's sign-in sessions; journey runs by journey and status; a message's callbacks",
    "the channel report's whole days, summed once and forgotten when one of their messages changes",
    "the parts of a message its provider split (a long SMS), each with its own provider id and report",
    "connectors' attempts per node and second, and their circuits, shared by every node",
    "a delivery's escalation may end on a report of delivery (failover on silence)",
    "rate-limited connectors' shared timelines of turns",
    "customers' arms in journey experiments; conversions by customer, for their report",
    "experiment arms by when they were dealt, for purging",
    "journey runs by customer and journey, for superseding a customer's earlier runs",
];

/// Step 21, the same in both backends: a run that starts marks the
/// customer's earlier runs of the journey superseded, a lookup by customer
/// and journey. With only `journey_runs_by_journey` to match the journey
/// (and no statistics yet, as on a new database), both planners chose it and
/// walked every run of the journey at each start: the journeys bench fell
/// from 8,800 to 3,000-4,800 steps/s on SQLite, and 57% of its writer's time
/// went to that one statement (docs/benchmarks/2026-12-07-journeys-that-keep-time.md).
pub const RUNS_BY_CUSTOMER_JOURNEY: &str = "
CREATE INDEX journey_runs_by_customer_journey ON journey_runs (customer_id, journey);
";

/// Step 20, the same in both backends: arms go with the events past
/// `[retention] events` (see [`crate::retention`]), the oldest first.
pub const ARMS_BY_AGE: &str = "
CREATE INDEX experiment_arms_assigned ON experiment_arms (assigned_at);
";

/// Step 19, the same in both backends: see [`crate::journeys::experiments`].
/// The report looks up each customer's conversions after their assignment:
/// without the index on `conversions`, 100,000 customers ran past the
/// analytics connection's time limit on SQLite.
pub const EXPERIMENT_ARMS: &str = "
CREATE TABLE experiment_arms (
    journey     TEXT NOT NULL,
    step        TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    arm         TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    message_id  TEXT,
    assigned_at BIGINT NOT NULL,
    PRIMARY KEY (journey, step, customer_id)
);
CREATE INDEX conversions_customer ON conversions (customer_id, occurred_at);
";

/// Step 18: see [`crate::store::pace`]. SQLite keeps the timelines in its
/// one process; the table is there so both schemas are one.
pub const CONNECTOR_PACE: &str = "
CREATE TABLE connector_pace (
    connector TEXT PRIMARY KEY,
    tat       BIGINT NOT NULL
);
";

/// Step 17, the same in both backends: `'delivered'` on a delivery whose
/// escalation is failover on silence, `NULL` for one a read ends.
pub const ESCALATE_ENDS: &str = "ALTER TABLE deliveries ADD COLUMN escalate_ends TEXT;";

/// Step 16, the same in both backends: see [`crate::store::health`].
pub const CONNECTOR_HEALTH: &str = "
CREATE TABLE connector_attempts (
    node      TEXT NOT NULL,
    connector TEXT NOT NULL,
    second    BIGINT NOT NULL,
    ok        BIGINT NOT NULL,
    failed    BIGINT NOT NULL,
    PRIMARY KEY (node, connector, second)
);
CREATE INDEX connector_attempts_second ON connector_attempts (second);
CREATE TABLE connector_circuits (
    connector TEXT PRIMARY KEY,
    state     TEXT NOT NULL,
    since     BIGINT NOT NULL,
    reason    TEXT NOT NULL
);
";

/// Step 15, the same in both backends: a message sent as several parts
/// (see [`crate::store::parts`]). Only split messages have rows, the first
/// part's id among them.
pub const PROVIDER_PARTS: &str = "
CREATE TABLE provider_parts (
    connector           TEXT NOT NULL,
    provider_message_id TEXT NOT NULL,
    message_id          TEXT NOT NULL,
    state               TEXT NOT NULL,
    PRIMARY KEY (connector, provider_message_id)
);
CREATE INDEX provider_parts_message ON provider_parts (message_id);
";

/// Step 14's tables, the same in both backends (each adds the triggers
/// that forget a day, in its own dialect): see [`crate::store::report_days`].
/// A day is claimed (`claim`, `claimed_at`) before it is summed and counts
/// as summed once `rolled_at` is set, in the same transaction as its rows.
pub const REPORT_DAYS: &str = "
CREATE TABLE report_days (
    day        BIGINT PRIMARY KEY,
    claim      TEXT NOT NULL,
    claimed_at BIGINT NOT NULL,
    rolled_at  BIGINT
);
CREATE TABLE report_day_rows (
    day        BIGINT NOT NULL,
    channel    TEXT NOT NULL,
    region     TEXT,
    campaign   TEXT,
    sent       BIGINT NOT NULL,
    delivered  BIGINT NOT NULL,
    read       BIGINT NOT NULL,
    failed     BIGINT NOT NULL,
    suppressed BIGINT NOT NULL,
    cost       DOUBLE PRECISION NOT NULL
);
CREATE INDEX report_day_rows_day ON report_day_rows (day);
";

/// Step 13, the same in both backends: the console's sessions, under the
/// hash of their cookie, ended by a sign-out; and journey runs counted by
/// journey and status from an index, for the console's journeys page.
pub const CONSOLE_SESSIONS: &str = "
CREATE TABLE console_sessions (
    id         TEXT PRIMARY KEY,
    key_name   TEXT NOT NULL,
    scope      TEXT NOT NULL,
    csrf       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ended_at   BIGINT
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
CREATE INDEX journey_runs_by_journey ON journey_runs (journey, status);
CREATE INDEX callbacks_outbox_message ON callbacks_outbox (message_id);
";

/// Step 12, the same in both backends: `GET /v1/messages` by customer or
/// by address reads its page from an index, newest first, whatever the
/// table holds (the time range alone reads `messages_created`).
pub const MESSAGE_SEARCH: &str = "
CREATE INDEX messages_customer_created ON messages (customer_id, created_at)
    WHERE customer_id IS NOT NULL;
CREATE INDEX messages_recipient_created ON messages (recipient, created_at);
";

/// Step 11, the same in both backends (SQLite through [`in_sqlite_types`]):
/// the items of each customer's feed, newest first per customer, and when
/// the customer last opened it (the planner's "reachable" fact). An item
/// is its message (same id). `expires_at` is an in-app item's end; `data`
/// is JSON. And a delivery's escalation: the next delivery goes this long
/// after it was sent unless the message was read (or, in-app, seen) by then.
pub const FEEDS: &str = "
CREATE TABLE feed_items (
    id          TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    channel     TEXT NOT NULL,
    title       TEXT,
    body        TEXT NOT NULL,
    action_url  TEXT,
    image_url   TEXT,
    category    TEXT,
    data        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    seen_at     BIGINT,
    read_at     BIGINT,
    archived_at BIGINT
);
CREATE INDEX feed_items_customer ON feed_items (customer_id, created_at DESC, id DESC);
CREATE INDEX feed_items_created ON feed_items (created_at);
CREATE TABLE feeds (
    customer_id TEXT PRIMARY KEY,
    opened_at   BIGINT NOT NULL
);
ALTER TABLE deliveries ADD COLUMN escalate_after BIGINT;
";

/// Step 6, written once in PostgreSQL's types (SQLite takes it through
/// [`in_sqlite_types`]): a member a campaign sent nothing to (an offer they already
/// got, a send refused) has no message to count; the refusal is kept
/// instead, once per member, so the broadcast's counts add up to its
/// members and the operator can see whom to fix. And events by when they
/// came, and idempotency and dedup keys by when they expire, so purging
/// finds the oldest without reading the whole table.
pub const REFUSALS_AND_PURGE_INDEXES: &str = "
CREATE INDEX events_received ON events (received_at) WHERE handled;
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
CREATE INDEX dedup_keys_expiry ON dedup_keys (expires_at);
CREATE TABLE refusals (
    campaign    TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    code        TEXT NOT NULL,
    message     TEXT NOT NULL,
    refused_at  BIGINT NOT NULL,
    PRIMARY KEY (campaign, customer_id)
);
";

/// Step 5, written once like step 6: which campaign (a broadcast, a journey) a message belongs to and
/// its region, what each delivery costs (fixed when it is planned), the
/// facts segments select customers by (one indexed row per fact), segments
/// defined over the API, broadcasts with where their fan-out is, and
/// conversions with the messages they are attributed to.
pub const CAMPAIGNS: &str = "
ALTER TABLE messages ADD COLUMN campaign TEXT;
ALTER TABLE messages ADD COLUMN region TEXT;
ALTER TABLE deliveries ADD COLUMN cost DOUBLE PRECISION;
CREATE INDEX messages_campaign ON messages (campaign, status) WHERE campaign IS NOT NULL;
CREATE INDEX messages_created ON messages (created_at);
CREATE TABLE conversions (
    event_id         TEXT PRIMARY KEY,
    customer_id      TEXT NOT NULL,
    name             TEXT NOT NULL,
    value            DOUBLE PRECISION NOT NULL,
    currency         TEXT,
    occurred_at      BIGINT NOT NULL,
    -- the last and first message delivered or read within the window
    last_message_id  TEXT,
    first_message_id TEXT,
    channel          TEXT,
    region           TEXT,
    connector        TEXT,
    campaign         TEXT,
    template         TEXT
);
CREATE INDEX conversions_occurred ON conversions (occurred_at);
CREATE TABLE customer_traits (
    trait       TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    PRIMARY KEY (trait, customer_id)
);
CREATE INDEX customer_traits_customer ON customer_traits (customer_id);
CREATE TABLE segments (
    name       TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE broadcasts (
    id          TEXT PRIMARY KEY,
    definition  TEXT NOT NULL,
    -- scheduled, planning, planned, cancelled
    status      TEXT NOT NULL,
    -- the last customer id planned: members are planned in id order
    cursor      TEXT NOT NULL DEFAULT '',
    planned     BIGINT NOT NULL DEFAULT 0,
    start_at    BIGINT NOT NULL,
    lease_until BIGINT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX broadcasts_open ON broadcasts (start_at) WHERE status IN ('scheduled', 'planning');
";

/// Step 4, written once like step 6: events until journeys have applied them, the journey versions
/// runs are pinned to, and runs with their timers.
pub const JOURNEYS: &str = "
CREATE TABLE events (
    id              TEXT PRIMARY KEY,
    customer_id     TEXT NOT NULL,
    name            TEXT NOT NULL,
    properties      TEXT NOT NULL,
    occurred_at     BIGINT NOT NULL,
    received_at     BIGINT NOT NULL,
    idempotency_key TEXT UNIQUE,
    -- journeys have applied it; until then it is leased to one node at a time
    handled         BOOLEAN NOT NULL DEFAULT FALSE,
    lease_until     BIGINT
);
CREATE INDEX events_unhandled ON events (received_at) WHERE NOT handled;
CREATE INDEX events_by_customer ON events (customer_id, name, occurred_at);
CREATE TABLE journey_versions (
    version    TEXT PRIMARY KEY,
    journey    TEXT NOT NULL,
    config     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE journey_runs (
    id          TEXT PRIMARY KEY,
    journey     TEXT NOT NULL,
    version     TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    status      TEXT NOT NULL,
    state       TEXT NOT NULL,
    wake_at     BIGINT,
    lease_until BIGINT,
    revision    BIGINT NOT NULL,
    started_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX journey_runs_due ON journey_runs (wake_at) WHERE status = 'active';
CREATE INDEX journey_runs_by_customer ON journey_runs (customer_id, started_at);
";

/// Steps 4 to 6 in the column types SQLite was given when they were
/// released (a step's SQL never changes): `INTEGER` for `BIGINT`, `REAL`
/// for `DOUBLE PRECISION`, and flags as `0`/`1` integers.
pub fn in_sqlite_types(sql: &str) -> String {
    sql.replace("BIGINT", "INTEGER")
        .replace("DOUBLE PRECISION", "REAL")
        .replace(
            "BOOLEAN NOT NULL DEFAULT FALSE",
            "INTEGER NOT NULL DEFAULT 0",
        )
}

/// Step 7, the same in both backends.
pub const REFUSALS_BY_TIME: &str = "CREATE INDEX refusals_refused_at ON refusals (refused_at);";

/// Step 8, the same in both backends: a journey run is superseded once the
/// same customer starts the same journey again. Only the latest run says
/// whether a customer may enter (`entry = "once"`, or the cool-down of
/// `"again"`), so the ones before it may go with the events' retention; the
/// index finds them without reading the latest runs, which stay.
pub const SUPERSEDED_RUNS: &str = "
ALTER TABLE journey_runs ADD COLUMN superseded BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE journey_runs SET superseded = TRUE
WHERE EXISTS (
    SELECT 1 FROM journey_runs later
    WHERE later.customer_id = journey_runs.customer_id
      AND later.journey = journey_runs.journey
      AND (later.started_at, later.id) > (journey_runs.started_at, journey_runs.id));
CREATE INDEX journey_runs_superseded ON journey_runs (updated_at)
    WHERE superseded AND status <> 'active';
";

/// Step 9, the same in both backends: values the gateway keeps for itself.
/// A secret the configuration does not give (the unsubscribe links' key of
/// a default install) is made by the first node that needs it and read by
/// every other, so a link one node signed works on all of them and across
/// restarts; `/readyz` writes a row, so a store that cannot be written (a
/// full disk) is not ready. And which node leased a delivery, so an attempt
/// cut short is put down to the node that made it, not to the node that
/// took the lease over.
pub const GATEWAY_STATE: &str = "
CREATE TABLE gateway_state (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
ALTER TABLE deliveries ADD COLUMN leased_by TEXT;
CREATE TABLE consent_requests (
    message_id   TEXT PRIMARY KEY,
    customer_id  TEXT NOT NULL,
    category     TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    open_until   BIGINT NOT NULL,
    confirmed_at BIGINT
);
CREATE INDEX consent_requests_open ON consent_requests (customer_id, created_at)
    WHERE confirmed_at IS NULL;
CREATE INDEX consent_requests_expiry ON consent_requests (open_until);
";

/// Version `version`, named from [`STEPS`], done by `sql`.
pub fn step(version: u32, sql: impl Into<Cow<'static, str>>) -> Migration {
    Migration {
        version,
        name: STEPS[version as usize - 1],
        sql: sql.into(),
    }
}

/// Where a database stands against this build, for `crossgate migrate --check`.
#[derive(Debug, Clone)]
pub struct SchemaStatus {
    /// Which database, without credentials.
    pub database: String,
    /// The highest version applied; 0 for an empty database, or one from
    /// before versioning (whose first step is written to apply to it too).
    pub applied: u32,
    /// What start-up would run, in order.
    pub pending: Vec<Migration>,
}

impl std::fmt::Display for SchemaStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: schema version {}", self.database, self.applied)?;
        if self.pending.is_empty() {
            return write!(f, ", up to date");
        }
        write!(f, "; would apply:")?;
        for m in &self.pending {
            write!(f, "\n  {:>4}  {}", m.version, m.name)?;
        }
        Ok(())
    }
}

/// The steps `all` has beyond `applied`; an error when the database is
/// ahead of this build.
pub fn pending(database: &str, all: &[Migration], applied: u32) -> Result<Vec<Migration>> {
    let known = all.last().map_or(0, |m| m.version);
    if applied > known {
        return Err(StoreError::TooNew(format!(
            "{database} has schema version {applied}, and this build knows versions up to \
             {known}: it was written by a newer Crossgate. Run that version (or newer) on it; \
             schema changes only go forward"
        )));
    }
    Ok(all
        .iter()
        .filter(|m| m.version > applied)
        .cloned()
        .collect())
}

/// Every backend's list has every step, numbered 1, 2, 3... in order.
#[cfg(test)]
pub fn assert_complete(all: &[Migration]) {
    assert_eq!(all.len(), STEPS.len());
    for (i, m) in all.iter().enumerate() {
        assert_eq!(m.version as usize, i + 1, "{}", m.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Migration; 2] = [
        Migration {
            version: 1,
            name: "baseline",
            sql: Cow::Borrowed(""),
        },
        Migration {
            version: 2,
            name: "attempt nodes",
            sql: Cow::Borrowed(""),
        },
    ];

    #[test]
    fn an_older_database_gets_what_it_lacks_and_a_newer_one_is_refused() {
        let versions = |applied| -> Vec<u32> {
            pending("db", &ALL, applied)
                .unwrap()
                .iter()
                .map(|m| m.version)
                .collect()
        };
        assert_eq!(versions(0), [1, 2]);
        assert_eq!(versions(1), [2]);
        assert!(versions(2).is_empty());
        let newer = pending("db", &ALL, 3).unwrap_err().to_string();
        assert!(newer.contains("schema version 3"), "{newer}");
        assert!(newer.contains("newer Crossgate"), "{newer}");
    }
}
