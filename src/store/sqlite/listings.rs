//! The listing commands' queries (`domains`, `sources`, `reports`, `failures`, `tls`, `rejects`),
//! also behind the web's JSON API. SQL sums and counts what is stored; what passes and how a row
//! reads are the model's ([`SourceSummary::count`], [`TlsSummary::list`] and its kin).

use super::records_of::JOIN;
use std::collections::{BTreeSet, HashMap};

use rusqlite::params;
use rusqlite::types::ValueRef;

use super::{Db, filter_params};
use crate::model::{
    DomainSummary, FailureSummary, Filter, RejectSummary, ReportSummary, SourceSummary, Timestamp,
    TlsSummary,
};
use crate::store::StoreError;
use crate::store::halves;
use crate::store::source_groups::{KeyFields, SourceGroups, put_source_key, set_failure_reports};

/// `domains`: totals in one pass over the (domain, date_end, …) index, which holds every column the
/// sums read (schemas/0011_reports_totals.sql); then each domain's latest report in the filter by
/// one lookup on it (not by ranking every report). The index is named: with the (domain, org_name,
/// date_end) index of `/metrics` beside it, SQLite took that one, which holds none of the sums, and
/// looked every report up in the table (0.07 s → 0.9 s).
const DOMAINS: &str =
    "WITH g AS (SELECT domain, COUNT(*) AS n, SUM(message_count) AS m, SUM(pass_count) AS pc,
                    MIN(date_begin) AS b, MAX(date_end) AS e
                  FROM reports INDEXED BY reports_domain_end WHERE (?1 IS NULL OR domain = ?1)
                    AND (?2 IS NULL OR date_end >= ?2) AND (?3 IS NULL OR date_begin < ?3)
                  GROUP BY domain)
             SELECT g.domain, g.n, g.m, g.pc, g.b, g.e, l.p, l.sp, l.pct
             FROM g JOIN reports l ON l.id =
                (SELECT id FROM reports r2 INDEXED BY reports_domain_end WHERE r2.domain = g.domain
                    AND (?2 IS NULL OR r2.date_end >= ?2) AND (?3 IS NULL OR r2.date_begin < ?3)
                 ORDER BY date_end DESC, date_begin DESC, org_name, report_id LIMIT 1)
             ORDER BY g.m DESC, g.domain LIMIT ?4";

impl Db {
    pub fn domains(&self, f: &Filter) -> Result<Vec<DomainSummary>, StoreError> {
        let mut stmt = self.conn.prepare(DOMAINS)?;
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

    /// Every record in the filter, with its report, summed here by (domain, source IP, header
    /// From): each group's counts by [`SourceSummary::count`], its reports counted once each. A
    /// domain of more than `halves::SPLIT_RECORDS` records is read in two halves of its reports at once,
    /// the second on a connection of its own.
    pub fn sources(&self, f: &Filter) -> Result<Vec<SourceSummary>, StoreError> {
        let (domain, since, until, limit) = filter_params(f);
        let rolled = if super::rollups::from_records() {
            None
        } else {
            self.sources_rolled(domain, since, until)?
        };
        let groups = match rolled {
            Some(groups) => groups,
            None => self.sources_from_records(f)?,
        };
        let fields = KeyFields::of(domain.is_none());
        let mut out = groups.finish(usize::try_from(limit).ok(), domain, fields);
        // Failure reports about each source for its domain, whenever they arrived: one query
        // per listed domain, not one per source (a large domain's 233,000 sources were as many
        // statements, each taking and releasing SQLite's locks: half of the listing's time).
        let domains: BTreeSet<&str> = out.iter().map(|s| s.domain.as_str()).collect();
        let mut stmt = self.conn.prepare_cached(
            "SELECT source_ip, COUNT(*) FROM failure_reports
             WHERE reported_domain = ?1 AND source_ip IS NOT NULL GROUP BY source_ip",
        )?;
        // Domain → source IP → failure reports.
        let mut counts: HashMap<String, HashMap<String, u64>> = HashMap::new();
        for domain in domains {
            let mine = counts.entry(domain.to_owned()).or_default();
            let mut rows = stmt.query([domain])?;
            while let Some(r) = rows.next()? {
                mine.insert(r.get(0)?, r.get(1)?);
            }
        }
        set_failure_reports(&mut out, &counts);
        Ok(out)
    }

    /// [`Db::sources`]' groups from the records: a domain of more than
    /// `halves::SPLIT_RECORDS` records read in two halves of its reports at once, the second on
    /// a connection of its own.
    fn sources_from_records(&self, f: &Filter) -> Result<SourceGroups, StoreError> {
        let (domain, since, until, _) = filter_params(f);
        let all = (i64::MIN, i64::MAX);
        let halves = match domain {
            Some(d) => self.halves(d, since, until)?,
            None => None,
        };
        let window = Window::Listing { since, until };
        Ok(match halves {
            None => source_groups(&self.conn, domain, window, all)?,
            Some(mid) => {
                let other = Db::open_read_only(&self.path)?;
                let (first, second) = std::thread::scope(|s| {
                    let second = s
                        .spawn(move || source_groups(&other.conn, domain, window, (mid, i64::MAX)));
                    let first = source_groups(&self.conn, domain, window, (i64::MIN, mid));
                    let second = second
                        .join()
                        .unwrap_or_else(|p| std::panic::resume_unwind(p));
                    (first, second)
                });
                let mut groups = first?;
                groups.join(second?);
                groups
            }
        })
    }

    /// The reports `f` selects, oldest period first, each handed to `each` as it is read (the
    /// `reports_listing` index gives them in order, so nothing is sorted or held); stops when
    /// `each` answers false.
    pub fn reports_each(
        &self,
        f: &Filter,
        each: &mut dyn FnMut(ReportSummary) -> bool,
    ) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT org_name, report_id, domain, date_begin, date_end, record_count, message_count,
                pass_count, p, origin
             FROM reports WHERE (?1 IS NULL OR domain = ?1) AND (?2 IS NULL OR date_end >= ?2)
                AND (?3 IS NULL OR date_begin < ?3)
             ORDER BY date_begin, org_name, report_id, domain LIMIT ?4",
        )?;
        let mut rows = stmt.query(filter_params(f))?;
        while let Some(r) = rows.next()? {
            let report = ReportSummary {
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
            };
            if !each(report) {
                break;
            }
        }
        Ok(())
    }

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
             ORDER BY arrival_date DESC, key DESC LIMIT ?4",
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

    /// Sums per (policy domain, MX host patterns) in SQL; the names seen in each (policy types,
    /// reporters) and its failure types by a query each, put together by [`TlsSummary`]'s rules.
    pub fn tls(&self, f: &Filter) -> Result<Vec<TlsSummary>, StoreError> {
        const WHERE: &str =
            "(?1 IS NULL OR p.policy_domain = ?1) AND (?2 IS NULL OR t.date_end >= ?2)
                AND (?3 IS NULL OR t.date_begin < ?3)";
        type Group = (String, String);
        let (domain, since, until, limit) = filter_params(f);
        let mut failures: HashMap<Group, Vec<(String, u64)>> = HashMap::new();
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
        let mut names: HashMap<Group, (BTreeSet<String>, BTreeSet<String>)> = HashMap::new();
        {
            let mut stmt = self.conn.prepare(&format!(
                "SELECT DISTINCT p.policy_domain, p.mx_hosts, p.policy_type, t.org_name
                 FROM tls_policies p JOIN tls_reports t ON t.id = p.report
                 WHERE {WHERE}"
            ))?;
            let rows = stmt.query_map(params![domain, since, until], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
            for row in rows {
                let (d, mx, kind, org): (String, String, Option<String>, Option<String>) = row?;
                let (kinds, orgs) = names.entry((d, mx)).or_default();
                kinds.extend(kind);
                orgs.extend(org);
            }
        }
        let mut stmt = self.conn.prepare(&format!(
            "SELECT p.policy_domain, p.mx_hosts, SUM(p.successful), SUM(p.failed),
                COUNT(DISTINCT t.id)
             FROM tls_policies p JOIN tls_reports t ON t.id = p.report
             WHERE {WHERE}
             GROUP BY p.policy_domain, p.mx_hosts
             ORDER BY SUM(p.failed) DESC, p.policy_domain, p.mx_hosts LIMIT ?4"
        ))?;
        let rows = stmt.query_map(params![domain, since, until, limit], |r| {
            let domain: String = r.get(0)?;
            let mx_json: String = r.get(1)?;
            let successful: u64 = r.get(2)?;
            let failed: u64 = r.get(3)?;
            let group = (domain, mx_json);
            let (kinds, orgs) = names.remove(&group).unwrap_or_default();
            let top = failures
                .get(&group)
                .map(|kinds| TlsSummary::top(kinds))
                .unwrap_or_default();
            let mx: Vec<String> = serde_json::from_str(&group.1).unwrap_or_default();
            Ok(TlsSummary {
                domain: group.0,
                mx_hosts: TlsSummary::list(mx.iter().map(String::as_str)),
                policy_types: TlsSummary::types(kinds.iter().map(String::as_str)),
                successful_sessions: successful,
                failed_sessions: failed,
                failure_pct: crate::analyse::percent(failed, successful.saturating_add(failed)),
                top_failures: top,
                reporters: TlsSummary::list(orgs.iter().map(String::as_str)),
                reports: r.get(4)?,
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

impl Db {
    /// The id that parts `domain`'s reports in the window into two halves, when they hold more
    /// than `halves::SPLIT_RECORDS` records.
    fn halves(
        &self,
        domain: &str,
        since: Option<i64>,
        until: Option<i64>,
    ) -> Result<Option<i64>, StoreError> {
        let window =
            "domain = ?1 AND (?2 IS NULL OR date_end >= ?2) AND (?3 IS NULL OR date_begin < ?3)";
        let (reports, records): (i64, Option<i64>) = self.conn.query_row(
            &format!("SELECT count(*), sum(record_count) FROM reports WHERE {window}"),
            params![domain, since, until],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if records.unwrap_or(0) <= halves::split_records() || reports < 2 {
            return Ok(None);
        }
        let mid: i64 = self.conn.query_row(
            &format!("SELECT id FROM reports WHERE {window} ORDER BY id LIMIT 1 OFFSET ?4"),
            params![domain, since, until, reports / 2],
            |r| r.get(0),
        )?;
        Ok(Some(mid))
    }
}

/// Which reports [`source_groups`] reads.
#[derive(Clone, Copy)]
pub(super) enum Window {
    /// A listing's: periods ending at or after `since` and beginning before `until`.
    Listing {
        since: Option<i64>,
        until: Option<i64>,
    },
    /// The rollups' partial days: reports ending in `[since, until)`.
    Ends { since: i64, until: i64 },
}

/// `sources`' groups over the records of `domain`'s reports (every domain's when none) in
/// `window` whose ids are in `[ids.0, ids.1)`, keyed as [`put_source_key`] says.
pub(super) fn source_groups(
    conn: &rusqlite::Connection,
    domain: Option<&str>,
    window: Window,
    ids: (i64, i64),
) -> Result<SourceGroups, StoreError> {
    let (since, begins_before, ends_before) = match window {
        Window::Listing { since, until } => (since, until, None),
        Window::Ends { since, until } => (Some(since), None, Some(until)),
    };
    // CROSS JOIN keeps reports the outer loop: one report's records come together, which is what
    // lets the groups count their reports as they change.
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT r.id, r.domain, c.source_ip, c.header_from, c.dkim, c.spf, c.disposition,
            c.count
         FROM reports r {JOIN}
         WHERE (?1 IS NULL OR r.domain = ?1) AND (?2 IS NULL OR r.date_end >= ?2)
            AND (?3 IS NULL OR r.date_begin < ?3) AND (?6 IS NULL OR r.date_end < ?6)
            AND r.id >= ?4 AND r.id < ?5"
    ))?;
    let mut rows = stmt.query(params![
        domain,
        since,
        begins_before,
        ids.0,
        ids.1,
        ends_before
    ])?;
    let mut groups = SourceGroups::new(true);
    let mut buf = Vec::new();
    while let Some(r) = rows.next()? {
        let text = |i| -> Result<Option<&[u8]>, StoreError> {
            Ok(match r.get_ref(i)? {
                ValueRef::Null => None,
                ValueRef::Text(t) => Some(t),
                _ => {
                    // Not a text: reading it as one gives the error that says so.
                    r.get::<_, String>(i)?;
                    None
                }
            })
        };
        buf.clear();
        let several = match domain {
            None => Some(text(1)?.unwrap_or_default()),
            Some(_) => None,
        };
        put_source_key(&mut buf, text(2)?.unwrap_or_default(), text(3)?, several);
        groups
            .group(&buf, r.get(0)?)
            .count(r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?);
    }
    Ok(groups)
}

/// Appends a column's value to a grouping key: a type tag, then its length and bytes, so that no
/// two different rows make the same key (NULL, `''` and `0` are three).
pub(super) fn key_bytes(buf: &mut Vec<u8>, value: ValueRef<'_>) {
    let (tag, bytes): (u8, &[u8]) = match value {
        ValueRef::Null => (0, &[]),
        ValueRef::Integer(n) => {
            buf.push(1);
            buf.extend_from_slice(&n.to_le_bytes());
            return;
        }
        ValueRef::Real(x) => {
            buf.push(2);
            buf.extend_from_slice(&x.to_le_bytes());
            return;
        }
        ValueRef::Text(t) => (3, t),
        ValueRef::Blob(b) => (4, b),
    };
    buf.push(tag);
    buf.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    buf.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    /// The sums read the index alone, never a report's row (issue 20: 1.8 s → 0.1 s on 467,265
    /// reports).
    #[test]
    fn domains_sums_from_the_covering_index() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let db = super::Db::open(&dir.path().join("t.db")).expect("database");
        let plan: Vec<String> = db
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", super::DOMAINS))
            .expect("plan")
            .query_map([None::<&str>, None, None, None], |r| r.get::<_, String>(3))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("plan rows");
        assert!(
            plan.iter()
                .any(|step| step.contains("SCAN reports USING COVERING INDEX reports_domain_end")),
            "{plan:#?}"
        );
    }
}
