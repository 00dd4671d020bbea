//! What `serve`'s `/metrics` and a scoped dashboard user's listings need from the database beyond
//! the listing queries: how much is kept, per policy domain the latest report of each reporter and
//! the failure and TLS report counts, and every domain anything is stored for.

use super::{Db, REPORT_DOMAINS};
use crate::store::{Kept, LatestReport, StoreError, TlsCounts};

impl Db {
    pub fn kept(&self) -> Result<Kept, StoreError> {
        let count = |sql: &str| -> Result<u64, StoreError> {
            Ok(self.conn.query_row(sql, [], |r| r.get(0))?)
        };
        Ok(Kept {
            aggregate_reports: count("SELECT COUNT(*) FROM reports")?,
            // From each report's record_count (a report is stored with all of its records, which
            // it counts), read from the (domain, date_end, …) index rather than by scanning every
            // record: 0.74 s → 0.04 s over 10M records.
            records: count("SELECT COALESCE(SUM(record_count), 0) FROM reports")?,
            failure_reports: count("SELECT COUNT(*) FROM failure_reports")?,
            tls_reports: count("SELECT COUNT(*) FROM tls_reports")?,
            reject_inputs: count("SELECT COUNT(*) FROM reject_inputs")?,
            rejects: count("SELECT COUNT(*) FROM rejects")?,
            outbox: count("SELECT COUNT(*) FROM notify_outbox")?,
            outbox_oldest: self.conn.query_row(
                "SELECT MIN(created_at) FROM notify_outbox",
                [],
                |r| r.get(0),
            )?,
        })
    }

    /// Per domain and reporter, the latest aggregate report's end; by domain, then reporter.
    pub fn latest_reports(&self) -> Result<Vec<LatestReport>, StoreError> {
        // Each domain's reporters by skipping along the (domain, org_name, date_end) index, and
        // each one's latest end by one lookup there: ~1,600 pairs over 467k reports, 0.5 s → ms.
        let mut stmt = self.conn.prepare(&format!(
            "{REPORT_DOMAINS},
             reporters(domain, org_name) AS (
                SELECT d.domain, (SELECT min(org_name) FROM reports WHERE domain = d.domain)
                FROM report_domains d WHERE d.domain IS NOT NULL
                UNION ALL
                SELECT r.domain, (SELECT min(org_name) FROM reports
                                  WHERE domain = r.domain AND org_name > r.org_name)
                FROM reporters r WHERE r.org_name IS NOT NULL)
             SELECT domain, org_name, (SELECT max(date_end) FROM reports l
                                       WHERE l.domain = r.domain AND l.org_name = r.org_name) AS e
             FROM reporters r WHERE org_name IS NOT NULL AND e IS NOT NULL
             ORDER BY domain, org_name"
        ))?;
        let rows = stmt.query_map([], |r| {
            Ok(LatestReport {
                domain: r.get(0)?,
                org_name: r.get(1)?,
                end: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Failure (ARF) reports per reported domain; by domain.
    pub fn failure_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT reported_domain, COUNT(*) FROM failure_reports
             WHERE reported_domain IS NOT NULL AND reported_domain <> '' GROUP BY reported_domain ORDER BY reported_domain",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// SMTP TLS reports and sessions per policy domain; by domain.
    pub fn tls_counts(&self) -> Result<Vec<TlsCounts>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT policy_domain, COUNT(DISTINCT report), SUM(successful), SUM(failed)
             FROM tls_policies WHERE policy_domain <> ''
             GROUP BY policy_domain ORDER BY policy_domain",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(TlsCounts {
                domain: r.get(0)?,
                reports: r.get(1)?,
                successful: r.get::<_, Option<u64>>(2)?.unwrap_or(0),
                failed: r.get::<_, Option<u64>>(3)?.unwrap_or(0),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every domain something is stored for: aggregate reports' policy domains, failure reports'
    /// reported domains and TLS reports' policy domains; sorted, once each.
    pub fn stored_domains(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "{REPORT_DOMAINS}
             SELECT domain FROM report_domains WHERE domain IS NOT NULL
             UNION SELECT reported_domain FROM failure_reports
                 WHERE reported_domain IS NOT NULL AND reported_domain <> ''
             UNION SELECT policy_domain FROM tls_policies WHERE policy_domain <> ''
             ORDER BY 1"
        ))?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
