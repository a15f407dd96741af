//! What can go wrong in a store, for every backend alike.

/// What every store method answers: its value, or why the store could not give it.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What can go wrong in any backend; each backend turns its driver's errors
/// into these.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(String),
    /// The database cannot be reached now; the caller may try again.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database is there but cannot take the request now, for a
    /// reason the backend knows; the caller may try again.
    #[error("{}: {}", .0.reason(), .1)]
    Outage(Outage, String),
    /// Another node's transaction got in the way (a deadlock, a key it took
    /// first); the shared store runs the transaction again.
    #[error("conflict with another node: {0}")]
    Conflict(String),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("the store is shut down")]
    Closed,
    /// The database was written by a newer build.
    #[error("{0}")]
    TooNew(String),
}

impl StoreError {
    /// What kind of failure it is, in words an operator reads in an answer
    /// or a log line.
    pub fn reason(&self) -> &'static str {
        match self {
            StoreError::Outage(outage, _) => outage.reason(),
            StoreError::Unavailable(_) => "the database cannot be reached",
            StoreError::Conflict(_) => "a conflict with another node",
            StoreError::Closed => "the gateway is shutting down",
            StoreError::Database(_) => "a database error",
            StoreError::Corrupt(_) => "stored data is unreadable",
            StoreError::TooNew(_) => "the database is newer than this build",
        }
    }

    /// Whether the same request later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_)
                | StoreError::Outage(..)
                | StoreError::Conflict(_)
                | StoreError::Closed
        )
    }
}

/// Why a database that is there cannot take a request now, as each
/// backend reads it from its driver's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    DiskFull,
    /// The server is shutting down or starting (PostgreSQL 57P01-57P03).
    Restarting,
    /// A report or count ran past [`ANALYTICS_TIMEOUT`].
    TimeLimit,
    /// Out of memory, connections or another resource, or an I/O error.
    Resources,
}

impl Outage {
    pub fn reason(self) -> &'static str {
        match self {
            Outage::DiskFull => "the disk is full",
            Outage::Restarting => "the database server is restarting",
            Outage::TimeLimit => "the query ran past its time limit",
            Outage::Resources => "the database is out of resources",
        }
    }
}
