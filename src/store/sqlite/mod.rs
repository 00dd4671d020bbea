//! The SQLite backend: the connection and its pragmas, migrations from `schemas/`, the unit of work
//! (`BEGIN IMMEDIATE` … `COMMIT`), the change token behind the web's page cache, and lock files
//! beside the database. The queries are in one file per concern; only this folder names rusqlite.
//!
//! One writer: the pipeline hands everything to one store on one thread. WAL mode lets readers (a
//! `sources` query in another terminal, `serve`) run beside it; a second writer waits up to
//! [`BUSY_TIMEOUT`].

mod checkpoint;
mod checks;
mod copy;
mod evidence;
mod imap;
mod ingest;
mod listings;
mod metrics;
mod notify;
mod prune;
#[allow(unsafe_code)] // the one exception: see raw.rs
mod raw;
mod rdns;
// `unsafe impl` of rusqlite's virtual-table traits (a `#[repr(C)]` layout with SQLite's base
// struct first); no unsafe block.
#[allow(unsafe_code)]
mod records_of;
mod rejects;
mod rollups;
use crate::store::rollups::{BackFill, Presum, RunClock};
mod text;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::{ChangeToken, StoreError};
use crate::model::Filter;

/// The page size of a new database, in bytes.
const PAGE_SIZE: i64 = 16_384;

/// Numbered migrations; `PRAGMA user_version` records how many were applied.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../schemas/0001_initial.sql"),
    include_str!("../../../schemas/0002_imap.sql"),
    include_str!("../../../schemas/0003_failure_tls.sql"),
    include_str!("../../../schemas/0004_record_auth.sql"),
    include_str!("../../../schemas/0005_rdns.sql"),
    include_str!("../../../schemas/0006_dns_checks.sql"),
    include_str!("../../../schemas/0007_notify.sql"),
    include_str!("../../../schemas/0009_retention.sql"),
    include_str!("../../../schemas/0010_record_lists.sql"),
    include_str!("../../../schemas/0011_reports_totals.sql"),
    ROLLUPS,
    include_str!("../../../schemas/0013_reports_listing.sql"),
    include_str!("../../../schemas/0014_reports_reporter.sql"),
    include_str!("../../../schemas/0015_rollup_rows.sql"),
    QUARTERS,
    THIRDS,
    KEYS,
    IPS,
    REPORTS,
    include_str!("../../../schemas/0021_record_lists_compact.sql"),
    BLOCKS,
];

/// The migration that adds the rollups: applying it back-fills them from the records (once the
/// later migrations have made their tables).
const ROLLUPS: &str = include_str!("../../../schemas/0012_rollups.sql");

/// The migration that adds the quarter rows: applying it sums them from the month rows.
const QUARTERS: &str = include_str!("../../../schemas/0016_rollup_quarters.sql");

/// The migration that adds the rows of thirds: applying it sums them from the day rows.
const THIRDS: &str = include_str!("../../../schemas/0017_rollup_thirds.sql");

/// The migration that stores the rollups' keys shorter: applying it sums them all again.
const KEYS: &str = include_str!("../../../schemas/0018_rollup_keys.sql");

/// The migration that keeps each rollup key's IPs' own sums: applying it sums them all again.
const IPS: &str = include_str!("../../../schemas/0019_rollup_ips.sql");

/// The migration that keeps the reports each rollup key's IPs count: applying it sums them all
/// again.
const REPORTS: &str = include_str!("../../../schemas/0020_rollup_reports.sql");

/// The migration that stores each report's records as one block (`store::blocks`): applying it
/// packs the `records` table's rows into blocks before it drops the table.
const BLOCKS: &str = include_str!("../../../schemas/0022_record_blocks.sql");

/// Rows per multi-row INSERT of record blocks (a power of two). Measured when a record was a row of
/// 15 columns, bound in place (`raw.rs`; callgrind, 1,000 mixed / 100 large reports): 16 rows
/// 809M / 1,085M, 64 rows 806M / 1,077M, 256 rows 821M / 1,114M (each statement compiled costs
/// more than its rows save).
const ROWS_PER_INSERT: usize = 64;

/// `report_domains(domain)`: the policy domains of the stored aggregate reports, once each, found
/// by skipping along the `(domain, …)` index from one domain to the next (a lookup per domain;
/// `SELECT DISTINCT` read every report's entry). Its last row is NULL: queries filter it out.
pub(super) const REPORT_DOMAINS: &str = "WITH RECURSIVE report_domains(domain) AS (
        SELECT min(domain) FROM reports
        UNION ALL
        SELECT (SELECT min(domain) FROM reports WHERE domain > report_domains.domain)
        FROM report_domains WHERE report_domains.domain IS NOT NULL)";

/// How long a write waits for another process holding the database.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// An open SQLite database.
pub struct Db {
    /// Read-write connections only. Declared first, so dropped first: its thread stops (and its
    /// connection closes) before `conn`, which is then the last to close and checkpoints the rest.
    checkpointer: Option<checkpoint::Checkpointer>,
    conn: Connection,
    path: PathBuf,
    /// This run's first unit of work ([`RunClock`]).
    run_clock: RunClock,
}

/// A write transaction on a [`Db`], rolled back when dropped uncommitted.
pub struct Tx<'c> {
    /// The record blocks' INSERTs of 1, 2, 4, … rows, prepared when first needed and kept for the
    /// unit of work (`ingest.rs`); declared before `tx`, so finalised before it ends.
    inserts: std::cell::RefCell<Vec<Option<raw::Insert<'c>>>>,
    /// The reports' INSERT, prepared when first needed and kept for the unit of work, as
    /// `inserts` (issue 21: prepared for each batch, 0.4% of an `ingest`'s CPU time).
    report_insert: std::cell::RefCell<Option<raw::Insert<'c>>>,
    conn: &'c Connection,
    run_clock: &'c RunClock,
    tx: rusqlite::Transaction<'c>,
    /// The rollups' sums of what this unit of work stored, written at commit.
    rollups: std::cell::RefCell<rollups::Pending>,
    /// The sums of the batch, made off the writer's thread ([`Presum`]), if given.
    presum: std::cell::RefCell<Option<Box<Presum>>>,
}

/// `<db>.<name>-lock`, locked while this lives.
pub struct LockFile {
    _file: std::fs::File,
}

impl Db {
    pub fn open(path: &Path) -> Result<Db, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        }
        let open_err = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        records_of::register(&conn).map_err(open_err)?;
        // Room for every statement a unit of work prepares from the cache (the records' multi-row
        // INSERTs are prepared by `raw.rs`, once a batch, outside it).
        conn.set_prepared_statement_cache_capacity(64);
        // Pages of 16 KiB for a new database (SQLite ignores this for one that has tables): a
        // unit of work of `ingest` appends its records to a few pages rather than to four times
        // as many, each with its own B-tree balancing, WAL frame and checkpoint write (issue 21,
        // 9 interleaved runs of `ingest` over 5,000 mixed / 400 large reports: CPU 0.634 → 0.573
        // / 0.549 → 0.478 s while the checkpoint's threshold, then counted in pages, grew with
        // them; with it kept at 8 MiB and the compact lists, against the build before both,
        // wall 0.378 → 0.338 / 0.318 → 0.271 s; 32 and 64 KiB did no better). A database made
        // by an earlier version keeps its 4 KiB pages until `VACUUM`.
        conn.pragma_update(None, "page_size", PAGE_SIZE)
            .map_err(open_err)?;
        // Before the switch to WAL, which for a new database is its first write: its syncs are
        // then NORMAL's too.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        set_wal(&conn).map_err(open_err)?;
        // 4 MiB of page cache rather than SQLite's 2: a unit of work of `ingest` (then 16,000
        // rows) touches more pages than 2 MiB hold, which it then spilled to the WAL and read back
        // (issue 21, 5,000 mixed reports: 23,255 `pwrite` and 10,618 `pread` calls → 18,950 /
        // 6,277; with 8 MiB 18,787 / 5,929, for 4 MiB more memory once the database is larger).
        // Stop 49, 20,000 mixed reports: 16 MiB took 1% less of the wall time, within the noise.
        conn.pragma_update(None, "cache_size", -4096)
            .map_err(open_err)?;
        // In place of SQLite's automatic checkpoint, which runs inside the writer's commit.
        let checkpointer = checkpoint::Checkpointer::install(&mut conn, path).map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        let mut db = Db {
            conn,
            path: path.to_owned(),
            checkpointer: Some(checkpointer),
            run_clock: Default::default(),
        };
        db.migrate()?;
        Ok(db)
    }

    /// Ends the run ([`crate::store::Store::end_run`]); whether it wrote rollups.
    pub fn end_run(&self) -> bool {
        self.run_clock.end()
    }

    pub fn open_read_only(path: &Path) -> Result<Db, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
            | rusqlite::OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        records_of::register(&conn).map_err(open_err)?;
        conn.pragma_update(None, "query_only", "ON")
            .map_err(open_err)?;
        // Pages read by a system call each, not mapped (`mmap_size` 0, SQLite's default): queries
        // read rollup rows, a few thousand pages scattered over the file, in a process of their
        // own; a mapping cost a fault per page that outweighed the copies it saved (`senders
        // --days 14` 110 → 80 ms of CPU on a 10M-record estate, `--days 365` ~530 → 490 ms).
        let version = schema_version(&conn, path)?;
        if version < MIGRATIONS.len() as i64 {
            return Err(StoreError::TooOld {
                path: path.to_owned(),
                found: version,
                known: MIGRATIONS.len(),
            });
        }
        Ok(Db {
            conn,
            path: path.to_owned(),
            checkpointer: None,
            run_clock: Default::default(),
        })
    }

    pub fn reopen_read_only(&self) -> Result<Db, StoreError> {
        Db::open_read_only(&self.path)
    }

    /// Applies the migrations this database lacks. Two processes may open a new database at once
    /// (a `fetch` and a listing): the version is read again under the write lock, so only one of
    /// them migrates.
    fn migrate(&mut self) -> Result<(), StoreError> {
        if schema_version(&self.conn, &self.path)? == MIGRATIONS.len() as i64 {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version = schema_version(&tx, &self.path)?;
        if version == 0 && is_empty(&tx)? {
            make_schema(&tx)?;
        } else {
            apply_migrations(&tx, version)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Starts a write transaction, taking the write lock at once (`BEGIN IMMEDIATE`): the ids
    /// `insert_report` assigns cannot be taken by another writer in between.
    pub fn begin(&self) -> Result<Tx<'_>, StoreError> {
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.before_write();
        }
        Ok(Tx {
            inserts: Default::default(),
            report_insert: Default::default(),
            conn: &self.conn,
            run_clock: &self.run_clock,
            tx: rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?,
            rollups: Default::default(),
            presum: Default::default(),
        })
    }

    /// SQLite's `data_version`: changes when another connection has committed since this
    /// connection last asked.
    pub fn change_token(&self) -> Result<ChangeToken, StoreError> {
        Ok(ChangeToken(self.conn.pragma_query_value(
            None,
            "data_version",
            |r| r.get(0),
        )?))
    }

    /// Opens and locks `<db>.<name>-lock`.
    pub fn try_lock(&self, name: &str) -> Result<LockFile, StoreError> {
        let path = PathBuf::from(format!("{}.{name}-lock", self.path.display()));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| StoreError::LockFile {
                path: path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(LockFile { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Busy {
                lock: path.display().to_string(),
            }),
            Err(std::fs::TryLockError::Error(source)) => Err(StoreError::Lock { path, source }),
        }
    }
}

impl Tx<'_> {
    pub fn commit(mut self) -> Result<(), StoreError> {
        self.keep_rollups()?;
        Ok(self.tx.commit()?)
    }
}

/// Switches to WAL (a setting stored in the file). Turning it on needs the database to itself, and
/// SQLite answers BUSY at once rather than calling the busy handler, so when another process is
/// opening the same new file at this moment, try again for up to [`BUSY_TIMEOUT`].
fn set_wal(conn: &Connection) -> rusqlite::Result<()> {
    let started = std::time::Instant::now();
    loop {
        let mode: rusqlite::Result<String> =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0));
        match mode {
            Ok(_) => return Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && started.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Applies the migrations after `version`, each recording its number, then sums again what they
/// need summed.
fn apply_migrations(tx: &rusqlite::Transaction<'_>, version: i64) -> Result<(), StoreError> {
    // The most any migration applied here needs summed again, once every table is made.
    let mut need = None;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        tx.execute_batch(sql)?;
        if *sql == BLOCKS {
            copy::pack_records_table(tx)?;
        }
        let this = match *sql {
            ROLLUPS | KEYS | IPS | REPORTS => Some(BackFill::Everything),
            QUARTERS => Some(BackFill::Quarters),
            THIRDS => Some(BackFill::Months),
            _ => None,
        };
        need = need.max(this);
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
    }
    if let Some(need) = need {
        rollups::back_fill(tx, need)?;
    }
    Ok(())
}

/// What every migration applied to an empty database leaves: its tables, indexes and rows, in the
/// order they were made (`schemas/sqlite.sql`, written from [`MIGRATIONS`] by a test, which
/// fails when the two differ: `UPDATE_GOLDEN=1` writes it again). A new database is made from it
/// in one go: replayed one by one, the migrations cost 25 million instructions (6 ms, each
/// change of the schema read it all again), which every `ingest` into a new database paid
/// before it could write (issue 21), and so did each test.
const SCHEMA: &str = include_str!("../../../schemas/sqlite.sql");

/// Makes the schema of [`MIGRATIONS`] in a new database from [`SCHEMA`].
fn make_schema(tx: &rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(SCHEMA)?;
    tx.pragma_update(None, "user_version", MIGRATIONS.len() as i64)?;
    Ok(())
}

/// Whether the database has no tables, indexes, views or triggers at all (a new file).
fn is_empty(conn: &Connection) -> Result<bool, StoreError> {
    let n: i64 = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
    Ok(n == 0)
}

/// `PRAGMA user_version`, refusing a database from a newer dmarc-warden.
fn schema_version(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > MIGRATIONS.len() as i64 {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found: version,
            known: MIGRATIONS.len(),
        });
    }
    Ok(version)
}

fn filter_params(f: &Filter) -> (Option<&str>, Option<i64>, Option<i64>, i64) {
    (
        f.domain.as_deref(),
        f.since,
        f.until,
        f.limit.map_or(-1, super::sat),
    )
}

/// A list as the JSON text stored in list columns.
fn json<T: serde::Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

#[cfg(test)]
mod tests {
    use crate::store::{Store, StoreError};
    use rusqlite::Connection;

    /// The months a run touched are not settled within it, and are by the next run over the same
    /// connection (`fetch --watch` runs round after round over one): the run's end
    /// ([`Store::end_run`]) is what lets them settle.
    #[test]
    fn a_later_run_over_the_same_connection_settles_the_months_a_run_touched() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = Store::open(&dir.path().join("t.db")).expect("database");
        let unit = |domain: &str, id: &str, end: i64| {
            let xml = format!(
                "<feedback><report_metadata><org_name>r</org_name><report_id>{id}</report_id>\
                 <date_range><begin>{}</begin><end>{end}</end></date_range></report_metadata>\
                 <policy_published><domain>{domain}</domain><p>none</p></policy_published>\
                 <record><row><source_ip>192.0.2.1</source_ip><count>1</count></row>\
                 <identifiers><header_from>{domain}</header_from></identifiers></record>\
                 </feedback>",
                end - 86_400
            );
            let report = crate::model::Located {
                location: String::new(),
                item: crate::parse::aggregate::parse_aggregate(&xml).expect("report"),
            };
            store
                .write(|tx| tx.insert_report("t", &report, 0).map(drop))
                .expect("write");
        };
        let conn = Connection::open(dir.path().join("t.db")).expect("open");
        let stale = |domain: &str| -> i64 {
            conn.query_row(
                "SELECT count(*) FROM rollup_stale WHERE domain = ?1",
                [domain],
                |r| r.get(0),
            )
            .expect("stale months")
        };
        // 2026-01-15, then units of work in June, more than SETTLE_AFTER of them.
        unit("a.test", "a", 1_768_435_200);
        for n in 0..6 {
            unit("b.test", &format!("b{n}"), 1_781_481_600);
        }
        assert_eq!(stale("a.test"), 1, "settled within the run that touched it");
        store.end_run().expect("end of the run");
        unit("b.test", "b-next", 1_781_481_600);
        assert_eq!(stale("a.test"), 0, "left stale by the next run");
    }

    /// A database's schema and rows as SQL that makes them again: each table, index, view and
    /// trigger SQLite did not make itself, in the order they were made, then each table's rows.
    fn dump(conn: &Connection) -> String {
        let mut out = String::from(
            "-- The SQLite schema every migration (schemas/0*.sql) applied to an empty database\n\
             -- leaves, in the order its parts were made: what a new database is made from\n\
             -- (src/store/sqlite/mod.rs, SCHEMA). Written by the test that checks it:\n\
             -- UPDATE_GOLDEN=1 cargo test --lib sqlite_schema; not to be edited.\n",
        );
        let mut tables = Vec::new();
        let mut stmt = conn
            .prepare(
                "SELECT type, name, sql FROM sqlite_schema
                 WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid",
            )
            .unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?)))
            .unwrap();
        for row in rows {
            let (kind, name, sql): (String, String, String) = row.unwrap();
            out.push_str(&format!("\n{sql};\n"));
            if kind == "table" {
                tables.push(name);
            }
        }
        for table in tables {
            let columns: Vec<String> = conn
                .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let values = columns
                .iter()
                .map(|c| format!("quote(\"{c}\")"))
                .collect::<Vec<_>>()
                .join(" || ', ' || ");
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT 'INSERT INTO \"{table}\" VALUES (' || {values} || ');' FROM \"{table}\""
                ))
                .unwrap();
            for insert in stmt.query_map([], |r| r.get::<_, String>(0)).unwrap() {
                out.push_str(&format!("\n{}\n", insert.unwrap()));
            }
        }
        out
    }

    /// A new database is made from `schemas/sqlite.sql` in one go rather than by replaying the
    /// migrations: both make the same tables, indexes and rows, in the same order, and the file is
    /// what the migrations make (`UPDATE_GOLDEN=1` writes it again after a new migration).
    #[test]
    fn sqlite_schema_of_a_new_database_is_what_the_migrations_make() {
        let mut migrated = Connection::open_in_memory().unwrap();
        let tx = migrated.transaction().unwrap();
        super::apply_migrations(&tx, 0).unwrap();
        tx.commit().unwrap();
        let expected = dump(&migrated);
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/sqlite.sql");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            // Built in by `include_str!`: checked against it from the next build on.
            std::fs::write(path, &expected).unwrap();
            return;
        }
        assert!(
            super::SCHEMA == expected,
            "schemas/sqlite.sql is not what the migrations make (after a new migration, \
             UPDATE_GOLDEN=1 cargo test --lib sqlite_schema writes it again; review the diff)"
        );
        let mut made = Connection::open_in_memory().unwrap();
        let tx = made.transaction().unwrap();
        super::make_schema(&tx).unwrap();
        tx.commit().unwrap();
        assert_eq!(dump(&made), expected);
        let version = |c: &Connection| -> i64 {
            c.pragma_query_value(None, "user_version", |r| r.get(0))
                .unwrap()
        };
        assert_eq!(version(&made), version(&migrated));
        assert_eq!(version(&made), super::MIGRATIONS.len() as i64);
        // And a new file is made so when opened.
        let dir = tempfile::tempdir().unwrap();
        let db = super::Db::open(&dir.path().join("new.db")).unwrap();
        assert_eq!(dump(&db.conn), expected);
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = Store::open(&dir.path().join("t.db")).expect("database");
        (dir, store)
    }

    fn folder(store: &Store) -> Option<(u32, u32)> {
        store.imap_folder("a", "INBOX").expect("read")
    }

    #[test]
    fn write_commits_on_ok_and_rolls_back_on_err_or_panic() {
        let (_dir, store) = store();
        store
            .write(|tx| tx.set_imap_folder("a", "INBOX", 7, 10))
            .expect("write");
        assert_eq!(folder(&store), Some((7, 10)));
        let failed: Result<(), StoreError> = store.write(|tx| {
            tx.set_imap_folder("a", "INBOX", 7, 20)?;
            Err(StoreError::Busy { lock: "x".into() })
        });
        assert!(failed.is_err());
        assert_eq!(folder(&store), Some((7, 10)), "rolled back on Err");
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = store.write(|tx| -> Result<(), StoreError> {
                tx.set_imap_folder("a", "INBOX", 7, 30)?;
                panic!("in the middle of a unit of work");
            });
        }));
        assert!(panicked.is_err());
        assert_eq!(folder(&store), Some((7, 10)), "rolled back on panic");
        // The connection is usable again afterwards.
        store
            .write(|tx| tx.set_imap_folder("a", "INBOX", 7, 40))
            .expect("write after a rollback");
        assert_eq!(folder(&store), Some((7, 40)));
    }

    #[test]
    fn changes_by_another_connection_are_seen() {
        let (dir, store) = store();
        let reader = Store::open_read_only(&dir.path().join("t.db")).expect("read-only");
        let mut seen = reader.change_token().expect("token");
        assert!(!reader.changed_since(&mut seen).expect("changed"));
        store
            .write(|tx| tx.set_imap_folder("a", "INBOX", 1, 1))
            .expect("write");
        assert!(reader.changed_since(&mut seen).expect("changed"));
        assert!(
            !reader.changed_since(&mut seen).expect("changed"),
            "moved on"
        );
    }

    #[test]
    fn a_lock_is_held_until_dropped() {
        let (dir, store) = store();
        let other = Store::open(&dir.path().join("t.db")).expect("second connection");
        let held = store.try_lock("fetch").expect("lock");
        match other.try_lock("fetch") {
            Err(StoreError::Busy { lock }) => assert!(lock.ends_with("t.db.fetch-lock"), "{lock}"),
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("taken twice"),
        }
        other
            .try_lock("notify")
            .expect("another name is another lock");
        drop(held);
        other.try_lock("fetch").expect("free again");
    }
}
