//! The queries behind the listing commands (`domains`, `sources`, `reports`, `failures`, `tls`,
//! `rejects`) and each domain's latest policy, answering as the SQLite store does: the same rows
//! in the same order (NULLs sort as SQLite sorts them: first ascending, last descending; text in
//! byte order, the columns being COLLATE "C").

use std::collections::HashMap;

use postgres::GenericClient;

use super::{PgError, count, filter_params};
use crate::model::{
    DomainSummary, FailureSummary, Filter, PolicyPublished, RejectSummary, ReportSummary,
    SourceSummary, Timestamp, TlsSummary,
};

fn pct(v: Option<i64>) -> Option<u32> {
    v.and_then(|v| u32::try_from(v).ok())
}

pub fn domains(client: &mut impl GenericClient, f: &Filter) -> Result<Vec<DomainSummary>, PgError> {
    let (domain, since, until, limit) = filter_params(f);
    let rows = client.query(
        // Totals in one pass; then each domain's latest report in the filter by one lookup on
        // the (domain, date_end DESC NULLS LAST, id DESC) index.
        "WITH g AS (SELECT domain, count(*) AS n, sum(message_count)::int8 AS m,
                sum(pass_count)::int8 AS pc, min(date_begin) AS b, max(date_end) AS e
              FROM reports WHERE ($1::text IS NULL OR domain = $1)
                AND ($2::int8 IS NULL OR date_end >= $2) AND ($3::int8 IS NULL OR date_begin < $3)
              GROUP BY domain)
         SELECT g.domain, g.n, g.m, g.pc, g.b, g.e, l.p, l.sp, l.pct
         FROM g CROSS JOIN LATERAL
            (SELECT p, sp, pct FROM reports r2 WHERE r2.domain = g.domain
                AND ($2::int8 IS NULL OR r2.date_end >= $2) AND ($3::int8 IS NULL OR r2.date_begin < $3)
             ORDER BY date_end DESC NULLS LAST, id DESC LIMIT 1) l
         ORDER BY g.m DESC, g.domain LIMIT $4",
        &[&domain, &since, &until, &limit],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            let messages = count(r.get(2));
            let pass = count(r.get(3));
            DomainSummary {
                domain: r.get(0),
                reports: count(r.get(1)),
                messages,
                dmarc_pass: pass,
                dmarc_pass_pct: crate::analyse::percent(pass, messages),
                first: r.get::<_, Option<i64>>(4).map(Timestamp),
                last: r.get::<_, Option<i64>>(5).map(Timestamp),
                p: r.get(6),
                sp: r.get(7),
                pct: pct(r.get(8)),
            }
        })
        .collect())
}

pub fn sources(client: &mut impl GenericClient, f: &Filter) -> Result<Vec<SourceSummary>, PgError> {
    let (domain, since, until, limit) = filter_params(f);
    let rows = client.query(
        "SELECT r.domain, c.source_ip, c.header_from, sum(c.count)::int8,
            sum(CASE WHEN c.dkim = 'pass' OR c.spf = 'pass' THEN c.count ELSE 0 END)::int8,
            sum(CASE WHEN c.dkim = 'pass' THEN c.count ELSE 0 END)::int8,
            sum(CASE WHEN c.spf = 'pass' THEN c.count ELSE 0 END)::int8,
            sum(CASE WHEN c.disposition = 'quarantine' THEN c.count ELSE 0 END)::int8,
            sum(CASE WHEN c.disposition = 'reject' THEN c.count ELSE 0 END)::int8,
            count(DISTINCT r.id),
            (SELECT count(*) FROM failure_reports f
             WHERE f.source_ip = c.source_ip AND f.reported_domain = r.domain)
         FROM records c JOIN reports r ON r.domain = c.domain AND r.id = c.report
         WHERE ($1::text IS NULL OR r.domain = $1) AND ($2::int8 IS NULL OR r.date_end >= $2)
            AND ($3::int8 IS NULL OR r.date_begin < $3)
         GROUP BY r.domain, c.source_ip, c.header_from
         ORDER BY sum(c.count) DESC, r.domain, c.source_ip, c.header_from NULLS FIRST LIMIT $4",
        &[&domain, &since, &until, &limit],
    )?;
    Ok(rows
        .iter()
        .map(|r| SourceSummary {
            domain: r.get(0),
            source_ip: r.get(1),
            header_from: r.get(2),
            messages: count(r.get(3)),
            dmarc_pass: count(r.get(4)),
            dkim_aligned: count(r.get(5)),
            spf_aligned: count(r.get(6)),
            quarantined: count(r.get(7)),
            rejected: count(r.get(8)),
            reports: count(r.get(9)),
            failure_reports: count(r.get(10)),
        })
        .collect())
}

pub fn reports(client: &mut impl GenericClient, f: &Filter) -> Result<Vec<ReportSummary>, PgError> {
    let (domain, since, until, limit) = filter_params(f);
    let rows = client.query(
        "SELECT org_name, report_id, domain, date_begin, date_end, record_count, message_count,
            pass_count, p, origin
         FROM reports WHERE ($1::text IS NULL OR domain = $1)
            AND ($2::int8 IS NULL OR date_end >= $2) AND ($3::int8 IS NULL OR date_begin < $3)
         ORDER BY date_begin NULLS FIRST, org_name, report_id, id LIMIT $4",
        &[&domain, &since, &until, &limit],
    )?;
    Ok(rows
        .iter()
        .map(|r| ReportSummary {
            org_name: r.get(0),
            report_id: r.get(1),
            domain: r.get(2),
            begin: r.get::<_, Option<i64>>(3).map(Timestamp),
            end: r.get::<_, Option<i64>>(4).map(Timestamp),
            records: count(r.get(5)),
            messages: count(r.get(6)),
            dmarc_pass: count(r.get(7)),
            p: r.get(8),
            origin: r.get(9),
        })
        .collect())
}

/// Failure reports, newest arrival first; `source_ip` narrows to one sender.
pub fn failures(
    client: &mut impl GenericClient,
    f: &Filter,
    source_ip: Option<&str>,
) -> Result<Vec<FailureSummary>, PgError> {
    let (domain, since, until, limit) = filter_params(f);
    let rows = client.query(
        "SELECT arrival_date, feedback_type, reported_domain, source_ip, auth_failure,
            delivery_result, original_mail_from, original_from, original_subject, reporter
         FROM failure_reports
         WHERE ($1::text IS NULL OR reported_domain = $1) AND ($2::int8 IS NULL OR arrival_date >= $2)
            AND ($3::int8 IS NULL OR arrival_date < $3) AND ($5::text IS NULL OR source_ip = $5)
         ORDER BY arrival_date DESC NULLS LAST, id DESC LIMIT $4",
        &[&domain, &since, &until, &limit, &source_ip],
    )?;
    Ok(rows
        .iter()
        .map(|r| FailureSummary {
            arrival_date: r.get::<_, Option<i64>>(0).map(Timestamp),
            feedback_type: r.get(1),
            reported_domain: r.get(2),
            source_ip: r.get(3),
            auth_failure: r.get(4),
            delivery_result: r.get(5),
            original_mail_from: r.get(6),
            original_from: r.get(7),
            original_subject: r.get(8),
            reporter: r.get(9),
        })
        .collect())
}

/// SMTP TLS results per policy domain and MX host pattern, most failed sessions first.
pub fn tls(client: &mut impl GenericClient, f: &Filter) -> Result<Vec<TlsSummary>, PgError> {
    const WHERE: &str = "($1::text IS NULL OR p.policy_domain = $1)
        AND ($2::int8 IS NULL OR t.date_end >= $2) AND ($3::int8 IS NULL OR t.date_begin < $3)";
    let (domain, since, until, limit) = filter_params(f);
    let mut failures: HashMap<(String, String), Vec<(String, i64)>> = HashMap::new();
    for r in client.query(
        &format!(
            "SELECT p.policy_domain, p.mx_hosts, x.result_type, sum(x.failed_sessions)::int8
             FROM tls_failures x
             JOIN tls_policies p ON p.report = x.report AND p.n = x.policy
             JOIN tls_reports t ON t.id = p.report
             WHERE {WHERE}
             GROUP BY p.policy_domain, p.mx_hosts, x.result_type
             ORDER BY sum(x.failed_sessions) DESC, x.result_type"
        ),
        &[&domain, &since, &until],
    )? {
        failures
            .entry((r.get(0), r.get(1)))
            .or_default()
            .push((r.get(2), r.get(3)));
    }
    let rows = client.query(
        &format!(
            // The policy types and the reporters in the order they first appear (by report, then
            // policy), as SQLite's group_concat(DISTINCT …) lists them.
            "SELECT policy_domain, mx_hosts,
                string_agg(policy_type, ',' ORDER BY report, n) FILTER (WHERE type_first),
                sum(successful)::int8, sum(failed)::int8,
                string_agg(org_name, ',' ORDER BY report, n) FILTER (WHERE org_first),
                count(DISTINCT report)
             FROM (SELECT p.policy_domain, p.mx_hosts, p.policy_type, p.successful, p.failed,
                    p.report, p.n, t.org_name,
                    row_number() OVER (PARTITION BY p.policy_domain, p.mx_hosts, p.policy_type
                                       ORDER BY p.report, p.n) = 1 AS type_first,
                    row_number() OVER (PARTITION BY p.policy_domain, p.mx_hosts, t.org_name
                                       ORDER BY p.report, p.n) = 1 AS org_first
                   FROM tls_policies p JOIN tls_reports t ON t.id = p.report
                   WHERE {WHERE}) x
             GROUP BY policy_domain, mx_hosts
             ORDER BY sum(failed) DESC, policy_domain, mx_hosts LIMIT $4"
        ),
        &[&domain, &since, &until, &limit],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            let domain: String = r.get(0);
            let mx_json: String = r.get(1);
            let successful = count(r.get(3));
            let failed = count(r.get(4));
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
            TlsSummary {
                domain,
                mx_hosts: mx.join(", "),
                policy_types: r.get::<_, Option<String>>(2).unwrap_or_default(),
                successful_sessions: successful,
                failed_sessions: failed,
                failure_pct: crate::analyse::percent(failed, successful.saturating_add(failed)),
                top_failures: top,
                reporters: r
                    .get::<_, Option<String>>(5)
                    .unwrap_or_default()
                    .replace(',', ", "),
                reports: count(r.get(6)),
            }
        })
        .collect())
}

pub fn rejects(client: &mut impl GenericClient) -> Result<Vec<RejectSummary>, PgError> {
    let rows = client.query(
        "SELECT r.id, i.origin, r.location, r.reason, i.size, i.first_seen, i.last_seen, i.attempts
         FROM rejects r JOIN reject_inputs i ON i.key = r.input
         ORDER BY i.first_seen, r.id",
        &[],
    )?;
    Ok(rows
        .iter()
        .map(|r| RejectSummary {
            id: r.get(0),
            origin: r.get(1),
            location: r.get(2),
            reason: r.get(3),
            size: r.get::<_, Option<i64>>(4).map(count),
            first_seen: Timestamp(r.get(5)),
            last_seen: Timestamp(r.get(6)),
            attempts: count(r.get(7)),
        })
        .collect())
}

/// Per policy domain, the policy of its latest report and that report's end.
pub fn latest_policies(
    client: &mut impl GenericClient,
    domain: Option<&str>,
) -> Result<Vec<(PolicyPublished, Option<i64>)>, PgError> {
    let rows = client.query(
        // One lookup per domain (not per report) on the (domain, date_end) index.
        "SELECT DISTINCT ON (domain) domain, adkim, aspf, p, sp, np, pct, fo, testing,
            discovery_method, date_end
         FROM reports WHERE ($1::text IS NULL OR domain = $1)
         ORDER BY domain, date_end DESC NULLS LAST, id DESC",
        &[&domain],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                PolicyPublished {
                    domain: r.get(0),
                    adkim: r.get(1),
                    aspf: r.get(2),
                    p: r.get(3),
                    sp: r.get(4),
                    np: r.get(5),
                    pct: pct(r.get(6)),
                    fo: r.get(7),
                    testing: r.get(8),
                    discovery_method: r.get(9),
                },
                r.get(10),
            )
        })
        .collect())
}
