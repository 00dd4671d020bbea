//! The database: what is stored, and every question asked of it. SQL, transactions and database
//! drivers live only under `src/store/`; the rest of the program sees one concrete [`Store`].
//!
//! [`Store`] is an enum over backends: SQLite (`sqlite/`, the default, one file) and PostgreSQL
//! (`postgres/`, for teams: several writers on several machines). Each backend keeps its queries
//! in one file per concern (`ingest`, `rejects`, `imap`, `listings`, `evidence`, `rdns`,
//! `checks`, `notify`), and this module only dispatches to them (`backend!`, `tx_backend!`).
//! Where the database is, `--db`, is a [`Location`]: a file path or a `postgres://` URL.
//!
//! Reading is a plain method on `&Store`. Writing is a unit of work: the caller hands
//! [`Store::write`] a closure, which gets a [`Tx`] to write through; the store commits when the
//! closure returns `Ok` and rolls back when it returns `Err` or panics. Callers never begin or commit
//! themselves, and writes that belong together (a batch of reports with its rejects, the IMAP folder's
//! last UID and the moves to make; a `check`'s results; notify state with its outbox) go through one
//! such call.
//!
//! Rules about the data (what counts as a DMARC pass, how a listing's text reads) have one owner in
//! [`crate::model`] or [`crate::analyse`]; the queries aggregate the facts as stored and hand them
//! to those owners.

pub mod blocks;
pub mod copy;
mod halves;
mod key_list;
pub mod lists;
mod of_keys;
pub mod postgres;
mod rollups;
mod source_groups;
mod sqlite;

/// The rollups' sums of a batch's aggregate reports, made before its unit of work begins (on
/// another thread than the writer's: [`presum`]) and given to it ([`Tx::use_presum`]), which uses
/// them when it stores every one of those reports (otherwise it sums what it stored itself).
pub struct Presum(Option<rollups::Presum>);

/// The [`Presum`] of `reports` for a store that keeps rollups as it writes
/// ([`Store::keeps_rollups`]), else nothing.
pub fn presum<'a>(
    keeps_rollups: bool,
    reports: impl Iterator<Item = &'a AggregateReport>,
) -> Presum {
    Presum(keeps_rollups.then(|| rollups::presum(reports)))
}

pub use blocks::Block;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::analyse::check::{DomainCheck, SelectorSeen};
use crate::model::{
    AggregateReport, DayCount, DomainSummary, Evidence, EvidenceKey, Failure, FailureReport,
    FailureSummary, Filter, IpEvidence, Located, PolicyPublished, RejectSummary, ReportSummary,
    SourceSummary, TlsReport, TlsSummary,
};

/// A hash map with foldhash's fast hasher (already built for hashbrown), for the maps that group
/// many rows by their columns' bytes: std's SipHash was most of what a lookup cost there.
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A count as the databases store it: their integers are signed 64-bit, so counts beyond are
/// clamped rather than wrapped (both backends, and the record blocks).
pub(crate) fn sat(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Whether `a` and `b` hold the same bytes: for the short values records repeat (domains,
/// results, addresses) by a word or two at a time, in place of a call to `memcmp` for each.
#[inline]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let word = |c: Option<&[u8; 8]>| c.map(|c| u64::from_le_bytes(*c));
    let half = |c: Option<&[u8; 4]>| c.map(|c| u32::from_le_bytes(*c));
    match a.len() {
        // The first and the last eight bytes (overlapping when fewer than 16).
        8..=16 => {
            word(a.first_chunk()) == word(b.first_chunk())
                && word(a.last_chunk()) == word(b.last_chunk())
        }
        4..=7 => {
            half(a.first_chunk()) == half(b.first_chunk())
                && half(a.last_chunk()) == half(b.last_chunk())
        }
        _ => a == b,
    }
}

/// [`same_bytes`] of two texts, either of which may be absent.
#[inline]
pub(crate) fn same_text(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => same_bytes(a.as_bytes(), b.as_bytes()),
        (None, None) => true,
        _ => false,
    }
}

/// The places of `word`'s set bits, lowest first.
pub(crate) fn set_bits(mut word: u64) -> impl Iterator<Item = u32> {
    std::iter::from_fn(move || {
        (word != 0).then(|| {
            let bit = word.trailing_zeros();
            word &= word - 1;
            bit
        })
    })
}

pub use postgres::Location;

/// `match` over the store's backends, binding the backend's handle to `$db`.
macro_rules! backend {
    ($store:expr, $db:ident => $body:expr) => {
        match &$store.backend {
            Backend::Sqlite($db) => $body,
            Backend::Postgres($db) => $body,
        }
    };
}

/// `match` over a unit of work's backends, binding the backend's transaction to `$tx`.
macro_rules! tx_backend {
    ($tx:expr, $t:ident => $body:expr) => {
        match &mut $tx.backend {
            TxBackend::Sqlite($t) => $body,
            TxBackend::Postgres($t) => $body,
        }
    };
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the database directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "database {path} has schema version {found}, newer than this dmarc-warden knows ({known}); upgrade dmarc-warden"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: usize,
    },
    #[error(
        "database {path} has schema version {found}, older than this dmarc-warden ({known}); run a command that writes (e.g. `dmarc-warden reprocess`) once to upgrade it"
    )]
    TooOld {
        path: PathBuf,
        found: i64,
        known: usize,
    },
    /// SQLite's error, its message once (no source: the message is rusqlite's own text, whose
    /// source is SQLite's code, which told nothing more than "SQL logic error").
    #[error("database: {0}")]
    Sql(rusqlite::Error),
    /// A PostgreSQL database: every message one line, naming the server or database.
    #[error(transparent)]
    Postgres(#[from] postgres::PgError),
    #[error(
        "database {path} does not exist (`dmarc-warden ingest` or `dmarc-warden fetch` creates it)"
    )]
    Missing { path: PathBuf },
    /// `migrate --to`: the target cannot take the copy, or the copy did not come out whole.
    #[error("cannot copy into the target database: {reason}")]
    CopyTarget { reason: String },
    /// A read through the [`Store`] while a unit of work holds its connection: inside
    /// [`Store::write`], read through the [`Tx`].
    #[error("database: read outside the unit of work that holds the connection")]
    InUnitOfWork,
    /// [`Store::try_lock`]: another process holds the lock; `lock` names it (the lock file).
    #[error("{lock} is held by another process")]
    Busy { lock: String },
    #[error("cannot open the lock file {path}")]
    LockFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot lock {path}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::Sql(e)
    }
}

/// How complete a copy of a report is, compared field by field in this order: the copy that
/// compares greater takes the stored copy's place, an equal or lesser one is a duplicate. More
/// records, then more messages; past those, more passing messages and the later period decide, so
/// that which of two equally large copies stays does not depend on which arrived first (racing
/// writers, the order of files). An unknown date sorts before every known one. Both backends
/// compare these columns in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Completeness {
    pub records: i64,
    pub messages: i64,
    pub passed: i64,
    pub end: Option<i64>,
    pub begin: Option<i64>,
}

/// What inserting a report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    New {
        records: usize,
    },
    /// A more complete copy of a stored report ([`Completeness`]) took its place;
    /// `records` is how many more records that made.
    Replaced {
        records: usize,
    },
    Duplicate,
}

/// An input that failed, in whole or in part, as it is kept.
pub struct RejectedInput<'a> {
    pub origin: &'a str,
    /// The input's bytes; `None` when they could not be read.
    pub data: Option<&'a [u8]>,
    pub failures: &'a [Located<Failure>],
}

/// A kept input, loaded for reprocessing.
pub struct KeptInput {
    pub key: String,
    pub origin: String,
    pub data: Option<Vec<u8>>,
}

/// A condition as last notified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notified {
    pub kind: String,
    pub domain: String,
    pub subject: String,
    pub fingerprint: String,
    pub notified_at: i64,
}

/// A notice waiting in the outbox for its channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub id: i64,
    pub channel: String,
    /// The event, as JSON.
    pub event: String,
    pub attempts: i64,
}

/// One aggregate report's reporter and period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSpan {
    pub domain: String,
    pub org_name: String,
    pub begin: i64,
    pub end: i64,
}

/// How much the database keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kept {
    pub aggregate_reports: u64,
    pub records: u64,
    pub failure_reports: u64,
    pub tls_reports: u64,
    /// Inputs kept because they failed, and the failures in them.
    pub reject_inputs: u64,
    pub rejects: u64,
    /// Notices judged but not yet delivered, and when the oldest was queued.
    pub outbox: u64,
    pub outbox_oldest: Option<i64>,
}

/// `prune`: what goes is what ended before these moments (each a UTC midnight,
/// [`crate::time::retention_cutoff`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    /// Aggregate reports (with their records and rollups) and SMTP TLS reports, by the end of
    /// their period (when stored, for a report without one).
    pub reports: i64,
    /// Failure reports, by their arrival date (when stored, without one).
    pub failures: i64,
}

impl Cutoffs {
    /// No limit: nothing ended before it.
    pub const NONE: i64 = i64::MIN;

    /// Kept rejects go by when they were first kept, under the stricter of the two limits: a
    /// rejected input may be a failure report, with the personal data of one.
    pub fn rejects(&self) -> i64 {
        self.reports.max(self.failures)
    }
}

/// How long reports are kept, in days (`prune --older-than` / `--failures-older-than`, the config's
/// `[retention]`); `None`: no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    pub older_than: Option<u32>,
    /// Failure reports; without it, `older_than`.
    pub failures_older_than: Option<u32>,
}

impl Retention {
    /// Whether any limit is set.
    pub fn is_set(&self) -> bool {
        self.older_than.is_some() || self.failures_older_than.is_some()
    }

    /// The cutoffs at `now` ([`crate::time::retention_cutoff`]).
    pub fn cutoffs(&self, now: i64) -> Cutoffs {
        let cut = |days: Option<u32>| {
            days.map_or(Cutoffs::NONE, |d| crate::time::retention_cutoff(now, d))
        };
        Cutoffs {
            reports: cut(self.older_than),
            failures: cut(self.failures_older_than.or(self.older_than)),
        }
    }
}

/// What `prune` removed (or, dry, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    pub aggregate_reports: u64,
    /// The aggregate reports' records (their DKIM, SPF and reason rows with them).
    pub records: u64,
    pub failure_reports: u64,
    pub tls_reports: u64,
    /// Kept rejected inputs (with the failures noted in them).
    pub reject_inputs: u64,
    /// Rollup rows of days before the cutoff's day.
    pub rollups: u64,
    /// PostgreSQL: month partitions dropped whole (one per table and month); `None` on SQLite.
    pub partitions: Option<u64>,
}

/// Per policy domain and reporter: the end of its latest aggregate report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestReport {
    pub domain: String,
    pub org_name: String,
    pub end: i64,
}

/// Per policy domain: SMTP TLS reports and their sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsCounts {
    pub domain: String,
    pub reports: u64,
    pub successful: u64,
    pub failed: u64,
}

/// What one connection has seen committed, for [`Store::changed_since`]. Meaningful only to the
/// [`Store`] that gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeToken(i64);

/// A named lock between processes on one database ([`Store::try_lock`]), held until dropped.
pub struct StoreLock {
    _held: HeldLock,
}

/// Unlocks when dropped.
enum HeldLock {
    Sqlite {
        _file: sqlite::LockFile,
    },
    /// A connection holding session advisory locks, which end with it.
    Postgres {
        _session: Box<::postgres::Client>,
    },
}

/// Which backend holds a database: known from `--db` before it is open ([`Location::kind`]), and
/// what `ingest` tunes itself by (its batches, its units of work, its parsing threads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

impl Kind {
    /// Rows (records, and one per report) a batch of `ingest` should gather: SQLite writes
    /// fastest in small batches that stay in the caches; PostgreSQL in large ones, each a round
    /// trip, a `COPY` per table and a commit that waits for its WAL to reach the disk (about
    /// 40,000 rows, as its bulk-load figures were measured).
    ///
    /// 2,000 rows on SQLite (issue 21; 4,000 until stop 50). What waits in the pipeline is a few
    /// batches, parsed, and since their rollup sums come encoded ([`presum`]) that is most of what
    /// grows from a short run to a long one. Halved: peak RSS over 100,000 generated reports 37–43
    /// → 34 MB, over 1,000,000 41–43 → 34 MB (1,000 reports: 24–25 MB either way), at the same
    /// speed within the noise (ingest × floor, medians of alternating runs: 5,000 mixed reports
    /// 1.89 → 1.85, 400 large 1.79 → 1.78, 20,000 mixed 2.02 → 1.98).
    pub fn batch_rows(self) -> usize {
        match self {
            Kind::Sqlite => 2_000,
            Kind::Postgres => 40_000,
        }
    }

    /// Rows a unit of work of `ingest` may hold, in batches of [`Kind::batch_rows`] written as
    /// they come: on SQLite several (issue 21: a commit rewrites every page of the reports'
    /// indexes and of the rollups that its reports touch, and over many domains that is most of
    /// them, so that each commit wrote about as many pages again as its records filled; the
    /// rollups' upkeep is also paid once a unit of work); on PostgreSQL one.
    ///
    /// 32,000 rows on SQLite (stop 49): over four times the floor bench's mixed corpus (20,000
    /// reports, dates over a year) 16,000 wrote 9,856 WAL frames for a 32 MB database and
    /// copied 6,696 pages into it, 32,000 5,454 / 4,101, 64,000 5,311 / 4,022; three alternating
    /// runs, CPU 1.71–1.91 → 1.65–1.86 s (32,000) / 1.59–1.81 s (64,000), ingest × floor
    /// 1.99–2.12 → 1.89–1.99 / 1.84–2.01. But the last unit's commit (14–22 ms at 64,000) runs
    /// after the parsing, with nothing beside it: over the 5,000 mixed reports the time after the
    /// last input was parsed went 0.008 → 0.012 s (32,000) / 0.018 s (64,000), so 32,000, the
    /// same there within the noise (ingest × floor 1.92–1.95 → 1.85–1.91 / 1.89–2.02).
    pub fn unit_rows(self) -> usize {
        match self {
            Kind::Sqlite => 32_000,
            Kind::Postgres => 40_000,
        }
    }

    /// Whether units of work keep rollups of what they store, from a [`Presum`] when given.
    pub fn keeps_rollups(self) -> bool {
        true
    }

    /// Whether units of work store records encoded ahead on the parsing threads
    /// ([`Tx::insert_reports_encoded`]): SQLite; PostgreSQL packs its own as it encodes `COPY`.
    pub fn encodes_blocks(self) -> bool {
        self == Kind::Sqlite
    }

    /// Threads `ingest` should parse on, given the machine's `cores`: SQLite's writer runs in this
    /// process and is now lighter than parsing, so a parsing thread per core beside it (issue 21:
    /// 5,000 mixed / 400 large reports on 2 cores, wall 0.284 / 0.244 s with one, 0.260 / 0.229 s
    /// with two); PostgreSQL's server does most of the writing, often on this machine, so one
    /// core is left to it (20,000 reports into a local server: 1.78 s with one, 1.93-2.05 s with
    /// two).
    pub fn parse_threads(self, cores: usize) -> usize {
        match self {
            Kind::Sqlite => cores.max(1),
            Kind::Postgres => cores.saturating_sub(1).max(1),
        }
    }
}

impl Location {
    /// Which backend holds the database it names.
    pub fn kind(&self) -> Kind {
        match self {
            Location::Sqlite(_) => Kind::Sqlite,
            Location::Postgres(_) => Kind::Postgres,
        }
    }
}

/// The database, whichever backend holds it.
pub struct Store {
    backend: Backend,
    warnings: Vec<String>,
}

enum Backend {
    Sqlite(sqlite::Db),
    Postgres(postgres::Db),
}

/// How a command opens the database ([`Store::open_at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    /// Writers (`ingest`, `fetch`, …): an SQLite file is created when missing; the schema is
    /// brought up to date.
    Create,
    /// Readers that may write a cache (listings, `senders`, `advise`): the database must exist;
    /// the schema is brought up to date.
    Existing,
    /// `serve`, `report --html`: nothing is created, migrated or written.
    ReadOnly,
}

/// One unit of work in progress ([`Store::write`]): every write goes through it, and all of them are
/// committed together or not at all.
pub struct Tx<'s> {
    backend: TxBackend<'s>,
}

enum TxBackend<'s> {
    Sqlite(sqlite::Tx<'s>),
    Postgres(postgres::Tx<'s>),
}

/// Opening, the unit of work, and what the web and the lock files need.
impl Store {
    /// Which backend holds the database.
    pub fn kind(&self) -> Kind {
        match self.backend {
            Backend::Sqlite(_) => Kind::Sqlite,
            Backend::Postgres(_) => Kind::Postgres,
        }
    }

    /// Opens (creating if needed) the SQLite database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_at(&Location::Sqlite(path.to_owned()), Open::Create)
    }

    /// Opens an existing SQLite database for reading only ([`Open::ReadOnly`]).
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        Store::open_at(&Location::Sqlite(path.to_owned()), Open::ReadOnly)
    }

    /// Opens the database `--db` names as `how` says. Read-only, nothing is created or migrated,
    /// and the connection refuses writes, so it can run beside a `fetch`.
    pub fn open_at(db: &Location, how: Open) -> Result<Store, StoreError> {
        let (backend, warnings) = match (db, how) {
            (Location::Sqlite(path), Open::ReadOnly) => {
                (Backend::Sqlite(sqlite::Db::open_read_only(path)?), vec![])
            }
            (Location::Sqlite(path), Open::Existing) if !path.exists() => {
                return Err(StoreError::Missing { path: path.clone() });
            }
            (Location::Sqlite(path), _) => (Backend::Sqlite(sqlite::Db::open(path)?), vec![]),
            (Location::Postgres(url), Open::ReadOnly) => {
                let (db, warnings) = postgres::Db::open_read_only(url)?;
                (Backend::Postgres(db), warnings)
            }
            (Location::Postgres(url), _) => {
                let (db, warnings) = postgres::Db::open(url)?;
                (Backend::Postgres(db), warnings)
            }
        };
        Ok(Store { backend, warnings })
    }

    /// What opening found worth a warning on stderr (a password file others can read).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Another read-only connection to the same database (for work split over threads).
    pub fn reopen_read_only(&self) -> Result<Store, StoreError> {
        let backend = match &self.backend {
            Backend::Sqlite(db) => Backend::Sqlite(db.reopen_read_only()?),
            Backend::Postgres(db) => Backend::Postgres(db.reopen_read_only()?),
        };
        Ok(Store {
            backend,
            warnings: vec![],
        })
    }

    /// Runs `work` as one unit of work: everything it writes through its [`Tx`] is committed when it
    /// returns `Ok`, and nothing when it returns `Err` or panics. Waits for another writer (another
    /// process) up to a minute. Not nested: inside `work`, read and write through the `Tx`.
    pub fn write<T, E: From<StoreError>>(
        &self,
        work: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        // On `Err` or a panic `tx` is dropped uncommitted, which rolls it back.
        match &self.backend {
            Backend::Sqlite(db) => {
                let mut tx = Tx {
                    backend: TxBackend::Sqlite(db.begin()?),
                };
                let out = work(&mut tx)?;
                match tx.backend {
                    TxBackend::Sqlite(t) => t.commit()?,
                    TxBackend::Postgres(_) => unreachable!("an SQLite unit of work"),
                }
                Ok(out)
            }
            Backend::Postgres(db) => {
                let mut client = db.client()?;
                let mut tx = Tx {
                    backend: TxBackend::Postgres(db.begin(&mut client)?),
                };
                let out = work(&mut tx)?;
                match tx.backend {
                    TxBackend::Postgres(t) => t.commit()?,
                    TxBackend::Sqlite(_) => unreachable!("a PostgreSQL unit of work"),
                }
                Ok(out)
            }
        }
    }

    /// Ends a run (an `ingest`, a `reprocess`, a round of a mailbox): later units of work may
    /// settle the months this one touched ([`rollups::RunClock`]). On PostgreSQL, when the run
    /// wrote rollups, it sums again from their days the months it left stale (a month a unit of
    /// work touched is read by day until a unit of work a few later settles it, and a run's last
    /// units have none later: a year's overview read its last two months by day). SQLite leaves
    /// them to the next run's units of work.
    pub fn end_run(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => {
                db.end_run();
                Ok(())
            }
            Backend::Postgres(db) if db.end_run() => self.write(|tx| match &mut tx.backend {
                TxBackend::Postgres(t) => t.settle_rollups(),
                TxBackend::Sqlite(_) => Ok(()),
            }),
            Backend::Postgres(_) => Ok(()),
        }
    }

    /// Where this connection stands now: compare later with [`Store::changed_since`].
    pub fn change_token(&self) -> Result<ChangeToken, StoreError> {
        backend!(self, db => db.change_token())
    }

    /// Whether another connection committed since `seen` was taken (the dashboard's page cache is
    /// dropped then); `seen` is moved on to now.
    pub fn changed_since(&self, seen: &mut ChangeToken) -> Result<bool, StoreError> {
        let now = self.change_token()?;
        Ok(std::mem::replace(seen, now) != now)
    }

    /// Takes the lock `name` for as long as the returned guard lives, or fails with
    /// [`StoreError::Busy`] at once when another process holds it (two `fetch` runs would move the
    /// same messages; two `notify` runs would send the same notices).
    pub fn try_lock(&self, name: &str) -> Result<StoreLock, StoreError> {
        let held = match &self.backend {
            Backend::Sqlite(db) => HeldLock::Sqlite {
                _file: db.try_lock(name)?,
            },
            Backend::Postgres(db) => HeldLock::Postgres {
                _session: Box::new(db.try_lock(name)?),
            },
        };
        Ok(StoreLock { _held: held })
    }

    /// Keeps other `fetch` runs off the mailboxes `accounts` (`user@host:port`) while the guard
    /// lives, or fails with [`StoreError::Busy`] at once. SQLite has one writer at a time, so one
    /// `fetch` per database (the lock `fetch`); PostgreSQL takes a lease per mailbox, so that
    /// fetchers of other mailboxes, on other machines, write beside this one.
    pub fn lock_mailboxes(&self, accounts: &[String]) -> Result<StoreLock, StoreError> {
        match &self.backend {
            Backend::Sqlite(_) => self.try_lock("fetch"),
            Backend::Postgres(db) => Ok(StoreLock {
                _held: HeldLock::Postgres {
                    _session: Box::new(db.lock_mailboxes(accounts)?),
                },
            }),
        }
    }

    /// `prune`: removes what ended before `cutoffs` (see [`Cutoffs`]), and says what went; with
    /// `dry_run`, only counts it. Not one unit of work: SQLite deletes in bounded batches, each
    /// its own short unit of work, so that readers and other writers get their turn; PostgreSQL
    /// deletes the reports, then drops the month partitions of records wholly before the cutoff
    /// and deletes the rest of the boundary month. An interrupted prune leaves nothing visible
    /// half removed, and the next one finishes it.
    pub fn prune(&self, cutoffs: Cutoffs, dry_run: bool) -> Result<Pruned, StoreError> {
        backend!(self, db => db.prune(cutoffs, dry_run))
    }

    /// The key of a reject kept without its bytes (too large, or unreadable), by its origin.
    pub fn origin_key(origin: &str) -> String {
        format!("origin:{origin}")
    }
}

/// One stored aggregate record's columns as a backend reads them back, before the rules apply:
/// [`StoredRecord::evidence_key`] is the one conversion of those columns into what they say about
/// the sender, whichever backend read them.
struct StoredRecord<'a> {
    domain: &'a str,
    source_ip: &'a str,
    header_from: Option<&'a str>,
    /// The deciding DKIM result's domain and result (written by `insert_report`).
    auth_dkim_domain: Option<&'a str>,
    auth_dkim_result: Option<&'a str>,
    /// The deciding SPF result's domain and result.
    auth_spf_domain: Option<&'a str>,
    auth_spf_result: Option<&'a str>,
    envelope_from: Option<&'a str>,
    /// `policy_evaluated`.
    dkim: Option<&'a str>,
    spf: Option<&'a str>,
    disposition: Option<&'a str>,
    forwarded: bool,
}

impl StoredRecord<'_> {
    fn evidence_key(&self) -> EvidenceKey {
        let lower = |s: Option<&str>| {
            let mut t = crate::model::ShortStr::from(s.unwrap_or_default());
            t.make_ascii_lowercase();
            t
        };
        EvidenceKey {
            domain: self.domain.into(),
            source_ip: self.source_ip.into(),
            header_from: lower(self.header_from),
            dkim_domain: lower(self.auth_dkim_domain),
            dkim_result: crate::model::DkimResult::parse(self.auth_dkim_result.unwrap_or_default()),
            // Without an SPF result, the envelope sender is the domain SPF would have checked.
            spf_domain: lower(self.auth_spf_domain.or(self.envelope_from)),
            spf_result: crate::model::SpfResult::parse(self.auth_spf_result.unwrap_or_default()),
            dkim_aligned: self.dkim.map(crate::model::DmarcResult::parse)
                == Some(crate::model::DmarcResult::Pass),
            spf_aligned: self.spf.map(crate::model::DmarcResult::parse)
                == Some(crate::model::DmarcResult::Pass),
            disposition: crate::model::Disposition::parse(self.disposition.unwrap_or("none")),
            forwarded: self.forwarded,
        }
    }
}

/// The key a rejected input is kept under: the SHA-256 of its bytes in hex, or
/// [`Store::origin_key`] when it has none.
fn reject_key(input: &RejectedInput<'_>) -> String {
    use sha2::Digest;
    match input.data {
        Some(data) => sha2::Sha256::digest(data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        None => Store::origin_key(input.origin),
    }
}

/// Reading: kept rejects, IMAP state, listings, evidence, the rDNS cache, checks, notifications.
impl Store {
    /// Keys of all kept inputs, oldest first.
    pub fn kept_keys(&self) -> Result<Vec<String>, StoreError> {
        backend!(self, db => db.kept_keys())
    }

    pub fn kept_input(&self, key: &str) -> Result<Option<KeptInput>, StoreError> {
        backend!(self, db => db.kept_input(key))
    }

    /// The remembered `(uidvalidity, last_uid)` of an IMAP folder.
    pub fn imap_folder(
        &self,
        account: &str,
        folder: &str,
    ) -> Result<Option<(u32, u32)>, StoreError> {
        backend!(self, db => db.imap_folder(account, folder))
    }

    /// `domains`: per policy domain, most messages first.
    pub fn domains(&self, f: &Filter) -> Result<Vec<DomainSummary>, StoreError> {
        backend!(self, db => db.domains(f))
    }

    /// `sources`: per policy domain, source IP and header From, most messages first.
    pub fn sources(&self, f: &Filter) -> Result<Vec<SourceSummary>, StoreError> {
        backend!(self, db => db.sources(f))
    }

    /// `reports`: the stored aggregate reports, oldest first.
    pub fn reports(&self, f: &Filter) -> Result<Vec<ReportSummary>, StoreError> {
        match &self.backend {
            // Sorted in memory there: the sorted listing as it is, not collected again.
            Backend::Postgres(db) => db.reports(f),
            Backend::Sqlite(_) => {
                let mut all = Vec::new();
                self.reports_each(f, &mut |r| {
                    all.push(r);
                    true
                })?;
                Ok(all)
            }
        }
    }

    /// [`Store::reports`] a report at a time, as the database reads them (a listing of every
    /// report is written without being held); stops when `each` answers false.
    pub fn reports_each(
        &self,
        f: &Filter,
        each: &mut dyn FnMut(ReportSummary) -> bool,
    ) -> Result<(), StoreError> {
        backend!(self, db => db.reports_each(f, each))
    }

    /// Failure reports, newest arrival first; `source_ip` narrows to one sender.
    pub fn failures(
        &self,
        f: &Filter,
        source_ip: Option<&str>,
    ) -> Result<Vec<FailureSummary>, StoreError> {
        backend!(self, db => db.failures(f, source_ip))
    }

    /// SMTP TLS results per policy domain and MX host pattern, most failed sessions first.
    pub fn tls(&self, f: &Filter) -> Result<Vec<TlsSummary>, StoreError> {
        backend!(self, db => db.tls(f))
    }

    /// `rejects`: every failed part of every kept input, oldest input first.
    pub fn rejects(&self) -> Result<Vec<RejectSummary>, StoreError> {
        backend!(self, db => db.rejects())
    }

    /// Per policy domain, the policy of its latest report and that report's end.
    pub fn latest_policies(
        &self,
        domain: Option<&str>,
    ) -> Result<Vec<(PolicyPublished, Option<i64>)>, StoreError> {
        backend!(self, db => db.latest_policies(domain))
    }

    /// Aggregate records summed by what they say about the sender ([`crate::model::EvidenceKey`]),
    /// for reports ending on or after `since`.
    pub fn evidence(
        &self,
        domain: Option<&str>,
        since: Option<i64>,
    ) -> Result<Vec<Evidence>, StoreError> {
        self.evidence_between(domain, since, None)
    }

    /// [`Store::evidence`] for reports ending on or after `since` and before `until`.
    pub fn evidence_between(
        &self,
        domain: Option<&str>,
        since: Option<i64>,
        until: Option<i64>,
    ) -> Result<Vec<Evidence>, StoreError> {
        Ok(self.evidence_in(domain, since, until, Detail::Days)?.0)
    }

    /// [`Store::evidence_between`]; with [`Detail::Daily`], also how many messages of each
    /// evidence row came in reports beginning on each day (the web's charts). From the rollups when they
    /// answer the window: a row per key without the source IP, its IPs in `Evidence::ips`.
    pub fn evidence_in(
        &self,
        domain: Option<&str>,
        since: Option<i64>,
        until: Option<i64>,
        detail: Detail,
    ) -> Result<(Vec<Evidence>, Vec<DayCount>), StoreError> {
        backend!(self, db => db.evidence_in(domain, since, until, detail))
    }

    /// [`Store::evidence_in`] with a row per source IP (`Evidence::ips` is `None`), read from the
    /// records whatever the rollups hold: for those who need each IP's own messages.
    pub fn evidence_per_ip(
        &self,
        domain: Option<&str>,
        since: Option<i64>,
        until: Option<i64>,
        detail: Detail,
    ) -> Result<(Vec<Evidence>, Vec<DayCount>), StoreError> {
        backend!(self, db => db.evidence_per_ip(domain, since, until, detail))
    }

    /// The mail of `domain`'s reports ending in `[since, until)` under the keys `keys` (each
    /// without a source IP), summed per source IP and key: what a sender's page lists by IP when
    /// its rows are the rollups'.
    pub fn evidence_of_keys(
        &self,
        domain: &str,
        since: Option<i64>,
        until: Option<i64>,
        keys: &[EvidenceKey],
    ) -> Result<Vec<IpEvidence>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        backend!(self, db => db.evidence_of_keys(domain, since, until, keys))
    }

    /// Cached reverse DNS names of `ips` looked up since `fresh_since`: `Some(None)` for a cached
    /// "no name"; absent when not cached or stale.
    pub fn rdns(
        &self,
        ips: &[String],
        fresh_since: i64,
    ) -> Result<HashMap<String, Option<String>>, StoreError> {
        backend!(self, db => db.rdns(ips, fresh_since))
    }

    /// DKIM selectors that reports show signing with `domain` itself (d= equal to it), with the
    /// first and last report periods they appear in.
    pub fn dkim_selectors(&self, domain: &str) -> Result<Vec<SelectorSeen>, StoreError> {
        backend!(self, db => db.dkim_selectors(domain))
    }

    /// SMTP TLS reports stored for `domain`, and the end of the latest.
    pub fn tls_report_count(&self, domain: &str) -> Result<(u64, Option<i64>), StoreError> {
        backend!(self, db => db.tls_report_count(domain))
    }

    /// The latest check of each domain (or of `domain`), by domain.
    pub fn last_checks(&self, domain: Option<&str>) -> Result<Vec<DomainCheck>, StoreError> {
        backend!(self, db => db.last_checks(domain))
    }

    /// How much the database keeps (`/metrics`).
    pub fn kept(&self) -> Result<Kept, StoreError> {
        backend!(self, db => db.kept())
    }

    /// Per domain and reporter, the latest aggregate report's end; by domain, then reporter.
    pub fn latest_reports(&self) -> Result<Vec<LatestReport>, StoreError> {
        backend!(self, db => db.latest_reports())
    }

    /// Failure (ARF) reports per reported domain; by domain.
    pub fn failure_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        backend!(self, db => db.failure_counts())
    }

    /// SMTP TLS reports and sessions per policy domain; by domain.
    pub fn tls_counts(&self) -> Result<Vec<TlsCounts>, StoreError> {
        backend!(self, db => db.tls_counts())
    }

    /// Every domain something is stored for: aggregate reports' policy domains, failure reports'
    /// reported domains and TLS reports' policy domains; sorted, once each.
    pub fn stored_domains(&self) -> Result<Vec<String>, StoreError> {
        backend!(self, db => db.stored_domains())
    }

    /// The conditions last notified.
    pub fn notified(&self) -> Result<Vec<Notified>, StoreError> {
        backend!(self, db => db.notified())
    }

    /// Notices waiting in the outbox, oldest first; all channels when `channel` is `None`.
    pub fn pending_notices(&self, channel: Option<&str>) -> Result<Vec<Pending>, StoreError> {
        backend!(self, db => db.pending_notices(channel))
    }

    /// Every aggregate report ending on or after `since`: who sent it, for which domain, when.
    pub fn report_spans(&self, since: i64) -> Result<Vec<ReportSpan>, StoreError> {
        backend!(self, db => db.report_spans(since))
    }

    /// The source IPs of `domain`'s aggregate reports ending on or after `since` and before `until`.
    pub fn source_ips_between(
        &self,
        domain: &str,
        since: i64,
        until: i64,
    ) -> Result<BTreeSet<String>, StoreError> {
        backend!(self, db => db.source_ips_between(domain, since, until))
    }

    /// The end of the latest aggregate report and of the latest SMTP TLS report.
    pub fn latest_ends(&self) -> Result<(Option<i64>, Option<i64>), StoreError> {
        backend!(self, db => db.latest_ends())
    }
}

/// Writing, inside [`Store::write`]: reports and rejects, IMAP state, the rDNS cache, checks,
/// notifications. Nothing is visible to other connections before the unit of work commits.
impl Tx<'_> {
    /// Gives this unit of work the rollups' sums of the batch it is about to store.
    pub fn use_presum(&mut self, p: Presum) {
        match (&mut self.backend, p.0) {
            (TxBackend::Sqlite(t), Some(p)) => t.use_presum(p),
            (TxBackend::Postgres(t), Some(p)) => t.use_presum(p),
            (_, None) => {}
        }
    }

    /// Stores a report with all its records, unless a report with the same org, id and policy domain is
    /// already stored. Of two different copies of one report (a reporter's corrected re-send, or
    /// sample reports that reuse an id), the one with more records, then more messages, is kept,
    /// whatever the order they arrive in: the database does not depend on thread timing or on the
    /// order of inputs. Copies that tie keep the one stored first.
    pub fn insert_report(
        &mut self,
        origin: &str,
        report: &Located<AggregateReport>,
        now: i64,
    ) -> Result<Inserted, StoreError> {
        tx_backend!(self, tx => tx.insert_report(origin, report, now))
    }

    /// [`Tx::insert_report`] for several reports (`(origin, report)`), returning what became of
    /// each in order: the same as one call each in that order. PostgreSQL writes them with one
    /// upsert in key order and their records by `COPY`, so call it once per unit of work where
    /// there are many: concurrent writers then lock reports in one order and never deadlock.
    pub fn insert_reports(
        &mut self,
        reports: &[(&str, &Located<AggregateReport>)],
        now: i64,
    ) -> Result<Vec<Inserted>, StoreError> {
        match &mut self.backend {
            TxBackend::Sqlite(t) => t.insert_reports(reports, None, now),
            TxBackend::Postgres(t) => t.insert_reports(reports, now),
        }
    }

    /// [`Tx::insert_reports`], each report's records encoded already (`blocks`, in the order of
    /// `reports`: [`Block::of`], on the parsing threads). SQLite stores those blocks; PostgreSQL
    /// packs its own rows as it encodes its `COPY`.
    pub fn insert_reports_encoded(
        &mut self,
        reports: &[(&str, &Located<AggregateReport>)],
        blocks: &[&Block],
        now: i64,
    ) -> Result<Vec<Inserted>, StoreError> {
        match &mut self.backend {
            TxBackend::Sqlite(t) => t.insert_reports(reports, Some(blocks), now),
            TxBackend::Postgres(t) => t.insert_reports(reports, now),
        }
    }

    /// [`Tx::insert_failure`] for several reports, in order (PostgreSQL: in key order).
    pub fn insert_failures(
        &mut self,
        reports: &[(&str, &Located<FailureReport>)],
        now: i64,
    ) -> Result<Vec<Inserted>, StoreError> {
        match &mut self.backend {
            TxBackend::Sqlite(t) => reports
                .iter()
                .map(|(origin, r)| t.insert_failure(origin, r, now))
                .collect(),
            TxBackend::Postgres(t) => t.insert_failures(reports, now),
        }
    }

    /// [`Tx::insert_tls`] for several reports, in order (PostgreSQL: in key order).
    pub fn insert_tls_reports(
        &mut self,
        reports: &[(&str, &Located<TlsReport>)],
        now: i64,
    ) -> Result<Vec<Inserted>, StoreError> {
        match &mut self.backend {
            TxBackend::Sqlite(t) => reports
                .iter()
                .map(|(origin, r)| t.insert_tls(origin, r, now))
                .collect(),
            TxBackend::Postgres(t) => t.insert_tls_reports(reports, now),
        }
    }

    /// [`Tx::keep_reject`] for several inputs (PostgreSQL: in key order).
    pub fn keep_rejects(
        &mut self,
        inputs: &[RejectedInput<'_>],
        now: i64,
    ) -> Result<(), StoreError> {
        match &mut self.backend {
            // In key order, as PostgreSQL's: their rows are numbered alike on both.
            TxBackend::Sqlite(t) => {
                let mut sorted: Vec<(String, &RejectedInput<'_>)> =
                    inputs.iter().map(|i| (reject_key(i), i)).collect();
                sorted.sort_by(|a, b| a.0.cmp(&b.0));
                sorted
                    .into_iter()
                    .try_for_each(|(_, i)| t.keep_reject(i, now))
            }
            TxBackend::Postgres(t) => t.keep_rejects(inputs, now),
        }
    }

    /// Stores one failure report unless one with the same key is stored.
    pub fn insert_failure(
        &mut self,
        origin: &str,
        report: &Located<FailureReport>,
        now: i64,
    ) -> Result<Inserted, StoreError> {
        tx_backend!(self, tx => tx.insert_failure(origin, report, now))
    }

    /// Stores one SMTP TLS report, its policies and failure details, unless (organisation, report
    /// id) is stored.
    pub fn insert_tls(
        &mut self,
        origin: &str,
        report: &Located<TlsReport>,
        now: i64,
    ) -> Result<Inserted, StoreError> {
        tx_backend!(self, tx => tx.insert_tls(origin, report, now))
    }

    /// Keeps a failed input and why it failed. Keeping the same bytes again only updates `last_seen`,
    /// the attempt count and the reasons.
    pub fn keep_reject(&mut self, input: &RejectedInput<'_>, now: i64) -> Result<(), StoreError> {
        tx_backend!(self, tx => tx.keep_reject(input, now))
    }

    /// Forgets a kept input (it was reprocessed successfully, or re-kept under a new key).
    pub fn forget_reject(&mut self, key: &str) -> Result<(), StoreError> {
        tx_backend!(self, tx => tx.forget_reject(key))
    }

    /// Remembers an IMAP folder's state.
    pub fn set_imap_folder(
        &mut self,
        account: &str,
        folder: &str,
        uidvalidity: u32,
        last_uid: u32,
    ) -> Result<(), StoreError> {
        tx_backend!(self, tx => tx.set_imap_folder(account, folder, uidvalidity, last_uid))
    }

    /// Records that a message is to be moved once this unit of work commits.
    pub fn add_pending_move(
        &mut self,
        account: &str,
        folder: &str,
        uidvalidity: u32,
        uid: u32,
        destination: &str,
    ) -> Result<(), StoreError> {
        tx_backend!(self, tx => tx.add_pending_move(account, folder, uidvalidity, uid, destination))
    }

    /// Forgets the moves recorded for the folder under another UIDVALIDITY: their UIDs no longer
    /// name the same messages. Returns how many.
    pub fn drop_stale_moves(
        &mut self,
        account: &str,
        folder: &str,
        uidvalidity: u32,
    ) -> Result<usize, StoreError> {
        tx_backend!(self, tx => tx.drop_stale_moves(account, folder, uidvalidity))
    }

    /// Moves recorded but not yet confirmed, as `(uid, destination)` in UID order.
    pub fn pending_moves(
        &mut self,
        account: &str,
        folder: &str,
        uidvalidity: u32,
    ) -> Result<Vec<(u32, String)>, StoreError> {
        tx_backend!(self, tx => tx.pending_moves(account, folder, uidvalidity))
    }

    /// Forgets pending moves the server has confirmed.
    pub fn clear_pending_moves(
        &mut self,
        account: &str,
        folder: &str,
        uidvalidity: u32,
        uids: &[u32],
    ) -> Result<(), StoreError> {
        tx_backend!(self, tx => tx.clear_pending_moves(account, folder, uidvalidity, uids))
    }

    /// Caches reverse DNS answers.
    pub fn set_rdns(
        &mut self,
        answers: &HashMap<String, Option<String>>,
        now: i64,
    ) -> Result<(), StoreError> {
        tx_backend!(self, tx => tx.set_rdns(answers, now))
    }

    /// Keeps the result of checking one domain.
    pub fn save_check(&mut self, check: &DomainCheck) -> Result<(), StoreError> {
        tx_backend!(self, tx => tx.save_check(check))
    }

    /// The conditions last notified, as this unit of work sees them.
    pub fn notified(&mut self) -> Result<Vec<Notified>, StoreError> {
        tx_backend!(self, tx => tx.notified())
    }

    /// Replaces the conditions last notified with `state` (those not in it are forgotten).
    pub fn set_notified(&mut self, state: &[Notified]) -> Result<(), StoreError> {
        tx_backend!(self, tx => tx.set_notified(state))
    }

    /// Queues notices — `(channel, event JSON)` — in the outbox.
    pub fn queue_notices(
        &mut self,
        notices: &[(String, String)],
        now: i64,
    ) -> Result<(), StoreError> {
        tx_backend!(self, tx => tx.queue_notices(notices, now))
    }

    /// Moves queued notices to other channels: each `(id, channels)` is replaced by a copy for each
    /// of `channels` (none: it stays where it is).
    pub fn requeue_notices(&mut self, moves: &[(i64, Vec<String>)]) -> Result<(), StoreError> {
        tx_backend!(self, tx => tx.requeue_notices(moves))
    }

    /// The channel took these notices: they leave the outbox.
    pub fn notices_delivered(&mut self, ids: &[i64]) -> Result<(), StoreError> {
        tx_backend!(self, tx => tx.notices_delivered(ids))
    }

    /// The channel did not take these notices: they stay, with the attempt counted.
    pub fn notices_failed(&mut self, ids: &[i64], error: &str) -> Result<(), StoreError> {
        tx_backend!(self, tx => tx.notices_failed(ids, error))
    }
}

/// Evidence sorted by key, with its day counts (by row and day) following their rows to their new
/// places.
pub(crate) fn sorted_evidence(
    out: Vec<Evidence>,
    daily: impl IntoIterator<Item = ((usize, i64), u64)>,
) -> (Vec<Evidence>, Vec<DayCount>) {
    let order = evidence_order(out.iter().map(|e| &e.key));
    let days = days_in_order(&order, daily);
    (in_order(out, &order).map(|(_, e)| e).collect(), days)
}

/// What evidence rows carry besides their sums (the readers of [`Store::evidence_in`] and
/// [`Store::evidence_per_ip`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Detail {
    /// The sums alone, [`Evidence::days`] left empty: for those who judge senders and give no
    /// advice (`senders`: gathering each row's days of a year was a tenth of its time).
    Sums,
    /// Each row's days of begin too ([`Evidence::days`]: the advice's evidence window).
    #[default]
    Days,
    /// Days, and each row's messages per day of begin ([`DayCount`]: the web's charts).
    Daily,
}

impl Detail {
    /// Whether rows carry their days of begin.
    pub fn days(self) -> bool {
        self != Detail::Sums
    }

    /// Whether each row's messages are counted per day.
    pub fn daily(self) -> bool {
        self == Detail::Daily
    }
}

/// Evidence rows being summed from records, one per key (both backends' readers of the records):
/// each record adds its messages, span, day of begin and reporter to its row; at the end the
/// rows share one table of reporters' names and come in key order ([`sorted_evidence`]).
pub(crate) struct RecordSums {
    rows: Vec<Evidence>,
    /// Each row's reporters, as places in `table`.
    reporters: Vec<Vec<u32>>,
    table: crate::model::ReporterTable,
    daily: FastMap<(usize, i64), u64>,
    detail: Detail,
}

impl RecordSums {
    /// Nothing yet, keeping what `detail` asks for.
    pub(crate) fn new(detail: Detail) -> Self {
        RecordSums {
            rows: Vec::new(),
            reporters: Vec::new(),
            table: Default::default(),
            daily: FastMap::default(),
            detail,
        }
    }

    /// A new row for `key`: its place.
    pub(crate) fn push(&mut self, key: EvidenceKey) -> usize {
        self.rows.push(Evidence {
            key,
            ..Evidence::default()
        });
        self.reporters.push(Vec::new());
        self.rows.len() - 1
    }

    /// Adds a record of `count` messages to the row at `at`, from a report of `reporter`
    /// beginning at `begin` and ending at `end`.
    pub(crate) fn add(
        &mut self,
        at: usize,
        reporter: &str,
        begin: Option<i64>,
        end: Option<i64>,
        count: u64,
    ) {
        let (Some(e), Some(mine)) = (self.rows.get_mut(at), self.reporters.get_mut(at)) else {
            return;
        };
        let place = self.table.place(reporter);
        if !mine.contains(&place) {
            mine.push(place);
        }
        e.messages = e.messages.saturating_add(count);
        e.first = crate::analyse::min_opt(e.first, begin);
        e.last = e.last.max(end);
        if let Some(b) = begin.filter(|_| self.detail.days()) {
            crate::model::add_day(&mut e.days, b.div_euclid(86_400));
            if self.detail.daily() {
                *self.daily.entry((at, b.div_euclid(86_400))).or_default() += count;
            }
        }
    }

    /// The rows in key order, and their day counts.
    pub(crate) fn finish(self) -> (Vec<Evidence>, Vec<DayCount>) {
        let names = self.table.finish();
        let mut rows = self.rows;
        for (e, mine) in rows.iter_mut().zip(self.reporters) {
            e.reporters = names.row(mine);
        }
        sorted_evidence(rows, self.daily)
    }
}

/// `items` taken in `order` (each place once, as [`evidence_order`] gives them), each with the
/// place it came from.
pub(crate) fn in_order<'o, T: 'o>(
    items: Vec<T>,
    order: &'o [usize],
) -> impl Iterator<Item = (usize, T)> + 'o {
    let mut slots: Vec<Option<T>> = items.into_iter().map(Some).collect();
    order
        .iter()
        .filter_map(move |&i| Some((i, slots.get_mut(i)?.take()?)))
}

/// The order of evidence rows by key: the old place of each row, new place by new place. Keys are
/// distinct (each row is one key's sums), so an unstable sort orders them the same; each key's
/// order bytes are made once, into one buffer (key i's are `ends[i - 1]..ends[i]`), and compared
/// with one memcmp.
pub(crate) fn evidence_order<'k>(
    keys: impl ExactSizeIterator<Item = &'k EvidenceKey>,
) -> Vec<usize> {
    let mut bytes = Vec::with_capacity(keys.len() * 64);
    let mut ends = Vec::with_capacity(keys.len());
    for key in keys {
        key.order_bytes(&mut bytes);
        ends.push(bytes.len());
    }
    let key = |i: usize| &bytes[if i == 0 { 0 } else { ends[i - 1] }..ends[i]];
    // Most comparisons are settled by eight bytes read as a number: those after what every key
    // begins with (a domain's rows share its name, the empty IP and mostly the From), zeros
    // past a key's end (which sort it first, as its shortness does).
    let common = (1..ends.len()).fold(ends.first().map_or(0, |e| *e), |n, i| {
        let (a, b) = (key(0), key(i));
        n.min(a.iter().zip(b).take_while(|(x, y)| x == y).count())
    });
    let mut order: Vec<(u64, usize)> = (0..ends.len())
        .map(|i| {
            let mut eight = [0u8; 8];
            let rest = key(i).get(common..).unwrap_or_default();
            let n = rest.len().min(8);
            eight[..n].copy_from_slice(&rest[..n]);
            (u64::from_be_bytes(eight), i)
        })
        .collect();
    order.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| key(a.1).cmp(key(b.1))));
    order.into_iter().map(|(_, i)| i).collect()
}

/// Day counts (by old row place and day) at their rows' new places ([`evidence_order`]), by day.
pub(crate) fn days_in_order(
    order: &[usize],
    daily: impl IntoIterator<Item = ((usize, i64), u64)>,
) -> Vec<DayCount> {
    let mut place = vec![0; order.len()];
    for (new, &old) in order.iter().enumerate() {
        place[old] = new;
    }
    let mut days: Vec<DayCount> = daily
        .into_iter()
        .map(|((at, day), messages)| DayCount {
            evidence: place[at],
            day,
            messages,
        })
        .collect();
    days.sort_unstable_by_key(|d| (d.day, d.evidence));
    days
}

#[cfg(test)]
mod tests {
    use super::evidence_order;
    use crate::model::{DkimResult, EvidenceKey};

    /// `same_bytes` says what `==` says, at every length 0–20 and for a difference in any byte.
    #[test]
    fn same_bytes_is_equality() {
        use super::{same_bytes, same_text};
        let texts: Vec<Vec<u8>> = (0..=20)
            .flat_map(|n| {
                let base: Vec<u8> = (0..n).map(|i| b'a' + i as u8).collect();
                let mut variants = vec![base.clone()];
                for at in 0..n {
                    let mut v = base.clone();
                    v[at as usize] ^= 0x20;
                    variants.push(v);
                }
                variants
            })
            .collect();
        for a in &texts {
            for b in &texts {
                assert_eq!(same_bytes(a, b), a == b, "{a:?} {b:?}");
            }
        }
        assert!(
            same_text(None, None) && !same_text(Some(""), None) && same_text(Some(""), Some(""))
        );
    }

    /// The order `evidence_order` finds (eight bytes past what the keys share, then whole keys)
    /// is the keys' own: keys of one domain sharing a long beginning and differing beyond the
    /// eight bytes or within them, keys that are prefixes of others, then another domain among
    /// them (nothing shared), one key and none.
    #[test]
    fn evidence_order_is_the_keys_order() {
        let names = [
            "",
            "a",
            "a.example",
            "a.example.net",
            "ab",
            "bulk1.example.net",
            "bulk12.example.net",
            "bulk1.example.neu",
            "z",
        ];
        let mut keys = Vec::new();
        for d in names {
            for s in names {
                for result in ["pass", "fail"] {
                    keys.push(EvidenceKey {
                        domain: "acme0.example".into(),
                        header_from: "acme0.example".into(),
                        dkim_domain: d.into(),
                        dkim_result: DkimResult::parse(result),
                        spf_domain: s.into(),
                        ..EvidenceKey::default()
                    });
                }
            }
        }
        keys.reverse();
        let ordered = |keys: &[EvidenceKey]| -> Vec<EvidenceKey> {
            evidence_order(keys.iter())
                .into_iter()
                .map(|i| keys[i].clone())
                .collect()
        };
        let mut want = keys.clone();
        want.sort();
        assert_eq!(ordered(&keys), want);
        keys.insert(
            40,
            EvidenceKey {
                domain: "b".into(),
                ..EvidenceKey::default()
            },
        );
        let mut want = keys.clone();
        want.sort();
        assert_eq!(ordered(&keys), want);
        assert_eq!(ordered(&keys[..1]), keys[..1]);
        assert!(ordered(&[]).is_empty());
    }
}
