//! Storing parsed reports: aggregate reports with their records (multi-row inserts, the more
//! complete copy wins), failure reports and SMTP TLS reports.

use rusqlite::{ToSql, params};

use super::{ROWS_PER_INSERT, Tx, json, sat};
use crate::model::{AggregateReport, FailureReport, Located, TlsReport};
use crate::store::{Inserted, StoreError};

impl Tx<'_> {
    /// [`crate::store::Tx::insert_report`]: `INSERT … ON CONFLICT DO NOTHING`; when a copy is stored
    /// already, the larger of the two (records, then messages) stays.
    pub fn insert_report(
        &mut self,
        origin: &str,
        report: &Located<AggregateReport>,
        now: i64,
    ) -> Result<Inserted, StoreError> {
        let (r, m, p) = (&report.item, &report.item.metadata, &report.item.policy);
        let errors =
            (!m.errors.is_empty()).then(|| serde_json::to_string(&m.errors).unwrap_or_default());
        let mut insert = self.tx.prepare_cached(
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
                .tx
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
            self.tx
                .prepare_cached("DELETE FROM reports WHERE id = ?1")?
                .execute([stored_id])?;
            insert.execute(values)?;
            replaced = Some(stored_records);
        }
        let report_row = self.tx.last_insert_rowid();
        // Record ids are assigned here rather than by SQLite, so that records and their DKIM, SPF and
        // reason rows can go in as multi-row INSERTs (a few statements per report instead of three per
        // record). Safe: this runs inside our `BEGIN IMMEDIATE`, so no other writer can take ids.
        let first_id: i64 = self
            .tx
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
            self.tx
                .prepare_cached(&sql)?
                .execute(rusqlite::params_from_iter(chunk))?;
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
