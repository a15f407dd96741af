//! The PostgreSQL schema, as numbered steps (see [`crate::store::migrations`]).
//! Same tables, columns and versions as SQLite's; times are milliseconds in
//! `BIGINT`, and every number is `BIGINT` so one Rust type reads them all.

use super::Sql as _;
use crate::store::Result;
use crate::store::migrations::{self, Migration, SchemaStatus};
use deadpool_postgres::Object;

/// Every step, in order.
pub fn all() -> Vec<Migration> {
    vec![
        migrations::step(1, BASELINE),
        migrations::step(2, "ALTER TABLE attempts ADD COLUMN node TEXT;"),
        migrations::step(3, "ALTER TABLE messages ADD COLUMN template TEXT;"),
        migrations::step(4, migrations::JOURNEYS),
        migrations::step(5, migrations::CAMPAIGNS),
        migrations::step(6, migrations::REFUSALS_AND_PURGE_INDEXES),
        migrations::step(7, migrations::REFUSALS_BY_TIME),
        migrations::step(8, migrations::SUPERSEDED_RUNS),
        migrations::step(9, migrations::GATEWAY_STATE),
        // A conversion whose event carried no usable amount is recorded without one.
        migrations::step(
            10,
            "ALTER TABLE conversions ALTER COLUMN value DROP NOT NULL;",
        ),
        migrations::step(11, migrations::FEEDS),
        migrations::step(12, migrations::MESSAGE_SEARCH),
        migrations::step(13, migrations::CONSOLE_SESSIONS),
        migrations::step(
            14,
            format!("{}{FORGET_REPORT_DAYS}", migrations::REPORT_DAYS),
        ),
        migrations::step(15, migrations::PROVIDER_PARTS),
        migrations::step(16, migrations::CONNECTOR_HEALTH),
        migrations::step(17, migrations::ESCALATE_ENDS),
        migrations::step(18, migrations::CONNECTOR_PACE),
        migrations::step(19, migrations::EXPERIMENT_ARMS),
        migrations::step(20, migrations::ARMS_BY_AGE),
        migrations::step(21, migrations::RUNS_BY_CUSTOMER_JOURNEY),
    ]
}

/// Step 14's triggers: a message stored into a past day, or one of a past
/// day's messages changing status (every attempt recorded sets
/// `updated_at`, so a later delivery's cost counts too), forgets that day's
/// sums. "Past" is the database's own UTC day, and only days that ended on
/// its clock are ever summed (see `report_days`), so the condition is a
/// comparison without a lookup: today's messages, the sending path's, never
/// run the function.
const FORGET_REPORT_DAYS: &str = "
CREATE FUNCTION report_days_forget() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM report_days WHERE day = NEW.created_at / 86400000;
    DELETE FROM report_day_rows WHERE day = NEW.created_at / 86400000;
    RETURN NULL;
END
$$;
CREATE TRIGGER report_days_forget_insert AFTER INSERT ON messages FOR EACH ROW
WHEN (NEW.created_at < FLOOR(EXTRACT(EPOCH FROM now()) / 86400)::BIGINT * 86400000)
EXECUTE FUNCTION report_days_forget();
CREATE TRIGGER report_days_forget_update
AFTER UPDATE OF status, delivered_channel, updated_at ON messages FOR EACH ROW
WHEN (NEW.created_at < FLOOR(EXTRACT(EPOCH FROM now()) / 86400)::BIGINT * 86400000)
EXECUTE FUNCTION report_days_forget();
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
pub async fn apply(client: &mut Object, database: &str) -> Result<()> {
    let tx = client.transaction().await?;
    tx.exec("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(VERSIONS).await?;
    let applied = applied(&tx).await?;
    let now = crate::clock::wall_ms();
    for m in migrations::pending(database, &all(), applied)? {
        tx.batch_execute(&m.sql).await?;
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

async fn applied(db: &impl super::Sql) -> Result<u32> {
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
pub async fn status(url: &str) -> Result<SchemaStatus> {
    let database = crate::config::without_password(url);
    let client = super::pool(url, 1)?.get().await?;
    let applied = applied(&client).await?;
    let pending = migrations::pending(&database, &all(), applied)?;
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
        crate::store::migrations::assert_complete(&super::all());
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
