//! The SQLite schema, applied on open. Statements are idempotent so a fresh
//! file and an existing one take the same path.

pub const PRAGMAS: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
PRAGMA foreign_keys = ON;
PRAGMA busy_timeout = 5000;
";

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    id                  TEXT PRIMARY KEY,
    status              TEXT NOT NULL,
    status_reason       TEXT,
    channel             TEXT NOT NULL,
    recipient           TEXT NOT NULL,
    content             TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    delivered_by        TEXT,
    provider_message_id TEXT,
    attempt_count       INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS deliveries (
    id          INTEGER PRIMARY KEY,
    message_id  TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    channel     TEXT NOT NULL,
    connector   TEXT NOT NULL,
    address     TEXT NOT NULL,
    -- waiting: behind an earlier delivery; pending: due at due_at;
    -- leased: being attempted until lease_until; sent / failed: done
    state       TEXT NOT NULL,
    due_at      INTEGER NOT NULL,
    lease_until INTEGER,
    attempts    INTEGER NOT NULL DEFAULT 0,
    UNIQUE (message_id, seq)
);

CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, due_at);
CREATE INDEX IF NOT EXISTS deliveries_lease ON deliveries (state, lease_until);

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
";
