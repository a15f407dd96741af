//! The PostgreSQL schema, as numbered steps (see [`crate::store::migrations`]).
//! Same tables, columns and versions as SQLite's; times are milliseconds in
//! `BIGINT`, and every number is `BIGINT` so one Rust type reads them all.

use super::Sql as _;
use crate::store::StoreError;
use crate::store::migrations::{self, Migration, SchemaStatus};
use deadpool_postgres::Object;

pub const MIGRATIONS: [Migration; 10] = [
    migrations::step(1, BASELINE),
    migrations::step(2, "ALTER TABLE attempts ADD COLUMN node TEXT;"),
    migrations::step(3, "ALTER TABLE messages ADD COLUMN template TEXT;"),
    migrations::step(4, JOURNEYS),
    migrations::step(5, CAMPAIGNS),
    migrations::step(6, REFUSALS_AND_PURGE_INDEXES),
    migrations::step(7, migrations::REFUSALS_BY_TIME),
    migrations::step(8, migrations::SUPERSEDED_RUNS),
    migrations::step(9, migrations::GATEWAY_STATE),
    // A conversion whose event carried no usable amount is recorded without one.
    migrations::step(
        10,
        "ALTER TABLE conversions ALTER COLUMN value DROP NOT NULL;",
    ),
];

/// Step 6: a member a campaign sent nothing to (an offer they already
/// got, a send refused) has no message to count; the refusal is kept
/// instead, once per member, so the broadcast's counts add up to its
/// members and the operator can see whom to fix. And events by when they
/// came, and idempotency and dedup keys by when they expire, so purging
/// finds the oldest without reading the whole table.
const REFUSALS_AND_PURGE_INDEXES: &str = "
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

/// Step 5: which campaign (a broadcast, a journey) a message belongs to and
/// its region, what each delivery costs (fixed when it is planned), the
/// facts segments select customers by (one indexed row per fact), segments
/// defined over the API, broadcasts with where their fan-out is, and
/// conversions with the messages they are attributed to.
const CAMPAIGNS: &str = "
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

/// Step 4: events until journeys have applied them, the journey versions
/// runs are pinned to, and runs with their timers.
const JOURNEYS: &str = "
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

/// Unlike SQLite's, the rows that belong to a message (deliveries, attempts,
/// provider reports) carry no foreign key to it: the check is a lookup and
/// a row lock per row written, measured at a third of recording an attempt,
/// and nothing deletes messages; the store writes them together.
const BASELINE: &str = "
CREATE TABLE messages (
    id                  TEXT PRIMARY KEY,
    status              TEXT NOT NULL,
    status_reason       TEXT,
    channel             TEXT NOT NULL,
    recipient           TEXT NOT NULL,
    scope               TEXT NOT NULL,
    content             TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    send_at             BIGINT,
    expires_at          BIGINT,
    cancel_key          TEXT,
    dedup_key           TEXT,
    callback_url        TEXT,
    event_seq           BIGINT NOT NULL DEFAULT 0,
    delivered_by        TEXT,
    delivered_channel   TEXT,
    provider_message_id TEXT,
    attempt_count       BIGINT NOT NULL DEFAULT 0,
    customer_id         TEXT,
    category            TEXT,
    plan                TEXT
);

CREATE INDEX messages_open_expiry ON messages (expires_at)
    WHERE expires_at IS NOT NULL AND status IN ('scheduled', 'queued', 'sending');
CREATE INDEX messages_provider_id ON messages (delivered_by, provider_message_id)
    WHERE provider_message_id IS NOT NULL;
CREATE INDEX messages_customer_category ON messages (customer_id, category, created_at)
    WHERE customer_id IS NOT NULL;
CREATE INDEX messages_cancel ON messages (scope, cancel_key) WHERE cancel_key IS NOT NULL;
CREATE INDEX messages_scope_category ON messages (scope, category, created_at)
    WHERE category IS NOT NULL;

CREATE TABLE status_events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id  TEXT NOT NULL,
    at          BIGINT NOT NULL,
    state       TEXT NOT NULL,
    code        TEXT,
    description TEXT
);
CREATE INDEX status_events_message ON status_events (message_id, at);

CREATE TABLE customers (
    id         TEXT PRIMARY KEY,
    profile    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE deliveries (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id  TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    channel     TEXT NOT NULL,
    connector   TEXT NOT NULL,
    address     TEXT NOT NULL,
    content     TEXT,
    state       TEXT NOT NULL,
    due_at      BIGINT NOT NULL,
    lease_until BIGINT,
    attempts    BIGINT NOT NULL DEFAULT 0,
    UNIQUE (message_id, seq)
);
CREATE INDEX deliveries_pending ON deliveries (due_at) WHERE state = 'pending';
CREATE INDEX deliveries_leased ON deliveries (lease_until) WHERE state = 'leased';

-- Queue tables: every message updates its rows a few times, so dead rows
-- pile up fast, and with them dead entries in the partial indexes leasing
-- walks. Vacuum and analyze them after 1-2% of their rows changed, not 20%.
ALTER TABLE deliveries SET (autovacuum_vacuum_scale_factor = 0.01,
                            autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE messages SET (autovacuum_vacuum_scale_factor = 0.01,
                          autovacuum_analyze_scale_factor = 0.02);

CREATE TABLE attempts (
    message_id          TEXT NOT NULL,
    number              BIGINT NOT NULL,
    delivery_id         BIGINT NOT NULL,
    connector           TEXT NOT NULL,
    channel             TEXT NOT NULL,
    started_at          BIGINT NOT NULL,
    finished_at         BIGINT NOT NULL,
    outcome             TEXT NOT NULL,
    provider_message_id TEXT,
    error_code          TEXT,
    error_message       TEXT,
    retry_at            BIGINT,
    PRIMARY KEY (message_id, number)
);

CREATE TABLE idempotency_keys (
    key          TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    response     TEXT NOT NULL,
    expires_at   BIGINT NOT NULL
);

CREATE TABLE dedup_keys (
    scope      TEXT NOT NULL,
    key        TEXT NOT NULL,
    message_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE TABLE callbacks_outbox (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id  TEXT NOT NULL,
    url         TEXT NOT NULL,
    payload     TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending',
    due_at      BIGINT NOT NULL,
    lease_until BIGINT,
    attempts    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX callbacks_due ON callbacks_outbox (state, due_at);
ALTER TABLE callbacks_outbox SET (autovacuum_vacuum_scale_factor = 0.01,
                                  autovacuum_analyze_scale_factor = 0.02);

CREATE TABLE customer_addresses (
    channel     TEXT NOT NULL,
    address     TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    PRIMARY KEY (channel, address, customer_id)
);
CREATE INDEX customer_addresses_customer ON customer_addresses (customer_id);

CREATE TABLE suppressions (
    channel    TEXT NOT NULL,
    address    TEXT NOT NULL,
    reason     TEXT NOT NULL,
    source     TEXT NOT NULL,
    note       TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (channel, address)
);
";

/// Nodes starting together migrate one at a time: the first takes this
/// lock and applies what is missing; the others wait, then find nothing to do.
const MIGRATION_LOCK: i64 = 0x6372_6f73_7367_6174; // "crossgat"

const VERSIONS: &str = "
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    BIGINT PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)";

/// Every missing step in one transaction: DDL is transactional here, so a
/// failed step leaves the database as it was.
pub async fn apply(client: &mut Object, database: &str) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.exec("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(VERSIONS).await?;
    let applied = applied(&tx).await?;
    let now = crate::clock::wall_ms();
    for m in migrations::pending(database, &MIGRATIONS, applied)? {
        tx.batch_execute(m.sql).await?;
        tx.exec(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            &[&i64::from(m.version), &m.name, &now],
        )
        .await?;
        tracing::info!(
            database,
            version = m.version,
            name = m.name,
            "schema migrated"
        );
    }
    tx.commit().await?;
    Ok(())
}

async fn applied(db: &impl super::Sql) -> Result<u32, StoreError> {
    let versioned = db
        .one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await?
        .get::<_, bool>(0);
    if !versioned {
        return Ok(0);
    }
    let row = db
        .one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await?;
    Ok(super::count(&row, 0))
}

/// What opening the database would apply, read without changing it.
pub async fn status(url: &str) -> Result<SchemaStatus, StoreError> {
    let database = crate::config::without_password(url);
    let client = super::pool(url, 1)?.get().await?;
    let applied = applied(&client).await?;
    let pending = migrations::pending(&database, &MIGRATIONS, applied)?;
    Ok(SchemaStatus {
        database,
        applied,
        pending,
    })
}

#[cfg(test)]
mod tests {
    use crate::message::MessageStatus;

    #[test]
    fn every_step_is_there_in_order() {
        crate::store::migrations::assert_complete(&super::MIGRATIONS);
    }

    #[test]
    fn the_expiry_index_lists_the_open_statuses() {
        let open = MessageStatus::sql_list(MessageStatus::is_open);
        assert!(
            super::BASELINE.contains(&format!("status IN {open};")),
            "{open}"
        );
    }
}
