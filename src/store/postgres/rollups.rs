//! Rollups (`schemas/postgres/0002_rollups.sql`), the twin of the SQLite store's: the records and
//! reports summed per policy domain and report period, kept in the transaction that stores a
//! batch, and the readers that answer from them.
//!
//! A batch's reports are added after their records, by the migration's back-fill statements run
//! for those reports as upserts (`n = n + EXCLUDED.n`, in key order): atomic, so concurrent
//! writers keep the sums exact. A copy about to be replaced is taken out first
//! ([`forget_reports`]): its row is read and locked before the upsert ([`replacing`]), since the
//! upsert overwrites the period the rollups are keyed by; a copy another writer stored in between
//! makes the batch fail as [`PgError::Raced`], to be run again.

use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

use postgres::GenericClient;

use super::{PgError, count, filter_params};
use crate::model::{Disposition, DmarcResult, DomainSummary, Filter, SourceSummary, Timestamp};
use crate::store::Completeness;

/// The migration that adds the rollups; its back-fill statements are the ones kept here.
const MIGRATION: &str = include_str!("../../../schemas/postgres/0002_rollups.sql");

/// Each rollup table: its key (the first columns of its back-fill) and its sums.
/// The rollup tables' names.
pub const TABLE_NAMES: [&str; 3] = [TABLES[0].0, TABLES[1].0, TABLES[2].0];

const TABLES: [(&str, &str, &[&str]); 3] = [
    (
        "rollup_domains",
        "domain, date_end, date_begin, nulls",
        &["reports", "messages", "pass"],
    ),
    (
        "rollup_evidence",
        "domain, date_end, date_begin, org_name, source_ip, header_from, auth_dkim_domain, \
         auth_dkim_result, auth_spf_domain, auth_spf_result, envelope_from, dkim, spf, \
         disposition, forwarded, nulls",
        &["records", "messages"],
    ),
    (
        "rollup_sources",
        "domain, date_end, date_begin, source_ip, header_from, nulls",
        &["reports"],
    ),
];

/// The reports `(domain, id)` `$1`, `$2` select.
const THESE: &str = "(r.domain, r.id) IN (SELECT * FROM unnest($1::text[], $2::int8[]))";

/// The upserts that add (`+`) or take out (`-`) the reports [`THESE`] selects, one per table in
/// [`TABLES`]' order, each inserting in key order (so writers lock rows in one order).
fn statements(sign: char) -> &'static [String] {
    static ADD: OnceLock<Vec<String>> = OnceLock::new();
    static FORGET: OnceLock<Vec<String>> = OnceLock::new();
    let build = || {
        backfill()
            .zip(TABLES)
            .map(|(insert, (table, key, sums))| {
                let set: Vec<String> = sums
                    .iter()
                    .map(|c| format!("{c} = {table}.{c} {sign} EXCLUDED.{c}"))
                    .collect();
                let order: Vec<String> = (1..=key.split(',').count())
                    .map(|i| i.to_string())
                    .collect();
                format!(
                    "{} ORDER BY {} ON CONFLICT ({key}) DO UPDATE SET {}",
                    insert
                        .trim()
                        .replace("WHERE true", &format!("WHERE {THESE}")),
                    order.join(", "),
                    set.join(", ")
                )
            })
            .collect()
    };
    match sign {
        '+' => ADD.get_or_init(build),
        _ => FORGET.get_or_init(build),
    }
}

/// The migration's back-fill statements, one per table in [`TABLES`]' order.
fn backfill() -> impl Iterator<Item = &'static str> {
    MIGRATION
        .split_once("-- Back-fill")
        .map_or("", |(_, b)| b)
        .split(';')
        .filter_map(|s| s.find("INSERT INTO").map(|at| &s[at..]))
}

fn split<'a>(reports: &[(&'a str, i64)]) -> (Vec<&'a str>, Vec<i64>) {
    reports.iter().copied().unzip()
}

/// Adds the stored reports `(domain, id)` (with their records) to the rollups.
pub fn add_reports(
    client: &mut impl GenericClient,
    reports: &[(&str, i64)],
) -> Result<(), PgError> {
    if reports.is_empty() {
        return Ok(());
    }
    let (domains, ids) = split(reports);
    for sql in statements('+') {
        client.execute(sql.as_str(), &[&domains, &ids])?;
    }
    Ok(())
}

/// Takes the reports `(domain, id)` (still stored, about to be deleted or replaced) out of the
/// rollups, and deletes the rows they alone made. The one subtraction: every path that deletes
/// reports calls it first.
pub fn forget_reports(
    client: &mut impl GenericClient,
    reports: &[(&str, i64)],
) -> Result<(), PgError> {
    if reports.is_empty() {
        return Ok(());
    }
    let (domains, ids) = split(reports);
    for sql in statements('-') {
        client.execute(sql.as_str(), &[&domains, &ids])?;
    }
    for (table, _, sums) in TABLES {
        client.execute(
            &format!(
                "DELETE FROM {table} x USING (SELECT DISTINCT r.domain,
                    coalesce(r.date_end, 0) AS e, coalesce(r.date_begin, 0) AS b
                    FROM reports r WHERE {THESE}) p
                 WHERE x.domain = p.domain AND x.date_end = p.e AND x.date_begin = p.b
                    AND x.{} = 0",
                sums[0]
            ),
            &[&domains, &ids],
        )?;
    }
    Ok(())
}

/// Of the reports `(domain, org_name, report_id, size)` about to be upserted, the stored copies
/// the upsert will replace (less complete: [`Completeness`], the upsert's own order), as
/// `(domain, id)`; every stored copy read is locked until the transaction ends, in key order.
pub fn replacing(
    client: &mut impl GenericClient,
    keys: &[(&str, &str, &str, Completeness)],
) -> Result<Vec<(String, i64)>, PgError> {
    let mut columns: (Vec<&str>, Vec<&str>, Vec<&str>) = Default::default();
    for k in keys {
        columns.0.push(k.0);
        columns.1.push(k.1);
        columns.2.push(k.2);
    }
    let size: HashMap<(&str, &str, &str), Completeness> =
        keys.iter().map(|k| ((k.0, k.1, k.2), k.3)).collect();
    let rows = client.query(
        "SELECT r.domain, r.org_name, r.report_id, r.id, r.record_count, r.message_count,
            r.pass_count, r.date_end, r.date_begin
         FROM reports r JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(domain, org_name,
            report_id) ON r.domain = k.domain AND r.org_name = k.org_name
            AND r.report_id = k.report_id
         ORDER BY r.domain, r.org_name, r.report_id FOR UPDATE OF r",
        &[&columns.0, &columns.1, &columns.2],
    )?;
    Ok(rows
        .iter()
        .filter(|r| {
            let stored = Completeness {
                records: r.get(4),
                messages: r.get(5),
                passed: r.get(6),
                end: r.get(7),
                begin: r.get(8),
            };
            size.get(&(r.get(0), r.get(1), r.get(2)))
                .is_some_and(|new| *new > stored)
        })
        .map(|r| (r.get(0), r.get(3)))
        .collect())
}

/// Deletes the rollups and sums every stored report again (after `migrate --to` copied them).
pub fn rebuild_rollups(client: &mut impl GenericClient) -> Result<(), PgError> {
    for (table, _, _) in TABLES {
        client.execute(&format!("DELETE FROM {table}"), &[])?;
    }
    for insert in backfill() {
        client.execute(insert, &[])?;
    }
    Ok(())
}

/// Every rollup row as text, in key order (for tests: the rollups kept against the rollups
/// summed again).
pub fn contents(client: &mut impl GenericClient) -> Result<Vec<String>, PgError> {
    let mut out = Vec::new();
    for (table, key, _) in TABLES {
        for r in client.query(
            &format!("SELECT x::text FROM {table} x ORDER BY {key}"),
            &[],
        )? {
            out.push(format!("{table} {}", r.get::<_, String>(0)));
        }
    }
    Ok(out)
}

/// The conditions of a filter on a rollup's period, `$2` since and `$3` until as the listings
/// read them (a report overlapping the span); with no `since`, reports without an end count.
/// Spelled out only when given: `IS NULL OR …` would keep the planner from the key's index.
fn overlap(f: &Filter) -> String {
    [
        match f.domain {
            Some(_) => "x.domain = $1",
            None => "$1::text IS NULL",
        },
        match f.since {
            Some(_) => "x.date_end >= $2 AND x.nulls & 1024 = 0",
            None => "$2::int8 IS NULL",
        },
        match f.until {
            Some(_) => "x.date_begin < $3 AND x.nulls & 512 = 0",
            None => "$3::int8 IS NULL",
        },
    ]
    .join(" AND ")
}

/// `domains` from `rollup_domains`; each domain's latest report in the filter from `reports`.
pub fn domains(client: &mut impl GenericClient, f: &Filter) -> Result<Vec<DomainSummary>, PgError> {
    let (domain, since, until, limit) = filter_params(f);
    let rows = client.query(
        &format!(
            "WITH g AS (SELECT x.domain, sum(x.reports)::int8 AS n, sum(x.messages)::int8 AS m,
                    sum(x.pass)::int8 AS pc,
                    min(CASE WHEN x.nulls & 512 = 0 THEN x.date_begin END) AS b,
                    max(CASE WHEN x.nulls & 1024 = 0 THEN x.date_end END) AS e
                  FROM rollup_domains x WHERE {}
                  GROUP BY x.domain)
             SELECT g.domain, g.n, g.m, g.pc, g.b, g.e, l.p, l.sp, l.pct
             FROM g CROSS JOIN LATERAL
                (SELECT p, sp, pct FROM reports r2 WHERE r2.domain = g.domain
                    AND ($2::int8 IS NULL OR r2.date_end >= $2)
                    AND ($3::int8 IS NULL OR r2.date_begin < $3)
                 ORDER BY date_end DESC NULLS LAST, date_begin DESC NULLS LAST, org_name, report_id
                 LIMIT 1) l
             ORDER BY g.m DESC, g.domain LIMIT $4",
            overlap(f)
        ),
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
                pct: r
                    .get::<_, Option<i64>>(8)
                    .and_then(|v| u32::try_from(v).ok()),
            }
        })
        .collect())
}

/// `sources` from the rollups: the messages from `rollup_evidence` by (domain, source IP, header
/// From) and what [`SourceSummary::count`] reads, the reports from `rollup_sources`.
pub fn sources(client: &mut impl GenericClient, f: &Filter) -> Result<Vec<SourceSummary>, PgError> {
    let (domain, since, until, limit) = filter_params(f);
    let rows = client.query(
        &format!(
            "SELECT x.domain, x.source_ip, CASE WHEN x.nulls & 1 = 0 THEN x.header_from END,
                CASE WHEN x.nulls & 64 = 0 THEN x.dkim END,
                CASE WHEN x.nulls & 128 = 0 THEN x.spf END,
                CASE WHEN x.nulls & 256 = 0 THEN x.disposition END, sum(x.messages)::int8
             FROM rollup_evidence x WHERE {}
             GROUP BY 1, 2, 3, 4, 5, 6",
            overlap(f)
        ),
        &[&domain, &since, &until],
    )?;
    let mut index: HashMap<(String, String, Option<String>), usize> = HashMap::new();
    let mut out: Vec<SourceSummary> = Vec::new();
    for r in &rows {
        let group: (String, String, Option<String>) = (r.get(0), r.get(1), r.get(2));
        let at = *index.entry(group).or_insert_with_key(|(d, ip, hf)| {
            out.push(SourceSummary {
                domain: d.clone(),
                source_ip: ip.clone(),
                header_from: hf.clone(),
                messages: 0,
                dmarc_pass: 0,
                dkim_aligned: 0,
                spf_aligned: 0,
                quarantined: 0,
                rejected: 0,
                reports: 0,
                failure_reports: 0,
            });
            out.len() - 1
        });
        let result = |i| r.get::<_, Option<&str>>(i).map(DmarcResult::parse);
        out[at].count(
            result(3),
            result(4),
            r.get::<_, Option<&str>>(5).map(Disposition::parse),
            count(r.get(6)),
        );
    }
    for r in &client.query(
        &format!(
            "SELECT x.domain, x.source_ip, CASE WHEN x.nulls & 1 = 0 THEN x.header_from END,
                sum(x.reports)::int8
             FROM rollup_sources x WHERE {}
             GROUP BY 1, 2, 3",
            overlap(f)
        ),
        &[&domain, &since, &until],
    )? {
        let group: (String, String, Option<String>) = (r.get(0), r.get(1), r.get(2));
        if let Some(&at) = index.get(&group) {
            out[at].reports = count(r.get(3));
        }
    }
    super::listings::finish_sources(client, out, limit)
}

/// The source IPs `domain`'s reports ending in [since, until) name, from `rollup_sources`.
pub fn source_ips(
    client: &mut impl GenericClient,
    domain: &str,
    since: i64,
    until: i64,
) -> Result<BTreeSet<String>, PgError> {
    Ok(client
        .query(
            "SELECT DISTINCT source_ip FROM rollup_sources
             WHERE domain = $1 AND date_end >= $2 AND date_end < $3 AND nulls & 1024 = 0",
            &[&domain, &since, &until],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect())
}
