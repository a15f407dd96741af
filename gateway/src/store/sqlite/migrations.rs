//! The SQLite schema, as numbered steps (see [`crate::store::migrations`]).

use crate::store::Result;
use crate::store::migrations::{self, Migration, SchemaStatus};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::Path;

pub const PRAGMAS: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
PRAGMA foreign_keys = ON;
PRAGMA busy_timeout = 5000;
PRAGMA temp_store = MEMORY;
";

/// Every step, in order.
pub fn all() -> Vec<Migration> {
    use migrations::in_sqlite_types;
    vec![
        migrations::step(1, BASELINE),
        migrations::step(2, "ALTER TABLE attempts ADD COLUMN node TEXT;"),
        migrations::step(3, "ALTER TABLE messages ADD COLUMN template TEXT;"),
        migrations::step(4, in_sqlite_types(migrations::JOURNEYS)),
        migrations::step(5, in_sqlite_types(migrations::CAMPAIGNS)),
        migrations::step(6, in_sqlite_types(migrations::REFUSALS_AND_PURGE_INDEXES)),
        migrations::step(7, migrations::REFUSALS_BY_TIME),
        migrations::step(8, migrations::SUPERSEDED_RUNS),
        migrations::step(9, migrations::GATEWAY_STATE),
        migrations::step(10, VALUELESS_CONVERSIONS),
        migrations::step(11, in_sqlite_types(migrations::FEEDS)),
        migrations::step(12, migrations::MESSAGE_SEARCH),
        migrations::step(13, in_sqlite_types(migrations::CONSOLE_SESSIONS)),
        migrations::step(
            14,
            in_sqlite_types(migrations::REPORT_DAYS) + FORGET_REPORT_DAYS,
        ),
        // Purged with their message, as its status history is.
        migrations::step(
            15,
            migrations::PROVIDER_PARTS.replace(
                "message_id          TEXT NOT NULL,",
                "message_id          TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,",
            ),
        ),
        migrations::step(16, in_sqlite_types(migrations::CONNECTOR_HEALTH)),
        migrations::step(17, migrations::ESCALATE_ENDS),
        migrations::step(18, in_sqlite_types(migrations::CONNECTOR_PACE)),
        migrations::step(19, in_sqlite_types(migrations::EXPERIMENT_ARMS)),
        migrations::step(20, migrations::ARMS_BY_AGE),
        migrations::step(21, migrations::RUNS_BY_CUSTOMER_JOURNEY),
    ]
}

/// Step 14's triggers: a message stored into a summed day, or one of its
/// messages changing status (every attempt recorded sets `updated_at`, so a
/// later delivery's cost counts too), forgets that day's sums. Only summed
/// days are looked up, by key; one writer means no claim can slip between.
const FORGET_REPORT_DAYS: &str = "
CREATE TRIGGER report_days_forget_insert AFTER INSERT ON messages
WHEN EXISTS (SELECT 1 FROM report_days WHERE day = new.created_at / 86400000)
BEGIN
    DELETE FROM report_day_rows WHERE day = new.created_at / 86400000;
    DELETE FROM report_days WHERE day = new.created_at / 86400000;
END;
CREATE TRIGGER report_days_forget_update
AFTER UPDATE OF status, delivered_channel, updated_at ON messages
WHEN EXISTS (SELECT 1 FROM report_days WHERE day = old.created_at / 86400000)
BEGIN
    DELETE FROM report_day_rows WHERE day = old.created_at / 86400000;
    DELETE FROM report_days WHERE day = old.created_at / 86400000;
END;
";

/// Step 10: a conversion whose event carried no usable amount is recorded
/// without one (NULL), not as worth 0. SQLite cannot drop a NOT NULL, so
/// the table is made again with its rows.
const VALUELESS_CONVERSIONS: &str = "
CREATE TABLE conversions_10 (
    event_id         TEXT PRIMARY KEY,
    customer_id      TEXT NOT NULL,
    name             TEXT NOT NULL,
    value            REAL,
    currency         TEXT,
    occurred_at      INTEGER NOT NULL,
    last_message_id  TEXT,
    first_message_id TEXT,
    channel          TEXT,
    region           TEXT,
    connector        TEXT,
    campaign         TEXT,
    template         TEXT
);
INSERT INTO conversions_10 (event_id, customer_id, name, value, currency, occurred_at,
    last_message_id, first_message_id, channel, region, connector, campaign, template)
SELECT event_id, customer_id, name, value, currency, occurred_at,
    last_message_id, first_message_id, channel, region, connector, campaign, template
FROM conversions;
DROP TABLE conversions;
ALTER TABLE conversions_10 RENAME TO conversions;
CREATE INDEX conversions_occurred ON conversions (occurred_at);
";

/// The schema as the releases before versioning left it. Every statement is
/// idempotent, so a file from such a release (no `schema_migrations`, so at
/// version 0) takes this step as a fresh file does and keeps its rows.
const BASELINE: &str = "
CREATE TABLE IF NOT EXISTS messages (
    id                  TEXT PRIMARY KEY,
    status              TEXT NOT NULL,
    status_reason       TEXT,
    channel             TEXT NOT NULL,
    recipient           TEXT NOT NULL,
    -- whom dedup and cancel keys count for: phone:+31..., customer:42
    scope               TEXT NOT NULL,
    content             TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    send_at             INTEGER,
    expires_at          INTEGER,
    cancel_key          TEXT,
    dedup_key           TEXT,
    callback_url        TEXT,
    -- numbers status callbacks, so receivers can order them
    event_seq           INTEGER NOT NULL DEFAULT 0,
    delivered_by        TEXT,
    delivered_channel   TEXT,
    provider_message_id TEXT,
    attempt_count       INTEGER NOT NULL DEFAULT 0,
    -- customer sends: who, what kind, and the route plan with its reasons
    customer_id         TEXT,
    category            TEXT,
    plan                TEXT
);

-- Open messages with a ttl, so finding the expired ones does not scan the
-- queue. The status list is `MessageStatus`'s open list, spelled as the
-- queries spell it (a test holds the two together).
DROP INDEX IF EXISTS messages_expiry;
CREATE INDEX IF NOT EXISTS messages_open_expiry ON messages (expires_at)
    WHERE expires_at IS NOT NULL AND status IN ('scheduled', 'queued', 'sending');

CREATE INDEX IF NOT EXISTS messages_provider_id ON messages (delivered_by, provider_message_id)
    WHERE provider_message_id IS NOT NULL;

-- What providers reported after accepting a message.
CREATE TABLE IF NOT EXISTS status_events (
    message_id  TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    state       TEXT NOT NULL,
    code        TEXT,
    description TEXT
);

CREATE INDEX IF NOT EXISTS status_events_message ON status_events (message_id, at);

CREATE INDEX IF NOT EXISTS messages_customer_category ON messages (customer_id, category, created_at)
    WHERE customer_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS customers (
    id         TEXT PRIMARY KEY,
    profile    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS messages_cancel ON messages (scope, cancel_key)
    WHERE cancel_key IS NOT NULL;

CREATE TABLE IF NOT EXISTS deliveries (
    id          INTEGER PRIMARY KEY,
    message_id  TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    channel     TEXT NOT NULL,
    connector   TEXT NOT NULL,
    address     TEXT NOT NULL,
    -- this channel's content when it differs from the message's
    content     TEXT,
    -- waiting: behind an earlier delivery; pending: due at due_at;
    -- leased: being attempted until lease_until;
    -- sent, failed, cancelled, expired: done
    state       TEXT NOT NULL,
    due_at      INTEGER NOT NULL,
    lease_until INTEGER,
    attempts    INTEGER NOT NULL DEFAULT 0,
    UNIQUE (message_id, seq)
);

-- Only open deliveries are indexed by time: finished ones leave these
-- indexes, so leasing stays cheap however much history the file holds.
-- (UNIQUE (message_id, seq) already serves lookups by message.)
DROP INDEX IF EXISTS deliveries_due;
DROP INDEX IF EXISTS deliveries_lease;
DROP INDEX IF EXISTS deliveries_message;
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (due_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_leased ON deliveries (lease_until) WHERE state = 'leased';

CREATE TABLE IF NOT EXISTS attempts (
    message_id          TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    number              INTEGER NOT NULL,
    delivery_id         INTEGER NOT NULL,
    connector           TEXT NOT NULL,
    channel             TEXT NOT NULL,
    started_at          INTEGER NOT NULL,
    finished_at         INTEGER NOT NULL,
    outcome             TEXT NOT NULL,
    provider_message_id TEXT,
    error_code          TEXT,
    error_message       TEXT,
    retry_at            INTEGER,
    PRIMARY KEY (message_id, number)
);

CREATE TABLE IF NOT EXISTS idempotency_keys (
    key          TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    response     TEXT NOT NULL,
    expires_at   INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS dedup_keys (
    scope      TEXT NOT NULL,
    key        TEXT NOT NULL,
    message_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
);

-- Transactional outbox: written with the status change it reports.
CREATE TABLE IF NOT EXISTS callbacks_outbox (
    id          INTEGER PRIMARY KEY,
    message_id  TEXT NOT NULL,
    url         TEXT NOT NULL,
    payload     TEXT NOT NULL,
    -- pending, leased, done, abandoned
    state       TEXT NOT NULL DEFAULT 'pending',
    due_at      INTEGER NOT NULL,
    lease_until INTEGER,
    attempts    INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX IF NOT EXISTS callbacks_due ON callbacks_outbox (state, due_at);

-- Frequency caps count a scope's messages of a category (customer or address sends).
CREATE INDEX IF NOT EXISTS messages_scope_category ON messages (scope, category, created_at)
    WHERE category IS NOT NULL;

-- Who owns which address (in address_key form), so a STOP or an address
-- send finds its customers through an index instead of scanning profiles.
CREATE TABLE IF NOT EXISTS customer_addresses (
    channel     TEXT NOT NULL,
    address     TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    PRIMARY KEY (channel, address, customer_id)
);

CREATE INDEX IF NOT EXISTS customer_addresses_customer ON customer_addresses (customer_id);

-- Addresses that get nothing on a channel, owned by a customer or not.
CREATE TABLE IF NOT EXISTS suppressions (
    channel    TEXT NOT NULL,
    address    TEXT NOT NULL,
    -- opt_out, bounce, complaint, dead_address, manual
    reason     TEXT NOT NULL,
    source     TEXT NOT NULL,
    note       TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (channel, address)
);
";

const VERSIONS: &str = "
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at INTEGER NOT NULL
);";

/// Bring the file up to this build's schema, one transaction per step.
pub fn apply(conn: &mut Connection, database: &str) -> Result<()> {
    conn.execute_batch(VERSIONS)?;
    for m in migrations::pending(database, &all(), applied(conn)?)? {
        let tx = conn.transaction()?;
        tx.execute_batch(&m.sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![m.version, m.name, crate::clock::wall_ms()],
        )?;
        tx.commit()?;
        tracing::info!(
            database,
            version = m.version,
            name = m.name,
            "schema migrated"
        );
    }
    Ok(())
}

fn applied(conn: &Connection) -> Result<u32> {
    let versioned: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'schema_migrations')",
        [],
        |r| r.get(0),
    )?;
    if !versioned {
        return Ok(0);
    }
    Ok(conn
        .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
            r.get::<_, Option<u32>>(0)
        })
        .optional()?
        .flatten()
        .unwrap_or(0))
}

/// What opening the file would apply, read without changing it (a file
/// that does not exist yet would get every step).
pub fn status(path: &Path) -> Result<SchemaStatus> {
    let database = format!("sqlite://{}", path.display());
    let applied = if path.exists() {
        applied(&Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?)?
    } else {
        0
    };
    let pending = migrations::pending(&database, &all(), applied)?;
    Ok(SchemaStatus {
        database,
        applied,
        pending,
    })
}

/// `PRAGMA user_version` of a file whose derived tables are filled in: a file
/// from before the address index gets it built from its profiles once.
pub const ADDRESS_INDEX_VERSION: i64 = 1;

#[cfg(test)]
mod tests {
    use crate::message::MessageStatus;

    /// SQLite uses a partial index only when the query repeats its WHERE
    /// terms: the expiry index must list the open statuses as the queries do.
    #[test]
    fn the_expiry_index_lists_the_open_statuses_as_the_queries_do() {
        let open = MessageStatus::sql_list(MessageStatus::is_open);
        assert!(
            super::BASELINE.contains(&format!("status IN {open};")),
            "{open}"
        );
    }

    #[test]
    fn steps_are_numbered_in_order() {
        crate::store::migrations::assert_complete(&super::all());
    }

    #[test]
    fn a_split_messages_parts_go_with_it() {
        assert!(super::all()[14].sql.contains("ON DELETE CASCADE"));
    }
}
