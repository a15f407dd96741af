//! What the writer wrote, for `make bench`'s store part (#36's breakdown):
//! rows inserted, updated and deleted, index entries added, and bytes of
//! write-ahead log. PostgreSQL says the same from its own log (the bench
//! reads it with `pg_walinspect`); SQLite keeps no such count, so the
//! writer keeps one here.
//!
//! Nothing is counted unless [`set_counting`] turned it on before the store
//! was opened (the bench does; the gateway never does): counting installs
//! SQLite's pre-update hook on the writer, a call per row written, and reads
//! the pager's page-write statistic after each commit.

use crate::store::Result;
use rusqlite::{Connection, ffi};
use std::collections::HashMap;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Totals since the process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteCounts {
    /// Rows inserted, updated or deleted, by statements or triggers.
    pub rows: u64,
    /// Index entries added: one per index on an inserted row, and one per
    /// index whose key an update changed (or whose partial index the row
    /// entered). Removals are not counted, as PostgreSQL's log has none.
    pub index_entries: u64,
    /// Write-ahead log frames written, in bytes (page and frame header).
    pub wal_bytes: u64,
}

/// Counts between two readings.
impl std::ops::Sub for WriteCounts {
    type Output = WriteCounts;

    fn sub(self, earlier: WriteCounts) -> WriteCounts {
        WriteCounts {
            rows: self.rows - earlier.rows,
            index_entries: self.index_entries - earlier.index_entries,
            wal_bytes: self.wal_bytes - earlier.wal_bytes,
        }
    }
}

/// Counts of two stretches together.
impl std::ops::Add for WriteCounts {
    type Output = WriteCounts;

    fn add(self, other: WriteCounts) -> WriteCounts {
        WriteCounts {
            rows: self.rows + other.rows,
            index_entries: self.index_entries + other.index_entries,
            wal_bytes: self.wal_bytes + other.wal_bytes,
        }
    }
}

static ENABLED: AtomicBool = AtomicBool::new(false);
static TOTALS: Counters = Counters::new();
/// A WAL frame's header, before each page.
const FRAME_HEADER: u64 = 24;

struct Counters {
    rows: AtomicU64,
    index_entries: AtomicU64,
    wal_bytes: AtomicU64,
}

impl Counters {
    const fn new() -> Counters {
        Counters {
            rows: AtomicU64::new(0),
            index_entries: AtomicU64::new(0),
            wal_bytes: AtomicU64::new(0),
        }
    }

    fn read(&self) -> WriteCounts {
        WriteCounts {
            rows: self.rows.load(Ordering::Relaxed),
            index_entries: self.index_entries.load(Ordering::Relaxed),
            wal_bytes: self.wal_bytes.load(Ordering::Relaxed),
        }
    }
}

/// Whether SQLite stores opened from now on count their writes.
pub fn set_counting(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// What every counted store's writer wrote so far.
pub fn totals() -> WriteCounts {
    TOTALS.read()
}

/// One index as the hook needs it: the table's columns in its key
/// (`-1` the rowid) and, for a partial index, what a row must hold.
struct Index {
    key: Vec<i32>,
    only_if: Vec<Term>,
}

/// One term of a partial index's `WHERE ... AND ...`.
enum Term {
    NotNull(i32),
    OneOf(i32, Vec<String>),
}

/// When counting is on, count every row the writer changes from now on
/// (the schema is read once, so call this after the migrations); the
/// writer then reports each batch's log frames to what this returns.
pub fn install(conn: &Connection) -> Result<Option<Counting>> {
    if !ENABLED.load(Ordering::Relaxed) {
        return Ok(None);
    }
    install_into(conn, &TOTALS).map(Some)
}

/// A counted writer's handle on its counts.
pub struct Counting {
    counts: &'static Counters,
    page_size: u64,
}

fn install_into(conn: &Connection, counts: &'static Counters) -> Result<Counting> {
    let page_size: u64 = conn.pragma_query_value(None, "page_size", |row| row.get(0))?;
    // Leaked: the hook may run as long as the writer's connection lives,
    // and a bench opens a handful of stores.
    let hook: &'static Hook = Box::leak(Box::new(Hook {
        tables: indexes(conn)?,
        counts,
    }));
    // SAFETY: the writer's own handle, on its own thread; `hook` lives for
    // the rest of the process.
    unsafe {
        sqlite3_preupdate_hook(
            conn.handle(),
            Some(on_change),
            std::ptr::from_ref(hook).cast_mut().cast(),
        );
    }
    Ok(Counting { counts, page_size })
}

impl Counting {
    /// Count the log frames the writer wrote since the last call.
    pub fn after_batch(&self, conn: &Connection) {
        let (mut frames, mut highest) = (0, 0);
        // SAFETY: the writer's own handle, on its own thread; the call
        // writes the two ints it is given.
        let code = unsafe {
            ffi::sqlite3_db_status(
                conn.handle(),
                ffi::SQLITE_DBSTATUS_CACHE_WRITE,
                &mut frames,
                &mut highest,
                1,
            )
        };
        if code == ffi::SQLITE_OK {
            let bytes = u64::try_from(frames).unwrap_or(0) * (self.page_size + FRAME_HEADER);
            self.counts.wal_bytes.fetch_add(bytes, Ordering::Relaxed);
        }
    }
}

struct Hook {
    tables: HashMap<String, Vec<Index>>,
    counts: &'static Counters,
}

// SQLite's pre-update interface, compiled in by
// SQLITE_ENABLE_PREUPDATE_HOOK (`.cargo/config.toml`); the bundled
// bindings leave it out.
type OnChange = unsafe extern "C" fn(
    *mut c_void,
    *mut ffi::sqlite3,
    c_int,
    *const c_char,
    *const c_char,
    i64,
    i64,
);
unsafe extern "C" {
    fn sqlite3_preupdate_hook(
        db: *mut ffi::sqlite3,
        on_change: Option<OnChange>,
        context: *mut c_void,
    ) -> *mut c_void;
    fn sqlite3_preupdate_old(
        db: *mut ffi::sqlite3,
        column: c_int,
        value: *mut *mut ffi::sqlite3_value,
    ) -> c_int;
    fn sqlite3_preupdate_new(
        db: *mut ffi::sqlite3,
        column: c_int,
        value: *mut *mut ffi::sqlite3_value,
    ) -> c_int;
}

/// A row about to change: count it and the index entries it adds.
unsafe extern "C" fn on_change(
    context: *mut c_void,
    db: *mut ffi::sqlite3,
    op: c_int,
    database: *const c_char,
    table: *const c_char,
    old_rowid: i64,
    new_rowid: i64,
) {
    // SAFETY: `context` is the `Hook` leaked at install; SQLite passes
    // the names as C strings valid for the call.
    let (hook, database, table) = unsafe {
        (
            &*context.cast::<Hook>(),
            CStr::from_ptr(database),
            CStr::from_ptr(table),
        )
    };
    if database != c"main" {
        return;
    }
    hook.counts.rows.fetch_add(1, Ordering::Relaxed);
    let Some(indexes) = table.to_str().ok().and_then(|t| hook.tables.get(t)) else {
        return;
    };
    let row = Row {
        db,
        op,
        old_rowid,
        new_rowid,
    };
    let added = indexes.iter().filter(|i| row.adds_entry(i)).count();
    hook.counts
        .index_entries
        .fetch_add(added as u64, Ordering::Relaxed);
}

/// The row a pre-update call is about, read during that call only.
struct Row {
    db: *mut ffi::sqlite3,
    op: c_int,
    old_rowid: i64,
    new_rowid: i64,
}

/// A column's value as an index compares it.
#[derive(PartialEq)]
enum Value<'a> {
    Null,
    Integer(i64),
    Real(u64),
    Bytes(&'a [u8]),
}

impl Row {
    fn adds_entry(&self, index: &Index) -> bool {
        match self.op {
            ffi::SQLITE_INSERT => self.holds(index, false),
            ffi::SQLITE_UPDATE => {
                self.holds(index, false)
                    && (!self.holds(index, true)
                        || index
                            .key
                            .iter()
                            .any(|&c| self.value(c, true) != self.value(c, false)))
            }
            _ => false,
        }
    }

    /// Whether the row, before the change or after, is in the index.
    fn holds(&self, index: &Index, old: bool) -> bool {
        index.only_if.iter().all(|term| match term {
            Term::NotNull(c) => self.value(*c, old) != Value::Null,
            Term::OneOf(c, texts) => match self.value(*c, old) {
                Value::Bytes(t) => texts.iter().any(|w| w.as_bytes() == t),
                _ => false,
            },
        })
    }

    fn value(&self, column: i32, old: bool) -> Value<'_> {
        if column < 0 {
            return Value::Integer(if old { self.old_rowid } else { self.new_rowid });
        }
        let mut value = std::ptr::null_mut();
        // SAFETY: called during the pre-update call for this row (old
        // values exist for updates and deletes, new ones for inserts and
        // updates, as `adds_entry` asks); the value lives until it returns.
        unsafe {
            let code = if old {
                sqlite3_preupdate_old(self.db, column, &mut value)
            } else {
                sqlite3_preupdate_new(self.db, column, &mut value)
            };
            if code != ffi::SQLITE_OK || value.is_null() {
                return Value::Null;
            }
            match ffi::sqlite3_value_type(value) {
                ffi::SQLITE_INTEGER => Value::Integer(ffi::sqlite3_value_int64(value)),
                ffi::SQLITE_FLOAT => Value::Real(ffi::sqlite3_value_double(value).to_bits()),
                ffi::SQLITE_TEXT | ffi::SQLITE_BLOB => {
                    let bytes = ffi::sqlite3_value_blob(value).cast::<u8>();
                    let len = usize::try_from(ffi::sqlite3_value_bytes(value)).unwrap_or(0);
                    if bytes.is_null() {
                        Value::Bytes(&[])
                    } else {
                        Value::Bytes(std::slice::from_raw_parts(bytes, len))
                    }
                }
                _ => Value::Null,
            }
        }
    }
}

/// Every table's indexes, keyed by table name.
fn indexes(conn: &Connection) -> Result<HashMap<String, Vec<Index>>> {
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = HashMap::new();
    for table in tables {
        let columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?
            .query_map([&table], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let names: Vec<(String, bool)> = conn
            .prepare("SELECT name, partial FROM pragma_index_list(?1)")?
            .query_map([&table], |row| {
                row.get(0).and_then(|n| Ok((n, row.get(1)?)))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut indexes = Vec::new();
        for (name, partial) in names {
            let key: Vec<i32> = conn
                .prepare("SELECT cid FROM pragma_index_info(?1) ORDER BY seqno")?
                .query_map([&name], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let only_if = if partial {
                let sql: String = conn.query_row(
                    "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?1",
                    [&name],
                    |row| row.get(0),
                )?;
                terms(&sql, &columns).unwrap_or_else(|| {
                    tracing::warn!(
                        "write counts: index {name}'s WHERE is not read; counted as a whole index"
                    );
                    Vec::new()
                })
            } else {
                Vec::new()
            };
            indexes.push(Index { key, only_if });
        }
        out.insert(table, indexes);
    }
    Ok(out)
}

/// A partial index's `WHERE` as terms joined by `AND`: `c IS NOT
/// NULL`, `c = 'text'` and `c IN ('text', ...)`, the forms the schema
/// uses; `None` for anything else.
fn terms(sql: &str, columns: &[String]) -> Option<Vec<Term>> {
    let sql = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    let (_, predicate) = sql.split_once(" WHERE ")?;
    let column = |name: &str| {
        columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name.trim()))
            .and_then(|i| i32::try_from(i).ok())
    };
    let texts = |list: &str| -> Option<Vec<String>> {
        list.split(',')
            .map(|t| {
                let t = t.trim();
                t.strip_prefix('\'')?.strip_suffix('\'').map(str::to_owned)
            })
            .collect()
    };
    predicate
        .trim()
        .trim_end_matches(';')
        .split(" AND ")
        .map(|term| {
            let term = term.trim();
            if let Some(name) = term.strip_suffix(" IS NOT NULL") {
                return Some(Term::NotNull(column(name)?));
            }
            if let Some((name, list)) = term.split_once(" IN ") {
                let list = list.trim().strip_prefix('(')?.strip_suffix(')')?;
                return Some(Term::OneOf(column(name)?, texts(list)?));
            }
            let (name, text) = term.split_once(" = ")?;
            Some(Term::OneOf(column(name)?, texts(text)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schemas_partial_index_forms_are_read() {
        let columns = ["id", "state", "expires_at", "status"].map(str::to_owned);
        let read = |sql: &str| terms(sql, &columns).map(|t| t.len());
        assert_eq!(
            read("CREATE INDEX a ON t (id) WHERE state = 'pending'"),
            Some(1)
        );
        assert_eq!(
            read(
                "CREATE INDEX b ON t (expires_at)\n    WHERE expires_at IS NOT NULL AND status IN ('scheduled', 'queued', 'sending')"
            ),
            Some(2)
        );
        assert_eq!(
            read("CREATE INDEX c ON t (id) WHERE length(state) > 2"),
            None
        );
    }

    #[test]
    fn rows_and_index_entries_are_counted_as_written() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE d (id TEXT PRIMARY KEY, state TEXT NOT NULL, due INTEGER);
             CREATE INDEX d_pending ON d (due) WHERE state = 'pending';",
        )
        .unwrap();
        let counts: &'static Counters = Box::leak(Box::new(Counters::new()));
        install_into(&conn, counts).unwrap();
        // Two rows; each in the primary key's index, one also pending.
        conn.execute_batch(
            "INSERT INTO d VALUES ('a', 'pending', 1); INSERT INTO d VALUES ('b', 'sent', 1);",
        )
        .unwrap();
        // Leaves the partial index: no entry added.
        conn.execute("UPDATE d SET state = 'sent' WHERE id = 'a'", [])
            .unwrap();
        // Enters it: one entry added.
        conn.execute("UPDATE d SET state = 'pending' WHERE id = 'b'", [])
            .unwrap();
        // A new key in it: one entry added.
        conn.execute("UPDATE d SET due = 2 WHERE id = 'b'", [])
            .unwrap();
        // Entries: 2 and 1 inserted, then 0, 1 and 1 by the updates.
        let counted = counts.read();
        assert_eq!((counted.rows, counted.index_entries), (5, 5));
        // Deleting removes entries, which are not counted.
        conn.execute("DELETE FROM d", []).unwrap();
        assert_eq!((counts.read().rows, counts.read().index_entries), (7, 5));
    }
}
