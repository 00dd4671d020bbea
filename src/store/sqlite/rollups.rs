//! Rollups (`schemas/0008_rollups.sql`): the records and reports summed per policy domain and
//! report period, kept in the unit of work that stores the reports, and the readers that answer
//! from them (`domains`, `sources`, the evidence behind `senders`, `advise`, notifications and
//! the dashboard).
//!
//! The statements that add reports are the migration's back-fill, run for the reports a unit of
//! work stored (those with an id above the largest before it: `BEGIN IMMEDIATE` keeps other writers
//! out, and a replaced copy is stored under a new id) when it commits, each row once per key
//! (`ON CONFLICT DO UPDATE SET n = n + excluded.n`). [`Tx::forget_reports`] takes a report's
//! contribution back out before the report is deleted; rows left with nothing are deleted.

use std::sync::OnceLock;

use rusqlite::params;

use std::collections::HashMap;

use super::listings::key_bytes;
use super::{Db, Tx, filter_params};
use crate::model::{DomainSummary, Filter, SourceSummary, Timestamp};
use crate::store::StoreError;

/// The migration that adds the rollups; its back-fill statements are the ones kept here.
const MIGRATION: &str = include_str!("../../../schemas/0008_rollups.sql");

/// Each rollup table: its key and its sums.
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

/// The statements that add (`+`) or take out (`-`) the reports `WHERE {filter}` selects, one per
/// table in [`TABLES`]' order: the migration's back-fill as an upsert.
fn statements(filter: &str, sign: char) -> Vec<String> {
    let backfill = MIGRATION.split_once("-- Back-fill").map_or("", |(_, b)| b);
    backfill
        .split(';')
        .filter_map(|s| s.find("INSERT INTO").map(|at| &s[at..]))
        .zip(TABLES)
        .map(|(insert, (_, key, sums))| {
            let set: Vec<String> = sums
                .iter()
                .map(|c| format!("{c} = {c} {sign} excluded.{c}"))
                .collect();
            format!(
                "{} ON CONFLICT ({key}) DO UPDATE SET {}",
                insert
                    .trim()
                    .replace("WHERE true", &format!("WHERE {filter}")),
                set.join(", ")
            )
        })
        .collect()
}

/// Adding the reports with an id above `?1`, and taking out the report `?1`.
fn add_and_forget() -> &'static (Vec<String>, Vec<String>) {
    static SQL: OnceLock<(Vec<String>, Vec<String>)> = OnceLock::new();
    SQL.get_or_init(|| (statements("r.id > ?1", '+'), statements("r.id = ?1", '-')))
}

impl Tx<'_> {
    /// Remembers, before the first report of this unit of work is stored, the largest report id
    /// stored before it: the reports above it are added to the rollups at [`Tx::commit`].
    pub(super) fn rollups_from(&mut self) -> Result<i64, StoreError> {
        if let Some(from) = self.rollups_from {
            return Ok(from);
        }
        let from: i64 = self
            .tx
            .query_row("SELECT ifnull(max(id), 0) FROM reports", [], |r| r.get(0))?;
        self.rollups_from = Some(from);
        Ok(from)
    }

    /// Adds the reports this unit of work stored to the rollups, once per key.
    pub(super) fn keep_rollups(&mut self) -> Result<(), StoreError> {
        if let Some(from) = self.rollups_from.take() {
            for sql in &add_and_forget().0 {
                self.tx.prepare_cached(sql)?.execute([from])?;
            }
        }
        Ok(())
    }

    /// Takes the reports `ids` (still stored, about to be deleted) out of the rollups, and
    /// deletes the rows they alone made. The one subtraction: the delete paths (a replaced copy,
    /// `prune`) call it before they delete. Reports stored by this unit of work are not in the
    /// rollups yet, and are left alone.
    pub fn forget_reports(&self, ids: &[i64]) -> Result<(), StoreError> {
        let from = self.rollups_from.unwrap_or(i64::MAX);
        for &id in ids.iter().filter(|&&id| id <= from) {
            let period: Option<(String, i64, i64)> = self
                .tx
                .prepare_cached(
                    "SELECT domain, ifnull(date_end, 0), ifnull(date_begin, 0) FROM reports
                     WHERE id = ?1",
                )?
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map(Some)
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(e),
                })?;
            let Some((domain, end, begin)) = period else {
                continue;
            };
            for sql in &add_and_forget().1 {
                self.tx.prepare_cached(sql)?.execute([id])?;
            }
            for (table, _, sums) in TABLES {
                self.tx
                    .prepare_cached(&format!(
                        "DELETE FROM {table} WHERE domain = ?1 AND date_end = ?2
                            AND date_begin = ?3 AND {} = 0",
                        sums[0]
                    ))?
                    .execute(params![domain, end, begin])?;
            }
        }
        Ok(())
    }

    /// Deletes the rollups and adds every stored report again (after `migrate --to` copied the
    /// reports in).
    pub fn rebuild_rollups(&mut self) -> Result<(), StoreError> {
        for (table, _, _) in TABLES {
            self.tx.execute(&format!("DELETE FROM {table}"), [])?;
        }
        for sql in &add_and_forget().0 {
            self.tx.prepare_cached(sql)?.execute([i64::MIN])?;
        }
        self.rollups_from = None;
        Ok(())
    }
}

/// The conditions of a filter on a rollup's period, `?2` since and `?3` until as the listings
/// read them (a report overlapping the span); with no `since`, reports without an end count.
/// Spelled out only when given: `IS NULL OR …` would keep the planner from the key's index.
fn overlap(f: &Filter) -> String {
    [
        match f.domain {
            Some(_) => "x.domain = ?1",
            None => "?1 IS NULL",
        },
        match f.since {
            Some(_) => "x.date_end >= ?2 AND x.nulls & 1024 = 0",
            None => "?2 IS NULL",
        },
        match f.until {
            Some(_) => "x.date_begin < ?3 AND x.nulls & 512 = 0",
            None => "?3 IS NULL",
        },
    ]
    .join(" AND ")
}

impl Db {
    /// [`Db::domains`] from `rollup_domains`; each domain's latest report from `reports`, by
    /// one lookup on its index.
    pub fn domains_rolled(&self, f: &Filter) -> Result<Vec<DomainSummary>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "WITH g AS (SELECT x.domain, SUM(x.reports) AS n, SUM(x.messages) AS m,
                    SUM(x.pass) AS pc,
                    MIN(CASE WHEN x.nulls & 512 = 0 THEN x.date_begin END) AS b,
                    MAX(CASE WHEN x.nulls & 1024 = 0 THEN x.date_end END) AS e
                  FROM rollup_domains x WHERE {}
                  GROUP BY x.domain)
             SELECT g.domain, g.n, g.m, g.pc, g.b, g.e, l.p, l.sp, l.pct
             FROM g JOIN reports l ON l.id =
                (SELECT id FROM reports r2 WHERE r2.domain = g.domain
                    AND (?2 IS NULL OR r2.date_end >= ?2) AND (?3 IS NULL OR r2.date_begin < ?3)
                 ORDER BY date_end DESC, date_begin DESC, org_name, report_id LIMIT 1)
             ORDER BY g.m DESC, g.domain LIMIT ?4",
            overlap(f)
        ))?;
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

    /// [`Db::sources`] from the rollups: the messages from `rollup_evidence` by (domain, source
    /// IP, header From) and what [`SourceSummary::count`] reads, the reports from
    /// `rollup_sources`.
    pub fn sources_rolled(&self, f: &Filter) -> Result<Vec<SourceSummary>, StoreError> {
        let (domain, since, until, limit) = filter_params(f);
        let mut out: Vec<SourceSummary> = Vec::new();
        // Summed here rather than by GROUP BY (a sort of every row): groups by their key
        // columns' bytes in a reused buffer, as the records' reader does.
        let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut buf = Vec::new();
        {
            let mut stmt = self.conn.prepare(&format!(
                "SELECT x.domain, x.source_ip, CASE WHEN x.nulls & 1 = 0 THEN x.header_from END,
                    CASE WHEN x.nulls & 64 = 0 THEN x.dkim END,
                    CASE WHEN x.nulls & 128 = 0 THEN x.spf END,
                    CASE WHEN x.nulls & 256 = 0 THEN x.disposition END, x.messages
                 FROM rollup_evidence x WHERE {}",
                overlap(f)
            ))?;
            let mut rows = stmt.query(params![domain, since, until])?;
            while let Some(r) = rows.next()? {
                buf.clear();
                for i in 0..3 {
                    key_bytes(&mut buf, r.get_ref(i)?);
                }
                let at = match index.get(buf.as_slice()) {
                    Some(&at) => at,
                    None => {
                        out.push(SourceSummary {
                            domain: r.get(0)?,
                            source_ip: r.get(1)?,
                            header_from: r.get(2)?,
                            messages: 0,
                            dmarc_pass: 0,
                            dkim_aligned: 0,
                            spf_aligned: 0,
                            quarantined: 0,
                            rejected: 0,
                            reports: 0,
                            failure_reports: 0,
                        });
                        index.insert(buf.clone(), out.len() - 1);
                        out.len() - 1
                    }
                };
                out[at].count(r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?);
            }
        }
        {
            let mut stmt = self.conn.prepare(&format!(
                "SELECT x.domain, x.source_ip, CASE WHEN x.nulls & 1 = 0 THEN x.header_from END,
                    x.reports
                 FROM rollup_sources x WHERE {}",
                overlap(f)
            ))?;
            let mut rows = stmt.query(params![domain, since, until])?;
            while let Some(r) = rows.next()? {
                buf.clear();
                for i in 0..3 {
                    key_bytes(&mut buf, r.get_ref(i)?);
                }
                if let Some(&at) = index.get(buf.as_slice()) {
                    let reports: u64 = r.get(3)?;
                    out[at].reports += reports;
                }
            }
        }
        self.finish_sources(out, limit)
    }

    /// The source IPs `domain`'s reports ending in [since, until) name, from `rollup_sources`.
    pub fn source_ips_rolled(
        &self,
        domain: &str,
        since: i64,
        until: i64,
    ) -> Result<std::collections::BTreeSet<String>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT DISTINCT source_ip FROM rollup_sources
             WHERE domain = ?1 AND date_end >= ?2 AND date_end < ?3 AND nulls & 1024 = 0",
        )?;
        let rows = stmt.query_map(params![domain, since, until], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
