//! Storing parsed reports: aggregate reports with their records (a block a report, multi-row
//! inserts; the more complete copy wins), failure reports and SMTP TLS reports.
//!
//! The INSERTs of a unit of work's reports, record blocks and rollup parts say `OR FAIL`, for want
//! of a statement journal. A statement that writes several B-trees (a row and its index entries, or
//! several rows) and may stop at a constraint with SQLite's default `ABORT`, which undoes that
//! statement alone, keeps one: a copy of every page it changes that the transaction had changed
//! already, 16 KiB each, spilled to a temporary file past 64 KiB. `FAIL` keeps what the statement
//! did before the failure, so it needs none; and nothing is kept anyway: a failed statement fails
//! its unit of work, which is rolled back whole (and a single row's constraints are all checked
//! before any of its B-trees is written). Issue 21: over 5,000 mixed reports the reports' and
//! rollup parts' INSERTs wrote 13.8 MB to such files in 1,604 `pwrite`s (102 with `OR FAIL`); CPU
//! of `ingest` 0.545 → 0.530 s (mixed), 0.441 → 0.437 s (large), 13 interleaved runs.

use std::sync::OnceLock;

use rusqlite::params;

use super::raw::{Insert, Value};
use super::{ROWS_PER_INSERT, Tx, json};
use crate::model::{AggregateReport, FailureReport, Located, TlsReport};
use crate::store::blocks::Block;
use crate::store::{Completeness, Inserted, StoreError, sat};

/// A report stored in this batch, whose records are still to be written: its row, the report, and
/// its records' block if encoded already.
type Stored<'a> = (i64, &'a AggregateReport, Option<&'a Block>);

/// A multi-row `INSERT INTO {into} VALUES (…), (…), …` of `columns` values a row; its SQL for
/// each number of rows up to [`ROWS_PER_INSERT`] (a power of two) is built once.
struct Rows {
    into: &'static str,
    columns: usize,
    sql: OnceLock<Vec<String>>,
}

impl Rows {
    const fn new(into: &'static str, columns: usize) -> Rows {
        Rows {
            into,
            columns,
            sql: OnceLock::new(),
        }
    }

    /// The statement for `rows` rows, a power of two up to [`ROWS_PER_INSERT`].
    fn sql(&self, rows: usize) -> &str {
        let all = self.sql.get_or_init(|| {
            let row = format!("({})", vec!["?"; self.columns].join(", "));
            (0..=ROWS_PER_INSERT.ilog2())
                .map(|k| {
                    let rows = vec![row.as_str(); 1 << k].join(", ");
                    format!("INSERT OR FAIL INTO {} VALUES {rows}", self.into)
                })
                .collect()
        });
        &all[rows.ilog2() as usize]
    }
}

const _: () = assert!(ROWS_PER_INSERT.is_power_of_two());

/// One report's row; `?27` is the time it is stored.
const INSERT_REPORT: &str = "INSERT OR FAIL INTO reports (org_name, report_id, domain, email,
        extra_contact_info, date_begin, date_end, errors, generator, version, namespace, adkim,
        aspf, p, sp, np, pct, fo, testing, discovery_method, extensions, record_count,
        message_count, pass_count, origin, location, ingested_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,
        ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27)
     ON CONFLICT (org_name, report_id, domain) DO NOTHING";

static BLOCKS: Rows = Rows::new("record_blocks (report, data)", 2);

impl Tx<'_> {
    /// [`crate::store::Tx::insert_report`]: `INSERT … ON CONFLICT DO NOTHING`; when a copy is stored
    /// already, the more complete of the two stays ([`Completeness`]).
    pub fn insert_report(
        &mut self,
        origin: &str,
        report: &Located<AggregateReport>,
        now: i64,
    ) -> Result<Inserted, StoreError> {
        Ok(self
            .insert_reports(&[(origin, report)], None, now)?
            .remove(0))
    }

    /// [`crate::store::Tx::insert_reports`]: each report as [`Self::insert_report`] has it, in
    /// order; then the records of all that were stored, a block a report
    /// ([`Self::insert_records`]). `blocks`, when given, holds each report's block encoded
    /// already (in the order of `reports`); otherwise they are encoded here. A report given with
    /// its block may come without its records (freed on the parsing thread once encoded, so that
    /// a batch waiting for the writer holds its blocks only): its count, totals and rollup sums
    /// are then its block's.
    pub fn insert_reports(
        &mut self,
        reports: &[(&str, &Located<AggregateReport>)],
        blocks: Option<&[&Block]>,
        now: i64,
    ) -> Result<Vec<Inserted>, StoreError> {
        let mut outcomes = Vec::with_capacity(reports.len());
        // The reports stored, with their row and their block (if given), whose records
        // are still to be written.
        let mut stored: Vec<Stored<'_>> = Vec::with_capacity(reports.len());
        // `OR FAIL`: no statement journal (the module's docs); a copy stored already is no
        // failure (`DO NOTHING`). Bound in place ([`Insert`]), prepared once a unit of work.
        let mut cached = self.report_insert.borrow_mut();
        let insert = match &mut *cached {
            Some(insert) => insert,
            empty => empty.insert(Insert::prepare(self.conn, INSERT_REPORT)?),
        };
        for (i, (origin, report)) in reports.iter().enumerate() {
            // A report whose records were freed once encoded ([`Self::insert_reports`]) has its
            // block only; one that still holds them has a block of as many.
            let block = blocks
                .and_then(|b| b.get(i))
                .filter(|b| report.item.records.is_empty() || b.len() == report.item.records.len());
            let (r, m, p) = (&report.item, &report.item.metadata, &report.item.policy);
            let record_count = block.map_or(r.records.len(), |b| b.len());
            let errors = (!m.errors.is_empty())
                .then(|| serde_json::to_string(&m.errors).unwrap_or_default());
            // The copy's size, stored with it and compared with a stored copy's.
            let totals = block.and_then(|b| b.totals()).unwrap_or_else(|| r.totals());
            let this = Completeness {
                records: record_count as i64,
                messages: sat(totals.messages),
                passed: sat(totals.passed),
                end: m.end,
                begin: m.begin,
            };
            let values: [Value<'_>; 27] = [
                m.org_name.as_str().into(),
                m.report_id.as_str().into(),
                p.domain.as_str().into(),
                m.email.as_deref().into(),
                m.extra_contact_info.as_deref().into(),
                m.begin.into(),
                m.end.into(),
                errors.as_deref().into(),
                m.generator.as_deref().into(),
                r.version.as_deref().into(),
                r.namespace.as_deref().into(),
                p.adkim.as_deref().into(),
                p.aspf.as_deref().into(),
                p.p.as_deref().into(),
                p.sp.as_deref().into(),
                p.np.as_deref().into(),
                p.pct.map(i64::from).into(),
                p.fo.as_deref().into(),
                p.testing.as_deref().into(),
                p.discovery_method.as_deref().into(),
                r.extensions.as_deref().into(),
                this.records.into(),
                this.messages.into(),
                this.passed.into(),
                (*origin).into(),
                report.location.as_str().into(),
                now.into(),
            ];
            // The stored copy's record count, when this copy took its place.
            let mut replaced = None;
            if insert.run(&values)? == 0 {
                let (stored_id, kept): (i64, Completeness) = self
                    .tx
                    .prepare_cached(
                        "SELECT id, record_count, message_count, pass_count, date_end, date_begin
                         FROM reports WHERE org_name = ?1 AND report_id = ?2 AND domain = ?3",
                    )?
                    .query_row(params![m.org_name, m.report_id, p.domain], |row| {
                        Ok((
                            row.get(0)?,
                            Completeness {
                                records: row.get(1)?,
                                messages: row.get(2)?,
                                passed: row.get(3)?,
                                end: row.get(4)?,
                                begin: row.get(5)?,
                            },
                        ))
                    })?;
                if this <= kept {
                    outcomes.push(Inserted::Duplicate);
                    continue;
                }
                let stored_records = kept.records;
                self.forget_day(&p.domain, kept.end);
                // Its records go with it (no foreign key cascades: schemas/0010_record_lists.sql);
                // a copy stored earlier in this batch has none yet, and none are written for it.
                self.tx
                    .prepare_cached("DELETE FROM record_blocks WHERE report = ?1")?
                    .execute([stored_id])?;
                self.tx
                    .prepare_cached("DELETE FROM reports WHERE id = ?1")?
                    .execute([stored_id])?;
                stored.retain(|(row, _, _)| *row != stored_id);
                insert.run(&values)?;
                replaced = Some(stored_records);
            }
            stored.push((self.tx.last_insert_rowid(), r, block.copied()));
            outcomes.push(match replaced {
                Some(before) => Inserted::Replaced {
                    records: usize::try_from(this.records - before).unwrap_or(0),
                },
                None => Inserted::New {
                    records: record_count,
                },
            });
        }
        drop(cached);
        self.insert_records(&stored)?;
        self.roll_up(&stored);
        Ok(outcomes)
    }

    /// Writes the records of `reports`, each report's as one block ([`blocks`]): as given, or
    /// encoded here; [`ROWS_PER_INSERT`] blocks a statement. A report without records has none.
    fn insert_records(&self, reports: &[Stored<'_>]) -> Result<(), StoreError> {
        // Blocks encoded here, for the reports that came without one.
        let encoded: Vec<Block> = (reports.iter())
            .filter(|(_, r, b)| b.is_none() && !r.records.is_empty())
            .map(|(_, r, _)| Block::of(r))
            .collect();
        let mut encoded = encoded.iter();
        let blocks: Vec<(i64, &Block)> = (reports.iter())
            .filter(|(_, r, b)| b.map_or(!r.records.is_empty(), |b| !b.is_empty()))
            .filter_map(|(row, _, b)| Some((*row, b.or_else(|| encoded.next())?)))
            .collect();
        // The statements of 1, 2, 4, … rows, prepared when first needed in the unit of work
        // (once for its several batches), bound in place.
        let mut statements = self.inserts.borrow_mut();
        if statements.is_empty() {
            statements.extend((0..=ROWS_PER_INSERT.ilog2()).map(|_| None));
        }
        let mut rest = &blocks[..];
        while !rest.is_empty() {
            // Statements of a power of two rows only (a tail of 13 goes as 8 + 4 + 1): each
            // statement compiled is one of a few, not one for every length a batch may have.
            let n: usize = 1 << rest.len().min(ROWS_PER_INSERT).ilog2();
            let statement = match &mut statements[n.ilog2() as usize] {
                Some(statement) => statement,
                empty => empty.insert(Insert::prepare(self.conn, BLOCKS.sql(n))?),
            };
            let values: Vec<Value<'_>> = (rest[..n].iter())
                .flat_map(|(row, block)| [Value::Int(*row), Value::Blob(block.data())])
                .collect();
            statement.run(&values)?;
            rest = &rest[n..];
        }
        Ok(())
    }

    /// Stores one failure report unless one with the same key is stored.
    pub fn insert_failure(
        &mut self,
        origin: &str,
        report: &Located<FailureReport>,
        now: i64,
    ) -> Result<Inserted, StoreError> {
        let r = &report.item;
        let o = r.original.as_ref();
        let inserted = self
            .tx
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
        &mut self,
        origin: &str,
        report: &Located<TlsReport>,
        now: i64,
    ) -> Result<Inserted, StoreError> {
        let r = &report.item;
        let inserted = self
            .tx
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
        let id = self.tx.last_insert_rowid();
        let mut policy_stmt = self.tx.prepare_cached(
            "INSERT INTO tls_policies (report, n, policy_type, policy_domain, policy_strings,
                mx_hosts, successful, failed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        let mut failure_stmt = self.tx.prepare_cached(
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
}
