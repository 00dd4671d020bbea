//! What `serve`'s `/metrics` and a scoped dashboard user's listings need beyond the listing
//! queries, on PostgreSQL: the twin of `sqlite/metrics.rs` (same rows, same order).

use postgres::GenericClient;

use super::PgError;
use crate::store::{Kept, LatestReport, TlsCounts};

/// How much the database keeps.
pub fn kept(client: &mut impl GenericClient) -> Result<Kept, PgError> {
    let row = client.query_one(
        // Records counted from their reports' record_count (each report is stored with all of
        // its records, which it counts), not by scanning every record.
        "SELECT (SELECT COUNT(*) FROM reports), (SELECT COALESCE(SUM(record_count), 0)::int8 FROM reports),
                (SELECT COUNT(*) FROM failure_reports), (SELECT COUNT(*) FROM tls_reports),
                (SELECT COUNT(*) FROM reject_inputs), (SELECT COUNT(*) FROM rejects),
                (SELECT COUNT(*) FROM notify_outbox), (SELECT MIN(created_at) FROM notify_outbox)",
        &[],
    )?;
    let n = |i: usize| row.get::<_, i64>(i).max(0) as u64;
    Ok(Kept {
        aggregate_reports: n(0),
        records: n(1),
        failure_reports: n(2),
        tls_reports: n(3),
        reject_inputs: n(4),
        rejects: n(5),
        outbox: n(6),
        outbox_oldest: row.get(7),
    })
}

/// Per domain and reporter, the latest aggregate report's end; by domain, then reporter.
pub fn latest_reports(client: &mut impl GenericClient) -> Result<Vec<LatestReport>, PgError> {
    Ok(client
        .query(
            "SELECT domain, org_name, MAX(date_end) FROM reports WHERE date_end IS NOT NULL
             GROUP BY domain, org_name ORDER BY domain, org_name",
            &[],
        )?
        .iter()
        .map(|r| LatestReport {
            domain: r.get(0),
            org_name: r.get(1),
            end: r.get(2),
        })
        .collect())
}

/// Failure (ARF) reports per reported domain; by domain.
pub fn failure_counts(client: &mut impl GenericClient) -> Result<Vec<(String, u64)>, PgError> {
    Ok(client
        .query(
            "SELECT reported_domain, COUNT(*) FROM failure_reports
             WHERE reported_domain IS NOT NULL AND reported_domain <> ''
             GROUP BY reported_domain ORDER BY reported_domain",
            &[],
        )?
        .iter()
        .map(|r| (r.get(0), r.get::<_, i64>(1).max(0) as u64))
        .collect())
}

/// SMTP TLS reports and sessions per policy domain; by domain.
pub fn tls_counts(client: &mut impl GenericClient) -> Result<Vec<TlsCounts>, PgError> {
    Ok(client
        .query(
            "SELECT policy_domain, COUNT(DISTINCT report), SUM(successful)::BIGINT,
                    SUM(failed)::BIGINT
             FROM tls_policies WHERE policy_domain <> ''
             GROUP BY policy_domain ORDER BY policy_domain",
            &[],
        )?
        .iter()
        .map(|r| TlsCounts {
            domain: r.get(0),
            reports: r.get::<_, i64>(1).max(0) as u64,
            successful: r.get::<_, Option<i64>>(2).unwrap_or(0).max(0) as u64,
            failed: r.get::<_, Option<i64>>(3).unwrap_or(0).max(0) as u64,
        })
        .collect())
}

/// Every domain something is stored for; sorted, once each.
pub fn stored_domains(client: &mut impl GenericClient) -> Result<Vec<String>, PgError> {
    Ok(client
        .query(
            "SELECT domain FROM reports
             UNION SELECT reported_domain FROM failure_reports
                 WHERE reported_domain IS NOT NULL AND reported_domain <> ''
             UNION SELECT policy_domain FROM tls_policies WHERE policy_domain <> ''
             ORDER BY 1",
            &[],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect())
}
