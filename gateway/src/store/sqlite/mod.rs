//! The embedded store: one SQLite file in WAL mode.
//!
//! All writes go through one writer thread that commits them in batches
//! (group commit): a burst of requests shares one fsync instead of paying one
//! each, and every caller is answered only after its batch is on disk.
//! One failing write is reported to its caller without undoing the others
//! (see [`apply_batch`]). Reads use their own connections and never wait
//! for the writer.
//!
//! Leases need not survive a power cut (every lease is reset on start), so a
//! batch of nothing but leases commits without fsync; the next durable
//! commit's fsync covers its frames, since the WAL is written in order.
//!
//! Writes of one row of `messages` that fire its report-day triggers say
//! `OR FAIL` (`INSERT OR FAIL`, `UPDATE OR FAIL`). Under the default `ABORT`,
//! SQLite journals every page such a statement touches (a statement journal
//! in memory: a copy and an allocation per page) so that a constraint
//! failure can undo the statement alone inside the batch's transaction: in
//! `make bench`'s store part, a fifth of an accept's CPU. Nothing needs it:
//! a one-row statement checks its constraints before it writes, and a write
//! that fails is undone anyway, by the batch's rollback or its savepoint
//! (see [`apply_batch`]).
//!
//! Split by concern: [`queue`] (lease, record, recover, expire),
//! [`messages`], [`outbox`] (status callbacks), [`customers`] (profiles,
//! the address index, consent and suppressions).

mod campaigns;
mod customers;
mod feed;
mod health;
mod journeys;
mod messages;
pub mod migrations;
mod outbox;
mod pace;
mod queue;
mod report_days;
mod sessions;
pub mod write_counts;

use super::{DueWork, Purged, Store, StoreError};
use crate::store::replies::{NewReply, ReplyRecorded};
use crate::store::{Horizon, Result};
use async_trait::async_trait;
use migrations::PRAGMAS;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, params};
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// Writes waiting beyond this share the next batch.
const MAX_BATCH: usize = 1024;
/// Reader connections, and reads at once: every send is planned with a
/// read, so under load reads wait for a connection instead of opening new
/// ones (each with its own page cache and statement cache, cold).
const READERS: usize = 4;
/// Prepared statements each connection keeps. rusqlite keeps 16; the writer
/// alone runs several times that many (accepting, leasing, recording,
/// journeys, broadcasts, retention), and an evicted one is parsed again.
const STATEMENTS: usize = 256;

/// One caller's write, as the writer runs it.
struct Write {
    durability: Durability,
    /// Runs the write in the batch's transaction and says whether it
    /// succeeded. Runs a second time when another write of its batch failed
    /// (see [`apply_batch`]); the last run's result is the one answered.
    run: Box<dyn FnMut(&Connection) -> bool + Send>,
    /// Answers the caller once the batch is committed, or why it was not.
    answer: Box<dyn FnOnce(Result<()>) + Send>,
}

/// Whether a write must reach the disk before it is answered.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Durability {
    Fsync,
    /// Lost only with the machine, and harmless then: leases.
    ProcessCrashSafe,
}

pub struct SqliteStore {
    writes: mpsc::UnboundedSender<Write>,
    readers: Arc<Mutex<Vec<Connection>>>,
    reading: Arc<tokio::sync::Semaphore>,
    /// Reports and segment counts: a connection of their own, one query at
    /// a time, so they never take the readers sends are planned with.
    analyst: Arc<tokio::sync::Mutex<Option<Connection>>>,
    path: Arc<Path>,
    /// Device and inode of the file opened, for `ping`.
    identity: (u64, u64),
    /// Recorded with every attempt.
    node: Arc<str>,
    /// Changes to customers' feeds, for this process's live streams.
    feed_changes: tokio::sync::broadcast::Sender<crate::store::feed::FeedChange>,
    /// Rate-limited connectors' timelines: one process uses the file, so
    /// they need not be written (see [`crate::store::pace`]).
    pace: Arc<Mutex<std::collections::HashMap<String, i64>>>,
}

/// Device and inode of the file at `path`, if there is one.
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

impl SqliteStore {
    /// Open (creating if needed) the database file and start the writer.
    pub fn open(path: &Path, node: &str, now: i64) -> Result<SqliteStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Corrupt(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let mut writer = connect(path)?;
        migrations::apply(&mut writer, &format!("sqlite://{}", path.display()))?;
        customers::build_address_index(&writer)?;
        customers::build_trait_index(&writer)?;
        // Leases left by the process before are taken back at once when the
        // disk takes the write; when it does not (full), the gateway still
        // starts, serves reads and answers 503 to writes, and the leases are
        // taken over as they run out, like any other node's.
        let recovered = queue::recover_leases(&writer, now)
            .and_then(|()| outbox::recover_leases(&writer))
            .and_then(|()| campaigns::recover_leases(&writer));
        match recovered {
            Err(e) if e.is_transient() => {
                tracing::warn!("leases of the last run not taken back yet: {e}");
            }
            other => other?,
        }
        let counting = write_counts::install(&writer)?;
        let readers = (0..READERS)
            .map(|_| connect(path))
            .collect::<Result<Vec<_>, _>>()?;
        let (writes, queue) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("crossgate-sqlite-writer".into())
            .spawn(move || write_loop(writer, queue, counting))
            .map_err(|e| StoreError::Corrupt(format!("cannot start the writer thread: {e}")))?;
        let identity = file_identity(path).ok_or_else(|| {
            StoreError::Corrupt(format!("{} vanished after it was opened", path.display()))
        })?;
        Ok(SqliteStore {
            writes,
            readers: Arc::new(Mutex::new(readers)),
            reading: Arc::new(tokio::sync::Semaphore::new(READERS)),
            analyst: Arc::default(),
            path: Arc::from(path),
            identity,
            node: Arc::from(node),
            feed_changes: tokio::sync::broadcast::channel(crate::store::feed::CHANGES_BUFFER).0,
            pace: Arc::default(),
        })
    }

    /// Run `f` in the next batch; answer after the batch is committed.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnMut(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.write_as(Durability::Fsync, f).await
    }

    async fn write_as<T: Send + 'static>(
        &self,
        durability: Durability,
        mut f: impl FnMut(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        let outcome = Arc::new(Mutex::new(None));
        let ran = outcome.clone();
        let run = Box::new(move |conn: &Connection| {
            let result = f(conn);
            let ok = result.is_ok();
            *ran.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
            ok
        });
        let answer_with = Box::new(move |committed: Result<()>| {
            let result = outcome.lock().unwrap_or_else(|e| e.into_inner()).take();
            let _ = reply.send(match (committed, result) {
                (Ok(()), Some(result)) => result,
                (Ok(()), None) => Err(StoreError::Corrupt("the write was never run".into())),
                (Err(e), _) => Err(e),
            });
        });
        let write = Write {
            durability,
            run,
            answer: answer_with,
        };
        self.writes.send(write).map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// A read of a few index lookups, run on the caller's thread when a
    /// reader connection is free: handing it to the blocking pool and back
    /// costs more than the lookups themselves (every send is planned with
    /// one). WAL readers never wait for the writer; with no free connection
    /// it goes the usual way.
    async fn read_small<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let turn = self.reading.clone().try_acquire_owned().ok();
        let pooled = turn
            .as_ref()
            .and_then(|_| self.readers.lock().ok().and_then(|mut pool| pool.pop()));
        let Some(conn) = pooled else {
            drop(turn);
            return self.read(f).await;
        };
        let result = f(&conn);
        if let Ok(mut pool) = self.readers.lock() {
            pool.push(conn);
        }
        result
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let readers = self.readers.clone();
        let path = self.path.clone();
        let turn = self
            .reading
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            let pooled = readers.lock().map_err(|_| StoreError::Closed)?.pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => connect(&path)?,
            };
            let result = f(&conn);
            if let Ok(mut pool) = readers.lock() {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }

    /// A report or a segment count on the analytics connection, interrupted
    /// once it has run [`crate::store::ANALYTICS_TIMEOUT`] (SQLite then
    /// answers "interrupted", which is a `503` asking for less).
    async fn analyze<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let mut slot = self.analyst.clone().lock_owned().await;
        let conn = match slot.take() {
            Some(conn) => conn,
            None => connect(&self.path)?,
        };
        let interrupt = conn.get_interrupt_handle();
        let mut work = tokio::task::spawn_blocking(move || {
            let result = f(&conn);
            (conn, result)
        });
        let finished = match tokio::time::timeout(crate::store::ANALYTICS_TIMEOUT, &mut work).await
        {
            Ok(finished) => finished,
            Err(_) => {
                interrupt.interrupt();
                work.await
            }
        };
        let (conn, result) = finished.map_err(|_| StoreError::Closed)?;
        *slot = Some(conn);
        result
    }
}

/// What `/readyz` writes: one row, the same every time.
const READINESS_PROBE: &str = "INSERT INTO gateway_state (name, value, updated_at)
     VALUES ('readiness-probe', '', ?1)
     ON CONFLICT (name) DO UPDATE SET updated_at = excluded.updated_at";

/// What SQLite says, sorted by what the caller can do about it: a full
/// disk, an I/O error or a lock held too long passes (503 and retry), while
/// anything else is a fault in the statement or the data.
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        failed("", e)
    }
}

/// `e` as a store error, its text prefixed with `what` was being done.
fn failed(what: &str, e: rusqlite::Error) -> StoreError {
    use crate::store::Outage;
    use rusqlite::ErrorCode;
    let text = format!("{what}{e}");
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => StoreError::Outage(Outage::DiskFull, text),
        // Only the analytics connection is ever interrupted: its time limit.
        Some(ErrorCode::OperationInterrupted) => StoreError::Outage(Outage::TimeLimit, text),
        Some(ErrorCode::SystemIoFailure | ErrorCode::OutOfMemory) => {
            StoreError::Outage(Outage::Resources, text)
        }
        Some(ErrorCode::CannotOpen | ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Unavailable(text)
        }
        _ => StoreError::Database(text),
    }
}

fn connect(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    keep_wal_files(&conn)?;
    conn.execute_batch(PRAGMAS)?;
    conn.set_prepared_statement_cache_capacity(STATEMENTS);
    // Plans that never depend on bound values. Without this, SQLite marks a
    // statement whose plan read a parameter (`LIMIT ?`, as leasing has) to
    // be compiled again whenever that parameter is bound: every execution.
    // No statement here needs a value-dependent plan: the partial indexes'
    // predicates are matched by literals and `IS NOT NULL`.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(conn)
}

/// Keep the `-wal` and `-shm` files when the last connection closes
/// (SQLITE_FCNTL_PERSIST_WAL; rusqlite has no call for it). Opening a WAL
/// database creates them, which takes space: without them a gateway
/// restarted on a full disk could not open its database at all, where with
/// them it starts, serves reads and answers 503 to writes until space returns.
fn keep_wal_files(conn: &Connection) -> Result<()> {
    use rusqlite::ffi;
    let mut on: std::ffi::c_int = 1;
    // SAFETY: `handle` is this open connection's own database handle, used
    // on this thread for one call; the file control reads and writes the
    // one int it is given, which outlives the call.
    let code = unsafe {
        ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            ffi::SQLITE_FCNTL_PERSIST_WAL,
            (&raw mut on).cast(),
        )
    };
    if code != ffi::SQLITE_OK {
        return Err(StoreError::Database(format!(
            "cannot keep the write-ahead log's files (SQLite code {code})"
        )));
    }
    Ok(())
}

/// The writer: take what is queued, apply it in one transaction, commit,
/// then answer everyone in the batch.
fn write_loop(
    conn: Connection,
    mut queue: mpsc::UnboundedReceiver<Write>,
    counting: Option<write_counts::Counting>,
) {
    let mut fsyncs = true;
    while let Some(first) = queue.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        let durable = batch.iter().any(|w| w.durability == Durability::Fsync);
        if durable != fsyncs {
            let mode = if durable {
                "PRAGMA synchronous = FULL"
            } else {
                "PRAGMA synchronous = NORMAL"
            };
            match cached(&conn, mode) {
                Ok(()) => fsyncs = durable,
                Err(e) => tracing::error!("cannot run {mode}: {e}"),
            }
        }
        apply_batch(&conn, batch);
        if let Some(counting) = &counting {
            counting.after_batch(&conn);
        }
    }
}

/// Every write of the batch straight into one transaction: savepoints
/// would copy each page a write touches into the statement journal first,
/// which showed as the writer's largest cost. Writes seldom fail; when one
/// does, the transaction is rolled back and the batch runs again with each
/// write in a savepoint of its own, so the failing one is undone alone.
fn apply_batch(conn: &Connection, mut batch: Vec<Write>) {
    let committed = match run_batch(conn, &mut batch, false) {
        Ok(true) => Ok(()),
        Ok(false) => run_batch(conn, &mut batch, true).map(|_| ()),
        Err(e) => Err(e),
    };
    for write in batch {
        (write.answer)(committed.clone());
    }
}

/// Run `batch` in one transaction and commit it. Without `isolated`, the
/// first failing write rolls everything back and `Ok(false)` says so.
fn run_batch(conn: &Connection, batch: &mut [Write], isolated: bool) -> Result<bool> {
    cached(conn, "BEGIN").map_err(|e| failed("cannot begin transaction: ", e))?;
    let ran = run_writes(conn, batch, isolated);
    let ended = match &ran {
        Ok(true) => cached(conn, "COMMIT").map_err(|e| failed("commit failed: ", e)),
        Ok(false) => cached(conn, "ROLLBACK").map_err(|e| failed("cannot roll back: ", e)),
        Err(_) => Ok(()),
    };
    // A failed commit or write can leave the transaction open.
    if (ran.is_err() || ended.is_err()) && !conn.is_autocommit() {
        let _ = cached(conn, "ROLLBACK");
    }
    ended.and(ran)
}

/// The writes of one batch, in the transaction `run_batch` opened.
fn run_writes(conn: &Connection, batch: &mut [Write], isolated: bool) -> Result<bool> {
    for write in batch.iter_mut() {
        if !isolated {
            if !(write.run)(conn) {
                return Ok(false);
            }
            continue;
        }
        cached(conn, "SAVEPOINT write").map_err(|e| failed("cannot open savepoint: ", e))?;
        let end = if (write.run)(conn) {
            cached(conn, "RELEASE write")
        } else {
            cached(conn, "ROLLBACK TO write").and_then(|()| cached(conn, "RELEASE write"))
        };
        end.map_err(|e| failed("cannot end savepoint: ", e))?;
    }
    Ok(true)
}

/// Transaction, savepoint and pragma statements, prepared once:
/// rusqlite's `Transaction`, `Savepoint` and `pragma_update` parse their
/// SQL on every use, which showed in profiles of the writer thread.
fn cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

#[async_trait]
impl Store for SqliteStore {
    async fn record_reply(&self, reply: NewReply) -> Result<ReplyRecorded> {
        self.write(move |conn| journeys::record_reply(conn, &reply))
            .await
    }

    /// The writer answers, and the file at the configured path is still the
    /// one this process writes: a deleted or replaced file would take every
    /// later write with it when the process ends.
    async fn due_work(&self, now: i64) -> Result<DueWork> {
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| DueWork::sql("?1"));
        self.read(move |conn| {
            let counts = conn.prepare_cached(&SQL)?.query_row(params![now], |r| {
                Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?])
            })?;
            Ok(DueWork::from_counts(counts))
        })
        .await
    }

    async fn ping(&self, now: i64) -> Result<()> {
        let (path, opened) = (self.path.clone(), self.identity);
        self.write_as(Durability::ProcessCrashSafe, move |conn| {
            // A row written, not only read: a full disk answers reads.
            conn.prepare_cached(READINESS_PROBE)?
                .execute(params![now])?;
            if file_identity(&path) != Some(opened) {
                return Err(StoreError::Corrupt(format!(
                    "{} is no longer the database this process opened",
                    path.display()
                )));
            }
            Ok(())
        })
        .await
    }

    async fn shared_secret(&self, name: &str, candidate: &str, now: i64) -> Result<String> {
        let (name, candidate) = (name.to_owned(), candidate.to_owned());
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO gateway_state (name, value, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO NOTHING",
            )?
            .execute(params![name, candidate, now])?;
            Ok(conn
                .prepare_cached("SELECT value FROM gateway_state WHERE name = ?1")?
                .query_row(params![name], |r| r.get(0))?)
        })
        .await
    }

    async fn purge_history(&self, before: Horizon, limit: usize) -> Result<Purged> {
        self.write(move |conn| messages::purge_history(conn, before, limit))
            .await
    }

    async fn purge_expired_keys(&self, now: i64, limit: usize) -> Result<Purged> {
        self.write(move |conn| messages::purge_expired_keys(conn, now, limit))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes that share a batch are independent: one that fails is undone
    /// alone, and the batch's other writes commit.
    #[tokio::test]
    async fn a_failing_write_is_undone_without_undoing_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("db"), "test", 0).unwrap());
        store
            .write(|conn| {
                conn.execute_batch("CREATE TABLE t (v TEXT)")?;
                Ok(())
            })
            .await
            .unwrap();
        let write = |value: &'static str, fail: bool| {
            let store = store.clone();
            async move {
                store
                    .write(move |conn| {
                        conn.execute("INSERT INTO t (v) VALUES (?1)", [value])?;
                        if fail {
                            return Err(StoreError::Corrupt("refused".into()));
                        }
                        Ok(())
                    })
                    .await
            }
        };
        let (kept, undone, also_kept) =
            tokio::join!(write("a", false), write("b", true), write("c", false));
        assert!(kept.is_ok() && also_kept.is_ok());
        assert!(undone.is_err());
        let values: Vec<String> = store
            .read(|conn| {
                let mut rows = conn.prepare("SELECT v FROM t ORDER BY v")?;
                let values = rows
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<Vec<String>, _>>()?;
                Ok(values)
            })
            .await
            .unwrap();
        assert_eq!(values, ["a", "c"]);
    }
}
