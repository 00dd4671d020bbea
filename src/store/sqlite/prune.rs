//! `prune` on SQLite: what ended before the cutoffs is deleted in bounded batches, each batch its
//! own short unit of work (`BEGIN IMMEDIATE` … `COMMIT`), so that a `fetch` waiting to write gets
//! its turn between batches and `serve` (reading beside it in WAL mode) never waits on a long
//! transaction. Records go with their report, deleted first in the same batch (they have no
//! foreign key: schemas/0010_record_lists.sql), a TLS report's policies and failure details with
//! it (`ON DELETE CASCADE`), a kept input's failures with it; so each batch leaves the database
//! consistent, and an interrupted prune is finished by the
//! next. Freed pages are reused by later writes (the file does not shrink).

use rusqlite::params;

use super::Db;
use crate::store::{Cutoffs, Pruned, StoreError};

/// Records deleted (with their reports) per unit of work, at most (a report with more goes alone).
const BATCH_RECORDS: i64 = 20_000;

/// Failure reports, TLS reports or kept inputs deleted per unit of work.
const BATCH_ROWS: i64 = 1_000;

/// Aggregate reports that ended before ?1 (when stored, without a period).
const OLD_REPORT: &str = "(date_end < ?1 OR (date_end IS NULL AND ingested_at < ?1))";

/// The other kinds, as `(table, key, predicate on ?1)`, in the order they are pruned.
const OTHERS: [(&str, &str, &str); 3] = [
    (
        "failure_reports",
        "id",
        "coalesce(arrival_date, ingested_at) < ?1",
    ),
    ("tls_reports", "id", "coalesce(date_end, ingested_at) < ?1"),
    ("reject_inputs", "key", "first_seen < ?1"),
];

impl Db {
    /// See [`crate::store::Store::prune`].
    pub fn prune(&self, cutoffs: Cutoffs, dry_run: bool) -> Result<Pruned, StoreError> {
        let at = [cutoffs.failures, cutoffs.reports, cutoffs.rejects()];
        if dry_run {
            let (reports, records): (i64, i64) = self.conn.query_row(
                &format!(
                    "SELECT count(*), ifnull(sum(record_count), 0) FROM reports WHERE {OLD_REPORT}"
                ),
                [cutoffs.reports],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let mut other = [0u64; 3];
            for (n, ((table, _, old), cutoff)) in other.iter_mut().zip(OTHERS.iter().zip(at)) {
                *n = self.conn.query_row(
                    &format!("SELECT count(*) FROM {table} WHERE {old}"),
                    [cutoff],
                    |r| r.get(0),
                )?;
            }
            return Ok(Pruned {
                aggregate_reports: count(reports),
                records: count(records),
                failure_reports: other[0],
                tls_reports: other[1],
                reject_inputs: other[2],
                rollups: rollups(&self.conn, cutoffs.reports, true)?,
                partitions: None,
            });
        }
        let mut pruned = Pruned::default();
        // Aggregate reports, oldest ids first, in batches of about BATCH_RECORDS records.
        loop {
            let tx = self.begin()?;
            let mut last: Option<i64> = None;
            let (mut reports, mut records) = (0u64, 0i64);
            {
                let mut stmt = tx.tx.prepare_cached(&format!(
                    "SELECT id, record_count FROM reports WHERE {OLD_REPORT} ORDER BY id LIMIT ?2"
                ))?;
                let mut rows = stmt.query(params![cutoffs.reports, BATCH_ROWS])?;
                while let Some(row) = rows.next()? {
                    let n: i64 = row.get(1)?;
                    if last.is_some() && records + n > BATCH_RECORDS {
                        break;
                    }
                    last = Some(row.get(0)?);
                    reports += 1;
                    records += n;
                }
            }
            let Some(last) = last else { break };
            // Their records first: nothing cascades (schemas/0010_record_lists.sql).
            tx.tx.execute(
                &format!(
                    "DELETE FROM record_blocks WHERE report IN
                         (SELECT id FROM reports WHERE id <= ?2 AND {OLD_REPORT})"
                ),
                params![cutoffs.reports, last],
            )?;
            tx.tx.execute(
                &format!("DELETE FROM reports WHERE id <= ?2 AND {OLD_REPORT}"),
                params![cutoffs.reports, last],
            )?;
            tx.commit()?;
            pruned.aggregate_reports += reports;
            pruned.records += count(records);
        }
        // rollups: rows of days before the cutoff's day go too, in a unit of work of their own.
        let tx = self.begin()?;
        pruned.rollups = rollups(&tx.tx, cutoffs.reports, false)?;
        tx.commit()?;
        for (i, ((table, key, old), cutoff)) in OTHERS.iter().zip(at).enumerate() {
            loop {
                let tx = self.begin()?;
                let gone = tx.tx.execute(
                    &format!(
                        "DELETE FROM {table} WHERE {key} IN
                            (SELECT {key} FROM {table} WHERE {old} LIMIT ?2)"
                    ),
                    params![cutoff, BATCH_ROWS],
                )?;
                tx.commit()?;
                let gone = gone as u64;
                match i {
                    0 => pruned.failure_reports += gone,
                    1 => pruned.tls_reports += gone,
                    _ => pruned.reject_inputs += gone,
                }
                if gone < BATCH_ROWS as u64 {
                    break;
                }
            }
        }
        Ok(pruned)
    }
}

/// Deletes (or, dry, counts) the rollup rows of days before the day `cutoff` starts; how many
/// ([`super::rollups::prune`]).
pub fn rollups(conn: &rusqlite::Connection, cutoff: i64, dry_run: bool) -> Result<u64, StoreError> {
    super::rollups::prune(conn, cutoff, dry_run)
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
