//! The SQLite database: schema migrations, idempotent inserts, kept rejects, and the queries behind the
//! listing commands. The only module that names rusqlite.
//!
//! One writer: the pipeline hands everything to one [`Store`] on one thread, which groups inserts into
//! explicit transactions ([`Store::begin`] / [`Store::commit`]). WAL mode lets readers (a `sources`
//! query in another terminal) run beside it; a second writer waits up to [`BUSY_TIMEOUT`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, ToSql, params};
use sha2::Digest;

mod notify;
pub mod postgres;

pub use notify::{Notified, Pending, ReportSpan};

use crate::model::{
    AggregateReport, DayCount, DomainSummary, Evidence, EvidenceKey, Failure, FailureReport,
    FailureSummary, Filter, Located, PolicyPublished, RejectSummary, ReportSummary, SourceSummary,
    Timestamp, TlsReport, TlsSummary,
};

/// Numbered migrations; `PRAGMA user_version` records how many were applied.
const MIGRATIONS: &[&str] = &[
    include_str!("../schemas/0001_initial.sql"),
    include_str!("../schemas/0002_imap.sql"),
    include_str!("../schemas/0003_failure_tls.sql"),
    include_str!("../schemas/0004_record_auth.sql"),
    include_str!("../schemas/0005_rdns.sql"),
    include_str!("../schemas/0006_dns_checks.sql"),
    include_str!("../schemas/0007_notify.sql"),
];

/// Rows per multi-row INSERT: 64 rows of at most 15 columns stay far below SQLite's variable limit.
const ROWS_PER_INSERT: usize = 64;

/// How long a write waits for another process holding the database.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

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
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// What inserting a report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    New {
        records: usize,
    },
    /// A copy of a stored report with more records (or as many, and more messages) took its place;
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

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
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
        let conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        // Multi-row inserts prepare one statement per (table, row count): room for all of them.
        conn.set_prepared_statement_cache_capacity(4 * ROWS_PER_INSERT + 32);
        set_wal(&conn).map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        // Checkpoint the WAL every 16 MiB rather than every 4 MiB: fewer, larger copies into the
        // database while a big ingest runs.
        conn.pragma_update(None, "wal_autocheckpoint", 4096)
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        let mut store = Store {
            conn,
            path: path.to_owned(),
        };
        store.migrate()?;
        Ok(store)
    }

    /// Opens an existing database for reading only (`dmarc-warden serve`): nothing is created or
    /// migrated, and the connection refuses writes, so it can run beside a `fetch`.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
            | rusqlite::OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        conn.pragma_update(None, "query_only", "ON")
            .map_err(open_err)?;
        let version = schema_version(&conn, path)?;
        if version < MIGRATIONS.len() as i64 {
            return Err(StoreError::TooOld {
                path: path.to_owned(),
                found: version,
                known: MIGRATIONS.len(),
            });
        }
        Ok(Store {
            conn,
            path: path.to_owned(),
        })
    }

    /// Another read-only connection to the same database (for work split over threads).
    pub fn reopen_read_only(&self) -> Result<Store, StoreError> {
        Store::open_read_only(&self.path)
    }

    /// SQLite's `data_version`: changes when another connection has committed since this
    /// connection last asked (the dashboard's cache is dropped then).
    pub fn data_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .pragma_query_value(None, "data_version", |r| r.get(0))?)
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
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version = schema_version(&tx, &self.path)?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Starts a write transaction, taking the write lock at once (`BEGIN IMMEDIATE`).
    pub fn begin(&self) -> Result<(), StoreError> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(())
    }

    pub fn commit(&self) -> Result<(), StoreError> {
        self.conn.execute_batch("COMMIT")?;
        Ok(())
    }

    /// Stores a report with all its records, unless a report with the same org, id and policy domain is
    /// already stored. Of two different copies of one report (a reporter's corrected re-send, or
    /// sample reports that reuse an id), the one with more records, then more messages, is kept,
    /// whatever the order they arrive in: the database does not depend on thread timing or on the
    /// order of inputs. Copies that tie keep the one stored first.
    pub fn insert_report(
        &self,
        origin: &str,
        report: &Located<AggregateReport>,
        now: i64,
    ) -> Result<Inserted, StoreError> {
        let (r, m, p) = (&report.item, &report.item.metadata, &report.item.policy);
        let errors =
            (!m.errors.is_empty()).then(|| serde_json::to_string(&m.errors).unwrap_or_default());
        let mut insert = self.conn.prepare_cached(
            "INSERT INTO reports (org_name, report_id, domain, email, extra_contact_info, date_begin,
                date_end, errors, generator, version, namespace, adkim, aspf, p, sp, np, pct, fo,
                testing, discovery_method, extensions, record_count, message_count, pass_count,
                origin, location, ingested_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
                ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27)
             ON CONFLICT (org_name, report_id, domain) DO NOTHING",
        )?;
        // The copy's size, stored with it and compared with a stored copy's.
        let (record_count, message_count) = (r.records.len() as i64, sat(r.message_count()));
        let values = params![
            m.org_name,
            m.report_id,
            p.domain,
            m.email,
            m.extra_contact_info,
            m.begin,
            m.end,
            errors,
            m.generator,
            r.version,
            r.namespace,
            p.adkim,
            p.aspf,
            p.p,
            p.sp,
            p.np,
            p.pct,
            p.fo,
            p.testing,
            p.discovery_method,
            r.extensions,
            record_count,
            message_count,
            sat(r.pass_count()),
            origin,
            report.location,
            now,
        ];
        // The stored copy's record count, when this copy took its place.
        let mut replaced = None;
        if insert.execute(values)? == 0 {
            let (stored_id, stored_records, stored_messages): (i64, i64, i64) = self
                .conn
                .prepare_cached(
                    "SELECT id, record_count, message_count FROM reports
                     WHERE org_name = ?1 AND report_id = ?2 AND domain = ?3",
                )?
                .query_row(params![m.org_name, m.report_id, p.domain], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })?;
            if (record_count, message_count) <= (stored_records, stored_messages) {
                return Ok(Inserted::Duplicate);
            }
            // Records, their DKIM, SPF and reason rows go with it (ON DELETE CASCADE).
            self.conn
                .prepare_cached("DELETE FROM reports WHERE id = ?1")?
                .execute([stored_id])?;
            insert.execute(values)?;
            replaced = Some(stored_records);
        }
        let report_row = self.conn.last_insert_rowid();
        // Record ids are assigned here rather than by SQLite, so that records and their DKIM, SPF and
        // reason rows can go in as multi-row INSERTs (a few statements per report instead of three per
        // record). Safe: this runs inside our `BEGIN IMMEDIATE`, so no other writer can take ids.
        let first_id: i64 = self
            .conn
            .prepare_cached("SELECT ifnull(max(id), 0) + 1 FROM records")?
            .query_row([], |row| row.get(0))?;
        let ids: Vec<i64> = (first_id..).take(r.records.len()).collect();
        // Positions within a record's lists, as SQL values; as many as the longest list needs.
        let longest = r
            .records
            .iter()
            .map(|c| {
                c.reasons
                    .len()
                    .max(c.dkim_results.len())
                    .max(c.spf_results.len())
            })
            .max()
            .unwrap_or(0);
        let positions: Vec<i64> = (0..longest as i64).collect();
        // Each record's deciding DKIM and SPF results and forwarded flag (schema 0004).
        let auth: Vec<_> = r
            .records
            .iter()
            .map(|rec| {
                let (d, s) = (rec.deciding_dkim(), rec.deciding_spf());
                (
                    d.map(|d| d.domain.as_str()),
                    d.map(|d| d.result.as_str()),
                    s.map(|s| s.domain.as_str()),
                    s.map(|s| s.result.as_str()),
                    rec.forwarded(),
                )
            })
            .collect();
        let mut records: Vec<&dyn ToSql> = Vec::with_capacity(r.records.len() * 15);
        let mut reasons: Vec<&dyn ToSql> = Vec::new();
        let mut dkims: Vec<&dyn ToSql> = Vec::with_capacity(r.records.len() * 6);
        let mut spfs: Vec<&dyn ToSql> = Vec::with_capacity(r.records.len() * 5);
        for ((rec, id), a) in r.records.iter().zip(&ids).zip(&auth) {
            records.extend([
                id as &dyn ToSql,
                &report_row,
                &rec.source_ip,
                &rec.count,
                &rec.disposition,
                &rec.dkim,
                &rec.spf,
                &rec.header_from,
                &rec.envelope_from,
                &rec.envelope_to,
                &a.0,
                &a.1,
                &a.2,
                &a.3,
                &a.4,
            ]);
            for (reason, n) in rec.reasons.iter().zip(&positions) {
                reasons.extend([id as &dyn ToSql, n, &reason.kind, &reason.comment]);
            }
            for (d, n) in rec.dkim_results.iter().zip(&positions) {
                dkims.extend([
                    id as &dyn ToSql,
                    n,
                    &d.domain,
                    &d.selector,
                    &d.result,
                    &d.human_result,
                ]);
            }
            for (sp, n) in rec.spf_results.iter().zip(&positions) {
                spfs.extend([id as &dyn ToSql, n, &sp.domain, &sp.scope, &sp.result]);
            }
        }
        self.insert_rows(
            "records (id, report, source_ip, count, disposition, dkim, spf, header_from, \
             envelope_from, envelope_to, auth_dkim_domain, auth_dkim_result, auth_spf_domain, \
             auth_spf_result, forwarded)",
            15,
            &records,
        )?;
        self.insert_rows("record_reasons (record, n, type, comment)", 4, &reasons)?;
        self.insert_rows(
            "record_dkim (record, n, domain, selector, result, human_result)",
            6,
            &dkims,
        )?;
        self.insert_rows("record_spf (record, n, domain, scope, result)", 5, &spfs)?;
        Ok(match replaced {
            Some(before) => Inserted::Replaced {
                records: usize::try_from(record_count - before).unwrap_or(0),
            },
            None => Inserted::New {
                records: r.records.len(),
            },
        })
    }

    /// `INSERT INTO {into} VALUES (…), (…), …` over `values`, `columns` per row, at most [`ROWS_PER_INSERT`]
    /// rows a statement.
    fn insert_rows(
        &self,
        into: &str,
        columns: usize,
        values: &[&dyn ToSql],
    ) -> Result<(), StoreError> {
        let row = format!("({})", vec!["?"; columns].join(", "));
        for chunk in values.chunks(columns * ROWS_PER_INSERT) {
            let rows = vec![row.as_str(); chunk.len() / columns].join(", ");
            let sql = format!("INSERT INTO {into} VALUES {rows}");
            self.conn
                .prepare_cached(&sql)?
                .execute(rusqlite::params_from_iter(chunk))?;
        }
        Ok(())
    }

    /// Keeps a failed input and why it failed. Keeping the same bytes again only updates `last_seen`,
    /// the attempt count and the reasons.
    pub fn keep_reject(&self, input: &RejectedInput<'_>, now: i64) -> Result<(), StoreError> {
        let key = match input.data {
            Some(data) => hex(&sha2::Sha256::digest(data)),
            None => Store::origin_key(input.origin),
        };
        self.conn
            .prepare_cached(
                "INSERT INTO reject_inputs (key, origin, data, size, first_seen, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)
                 ON CONFLICT (key) DO UPDATE SET last_seen = excluded.last_seen,
                    attempts = attempts + 1, origin = excluded.origin",
            )?
            .execute(params![
                key,
                input.origin,
                input.data,
                input.data.map(|d| d.len() as i64),
                now
            ])?;
        self.conn
            .prepare_cached("DELETE FROM rejects WHERE input = ?1")?
            .execute([&key])?;
        let mut add = self
            .conn
            .prepare_cached("INSERT INTO rejects (input, location, reason) VALUES (?1, ?2, ?3)")?;
        for f in input.failures {
            add.execute(params![key, f.location, f.item.reason])?;
        }
        Ok(())
    }

    /// Keys of all kept inputs, oldest first.
    pub fn kept_keys(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT key FROM reject_inputs ORDER BY first_seen, key")?;
        let keys = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(keys)
    }

    pub fn kept_input(&self, key: &str) -> Result<Option<KeptInput>, StoreError> {
        let kept = self
            .conn
            .query_row(
                "SELECT key, origin, data FROM reject_inputs WHERE key = ?1",
                [key],
                |r| {
                    Ok(KeptInput {
                        key: r.get(0)?,
                        origin: r.get(1)?,
                        data: r.get(2)?,
                    })
                },
            )
            .optional()?;
        Ok(kept)
    }

    /// Forgets a kept input (it was reprocessed successfully, or re-kept under a new key).
    /// The key of a reject kept without its bytes (too large, or unreadable), by its origin.
    pub fn origin_key(origin: &str) -> String {
        format!("origin:{origin}")
    }

    pub fn forget_reject(&self, key: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("DELETE FROM reject_inputs WHERE key = ?1")?
            .execute([key])?;
        Ok(())
    }

    /// Stores one failure report unless one with the same key is stored.
    pub fn insert_failure(
        &self,
        origin: &str,
        report: &Located<FailureReport>,
        now: i64,
    ) -> Result<Inserted, StoreError> {
        let r = &report.item;
        let o = r.original.as_ref();
        let inserted = self
            .conn
            .prepare_cached(
                "INSERT INTO failure_reports (key, feedback_type, reporter, report_id, user_agent,
                    version, auth_failure, arrival_date, arrival_date_text, source_ip,
                    reported_domain, reported_domains, reported_uris, original_mail_from,
                    original_rcpt_to, authentication_results, dkim_domain, dkim_identity,
                    dkim_selector, spf_dns, delivery_result, identity_alignment, incidents,
                    other_fields, original_from, original_to, original_subject, original_date,
                    original_message_id, original_auth_headers, original_body, origin, location,
                    ingested_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                    ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31,
                    ?32, ?33, ?34)
                 ON CONFLICT (key) DO NOTHING",
            )?
            .execute(params![
                r.key,
                r.feedback_type,
                r.reporter,
                r.report_id,
                r.user_agent,
                r.version,
                r.auth_failure,
                r.arrival_date,
                r.arrival_date_text,
                r.source_ip,
                r.reported_domains.first(),
                json(&r.reported_domains),
                json(&r.reported_uris),
                r.original_mail_from,
                json(&r.original_rcpt_to),
                json(&r.authentication_results),
                r.dkim_domain,
                r.dkim_identity,
                r.dkim_selector,
                r.spf_dns,
                r.delivery_result,
                r.identity_alignment,
                r.incidents.map(sat),
                json(&r.other_fields),
                o.and_then(|o| o.from.as_deref()),
                o.and_then(|o| o.to.as_deref()),
                o.and_then(|o| o.subject.as_deref()),
                o.and_then(|o| o.date.as_deref()),
                o.and_then(|o| o.message_id.as_deref()),
                o.map(|o| json(&o.auth_headers)),
                o.and_then(|o| o.body.as_deref()),
                origin,
                report.location,
                now,
            ])?;
        Ok(if inserted == 0 {
            Inserted::Duplicate
        } else {
            Inserted::New { records: 0 }
        })
    }

    /// Stores one SMTP TLS report, its policies and failure details, unless (organisation, report
    /// id) is stored.
    pub fn insert_tls(
        &self,
        origin: &str,
        report: &Located<TlsReport>,
        now: i64,
    ) -> Result<Inserted, StoreError> {
        let r = &report.item;
        let inserted = self
            .conn
            .prepare_cached(
                "INSERT INTO tls_reports (org_name, report_id, contact_info, date_begin, date_end,
                    origin, location, ingested_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (org_name, report_id) DO NOTHING",
            )?
            .execute(params![
                r.org_name,
                r.report_id,
                r.contact_info,
                r.begin,
                r.end,
                origin,
                report.location,
                now
            ])?;
        if inserted == 0 {
            return Ok(Inserted::Duplicate);
        }
        let id = self.conn.last_insert_rowid();
        let mut policy_stmt = self.conn.prepare_cached(
            "INSERT INTO tls_policies (report, n, policy_type, policy_domain, policy_strings,
                mx_hosts, successful, failed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        let mut failure_stmt = self.conn.prepare_cached(
            "INSERT INTO tls_failures (report, policy, n, result_type, sending_mta_ip,
                receiving_mx_hostname, receiving_mx_helo, receiving_ip, failed_sessions,
                additional_information, failure_reason_code)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        for (n, p) in r.policies.iter().enumerate() {
            policy_stmt.execute(params![
                id,
                n as i64,
                p.policy_type,
                p.policy_domain,
                json(&p.policy_strings),
                json(&p.mx_hosts),
                sat(p.successful_sessions),
                sat(p.failed_sessions),
            ])?;
            for (m, f) in p.failures.iter().enumerate() {
                failure_stmt.execute(params![
                    id,
                    n as i64,
                    m as i64,
                    f.result_type,
                    f.sending_mta_ip,
                    f.receiving_mx_hostname,
                    f.receiving_mx_helo,
                    f.receiving_ip,
                    sat(f.failed_sessions),
                    f.additional_information,
                    f.failure_reason_code,
                ])?;
            }
        }
        Ok(Inserted::New {
            records: r.policies.len(),
        })
    }

    /// The remembered `(uidvalidity, last_uid)` of an IMAP folder.
    pub fn imap_folder(
        &self,
        account: &str,
        folder: &str,
    ) -> Result<Option<(u32, u32)>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT uidvalidity, last_uid FROM imap_folders WHERE account = ?1 AND folder = ?2",
            )?
            .query_row((account, folder), |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    /// Remembers an IMAP folder's state; part of the caller's transaction.
    pub fn set_imap_folder(
        &self,
        account: &str,
        folder: &str,
        uidvalidity: u32,
        last_uid: u32,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO imap_folders (account, folder, uidvalidity, last_uid) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (account, folder) DO UPDATE
                 SET uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid",
            )?
            .execute((account, folder, uidvalidity, last_uid))?;
        Ok(())
    }

    /// Records that a message is to be moved once this transaction commits.
    pub fn add_pending_move(
        &self,
        account: &str,
        folder: &str,
        uidvalidity: u32,
        uid: u32,
        destination: &str,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO imap_pending_moves (account, folder, uidvalidity, uid, destination)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute((account, folder, uidvalidity, uid, destination))?;
        Ok(())
    }

    /// Moves recorded but not yet confirmed, as `(uid, destination)` in UID order. Those of another
    /// UIDVALIDITY are dropped: their UIDs no longer name the same messages.
    pub fn pending_moves(
        &self,
        account: &str,
        folder: &str,
        uidvalidity: u32,
    ) -> Result<Vec<(u32, String)>, StoreError> {
        self.conn
            .prepare_cached(
                "DELETE FROM imap_pending_moves WHERE account = ?1 AND folder = ?2 AND uidvalidity != ?3",
            )?
            .execute((account, folder, uidvalidity))?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT uid, destination FROM imap_pending_moves
             WHERE account = ?1 AND folder = ?2 AND uidvalidity = ?3 ORDER BY uid",
        )?;
        let rows = stmt.query_map((account, folder, uidvalidity), |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Forgets pending moves the server has confirmed.
    pub fn clear_pending_moves(
        &self,
        account: &str,
        folder: &str,
        uidvalidity: u32,
        uids: &[u32],
    ) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "DELETE FROM imap_pending_moves
             WHERE account = ?1 AND folder = ?2 AND uidvalidity = ?3 AND uid = ?4",
        )?;
        for uid in uids {
            stmt.execute((account, folder, uidvalidity, uid))?;
        }
        Ok(())
    }

    pub fn domains(&self, f: &Filter) -> Result<Vec<DomainSummary>, StoreError> {
        let mut stmt = self.conn.prepare(
            // Totals in one pass; then each domain's latest report in the filter by one lookup
            // on the (domain, date_end) index (not by ranking every report).
            "WITH g AS (SELECT domain, COUNT(*) AS n, SUM(message_count) AS m, SUM(pass_count) AS pc,
                    MIN(date_begin) AS b, MAX(date_end) AS e
                  FROM reports WHERE (?1 IS NULL OR domain = ?1)
                    AND (?2 IS NULL OR date_end >= ?2) AND (?3 IS NULL OR date_begin < ?3)
                  GROUP BY domain)
             SELECT g.domain, g.n, g.m, g.pc, g.b, g.e, l.p, l.sp, l.pct
             FROM g JOIN reports l ON l.id =
                (SELECT id FROM reports r2 WHERE r2.domain = g.domain
                    AND (?2 IS NULL OR r2.date_end >= ?2) AND (?3 IS NULL OR r2.date_begin < ?3)
                 ORDER BY date_end DESC, id DESC LIMIT 1)
             ORDER BY g.m DESC, g.domain LIMIT ?4",
        )?;
        let rows = stmt.query_map(filter_params(f), |r| {
            let messages: u64 = r.get(2)?;
            let pass: u64 = r.get(3)?;
            Ok(DomainSummary {
                domain: r.get(0)?,
                reports: r.get(1)?,
                messages,
                dmarc_pass: pass,
                dmarc_pass_pct: crate::analyse::percent(pass, messages),
                first: r.get::<_, Option<i64>>(4)?.map(Timestamp),
                last: r.get::<_, Option<i64>>(5)?.map(Timestamp),
                p: r.get(6)?,
                sp: r.get(7)?,
                pct: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn sources(&self, f: &Filter) -> Result<Vec<SourceSummary>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT r.domain, c.source_ip, c.header_from, SUM(c.count),
                SUM(CASE WHEN c.dkim = 'pass' OR c.spf = 'pass' THEN c.count ELSE 0 END),
                SUM(CASE WHEN c.dkim = 'pass' THEN c.count ELSE 0 END),
                SUM(CASE WHEN c.spf = 'pass' THEN c.count ELSE 0 END),
                SUM(CASE WHEN c.disposition = 'quarantine' THEN c.count ELSE 0 END),
                SUM(CASE WHEN c.disposition = 'reject' THEN c.count ELSE 0 END),
                COUNT(DISTINCT r.id),
                (SELECT COUNT(*) FROM failure_reports f
                 WHERE f.source_ip = c.source_ip AND f.reported_domain = r.domain)
             FROM records c JOIN reports r ON r.id = c.report
             WHERE (?1 IS NULL OR r.domain = ?1) AND (?2 IS NULL OR r.date_end >= ?2)
                AND (?3 IS NULL OR r.date_begin < ?3)
             GROUP BY r.domain, c.source_ip, c.header_from
             ORDER BY SUM(c.count) DESC, r.domain, c.source_ip LIMIT ?4",
        )?;
        let rows = stmt.query_map(filter_params(f), |r| {
            Ok(SourceSummary {
                domain: r.get(0)?,
                source_ip: r.get(1)?,
                header_from: r.get(2)?,
                messages: r.get(3)?,
                dmarc_pass: r.get(4)?,
                dkim_aligned: r.get(5)?,
                spf_aligned: r.get(6)?,
                quarantined: r.get(7)?,
                rejected: r.get(8)?,
                reports: r.get(9)?,
                failure_reports: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Aggregate records summed by what they say about the sender ([`EvidenceKey`]), for reports
    /// ending on or after `since`.
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
        Ok(self.evidence_in(domain, since, until, false)?.0)
    }

    /// [`Store::evidence_between`]; with `by_day`, also how many messages of each evidence row came
    /// in reports beginning on each day (the web's charts).
    pub fn evidence_in(
        &self,
        domain: Option<&str>,
        since: Option<i64>,
        until: Option<i64>,
        by_day: bool,
    ) -> Result<(Vec<Evidence>, Vec<DayCount>), StoreError> {
        // Conditions are spelled out only when given: `?1 IS NULL OR …` would keep SQLite from the
        // (domain, date_end) index and scan every record. CROSS JOIN keeps reports first.
        let conditions = [
            if domain.is_some() {
                "r.domain = ?1"
            } else {
                "?1 IS NULL"
            },
            if since.is_some() {
                "r.date_end >= ?2"
            } else {
                "?2 IS NULL"
            },
            if until.is_some() {
                "r.date_end < ?3"
            } else {
                "?3 IS NULL"
            },
        ];
        let mut stmt = self.conn.prepare(&format!(
            "SELECT r.domain, c.source_ip, coalesce(c.header_from, ''),
                coalesce(c.auth_dkim_domain, ''), coalesce(c.auth_dkim_result, ''),
                coalesce(c.auth_spf_domain, c.envelope_from, ''), coalesce(c.auth_spf_result, ''),
                coalesce(c.dkim = 'pass', 0), coalesce(c.spf = 'pass', 0),
                coalesce(c.disposition, 'none'), c.forwarded,
                r.org_name, r.date_begin, r.date_end, c.count
             FROM reports r CROSS JOIN records c ON c.report = r.id
             WHERE {}",
            conditions.join(" AND ")
        ))?;
        let mut rows = stmt.query((domain, since, until))?;
        let mut daily: HashMap<(usize, i64), u64> = HashMap::new();
        // Rows are summed by their first 11 columns. The lookup key is those columns' bytes in a
        // reused buffer, so a row like one seen before allocates nothing.
        let mut index: std::collections::HashMap<Vec<u8>, usize> = std::collections::HashMap::new();
        let mut out: Vec<Evidence> = Vec::new();
        let mut buf = Vec::new();
        while let Some(r) = rows.next()? {
            buf.clear();
            for i in 0..11 {
                match r.get_ref(i)? {
                    rusqlite::types::ValueRef::Text(t) => buf.extend_from_slice(t),
                    rusqlite::types::ValueRef::Integer(n) => {
                        buf.extend_from_slice(&n.to_le_bytes())
                    }
                    _ => {}
                }
                buf.push(0x1f);
            }
            let at = match index.get(buf.as_slice()) {
                Some(at) => *at,
                None => {
                    let key = EvidenceKey {
                        domain: r.get(0)?,
                        source_ip: r.get(1)?,
                        header_from: r.get::<_, String>(2)?.to_ascii_lowercase(),
                        dkim_domain: r.get::<_, String>(3)?.to_ascii_lowercase(),
                        dkim_result: r.get(4)?,
                        spf_domain: r.get::<_, String>(5)?.to_ascii_lowercase(),
                        spf_result: r.get(6)?,
                        dkim_aligned: r.get(7)?,
                        spf_aligned: r.get(8)?,
                        disposition: r.get(9)?,
                        forwarded: r.get(10)?,
                    };
                    out.push(Evidence {
                        key,
                        ..Evidence::default()
                    });
                    index.insert(buf.clone(), out.len() - 1);
                    out.len() - 1
                }
            };
            let e = &mut out[at];
            let reporter = r.get_ref(11)?.as_str().unwrap_or_default();
            if !e.reporters.contains(reporter) {
                e.reporters.insert(reporter.to_owned());
            }
            let begin: Option<i64> = r.get(12)?;
            let end: Option<i64> = r.get(13)?;
            let count: u64 = r.get(14)?;
            e.messages = e.messages.saturating_add(count);
            e.first = crate::analyse::min_opt(e.first, begin);
            e.last = e.last.max(end);
            if let Some(b) = begin {
                e.days.insert(b.div_euclid(86_400));
                if by_day {
                    *daily.entry((at, b.div_euclid(86_400))).or_default() += count;
                }
            }
        }
        // Sorted by key; the day counts follow their rows to their new places.
        let mut order: Vec<usize> = (0..out.len()).collect();
        order.sort_by(|&a, &b| out[a].key.cmp(&out[b].key));
        let mut place = vec![0; out.len()];
        for (new, &old) in order.iter().enumerate() {
            place[old] = new;
        }
        let mut slots: Vec<Option<Evidence>> = out.into_iter().map(Some).collect();
        let out: Vec<Evidence> = order.iter().filter_map(|&i| slots[i].take()).collect();
        let mut days: Vec<DayCount> = daily
            .into_iter()
            .map(|((at, day), messages)| DayCount {
                evidence: place[at],
                day,
                messages,
            })
            .collect();
        days.sort_unstable_by_key(|d| (d.day, d.evidence));
        Ok((out, days))
    }

    /// Cached reverse DNS names of `ips` looked up since `fresh_since`: `Some(None)` for a cached
    /// "no name"; absent when not cached or stale.
    pub fn rdns(
        &self,
        ips: &[String],
        fresh_since: i64,
    ) -> Result<HashMap<String, Option<String>>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name FROM rdns_cache WHERE ip = ?1 AND looked_up_at >= ?2")?;
        let mut out = HashMap::new();
        for ip in ips {
            if let Some(name) = stmt
                .query_row((ip, fresh_since), |r| r.get::<_, Option<String>>(0))
                .optional()?
            {
                out.insert(ip.clone(), name);
            }
        }
        Ok(out)
    }

    /// Caches reverse DNS answers.
    pub fn set_rdns(
        &self,
        answers: &HashMap<String, Option<String>>,
        now: i64,
    ) -> Result<(), StoreError> {
        self.begin()?;
        {
            let mut stmt = self.conn.prepare_cached(
                "INSERT OR REPLACE INTO rdns_cache (ip, name, looked_up_at) VALUES (?1, ?2, ?3)",
            )?;
            for (ip, name) in answers {
                stmt.execute((ip, name, now))?;
            }
        }
        self.commit()
    }

    /// Per policy domain, the policy of its latest report and that report's end.
    pub fn latest_policies(
        &self,
        domain: Option<&str>,
    ) -> Result<Vec<(PolicyPublished, Option<i64>)>, StoreError> {
        let mut stmt = self.conn.prepare(
            // One lookup per domain (not per report) on the (domain, date_end) index.
            "SELECT r.domain, r.adkim, r.aspf, r.p, r.sp, r.np, r.pct, r.fo, r.testing,
                r.discovery_method, r.date_end
             FROM (SELECT DISTINCT domain FROM reports WHERE (?1 IS NULL OR domain = ?1)) d
             JOIN reports r ON r.id = (SELECT id FROM reports r2 WHERE r2.domain = d.domain
                                      ORDER BY date_end DESC, id DESC LIMIT 1)
             ORDER BY d.domain",
        )?;
        let rows = stmt.query_map([domain], |r| {
            Ok((
                PolicyPublished {
                    domain: r.get(0)?,
                    adkim: r.get(1)?,
                    aspf: r.get(2)?,
                    p: r.get(3)?,
                    sp: r.get(4)?,
                    np: r.get(5)?,
                    pct: r.get(6)?,
                    fo: r.get(7)?,
                    testing: r.get(8)?,
                    discovery_method: r.get(9)?,
                },
                r.get(10)?,
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Failure reports, newest arrival first; `source_ip` narrows to one sender.
    pub fn failures(
        &self,
        f: &Filter,
        source_ip: Option<&str>,
    ) -> Result<Vec<FailureSummary>, StoreError> {
        let (domain, since, until, limit) = filter_params(f);
        let mut stmt = self.conn.prepare(
            "SELECT arrival_date, feedback_type, reported_domain, source_ip, auth_failure,
                delivery_result, original_mail_from, original_from, original_subject, reporter
             FROM failure_reports
             WHERE (?1 IS NULL OR reported_domain = ?1) AND (?2 IS NULL OR arrival_date >= ?2)
                AND (?3 IS NULL OR arrival_date < ?3) AND (?5 IS NULL OR source_ip = ?5)
             ORDER BY arrival_date DESC, id DESC LIMIT ?4",
        )?;
        let rows = stmt.query_map(params![domain, since, until, limit, source_ip], |r| {
            Ok(FailureSummary {
                arrival_date: r.get::<_, Option<i64>>(0)?.map(Timestamp),
                feedback_type: r.get(1)?,
                reported_domain: r.get(2)?,
                source_ip: r.get(3)?,
                auth_failure: r.get(4)?,
                delivery_result: r.get(5)?,
                original_mail_from: r.get(6)?,
                original_from: r.get(7)?,
                original_subject: r.get(8)?,
                reporter: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// SMTP TLS results per policy domain and MX host pattern, most failed sessions first.
    pub fn tls(&self, f: &Filter) -> Result<Vec<TlsSummary>, StoreError> {
        const WHERE: &str =
            "(?1 IS NULL OR p.policy_domain = ?1) AND (?2 IS NULL OR t.date_end >= ?2)
                AND (?3 IS NULL OR t.date_begin < ?3)";
        let mut failures: std::collections::HashMap<(String, String), Vec<(String, u64)>> =
            std::collections::HashMap::new();
        let (domain, since, until, limit) = filter_params(f);
        {
            let mut stmt = self.conn.prepare(&format!(
                "SELECT p.policy_domain, p.mx_hosts, x.result_type, SUM(x.failed_sessions)
                 FROM tls_failures x
                 JOIN tls_policies p ON p.report = x.report AND p.n = x.policy
                 JOIN tls_reports t ON t.id = p.report
                 WHERE {WHERE}
                 GROUP BY p.policy_domain, p.mx_hosts, x.result_type
                 ORDER BY SUM(x.failed_sessions) DESC, x.result_type"
            ))?;
            let rows = stmt.query_map(params![domain, since, until], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
            for row in rows {
                let (d, mx, kind, n): (String, String, String, u64) = row?;
                failures.entry((d, mx)).or_default().push((kind, n));
            }
        }
        let mut stmt = self.conn.prepare(&format!(
            "SELECT p.policy_domain, p.mx_hosts, group_concat(DISTINCT p.policy_type),
                SUM(p.successful), SUM(p.failed), group_concat(DISTINCT t.org_name),
                COUNT(DISTINCT t.id)
             FROM tls_policies p JOIN tls_reports t ON t.id = p.report
             WHERE {WHERE}
             GROUP BY p.policy_domain, p.mx_hosts
             ORDER BY SUM(p.failed) DESC, p.policy_domain LIMIT ?4"
        ))?;
        let rows = stmt.query_map(params![domain, since, until, limit], |r| {
            let domain: String = r.get(0)?;
            let mx_json: String = r.get(1)?;
            let successful: u64 = r.get(3)?;
            let failed: u64 = r.get(4)?;
            let top = failures
                .get(&(domain.clone(), mx_json.clone()))
                .map(|kinds| {
                    kinds
                        .iter()
                        .take(3)
                        .map(|(k, n)| format!("{k}: {n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            let mx: Vec<String> = serde_json::from_str(&mx_json).unwrap_or_default();
            Ok(TlsSummary {
                domain,
                mx_hosts: mx.join(", "),
                policy_types: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                successful_sessions: successful,
                failed_sessions: failed,
                failure_pct: crate::analyse::percent(failed, successful.saturating_add(failed)),
                top_failures: top,
                reporters: r
                    .get::<_, Option<String>>(5)?
                    .unwrap_or_default()
                    .replace(',', ", "),
                reports: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn reports(&self, f: &Filter) -> Result<Vec<ReportSummary>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT org_name, report_id, domain, date_begin, date_end, record_count, message_count,
                pass_count, p, origin
             FROM reports WHERE (?1 IS NULL OR domain = ?1) AND (?2 IS NULL OR date_end >= ?2)
                AND (?3 IS NULL OR date_begin < ?3)
             ORDER BY date_begin, org_name, report_id LIMIT ?4",
        )?;
        let rows = stmt.query_map(filter_params(f), |r| {
            Ok(ReportSummary {
                org_name: r.get(0)?,
                report_id: r.get(1)?,
                domain: r.get(2)?,
                begin: r.get::<_, Option<i64>>(3)?.map(Timestamp),
                end: r.get::<_, Option<i64>>(4)?.map(Timestamp),
                records: r.get(5)?,
                messages: r.get(6)?,
                dmarc_pass: r.get(7)?,
                p: r.get(8)?,
                origin: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn rejects(&self) -> Result<Vec<RejectSummary>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT r.id, i.origin, r.location, r.reason, i.size, i.first_seen, i.last_seen, i.attempts
             FROM rejects r JOIN reject_inputs i ON i.key = r.input
             ORDER BY i.first_seen, r.id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(RejectSummary {
                id: r.get(0)?,
                origin: r.get(1)?,
                location: r.get(2)?,
                reason: r.get(3)?,
                size: r.get(4)?,
                first_seen: Timestamp(r.get(5)?),
                last_seen: Timestamp(r.get(6)?),
                attempts: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// SQLite integers are signed 64-bit; counts beyond that are clamped rather than wrapped.
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

fn sat(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn filter_params(f: &Filter) -> (Option<&str>, Option<i64>, Option<i64>, i64) {
    (
        f.domain.as_deref(),
        f.since,
        f.until,
        f.limit.map_or(-1, sat),
    )
}

/// A list as the JSON text stored in list columns.
fn json<T: serde::Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `check`: the facts it needs from stored reports, and its results.
impl Store {
    /// DKIM selectors that reports show signing with `domain` itself (d= equal to it), with the
    /// first and last report periods they appear in.
    pub fn dkim_selectors(
        &self,
        domain: &str,
    ) -> Result<Vec<crate::analyse::check::SelectorSeen>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT lower(d.selector), min(r.date_begin), max(r.date_end)
             FROM reports r CROSS JOIN records c ON c.report = r.id
                  CROSS JOIN record_dkim d ON d.record = c.id
             WHERE r.domain = ?1 AND lower(d.domain) = ?1
               AND d.selector IS NOT NULL AND d.selector != ''
             GROUP BY lower(d.selector) ORDER BY 1",
        )?;
        let rows = stmt.query_map([domain], |r| {
            Ok(crate::analyse::check::SelectorSeen {
                selector: r.get(0)?,
                first: r.get(1)?,
                last: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// SMTP TLS reports stored for `domain`, and the end of the latest.
    pub fn tls_report_count(&self, domain: &str) -> Result<(u64, Option<i64>), StoreError> {
        Ok(self.conn.query_row(
            "SELECT count(DISTINCT p.report), max(t.date_end)
             FROM tls_policies p JOIN tls_reports t ON t.id = p.report
             WHERE p.policy_domain = ?1",
            [domain],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }

    /// Keeps the result of checking one domain.
    pub fn save_check(&self, check: &crate::analyse::check::DomainCheck) -> Result<(), StoreError> {
        use crate::analyse::check::Severity;
        let json = |v: serde_json::Result<String>| v.unwrap_or_else(|_| "null".into());
        self.conn.execute(
            "INSERT INTO dns_checks (domain, checked_at, worst, errors, warnings, published, findings)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            (
                &check.domain,
                check.checked_at.0,
                check.worst().as_str(),
                check.count(Severity::Error),
                check.count(Severity::Warning),
                json(serde_json::to_string(&check.published)),
                json(serde_json::to_string(&check.findings)),
            ),
        )?;
        Ok(())
    }

    /// The latest check of each domain (or of `domain`), by domain.
    pub fn last_checks(
        &self,
        domain: Option<&str>,
    ) -> Result<Vec<crate::analyse::check::DomainCheck>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT domain, checked_at, published, findings FROM dns_checks c
             WHERE (?1 IS NULL OR domain = ?1)
               AND id = (SELECT id FROM dns_checks c2 WHERE c2.domain = c.domain
                         ORDER BY checked_at DESC, id DESC LIMIT 1)
             ORDER BY domain",
        )?;
        let rows = stmt.query_map([domain], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (domain, at, published, findings) = row?;
            // A row this version cannot read (written by a newer one) is skipped, not fatal.
            if let (Ok(published), Ok(findings)) = (
                serde_json::from_str(&published),
                serde_json::from_str(&findings),
            ) {
                out.push(crate::analyse::check::DomainCheck {
                    domain,
                    checked_at: Timestamp(at),
                    published,
                    findings,
                });
            }
        }
        Ok(out)
    }
}
