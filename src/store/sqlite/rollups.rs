//! SQLite's statements for the rollups (`schemas/0012_rollups.sql`,
//! `0016_rollup_quarters.sql`, `0017_rollup_thirds.sql`): [`RollupSql`] on the unit of work's connection and
//! [`RollupRead`] on the store's, under the algorithms of
//! [`crate::store::rollups`] (what the tier holds, and how it is kept and read, is described
//! there). SQLite has one writer at a time: the clock is one row (`rollup_clock`), and a fold
//! deletes the parts of the days it folded by range.

use super::records_of::JOIN;
use std::sync::OnceLock;

use rusqlite::{Connection, ToSql, params, params_from_iter};

use super::evidence::{STORED_COLUMNS, STORED_COUNT, stored_record, text};
use super::{Db, Tx};
use crate::model::{AggregateReport, EvidenceKey, IpEvidence};
use crate::store::rollups::{
    self, DAY, EvidenceAndDays, NO_DAY, Presum, RollupRead, RollupSql, Rows, StoredReport, Table,
    quarter_span,
};
use crate::store::source_groups::SourceGroups;
use crate::store::{Block, Detail, StoreError, StoredRecord};

pub(super) use crate::store::rollups::{Pending, from_records};

/// A stored blob that cannot be read: a damaged database.
fn unreadable() -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Blob,
        "unreadable rollup row".into(),
    )
}

/// The upkeep's statements on a unit of work's connection.
pub(super) struct Sql<'c>(pub(super) &'c Connection);

impl RollupSql for Sql<'_> {
    fn unreadable() -> StoreError {
        unreadable().into()
    }

    fn day_row<R>(
        &mut self,
        domain: &str,
        day: i64,
        f: impl FnOnce(Option<&[u8]>) -> R,
    ) -> Result<R, StoreError> {
        let mut stmt = self
            .0
            .prepare_cached("SELECT sums FROM rollup_days WHERE domain = ?1 AND day = ?2")?;
        let mut found = stmt.query(params![domain, day])?;
        Ok(match found.next()? {
            Some(r) => f(Some(r.get_ref(0)?.as_blob().map_err(|_| unreadable())?)),
            None => f(None),
        })
    }

    fn put_row(
        &mut self,
        rows: Rows,
        domain: &str,
        at: i64,
        blob: &[u8],
    ) -> Result<(), StoreError> {
        let conn = self.0;
        match (rows, blob.is_empty()) {
            (Rows::Days, true) => conn
                .prepare_cached("DELETE FROM rollup_days WHERE domain = ?1 AND day = ?2")?
                .execute(params![domain, at])?,
            (Rows::Days, false) => conn
                .prepare_cached(
                    "INSERT OR REPLACE INTO rollup_days (domain, day, sums) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![domain, at, blob])?,
            (Rows::Thirds(_), true) => conn
                .prepare_cached("DELETE FROM rollup_thirds WHERE domain = ?1 AND third = ?2")?
                .execute(params![domain, at])?,
            (Rows::Thirds(end), false) => conn
                .prepare_cached(
                    "INSERT OR REPLACE INTO rollup_thirds (domain, third, end_day, sums)
                     VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![domain, at, end, blob])?,
            (Rows::Months(_), true) => conn
                .prepare_cached("DELETE FROM rollup_months WHERE domain = ?1 AND month = ?2")?
                .execute(params![domain, at])?,
            (Rows::Months(end), false) => conn
                .prepare_cached(
                    "INSERT OR REPLACE INTO rollup_months (domain, month, end_day, sums)
                     VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![domain, at, end, blob])?,
            (Rows::Quarters(_), true) => conn
                .prepare_cached("DELETE FROM rollup_quarters WHERE domain = ?1 AND quarter = ?2")?
                .execute(params![domain, at])?,
            (Rows::Quarters(end), false) => conn
                .prepare_cached(
                    "INSERT OR REPLACE INTO rollup_quarters (domain, quarter, end_day, sums)
                     VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![domain, at, end, blob])?,
        };
        Ok(())
    }

    fn rows_of(
        &mut self,
        table: Table,
        domain: &str,
        from: i64,
        to: i64,
        mut f: impl FnMut(&[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let sql = match table {
            Table::Days => {
                "SELECT sums FROM rollup_days WHERE domain = ?1 AND day >= ?2 AND day < ?3"
            }
            Table::Parts => {
                "SELECT sums FROM rollup_parts WHERE domain = ?1 AND day >= ?2 AND day < ?3"
            }
            Table::Thirds => {
                "SELECT sums FROM rollup_thirds WHERE domain = ?1 AND third >= ?2 AND end_day <= ?3"
            }
            Table::Months => {
                "SELECT sums FROM rollup_months WHERE domain = ?1 AND month >= ?2 AND end_day <= ?3"
            }
            Table::Quarters => {
                "SELECT sums FROM rollup_quarters
                 WHERE domain = ?1 AND quarter >= ?2 AND end_day <= ?3"
            }
        };
        let mut stmt = self.0.prepare_cached(sql)?;
        let mut rows = stmt.query(params![domain, from, to])?;
        while let Some(r) = rows.next()? {
            f(r.get_ref(0)?.as_blob().map_err(|_| unreadable())?)?;
        }
        Ok(())
    }

    fn any_stale(&mut self, domain: &str, from: i64, to: i64) -> Result<bool, StoreError> {
        Ok(self
            .0
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM rollup_stale
                 WHERE domain = ?1 AND month >= ?2 AND end_day <= ?3)",
            )?
            .query_row(params![domain, from, to], |r| r.get(0))?)
    }

    fn has_quarter(&mut self, domain: &str, start: i64) -> Result<bool, StoreError> {
        Ok(self
            .0
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM rollup_quarters WHERE domain = ?1 AND quarter = ?2)",
            )?
            .query_row(params![domain, start], |r| r.get(0))?)
    }

    fn month_rows(&mut self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(self
            .0
            .prepare("SELECT domain, month FROM rollup_months ORDER BY domain, month")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?)
    }

    fn take_parts(
        &mut self,
        domain: &str,
        from: i64,
        to: i64,
        mut f: impl FnMut(i64, &[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut stmt = self.0.prepare_cached(
            "SELECT day, sums FROM rollup_parts WHERE domain = ?1 AND day >= ?2 AND day < ?3",
        )?;
        let mut rows = stmt.query(params![domain, from, to])?;
        while let Some(r) = rows.next()? {
            f(
                r.get(0)?,
                r.get_ref(1)?.as_blob().map_err(|_| unreadable())?,
            )?;
        }
        drop(rows);
        // The only writer: the parts of these days are those just read.
        self.0
            .prepare_cached(
                "DELETE FROM rollup_parts WHERE domain = ?1 AND day >= ?2 AND day < ?3",
            )?
            .execute(params![domain, from, to])?;
        Ok(())
    }

    fn drop_parts(&mut self, domain: &str, day: i64) -> Result<(), StoreError> {
        self.0
            .prepare_cached("DELETE FROM rollup_parts WHERE domain = ?1 AND day = ?2")?
            .execute(params![domain, day])?;
        Ok(())
    }

    /// `OR FAIL`, here and in [`Self::add_parts`]: no statement journal (`super::ingest`'s docs).
    fn add_part(&mut self, domain: &str, day: i64, blob: &[u8]) -> Result<i64, StoreError> {
        self.0
            .prepare_cached(
                "INSERT OR FAIL INTO rollup_parts (domain, day, sums) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![domain, day, blob])?;
        Ok(self
            .0
            .prepare_cached("SELECT count(*) FROM rollup_parts WHERE domain = ?1 AND day = ?2")?
            .query_row(params![domain, day], |r| r.get(0))?)
    }

    fn add_parts(&mut self, parts: &[(&str, i64, &[u8])]) -> Result<Vec<i64>, StoreError> {
        static INSERT: Many = Many::new();
        static COUNT: Many = Many::new();
        let mut counts = Vec::with_capacity(parts.len());
        for run in runs(parts) {
            let sql = INSERT.sql(run.len(), |n| {
                format!(
                    "INSERT OR FAIL INTO rollup_parts (domain, day, sums) VALUES {}",
                    vec!["(?, ?, ?)"; n].join(", ")
                )
            });
            let values = run
                .iter()
                .flat_map(|(domain, day, blob)| [domain as &dyn ToSql, day, blob]);
            self.0
                .prepare_cached(sql)?
                .execute(params_from_iter(values))?;
            // Each day's parts counted in one statement for the run (in the order of `run`).
            let sql = COUNT.sql(run.len(), |n| {
                format!(
                    "SELECT v.column1, v.column2, (SELECT count(*) FROM rollup_parts p
                        WHERE p.domain = v.column1 AND p.day = v.column2)
                     FROM (VALUES {}) v",
                    vec!["(?, ?)"; n].join(", ")
                )
            });
            let keys = run
                .iter()
                .flat_map(|(domain, day, _)| [domain as &dyn ToSql, day]);
            let mut stmt = self.0.prepare_cached(sql)?;
            let mut rows = stmt.query(params_from_iter(keys))?;
            let start = counts.len();
            while let Some(r) = rows.next()? {
                let (domain, day, n): (&str, i64, i64) = (
                    r.get_ref(0)?.as_str().map_err(|_| unreadable())?,
                    r.get(1)?,
                    r.get(2)?,
                );
                // In the order of the VALUES (SQLite's), checked rather than assumed.
                match run.get(counts.len() - start) {
                    Some((d, k, _)) if *d == domain && *k == day => counts.push(n),
                    _ => return Err(unreadable().into()),
                }
            }
            if counts.len() - start != run.len() {
                return Err(unreadable().into());
            }
        }
        Ok(counts)
    }

    fn tick(&mut self) -> Result<i64, StoreError> {
        Ok(self
            .0
            .prepare_cached("UPDATE rollup_clock SET n = n + 1 RETURNING n")?
            .query_row([], |r| r.get(0))?)
    }

    fn mark_stale(
        &mut self,
        domain: &str,
        start: i64,
        end: i64,
        clock: i64,
    ) -> Result<(), StoreError> {
        self.0
            .prepare_cached("DELETE FROM rollup_months WHERE domain = ?1 AND month = ?2")?
            .execute(params![domain, start])?;
        self.0
            .prepare_cached(
                "DELETE FROM rollup_thirds WHERE domain = ?1 AND third >= ?2 AND third < ?3",
            )?
            .execute(params![domain, start, end])?;
        if let Some((quarter, _)) = quarter_span(start) {
            self.put_row(Rows::Quarters(0), domain, quarter, &[])?;
        }
        self.0
            .prepare_cached(
                "INSERT INTO rollup_stale (domain, month, end_day, touched) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (domain, month) DO UPDATE SET touched = excluded.touched",
            )?
            .execute(params![domain, start, end, clock])?;
        Ok(())
    }

    fn mark_stale_all(
        &mut self,
        months: &[(&str, i64, i64)],
        clock: i64,
    ) -> Result<(), StoreError> {
        static DELETE: Many = Many::new();
        static THIRDS: Many = Many::new();
        static QUARTERS: Many = Many::new();
        static STALE: Many = Many::new();
        for run in runs(months) {
            // An OR of (domain, month) keys, each found through the index, not a row value
            // `IN (VALUES …)`, which SQLite answers by scanning the table.
            let sql = DELETE.sql(run.len(), |n| {
                format!(
                    "DELETE FROM rollup_months WHERE {}",
                    vec!["(domain = ? AND month = ?)"; n].join(" OR ")
                )
            });
            let keys = run
                .iter()
                .flat_map(|(domain, start, _)| [domain as &dyn ToSql, start]);
            self.0
                .prepare_cached(sql)?
                .execute(params_from_iter(keys))?;
            let sql = THIRDS.sql(run.len(), |n| {
                format!(
                    "DELETE FROM rollup_thirds WHERE {}",
                    vec!["(domain = ? AND third >= ? AND third < ?)"; n].join(" OR ")
                )
            });
            let keys = run
                .iter()
                .flat_map(|(domain, start, end)| [domain as &dyn ToSql, start, end]);
            self.0
                .prepare_cached(sql)?
                .execute(params_from_iter(keys))?;
            // The quarters holding them are no longer their months' sum (each once: a domain's
            // months come in order).
            let mut quarters: Vec<(&str, i64)> = run
                .iter()
                .filter_map(|(domain, start, _)| Some((*domain, quarter_span(*start)?.0)))
                .collect();
            quarters.dedup();
            // In runs of their own: fewer than the months (a power of two), or none.
            for keys in runs(&quarters) {
                let sql = QUARTERS.sql(keys.len(), |n| {
                    format!(
                        "DELETE FROM rollup_quarters WHERE {}",
                        vec!["(domain = ? AND quarter = ?)"; n].join(" OR ")
                    )
                });
                let keys = keys
                    .iter()
                    .flat_map(|(domain, quarter)| [domain as &dyn ToSql, quarter]);
                self.0
                    .prepare_cached(sql)?
                    .execute(params_from_iter(keys))?;
            }
            let sql = STALE.sql(run.len(), |n| {
                format!(
                    "INSERT INTO rollup_stale (domain, month, end_day, touched) VALUES {}
                     ON CONFLICT (domain, month) DO UPDATE SET touched = excluded.touched",
                    vec!["(?, ?, ?, ?)"; n].join(", ")
                )
            });
            let values = run
                .iter()
                .flat_map(|(domain, start, end)| [domain as &dyn ToSql, start, end, &clock]);
            self.0
                .prepare_cached(sql)?
                .execute(params_from_iter(values))?;
        }
        Ok(())
    }

    fn stale_until(&mut self, before: i64) -> Result<Vec<(String, i64, i64)>, StoreError> {
        Ok(self
            .0
            .prepare_cached("SELECT domain, month, end_day FROM rollup_stale WHERE touched <= ?1")?
            .query_map([before], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?)
    }

    fn unstale(&mut self, domain: &str, start: i64) -> Result<(), StoreError> {
        self.0
            .prepare_cached("DELETE FROM rollup_stale WHERE domain = ?1 AND month = ?2")?
            .execute(params![domain, start])?;
        Ok(())
    }

    fn records_of_day(
        &mut self,
        domain: &str,
        day: i64,
        mut f: impl FnMut(i64, &StoredRecord<'_>, &str, Option<i64>, Option<i64>, u64),
    ) -> Result<(), StoreError> {
        let (span, from, to) = match day {
            NO_DAY => (
                "r.date_end IS NULL AND ?2 IS NULL AND ?3 IS NULL",
                None,
                None,
            ),
            d => (
                "r.date_end >= ?2 AND r.date_end < ?3",
                Some(d * DAY),
                Some((d + 1) * DAY),
            ),
        };
        let mut stmt = self.0.prepare_cached(&format!(
            "SELECT {STORED_COLUMNS}, r.org_name, r.date_begin, r.date_end, c.count, r.id
             FROM reports r {JOIN}
             WHERE r.domain = ?1 AND {span}"
        ))?;
        let mut rows = stmt.query(params![domain, from, to])?;
        while let Some(r) = rows.next()? {
            let stored = stored_record(r, 0, domain)?;
            let org = text(r, STORED_COUNT)?.unwrap_or_default();
            f(
                r.get(STORED_COUNT + 4)?,
                &stored,
                org,
                r.get(STORED_COUNT + 1)?,
                r.get(STORED_COUNT + 2)?,
                r.get(STORED_COUNT + 3)?,
            );
        }
        Ok(())
    }

    fn clear(&mut self) -> Result<(), StoreError> {
        let conn = self.0;
        conn.execute("DELETE FROM rollup_days", [])?;
        conn.execute("DELETE FROM rollup_months", [])?;
        conn.execute("DELETE FROM rollup_thirds", [])?;
        conn.execute("DELETE FROM rollup_quarters", [])?;
        conn.execute("DELETE FROM rollup_stale", [])?;
        conn.execute("DELETE FROM rollup_parts", [])?;
        Ok(())
    }

    fn report_days(&mut self) -> Result<Vec<(String, i64)>, StoreError> {
        let days: Vec<(String, Option<i64>)> = self
            .0
            .prepare(
                "SELECT DISTINCT domain, CASE WHEN date_end IS NOT NULL
                    THEN (date_end - ((date_end % 86400) + 86400) % 86400) / 86400 END
                 FROM reports ORDER BY 1, 2",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(days
            .into_iter()
            .map(|(domain, day)| (domain, day.unwrap_or(NO_DAY)))
            .collect())
    }

    fn prune_rows(&mut self, day: i64, dry_run: bool) -> Result<u64, StoreError> {
        let conn = self.0;
        let days = "FROM rollup_days WHERE day < ?1 AND day > -9223372036854775808";
        let thirds = "FROM rollup_thirds WHERE end_day <= ?1";
        let months = "FROM rollup_months WHERE end_day <= ?1";
        let quarters = "FROM rollup_quarters WHERE end_day <= ?1";
        // A stale month is counted as the row it stands for (whether a unit of work sums it
        // again before this one does not change the count).
        let stale = "FROM rollup_stale WHERE end_day <= ?1";
        if dry_run {
            let mut n = 0;
            for rows in [days, thirds, months, quarters, stale] {
                let c: i64 =
                    conn.query_row(&format!("SELECT count(*) {rows}"), [day], |r| r.get(0))?;
                n += u64::try_from(c).unwrap_or(0);
            }
            return Ok(n);
        }
        let mut gone = conn.execute(&format!("DELETE {days}"), [day])? as u64;
        gone += conn.execute(&format!("DELETE {thirds}"), [day])? as u64;
        gone += conn.execute(&format!("DELETE {months}"), [day])? as u64;
        gone += conn.execute(&format!("DELETE {quarters}"), [day])? as u64;
        gone += conn.execute(&format!("DELETE {stale}"), [day])? as u64;
        // A third or quarter the cutoff splits is no longer its days' or months' sum.
        conn.execute("DELETE FROM rollup_thirds WHERE third < ?1", [day])?;
        conn.execute("DELETE FROM rollup_quarters WHERE quarter < ?1", [day])?;
        conn.execute(
            "DELETE FROM rollup_parts WHERE day < ?1 AND day > -9223372036854775808",
            [day],
        )?;
        Ok(gone)
    }

    fn months_across(&mut self, day: i64) -> Result<Vec<(String, i64, i64)>, StoreError> {
        Ok(self
            .0
            .prepare(
                "SELECT domain, month, end_day FROM rollup_months WHERE month < ?1 AND end_day > ?1",
            )?
            .query_map([day], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?)
    }

    fn domains_on(&mut self, day: i64) -> Result<Vec<String>, StoreError> {
        Ok(self
            .0
            .prepare("SELECT domain FROM rollup_days WHERE day = ?1")?
            .query_map([day], |r| r.get(0))?
            .collect::<Result<_, _>>()?)
    }
}

/// Rows a statement of the upkeep writes at most (its SQL for 1, 2, 4, … of them built once).
const AT_ONCE: usize = 32;

/// A statement of 1, 2, 4, … up to [`AT_ONCE`] rows: each compiled is one of a few, not one for
/// every length a unit of work may have.
struct Many(OnceLock<Vec<String>>);

impl Many {
    const fn new() -> Many {
        Many(OnceLock::new())
    }

    /// The SQL of `n` rows (a power of two), as `sql` writes it.
    fn sql(&self, n: usize, sql: impl Fn(usize) -> String) -> &str {
        let all = self
            .0
            .get_or_init(|| (0..=AT_ONCE.ilog2()).map(|k| sql(1 << k)).collect());
        &all[n.ilog2() as usize]
    }
}

/// `items` in runs of a power of two, up to [`AT_ONCE`] (a tail of 13 goes as 8 + 4 + 1).
fn runs<T>(items: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (run, more) = rest.split_at(1 << rest.len().min(AT_ONCE).ilog2());
        rest = more;
        Some(run)
    })
}

/// Deletes the rollups and sums every stored report again (the migration's back-fill).
pub(super) fn rebuild(conn: &Connection) -> Result<(), StoreError> {
    rollups::rebuild(&mut Sql(conn))
}

/// The back-fill a migration of the rollups needs ([`rollups::back_fill`]).
pub(super) fn back_fill(conn: &Connection, need: rollups::BackFill) -> Result<(), StoreError> {
    rollups::back_fill(&mut Sql(conn), need)
}

/// `prune`'s part ([`rollups::prune`]): how many rows went (or would go).
pub(super) fn prune(conn: &Connection, cutoff: i64, dry_run: bool) -> Result<u64, StoreError> {
    rollups::prune(&mut Sql(conn), cutoff, dry_run)
}

impl Tx<'_> {
    /// Gives this unit of work the sums of the batch it is to store.
    pub(in crate::store) fn use_presum(&self, p: Presum) {
        self.presum.replace(Some(Box::new(p)));
    }

    /// Adds the reports this unit of work stored to the rollups' pending sums
    /// ([`Pending::stored`]).
    pub(super) fn roll_up(&self, reports: &[(i64, &AggregateReport, Option<&Block>)]) {
        let pre = self.presum.take();
        // A report with a block of more records than it holds had them freed once encoded.
        let reports = reports.iter().map(|&(_, r, block)| match block {
            Some(b) if b.len() != r.records.len() => StoredReport::Encoded(r, b),
            _ => StoredReport::Records(r),
        });
        self.rollups.borrow_mut().stored(pre, reports);
    }

    /// Marks `domain`'s day of `end` (a report of it is about to be deleted in this unit of
    /// work) to be summed again from its records at commit.
    pub(super) fn forget_day(&self, domain: &str, end: Option<i64>) {
        self.rollups.borrow_mut().forget_day(domain, end);
    }

    /// Writes the pending sums (at commit).
    pub(super) fn keep_rollups(&mut self) -> Result<(), StoreError> {
        let p = self.rollups.take();
        rollups::write(&mut Sql(&self.tx), p, self.run_clock)
    }

    /// Deletes the rollups and sums every stored report again (after `migrate --to` copied the
    /// reports in).
    pub fn rebuild_rollups(&mut self) -> Result<(), StoreError> {
        self.rollups.take();
        rebuild(&self.tx)
    }
}

/// The reader's statements on the store's connection.
struct Read<'d>(&'d Db);

impl RollupRead for Read<'_> {
    fn stale_in(
        &mut self,
        domain: Option<&str>,
        months: (i64, i64),
    ) -> Result<Vec<(String, i64, i64)>, StoreError> {
        Ok(self
            .0
            .conn
            .prepare_cached(&format!(
                "SELECT domain, month, end_day FROM rollup_stale
                 WHERE {} AND month >= ?2 AND end_day <= ?3",
                of_domain(domain)
            ))?
            .query_map(params![domain, months.0, months.1], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<_, _>>()?)
    }

    fn unreadable() -> StoreError {
        unreadable().into()
    }

    fn blobs(
        &mut self,
        table: Table,
        domain: Option<&str>,
        (a, b): (i64, i64),
        mut f: impl FnMut(&str, &[u8]) -> Option<()>,
    ) -> Result<(), StoreError> {
        let of_domain = of_domain(domain);
        let sql = match table {
            Table::Quarters => format!(
                "SELECT domain, sums FROM rollup_quarters
                 WHERE {of_domain} AND quarter >= ?2 AND end_day <= ?3"
            ),
            Table::Months => format!(
                "SELECT domain, sums FROM rollup_months m
                 WHERE {of_domain} AND month >= ?2 AND end_day <= ?3
                 AND NOT EXISTS (SELECT 1 FROM rollup_quarters q
                    WHERE q.domain = m.domain AND q.quarter <= m.month AND q.end_day >= m.end_day
                    AND q.quarter >= ?2 AND q.end_day <= ?3)"
            ),
            Table::Thirds => format!(
                "SELECT domain, sums FROM rollup_thirds
                 WHERE {of_domain} AND third >= ?2 AND end_day <= ?3"
            ),
            Table::Days | Table::Parts => format!(
                "SELECT domain, sums FROM {} d
                 WHERE {of_domain} AND day >= ?2 AND day < ?3
                 AND NOT EXISTS (SELECT 1 FROM rollup_thirds t
                    WHERE t.domain = d.domain AND t.third <= d.day AND t.end_day > d.day
                    AND t.third >= ?2 AND t.end_day <= ?3)",
                if table == Table::Days {
                    "rollup_days"
                } else {
                    "rollup_parts"
                }
            ),
        };
        let mut stmt = self.0.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params![domain, a, b])?;
        while let Some(r) = rows.next()? {
            let d = r.get_ref(0)?.as_str().map_err(|_| unreadable())?;
            f(d, r.get_ref(1)?.as_blob().map_err(|_| unreadable())?).ok_or_else(unreadable)?;
        }
        Ok(())
    }

    fn of_keys(
        &mut self,
        domain: &str,
        since: i64,
        until: i64,
        keys: &[EvidenceKey],
    ) -> Result<Vec<IpEvidence>, StoreError> {
        self.0
            .of_keys_from_records(domain, Some(since), Some(until), keys)
    }

    fn source_groups(
        &mut self,
        domain: Option<&str>,
        since: i64,
        until: i64,
    ) -> Result<SourceGroups, StoreError> {
        super::listings::source_groups(
            &self.0.conn,
            domain,
            super::listings::Window::Ends { since, until },
            (i64::MIN, i64::MAX),
        )
    }

    fn per_ip(
        &mut self,
        domain: Option<&str>,
        since: i64,
        until: i64,
        detail: Detail,
    ) -> Result<EvidenceAndDays, StoreError> {
        self.0
            .evidence_per_ip(domain, Some(since), Some(until), detail)
    }
}

/// The condition on the domain, spelled out only when given (`IS NULL OR …` would keep the
/// planner from the key).
fn of_domain(domain: Option<&str>) -> &'static str {
    if domain.is_some() {
        "domain = ?1"
    } else {
        "?1 IS NULL"
    }
}

impl Db {
    /// [`Db::evidence_of_keys`] from the rollups ([`rollups::of_keys_rolled`]), when the window
    /// holds a whole day (else `None`).
    pub(super) fn of_keys_rolled(
        &self,
        domain: &str,
        since: Option<i64>,
        until: Option<i64>,
        keys: &[EvidenceKey],
    ) -> Result<Option<Vec<IpEvidence>>, StoreError> {
        self.in_snapshot(|read| rollups::of_keys_rolled(read, domain, since, until, keys))
    }

    /// [`Db::sources`]' groups from the rollups ([`rollups::sources_rolled`]), when they answer
    /// the window (else `None`).
    pub(super) fn sources_rolled(
        &self,
        domain: Option<&str>,
        since: Option<i64>,
        until: Option<i64>,
    ) -> Result<Option<SourceGroups>, StoreError> {
        self.in_snapshot(|read| rollups::sources_rolled(read, domain, since, until))
    }

    /// [`Db::evidence_in`] from the rollups ([`rollups::evidence_rolled`]), when the window holds
    /// a whole day (else `None`).
    pub(super) fn evidence_rolled(
        &self,
        domain: Option<&str>,
        since: Option<i64>,
        until: Option<i64>,
        detail: Detail,
    ) -> Result<Option<EvidenceAndDays>, StoreError> {
        self.in_snapshot(|read| rollups::evidence_rolled(read, domain, since, until, detail))
    }

    /// What `read` answers from the rollups, every row in one snapshot (a writer settling a
    /// month or summing a quarter between two of the reads would have one counted twice or not
    /// at all): in the transaction already open, else in one of its own.
    fn in_snapshot<T>(
        &self,
        read: impl FnOnce(&mut Read<'_>) -> Result<Option<T>, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        if !self.conn.is_autocommit() {
            return read(&mut Read(self));
        }
        self.conn.execute_batch("BEGIN DEFERRED")?;
        let answer = read(&mut Read(self));
        self.conn
            .execute_batch(if answer.is_ok() { "COMMIT" } else { "ROLLBACK" })?;
        answer
    }
}
