//! `check`: the facts it needs from stored reports (DKIM selectors seen, SMTP TLS reports), and its
//! results, one row per domain per run.

use postgres::GenericClient;
use postgres::fallible_iterator::FallibleIterator;

use super::{PgError, count};
use crate::analyse::check::{DomainCheck, SelectorSeen, Severity};
use crate::model::Timestamp;
use crate::store::lists::Selectors;

/// DKIM selectors that reports show signing with `domain` itself (d= equal to it), with the
/// first and last report periods they appear in.
pub fn dkim_selectors(
    client: &mut impl GenericClient,
    domain: &str,
) -> Result<Vec<SelectorSeen>, PgError> {
    let mut seen = Selectors::new(domain);
    let mut rows = client.query_raw(
        "SELECT c.auth, r.date_begin, r.date_end
         FROM reports r JOIN records c ON c.domain = r.domain AND c.report = r.id
         WHERE r.domain = $1 AND c.auth IS NOT NULL",
        [domain],
    )?;
    while let Some(row) = rows.next()? {
        seen.add(row.get(0), row.get(1), row.get(2));
    }
    Ok(seen.into_seen())
}

/// SMTP TLS reports stored for `domain`, and the end of the latest.
pub fn tls_report_count(
    client: &mut impl GenericClient,
    domain: &str,
) -> Result<(u64, Option<i64>), PgError> {
    let r = client.query_one(
        "SELECT count(DISTINCT p.report), max(t.date_end)
         FROM tls_policies p JOIN tls_reports t ON t.id = p.report
         WHERE p.policy_domain = $1",
        &[&domain],
    )?;
    Ok((count(r.get(0)), r.get(1)))
}

/// Keeps the result of checking one domain.
pub fn save_check(client: &mut impl GenericClient, check: &DomainCheck) -> Result<(), PgError> {
    let json = |v: serde_json::Result<String>| v.unwrap_or_else(|_| "null".into());
    client.execute(
        "INSERT INTO dns_checks (domain, checked_at, worst, errors, warnings, published, findings)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &check.domain,
            &check.checked_at.0,
            &check.worst().as_str(),
            &(check.count(Severity::Error) as i64),
            &(check.count(Severity::Warning) as i64),
            &json(serde_json::to_string(&check.published)),
            &json(serde_json::to_string(&check.findings)),
        ],
    )?;
    Ok(())
}

/// The latest check of each domain (or of `domain`), by domain.
pub fn last_checks(
    client: &mut impl GenericClient,
    domain: Option<&str>,
) -> Result<Vec<DomainCheck>, PgError> {
    let rows = client.query(
        "SELECT DISTINCT ON (domain) domain, checked_at, published, findings FROM dns_checks
         WHERE ($1::text IS NULL OR domain = $1)
         ORDER BY domain, checked_at DESC, id DESC",
        &[&domain],
    )?;
    let mut out = Vec::new();
    for r in &rows {
        let (published, findings): (String, String) = (r.get(2), r.get(3));
        // A row this version cannot read (written by a newer one) is skipped, not fatal.
        if let (Ok(published), Ok(findings)) = (
            serde_json::from_str(&published),
            serde_json::from_str(&findings),
        ) {
            out.push(DomainCheck {
                domain: r.get(0),
                checked_at: Timestamp(r.get(1)),
                published,
                findings,
            });
        }
    }
    Ok(out)
}
