//! PostgreSQL, the store's second backend, for teams: several fetchers on several machines writing
//! at once, a dashboard and analysts reading. SQLite stays the default and the embedded choice.
//!
//! What is here does not depend on how `Store` dispatches between backends:
//! - [`Location`]: what `--db` names (an SQLite path, or `postgres://USER@HOST[:PORT]/DB`);
//! - [`Connector`]: the password from a file (never argv or the URL), TLS through rustls as
//!   `sslmode` asks (`disable`, `prefer` — libpq's default —, `require`, `verify-ca`,
//!   `verify-full`), failures in one line;
//! - [`migrate`]: `schemas/postgres/NNNN_*.sql`, applied once under an advisory lock;
//! - the SQL of each concern, over any [`GenericClient`] (a client, a transaction): `ingest`
//!   (aggregate reports with "the more complete copy wins" in the upsert itself, records by binary
//!   COPY; failure and TLS reports), `rejects`, `imap` (folder state, pending moves, a lease per
//!   account), `listings`, `evidence`, `rdns`, `checks`, `notify`, and `rollups` (the sender
//!   tier's SQL, written at each unit of work's commit, and the locks between writers).
//!
//! Every function that writes more than one statement runs in its own transaction (a savepoint
//! when given one), so none leaves half its work behind. Several writers at once may deadlock on
//! reports they both hold (40P01) or fail a serialisation (40001): such an error is
//! [`PgError::is_retryable`], and the whole transaction can be run again.
//!
//! Only `store` names the driver.

mod checks;
mod connect;
mod copy;
mod evidence;
mod imap;
mod ingest;
mod listings;
mod metrics;
mod migrate;
mod notify;
mod password;
mod prune;
mod rdns;
mod rejects;
mod rollups;
mod url;

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use crate::analyse::check::{DomainCheck, SelectorSeen};
use crate::model::{
    AggregateReport, DayCount, DomainSummary, Evidence, EvidenceKey, FailureReport, FailureSummary,
    Filter, IpEvidence, Located, PolicyPublished, RejectSummary, ReportSummary, SourceSummary,
    TlsReport, TlsSummary,
};
use crate::store::{
    ChangeToken, Detail, Inserted, Kept, KeptInput, LatestReport, Notified, Pending, RejectedInput,
    ReportSpan, StoreError, TlsCounts, sat,
};

pub use checks::{dkim_selectors, last_checks, save_check, tls_report_count};
pub use connect::Connector;
pub use evidence::{evidence_of_keys, evidence_per_ip};
pub use imap::{
    add_pending_move, clear_pending_moves, drop_stale_moves, imap_folder, pending_moves,
    set_imap_folder, try_lock_account, unlock_account,
};
pub use ingest::{
    insert_failure, insert_failures, insert_report, insert_reports, insert_tls, insert_tls_reports,
};
pub use listings::{
    domains, failures, latest_policies, rejects, reports, reports_each, sources, tls,
};
pub use migrate::{MIGRATIONS, check_schema, migrate, schema_version};
pub use notify::{
    latest_ends, lock_notify, notices_delivered, notices_failed, notified, pending_notices,
    queue_notices, record_notices, report_spans, requeue_notices, set_notified, source_ips_between,
};
pub use password::{
    PASSWORD_FILE_VAR, Password, lookup as pgpass_lookup, resolve as resolve_password,
};
pub use postgres::{Client, GenericClient, Transaction};
pub use rdns::{rdns, set_rdns};
pub use rejects::{forget_reject, keep_reject, keep_rejects, kept_input, kept_keys};
pub use url::{Host, Location, PgUrl, RootCert, SslMode};

/// What went wrong with a PostgreSQL database. Every message is one line, names the server or
/// database, and never holds a password.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error(
        "--db {scheme}://…: not a database dmarc-warden can use (a file path for SQLite, or \
         postgres://USER@HOST[:PORT]/DB)"
    )]
    Scheme { scheme: String },
    #[error(
        "--db postgres://…: the URL holds a password; put it in a file named by \
         DMARC_WARDEN_DB_PASSWORD_FILE, or in ~/.pgpass (a URL shows in ps and in logs)"
    )]
    PasswordInUrl,
    #[error("--db postgres://…: {reason}")]
    Url { reason: String },
    #[error("database password file {path}: {error}")]
    PasswordFile {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("database password file {path} is empty")]
    EmptyPasswordFile { path: PathBuf },
    #[error("sslrootcert {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error("database server {server}: certificate refused: {reason}")]
    Certificate { server: String, reason: String },
    #[error("database server {server}: {reason}")]
    Connect { server: String, reason: String },
    #[error("database {url}: {reason}")]
    Refused { url: String, reason: String },
    #[error(
        "database {url}: the server asks for a password; name a file holding it in \
         DMARC_WARDEN_DB_PASSWORD_FILE, or add a line to ~/.pgpass"
    )]
    NeedsPassword { url: String },
    #[error("database {url} does not exist")]
    NoDatabase { url: String },
    #[error(
        "database has schema version {found}, newer than this dmarc-warden knows ({known}); upgrade dmarc-warden"
    )]
    TooNew { found: i64, known: i64 },
    #[error(
        "database has schema version {found}, older than this dmarc-warden ({known}); run a command that writes (e.g. `dmarc-warden reprocess`) once to upgrade it"
    )]
    TooOld { found: i64, known: i64 },
    #[error("database migration {name}: {}", connect::error_text(.error))]
    Migration {
        name: &'static str,
        error: postgres::Error,
    },
    #[error("database: unreadable rollup row")]
    Unreadable,
    #[error("database: COPY: {reason}")]
    Copy { reason: String },
    /// A statement failed, or the connection was lost; `at` names the database when known
    /// ([`PgError::at`]).
    #[error(
        "database{}: {}",
        .at.as_ref().map(|at| format!(" {at}")).unwrap_or_default(),
        connect::error_text(.error)
    )]
    Sql {
        at: Option<String>,
        error: postgres::Error,
    },
}

impl From<postgres::Error> for PgError {
    fn from(error: postgres::Error) -> PgError {
        PgError::Sql { at: None, error }
    }
}

impl PgError {
    /// A deadlock or serialisation failure between concurrent writers: running the transaction
    /// again is safe (everything in it is idempotent) and will succeed.
    pub fn is_retryable(&self) -> bool {
        use postgres::error::SqlState;
        match self {
            PgError::Sql { error: e, .. } => matches!(
                e.code(),
                Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED
                    || *c == SqlState::T_R_SERIALIZATION_FAILURE
            ),
            _ => false,
        }
    }

    /// The error as it names the database `url` (a lost connection says which server it lost).
    pub fn at(self, url: &PgUrl) -> PgError {
        match self {
            PgError::Sql { at: None, error } => PgError::Sql {
                at: Some(url.to_string()),
                error,
            },
            other => other,
        }
    }

    /// The connection is gone (the server stopped, the network failed): the run ends with this
    /// error, and the next one finds every transaction either committed or not.
    pub fn is_disconnect(&self) -> bool {
        match self {
            PgError::Sql { error: e, .. } | PgError::Migration { error: e, .. } => {
                e.is_closed()
                    || e.code().is_some_and(|c| {
                        c.code().starts_with("08")
                            || *c == postgres::error::SqlState::ADMIN_SHUTDOWN
                    })
                    || connect::error_text(e).starts_with("error communicating with the server")
            }
            PgError::Connect { .. } => true,
            _ => false,
        }
    }
}

/// A change marker for caches (`serve`'s pages): the server's current snapshot, which changes
/// whenever any transaction has committed since it was last read (SQLite's `data_version`). It
/// changes for other databases' commits too, which only costs a cache refill.
pub fn data_version(client: &mut impl GenericClient) -> Result<String, PgError> {
    Ok(client
        .query_one("SELECT pg_current_snapshot()::text", &[])?
        .get(0))
}

/// Text as PostgreSQL can store it: it refuses NUL characters, which SQLite keeps. A NUL (which
/// XML forbids, so only a broken report carries one) becomes U+FFFD rather than failing the batch.
fn text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{fffd}"))
    } else {
        Cow::Borrowed(s)
    }
}

fn opt_text(s: &Option<String>) -> Option<Cow<'_, str>> {
    s.as_deref().map(text)
}

/// A sum of stored counts (each read as [`count`] reads it: `GREATEST(count, 0)`), sent as the
/// text of the server's exact `numeric` (a `bigint` sum could overflow): what the counts added
/// one by one with saturation give.
fn sum_of_counts(sum: &str) -> u64 {
    sum.parse().unwrap_or(u64::MAX)
}

/// A stored count, never negative.
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A list as the JSON text stored in list columns.
fn json<T: serde::Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

/// A filter's domain, since, until and limit as parameters (`None` where not given).
/// What a window's `$3` (until) bounds: evidence ends its window with the report's end (as the
/// rollups' days), listings with its begin (as `--until` means: periods beginning before it).
#[derive(Clone, Copy)]
pub(super) enum UntilBy {
    End,
    Begin,
}

/// The conditions of a read of records (`c`) with their reports (`r`) over `$1` (the domain), `$2`
/// (since: a report ending then or after) and `$3` (until), each spelled out only when given, so
/// that the plan uses the (domain, date_end) index and reads only the window's partitions of the
/// records (their `report_end` is the report's end).
fn window_conditions(domain: bool, since: bool, until: bool, by: UntilBy) -> String {
    [
        if domain {
            "r.domain = $1 AND c.domain = $1"
        } else {
            "$1::text IS NULL"
        },
        if since {
            "r.date_end >= $2 AND c.report_end >= $2"
        } else {
            "$2::int8 IS NULL"
        },
        match (until, by) {
            (false, _) => "$3::int8 IS NULL",
            (true, UntilBy::End) => "r.date_end < $3 AND c.report_end < $3",
            (true, UntilBy::Begin) => "r.date_begin < $3",
        },
    ]
    .join(" AND ")
}

/// A record's stored columns from `row`, the source IP at `first` and the rest after it in
/// [`StoredRecord`]'s order (as every query that turns records into evidence selects them).
fn stored_record<'r>(
    row: &'r postgres::Row,
    domain: &'r str,
    first: usize,
) -> crate::store::StoredRecord<'r> {
    crate::store::StoredRecord {
        domain,
        source_ip: row.get(first),
        header_from: row.get(first + 1),
        auth_dkim_domain: row.get(first + 2),
        auth_dkim_result: row.get(first + 3),
        auth_spf_domain: row.get(first + 4),
        auth_spf_result: row.get(first + 5),
        envelope_from: row.get(first + 6),
        dkim: row.get(first + 7),
        spf: row.get(first + 8),
        disposition: row.get(first + 9),
        forwarded: row.get(first + 10),
    }
}

/// Appends the text columns `columns` of `row` to `buf`, each marked present and length-prefixed
/// (so different columns never give the same bytes): the lookup key of rows summed by their
/// columns' values, made without allocating, and without checking the texts as UTF-8 (a key's
/// bytes are only compared; a row whose columns are turned into a record reads them as texts).
fn put_columns(buf: &mut Vec<u8>, row: &postgres::Row, columns: std::ops::Range<usize>) {
    for i in columns {
        let field = row.get::<_, Option<TextBytes<'_>>>(i);
        crate::store::source_groups::put_key_field(buf, field.map(|TextBytes(t)| t));
    }
}

/// A text column's bytes as the server sent them (in the database's encoding, UTF-8).
pub(super) struct TextBytes<'a>(pub(super) &'a [u8]);

impl<'a> postgres::types::FromSql<'a> for TextBytes<'a> {
    fn from_sql(
        _: &postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(TextBytes(raw))
    }

    fn accepts(ty: &postgres::types::Type) -> bool {
        <&str as postgres::types::FromSql>::accepts(ty)
    }
}

/// For a read that runs beside another of the same kind (two halves at once, each on its own
/// connection): its connection's own server process reads, without parallel workers, which
/// would only add the cost of gathering their rows (the server's CPU for a year of the largest
/// domain's sources, 911k records: 0.94 → 0.70 s).
const NO_WORKERS: &str = "SET LOCAL max_parallel_workers_per_gather = 0";

/// For a read that sums many records in a few groups, joined to their reports (a window's few
/// thousand): a hash of the reports rather than an index lookup per record, and the sums in a
/// hash table (64 MiB before it spills to disk) rather than every record sorted. The planner
/// takes a condition on lowered columns to keep a handful of rows, and so chose the other two
/// (a year of the 10M estate's largest sender: 2.35 s; with these, 0.62 s).
const SUM_BY_HASH: &str =
    "SET LOCAL enable_nestloop = off; SET LOCAL enable_sort = off; SET LOCAL work_mem = '64MB'";

/// Rows fetched at a time by [`each_row`].
const BATCH_ROWS: i32 = 8192;

/// Runs `query` and hands `each` its rows, a batch at a time from a portal, in a transaction of
/// its own (a savepoint within one already open): the driver enters its runtime once per call,
/// which taken once per row (`query_raw`) was a quarter of the client's CPU over a year of a
/// large domain, and a batch bounds what is held (`query` holds every row).
fn each_row(
    client: &mut impl postgres::GenericClient,
    query: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
    mut each: impl FnMut(&postgres::Row) -> Result<(), PgError>,
) -> Result<(), PgError> {
    let mut tx = client.transaction()?;
    let portal = tx.bind(query, params)?;
    loop {
        let batch = tx.query_portal(&portal, BATCH_ROWS)?;
        for row in &batch {
            each(row)?;
        }
        if batch.len() < BATCH_ROWS as usize {
            break;
        }
    }
    tx.commit()?;
    Ok(())
}

/// A REPEATABLE READ READ ONLY transaction: one snapshot for every statement in it.
fn snapshot(client: &mut Client) -> Result<Transaction<'_>, PgError> {
    Ok(client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?)
}

fn filter_params(
    f: &crate::model::Filter,
) -> (Option<&str>, Option<i64>, Option<i64>, Option<i64>) {
    (f.domain.as_deref(), f.since, f.until, f.limit.map(sat))
}

/// An open PostgreSQL database, behind [`crate::store::Store`]: one connection (the store is
/// used from one thread at a time), and the settings to open more (`serve`'s, locks).
pub struct Db {
    client: RefCell<Client>,
    connector: Arc<Connector>,
    /// The rollup reader's statements, prepared on `client` once (boxed: `Store`'s backends
    /// stay near one size).
    prepared: Box<RefCell<rollups::Prepared>>,
    /// This run's first unit of work ([`crate::store::rollups::RunClock`]).
    run_clock: crate::store::rollups::RunClock,
}

/// A transaction on a [`Db`] ([`crate::store::Store::write`]), rolled back when dropped
/// uncommitted.
pub struct Tx<'c> {
    tx: Transaction<'c>,
    url: &'c PgUrl,
    run_clock: &'c crate::store::rollups::RunClock,
    /// The rollups of what this unit of work stored, written at commit.
    rollups: rollups::Kept,
}

impl Db {
    /// Connects, and brings the schema up to date ([`migrate`]). Returns warnings for stderr too
    /// (a password file others can read).
    pub fn open(url: &PgUrl) -> Result<(Db, Vec<String>), StoreError> {
        let (connector, warnings) = Connector::from_env(url)?;
        let mut client = connector.connect()?;
        migrate::migrate(&mut client).map_err(|e| e.at(url))?;
        Ok((
            Db {
                client: RefCell::new(client),
                connector: Arc::new(connector),
                prepared: Box::default(),
                run_clock: Default::default(),
            },
            warnings,
        ))
    }

    /// Connects for reading only (`serve`, `report --html`): the schema must be the one this
    /// dmarc-warden knows, nothing is migrated, and the session's transactions are read-only, so
    /// a role that may only read (`GRANT SELECT`) is enough.
    pub fn open_read_only(url: &PgUrl) -> Result<(Db, Vec<String>), StoreError> {
        let (connector, warnings) = Connector::from_env(url)?;
        Ok((Db::read_only(Arc::new(connector))?, warnings))
    }

    fn read_only(connector: Arc<Connector>) -> Result<Db, StoreError> {
        let mut client = connector.connect()?;
        let url = connector.url();
        client
            .batch_execute("SET default_transaction_read_only = on")
            .map_err(|e| PgError::from(e).at(url))?;
        migrate::check_schema(&mut client).map_err(|e| e.at(url))?;
        Ok(Db {
            client: RefCell::new(client),
            connector,
            prepared: Box::default(),
            run_clock: Default::default(),
        })
    }

    pub fn reopen_read_only(&self) -> Result<Db, StoreError> {
        Db::read_only(Arc::clone(&self.connector))
    }

    pub fn url(&self) -> &PgUrl {
        self.connector.url()
    }

    /// The connection, for one read or one unit of work. Refused while a unit of work holds it:
    /// inside [`crate::store::Store::write`], reads go through the `Tx`.
    pub fn client(&self) -> Result<std::cell::RefMut<'_, Client>, StoreError> {
        self.client
            .try_borrow_mut()
            .map_err(|_| StoreError::InUnitOfWork)
    }

    fn read<T>(&self, f: impl FnOnce(&mut Client) -> Result<T, PgError>) -> Result<T, StoreError> {
        Ok(f(&mut *self.client()?).map_err(|e| e.at(self.url()))?)
    }

    /// Ends the run ([`crate::store::Store::end_run`]); whether it wrote rollups.
    pub fn end_run(&self) -> bool {
        self.run_clock.end()
    }

    /// Begins a unit of work on `client` (this database's, from [`Db::client`]).
    pub fn begin<'c>(&'c self, client: &'c mut Client) -> Result<Tx<'c>, StoreError> {
        let url = self.url();
        let tx = client.transaction().map_err(|e| PgError::from(e).at(url))?;
        Ok(Tx {
            tx,
            url,
            run_clock: &self.run_clock,
            rollups: rollups::Kept::default(),
        })
    }

    /// The server's snapshot ([`data_version`]), as a token.
    pub fn change_token(&self) -> Result<ChangeToken, StoreError> {
        use std::hash::{Hash, Hasher};
        let version = self.read(data_version)?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        version.hash(&mut hasher);
        Ok(ChangeToken(hasher.finish() as i64))
    }

    /// A session advisory lock named `name`, on a connection of its own that holds it until it
    /// is dropped (or the process dies, or the network fails: nothing stale is left behind).
    pub fn try_lock(&self, name: &str) -> Result<Client, StoreError> {
        let mut client = self.connector.connect()?;
        let taken: bool = client
            .query_one(
                "SELECT pg_try_advisory_lock(hashtextextended('dmarc-warden ' || $1, 0))",
                &[&name],
            )
            .map_err(|e| PgError::from(e).at(self.url()))?
            .get(0);
        if !taken {
            return Err(StoreError::Busy {
                lock: format!("the lock \"{name}\" on {}", self.url()),
            });
        }
        Ok(client)
    }

    /// The lease on each of `accounts` ([`try_lock_account`]), on a connection of its own that
    /// holds them until it is dropped: another `fetch` of one of these mailboxes, on this machine
    /// or another, is refused meanwhile; `fetch` runs of other mailboxes go on beside it.
    pub fn lock_mailboxes(&self, accounts: &[String]) -> Result<Client, StoreError> {
        let mut client = self.connector.connect()?;
        let mut sorted: Vec<&String> = accounts.iter().collect();
        sorted.sort();
        sorted.dedup();
        for account in sorted {
            if !try_lock_account(&mut client, account).map_err(|e| e.at(self.url()))? {
                return Err(StoreError::Busy {
                    lock: format!("the lease on mailbox {account}"),
                });
            }
        }
        Ok(client)
    }
}

impl Db {
    /// The evidence of the reports asked for: from the rollups when they answer the window, in
    /// one snapshot ([`rollups::evidence_in`]), else from the records.
    pub fn evidence_in(
        &self,
        domain: Option<&str>,
        since: Option<i64>,
        until: Option<i64>,
        detail: Detail,
    ) -> Result<(Vec<Evidence>, Vec<DayCount>), StoreError> {
        self.read_rollups(|client, prepared| {
            rollups::evidence_in(client, prepared, domain, since, until, detail)
        })
    }

    /// The mail of `domain`'s reports under `keys` per source IP and key: from the rollups when
    /// they answer the window, in one snapshot ([`rollups::evidence_of_keys`]), else from the
    /// records.
    pub fn evidence_of_keys(
        &self,
        domain: &str,
        since: Option<i64>,
        until: Option<i64>,
        keys: &[EvidenceKey],
    ) -> Result<Vec<IpEvidence>, StoreError> {
        self.read_rollups(|client, prepared| {
            rollups::evidence_of_keys(client, prepared, domain, since, until, keys)
        })
    }

    /// A read of the rollups (`f`) on the connection with its prepared statements; its database
    /// errors name this database.
    fn read_rollups<T>(
        &self,
        f: impl FnOnce(&mut Client, &mut rollups::Prepared) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut prepared = self
            .prepared
            .try_borrow_mut()
            .map_err(|_| StoreError::InUnitOfWork)?;
        f(&mut *self.client()?, &mut prepared).map_err(|e| self.located(e))
    }

    /// `e`, naming this database when it is the server's.
    fn located(&self, e: StoreError) -> StoreError {
        match e {
            StoreError::Postgres(e) => StoreError::Postgres(e.at(self.url())),
            other => other,
        }
    }

    /// `sources`: from the rollups ([`rollups::sources`]) where they answer, else
    /// [`listings::sources_in_halves`] (a large domain in two halves at once, the second on a
    /// connection of its own).
    pub fn sources(&self, f: &Filter) -> Result<Vec<SourceSummary>, StoreError> {
        if let Some(out) =
            self.read_rollups(|client, prepared| rollups::sources(client, prepared, f))?
        {
            return Ok(out);
        }
        listings::sources_in_halves(&mut *self.client()?, f, || self.reopen_read_only())
            .map_err(|e| self.located(e))
    }

    /// `prune` ([`prune::prune`]): in transactions of its own, on this connection.
    pub fn prune(
        &self,
        cutoffs: crate::store::Cutoffs,
        dry_run: bool,
    ) -> Result<crate::store::Pruned, StoreError> {
        self.read(|c| prune::prune(c, cutoffs, dry_run))
    }
}

impl Tx<'_> {
    pub fn commit(mut self) -> Result<(), StoreError> {
        let url = self.url;
        let kept = std::mem::take(&mut self.rollups);
        kept.write(&mut self.tx, self.run_clock)
            .map_err(|e| match e {
                StoreError::Postgres(e) => StoreError::Postgres(e.at(url)),
                other => other,
            })?;
        Ok(self.tx.commit().map_err(|e| PgError::from(e).at(url))?)
    }

    /// Gives this unit of work the rollups' sums of the batch it is about to store.
    pub(in crate::store) fn use_presum(&mut self, p: crate::store::rollups::Presum) {
        self.rollups.use_presum(p);
    }

    /// Sums every stale month of the rollups again ([`rollups::settle_all`]).
    pub fn settle_rollups(&mut self) -> Result<(), StoreError> {
        self.run(|c| rollups::settle_all(c))
    }

    /// Deletes the rollups and sums every stored report again (after `migrate --to` copied the
    /// reports in).
    pub fn rebuild_rollups(&mut self) -> Result<(), StoreError> {
        self.rollups = rollups::Kept::default();
        self.run(|c| rollups::rebuild(c))
    }

    /// Stores one report ([`Tx::insert_reports`]).
    pub fn insert_report(
        &mut self,
        origin: &str,
        report: &Located<AggregateReport>,
        now: i64,
    ) -> Result<Inserted, StoreError> {
        Ok(self
            .insert_reports(&[(origin, report)], now)?
            .pop()
            .unwrap_or(Inserted::Duplicate))
    }

    fn run<T>(
        &mut self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, PgError>,
    ) -> Result<T, StoreError> {
        Ok(f(&mut self.tx).map_err(|e| e.at(self.url))?)
    }

    /// [`insert_reports`], in a savepoint that is run again when a concurrent writer made it
    /// fail in a way that asks for that ([`PgError::is_retryable`]). Writers upsert a unit of
    /// work's reports in one statement, in key order, so this should not happen; a deadlock
    /// with a writer that does otherwise costs a retry, not the run.
    pub fn insert_reports(
        &mut self,
        reports: &[(&str, &Located<AggregateReport>)],
        now: i64,
    ) -> Result<Vec<Inserted>, StoreError> {
        let mut attempt = 0;
        loop {
            let mut replaced = Vec::new();
            match ingest::insert_reports_noting(&mut self.tx, reports, now, &mut replaced) {
                Err(e) if e.is_retryable() && attempt < RETRIES => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20 * attempt));
                }
                Err(e) => return Err(e.at(self.url).into()),
                Ok(out) => {
                    // The days the replaced copies were rolled up under are summed again.
                    for (domain, end) in replaced {
                        self.rollups.forget_day(&domain, end);
                    }
                    self.rollups.stored(
                        reports
                            .iter()
                            .zip(&out)
                            .filter(|(_, i)| !matches!(i, Inserted::Duplicate))
                            .map(|((_, r), _)| &r.item)
                            .collect::<Vec<_>>()
                            .into_iter(),
                    );
                    return Ok(out);
                }
            }
        }
    }

    /// The conditions last notified, read under the lock that makes notification runs decide
    /// one after the other ([`lock_notify`]), held until this unit of work ends.
    pub fn notified(&mut self) -> Result<Vec<Notified>, StoreError> {
        self.run(|c| {
            lock_notify(c)?;
            notified(c)
        })
    }
}

/// How often a batch of reports is tried again after a deadlock.
const RETRIES: u64 = 5;

/// Each read of [`crate::store::Store`], as its concern file's query over the connection.
macro_rules! reads {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $f:path;)*) => {
        impl Db {
            $(pub fn $name(&self, $($arg: $ty),*) -> Result<$ret, StoreError> {
                self.read(|c| $f(c, $($arg),*))
            })*
        }
    };
}

reads! {
    kept_keys() -> Vec<String> = rejects::kept_keys;
    kept_input(key: &str) -> Option<KeptInput> = rejects::kept_input;
    imap_folder(account: &str, folder: &str) -> Option<(u32, u32)> = imap::imap_folder;
    domains(f: &Filter) -> Vec<DomainSummary> = listings::domains;
    reports(f: &Filter) -> Vec<ReportSummary> = listings::reports;
    reports_each(f: &Filter, each: &mut dyn FnMut(ReportSummary) -> bool) -> () = listings::reports_each;
    failures(f: &Filter, source_ip: Option<&str>) -> Vec<FailureSummary> = listings::failures;
    tls(f: &Filter) -> Vec<TlsSummary> = listings::tls;
    rejects() -> Vec<RejectSummary> = listings::rejects;
    latest_policies(domain: Option<&str>) -> Vec<(PolicyPublished, Option<i64>)> =
        listings::latest_policies;
    evidence_per_ip(domain: Option<&str>, since: Option<i64>, until: Option<i64>, detail: Detail)
        -> (Vec<Evidence>, Vec<DayCount>) = evidence::evidence_per_ip;
    rdns(ips: &[String], fresh_since: i64) -> HashMap<String, Option<String>> = rdns::rdns;
    dkim_selectors(domain: &str) -> Vec<SelectorSeen> = checks::dkim_selectors;
    tls_report_count(domain: &str) -> (u64, Option<i64>) = checks::tls_report_count;
    last_checks(domain: Option<&str>) -> Vec<DomainCheck> = checks::last_checks;
    notified() -> Vec<Notified> = notify::notified;
    pending_notices(channel: Option<&str>) -> Vec<Pending> = notify::pending_notices;
    report_spans(since: i64) -> Vec<ReportSpan> = notify::report_spans;
    source_ips_between(domain: &str, since: i64, until: i64) -> BTreeSet<String> =
        notify::source_ips_between;
    latest_ends() -> (Option<i64>, Option<i64>) = notify::latest_ends;
    kept() -> Kept = metrics::kept;
    latest_reports() -> Vec<LatestReport> = metrics::latest_reports;
    failure_counts() -> Vec<(String, u64)> = metrics::failure_counts;
    tls_counts() -> Vec<TlsCounts> = metrics::tls_counts;
    stored_domains() -> Vec<String> = metrics::stored_domains;
}

/// Each write of [`crate::store::Tx`], as its concern file's statements in the transaction.
macro_rules! writes {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $f:path;)*) => {
        impl Tx<'_> {
            $(pub fn $name(&mut self, $($arg: $ty),*) -> Result<$ret, StoreError> {
                self.run(|c| $f(c, $($arg),*))
            })*
        }
    };
}

writes! {
    insert_failure(origin: &str, report: &Located<FailureReport>, now: i64) -> Inserted =
        ingest::insert_failure;
    insert_failures(reports: &[(&str, &Located<FailureReport>)], now: i64) -> Vec<Inserted> =
        ingest::insert_failures;
    insert_tls(origin: &str, report: &Located<TlsReport>, now: i64) -> Inserted =
        ingest::insert_tls;
    insert_tls_reports(reports: &[(&str, &Located<TlsReport>)], now: i64) -> Vec<Inserted> =
        ingest::insert_tls_reports;
    keep_reject(input: &RejectedInput<'_>, now: i64) -> () = rejects::keep_reject;
    keep_rejects(inputs: &[RejectedInput<'_>], now: i64) -> () = rejects::keep_rejects;
    forget_reject(key: &str) -> () = rejects::forget_reject;
    set_imap_folder(account: &str, folder: &str, uidvalidity: u32, last_uid: u32) -> () =
        imap::set_imap_folder;
    add_pending_move(account: &str, folder: &str, uidvalidity: u32, uid: u32, destination: &str)
        -> () = imap::add_pending_move;
    drop_stale_moves(account: &str, folder: &str, uidvalidity: u32) -> usize =
        imap::drop_stale_moves;
    pending_moves(account: &str, folder: &str, uidvalidity: u32) -> Vec<(u32, String)> =
        imap::pending_moves;
    clear_pending_moves(account: &str, folder: &str, uidvalidity: u32, uids: &[u32]) -> () =
        imap::clear_pending_moves;
    set_rdns(answers: &HashMap<String, Option<String>>, now: i64) -> () = rdns::set_rdns;
    save_check(check: &DomainCheck) -> () = checks::save_check;
    set_notified(state: &[Notified]) -> () = notify::set_notified;
    queue_notices(notices: &[(String, String)], now: i64) -> () = notify::queue_notices;
    requeue_notices(moves: &[(i64, Vec<String>)]) -> () = notify::requeue_notices;
    notices_delivered(ids: &[i64]) -> () = notify::notices_delivered;
    notices_failed(ids: &[i64], error: &str) -> () = notify::notices_failed;
}
