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
//!   account), `listings`, `evidence`, `rdns`, `checks`, `notify`.
//!
//! Every function that writes more than one statement runs in its own transaction (a savepoint
//! when given one), so none leaves half its work behind. Several writers at once may deadlock on
//! reports they both hold (40P01) or fail a serialisation (40001): such an error is
//! [`PgError::is_retryable`], and the whole transaction can be run again.
//!
//! Only `store` names the driver.

mod checks;
mod connect;
mod evidence;
mod imap;
mod ingest;
mod listings;
mod migrate;
mod notify;
mod password;
mod rdns;
mod rejects;
mod url;

use std::borrow::Cow;
use std::path::PathBuf;

pub use checks::{dkim_selectors, last_checks, save_check, tls_report_count};
pub use connect::Connector;
pub use evidence::evidence_in;
pub use imap::{
    add_pending_move, clear_pending_moves, imap_folder, pending_moves, set_imap_folder,
    try_lock_account, unlock_account,
};
pub use ingest::{insert_failure, insert_report, insert_reports, insert_tls};
pub use listings::{domains, failures, latest_policies, rejects, reports, sources, tls};
pub use migrate::{MIGRATIONS, check_schema, migrate, schema_version};
pub use notify::{
    latest_ends, notices_delivered, notices_failed, notified, pending_notices, record_notices,
    report_spans, requeue_notices, source_ips_between,
};
pub use password::{
    PASSWORD_FILE_VAR, Password, lookup as pgpass_lookup, resolve as resolve_password,
};
pub use postgres::{Client, GenericClient, Transaction};
pub use rdns::{rdns, set_rdns};
pub use rejects::{forget_reject, keep_reject, kept_input, kept_keys};
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
    #[error("database password file {path}: {source}")]
    PasswordFile {
        path: PathBuf,
        source: std::io::Error,
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
    #[error("database migration {name}: {}", connect::error_text(.source))]
    Migration {
        name: &'static str,
        source: postgres::Error,
    },
    #[error("database: {}", connect::error_text(.0))]
    Sql(#[from] postgres::Error),
}

impl PgError {
    /// A deadlock or serialisation failure between concurrent writers: running the transaction
    /// again is safe (everything in it is idempotent) and will succeed.
    pub fn is_retryable(&self) -> bool {
        use postgres::error::SqlState;
        match self {
            PgError::Sql(e) => matches!(
                e.code(),
                Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED
                    || *c == SqlState::T_R_SERIALIZATION_FAILURE
            ),
            _ => false,
        }
    }

    /// The connection is gone (the server stopped, the network failed): the run ends with this
    /// error, and the next one finds every transaction either committed or not.
    pub fn is_disconnect(&self) -> bool {
        match self {
            PgError::Sql(e) | PgError::Migration { source: e, .. } => {
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

/// Counts are unsigned; PostgreSQL's integers are signed 64-bit, so counts beyond are clamped.
fn sat(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
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
fn filter_params(
    f: &crate::model::Filter,
) -> (Option<&str>, Option<i64>, Option<i64>, Option<i64>) {
    (f.domain.as_deref(), f.since, f.until, f.limit.map(sat))
}
