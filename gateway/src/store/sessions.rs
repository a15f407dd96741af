//! The console's sign-in sessions, kept by the store so any node knows
//! them and a sign-out ends a session everywhere (a replayed cookie is
//! refused). A session is kept under the SHA-256 of its cookie, never the
//! cookie itself: what the database holds cannot sign anyone in. The SQL
//! is the same in both stores. SQLite numbers `$n` by where each first
//! appears, not by `n`: each statement here names them in order.

use super::error::Result;
use async_trait::async_trait;

/// One signed-in operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    /// The SHA-256 (hex) of the cookie's value.
    pub id: String,
    /// The API key's name the operator signed in with.
    pub key_name: String,
    /// May change things (an `admin` key); otherwise reads only.
    pub admin: bool,
    /// What every form of the session posts back.
    pub csrf: String,
    pub created_at: i64,
    pub expires_at: i64,
}

pub(crate) const START: &str = "INSERT INTO console_sessions
     (id, key_name, scope, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)";

pub(crate) const LIVE: &str = "SELECT id, key_name, scope, csrf, created_at, expires_at
     FROM console_sessions WHERE id = $1 AND ended_at IS NULL AND expires_at > $2";

/// `$1` the time, `$2` the session.
pub(crate) const END: &str =
    "UPDATE console_sessions SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL";

/// The scope column's words.
pub(crate) fn scope(admin: bool) -> &'static str {
    if admin { "admin" } else { "read" }
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn start_session(&self, session: ConsoleSession) -> Result<()>;

    /// The session, if it has neither ended nor expired at `now`.
    async fn session(&self, id: &str, now: i64) -> Result<Option<ConsoleSession>>;

    /// Sign out: `false` when it had ended already.
    async fn end_session(&self, id: &str, now: i64) -> Result<bool>;
}
