//! PostgreSQL's statements for the rollups (`schemas/postgres/0005_rollups.sql`,
//! `0006_rollup_quarters.sql`, `0007_rollup_thirds.sql`): [`RollupSql`]
//! in a unit of work's transaction and [`RollupRead`] in a reader's, under the algorithms of
//! [`crate::store::rollups`] (what the tier holds, and how it is kept and read, is described
//! there).
//!
//! Several writers commit at once here (SQLite had one), so the tier is kept under one
//! transaction-level advisory lock per (domain, month) (the month's first day; reports without
//! an end have a key of their own, [`NO_DAY`]), or rather per one of [`ROLLUP_LOCKS`] keys the
//! pairs are hashed into ([`key`]): a key stands for every pair hashed to it, so what holds below
//! of a pair's lock holds of it (two writers of different pairs may wait for each other, never
//! miss each other):
//! - a unit of work locks, at commit and before writing any rollup, every key it writes to, in
//!   one statement, in the keys' order (so two writers never wait for each other in a circle):
//!   SHARED where it only appends parts (writers appending to the same days at once do not wait
//!   for each other), EXCLUSIVE where it sums a day again from its records (a replaced copy, a
//!   pruned undated report). Its records went in before, unlocked;
//! - folding a day's parts into its row, and settling a stale month, need the key EXCLUSIVE and
//!   only try for it (`pg_try_advisory_xact_lock`, never waiting; a transaction's own SHARED
//!   lock does not stand in its way): when another writer holds it, someone folds later. The
//!   parts folded are deleted by their ids, those read, never by range;
//! - so while a transaction holds a key EXCLUSIVE no other transaction that writes that month's
//!   rollups is between taking its lock and committing, and every one that wrote them before has
//!   committed, its records with its parts (a transaction's locks go after its commit is
//!   visible). Under READ COMMITTED each statement sees a new snapshot, but what a day's records
//!   and parts hold cannot change between the statements of the holder: summing a dirty day from
//!   its records and deleting its parts in two statements neither loses nor counts twice a
//!   concurrent writer's reports (one whose records are not committed yet appends its parts
//!   after the holder commits, and they are not in the holder's sum);
//! - a month row and its days: a writer deletes the month's row and lists it stale in its own
//!   transaction; a settler (EXCLUSIVE) folds, writes the month's row and takes it off the list
//!   in its own. Every committed state has either the month's row or its stale mark, never both,
//!   and readers read every rollup row they use (stale list, months, days, parts, and the
//!   records of a window's partial days) in ONE snapshot: a REPEATABLE READ READ ONLY
//!   transaction ([`evidence_in`]).
//! - a month listed stale is settled by a later unit of work that holds its key EXCLUSIVE and
//!   finds it still listed (checked under the lock);
//! - the rows of a month's thirds are written with its row and deleted with it, so the same
//!   holds of them;
//! - a quarter row is deleted with the stale mark of any of its months (under that month's
//!   lock), and written again only by a transaction that holds all of its months' keys
//!   EXCLUSIVE and finds none of them stale (checked under the locks): no writer can be adding
//!   to one of them meanwhile, so a committed quarter row is its month rows' sum.
//!
//! What is not locked: the back-fill and `migrate --to` (one transaction before anyone else
//! writes), and the rows `prune` deletes wholly before its cutoff (a report older than the
//! retention stored while `prune` runs may leave its parts without their stale mark, read only
//! when a window reaches back before the cutoff).

use std::collections::{BTreeSet, HashMap};

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, GenericClient, IsolationLevel, Statement, Transaction};

use super::{PgError, count};
use crate::model::{
    AggregateReport, DayCount, Evidence, EvidenceKey, Filter, IpEvidence, SourceSummary,
};
use crate::store::rollups::{
    self, DAY, EvidenceAndDays, NO_DAY, Pending, Presum, RollupRead, RollupSql, Rows, StoredReport,
    Table, quarter_span,
};
use crate::store::source_groups::SourceGroups;
use crate::store::{Detail, StoreError, StoredRecord};

/// A stored blob that cannot be read: a damaged database.
fn unreadable() -> StoreError {
    PgError::Unreadable.into()
}

/// The error as a [`PgError`], for callers that return one (the migration's back-fill): the
/// statements here fail only with those.
pub(super) fn pg_error(e: StoreError) -> PgError {
    match e {
        StoreError::Postgres(e) => e,
        _ => PgError::Unreadable,
    }
}

/// How many advisory lock keys the rollups' (domain, month) pairs are hashed into: what a unit
/// of work holds at most, however many pairs it writes to. Advisory locks take room in the
/// server's shared lock table (`max_locks_per_transaction` × `max_connections`: 6,400 with
/// PostgreSQL's defaults), and with a lock a pair one `ingest` of the real corpus (13 years of
/// reports for hundreds of domains) held 12,763 at once: a server with its defaults answered
/// "out of shared memory". Four writers at once now hold at most 2,048.
const ROLLUP_LOCKS: i64 = 512;

/// The first of the rollups' lock keys ("dmarcwr" and a zero byte), apart from the migrations'
/// and the other named locks.
const ROLLUP_LOCK_BASE: i64 = 0x646d_6172_6377_7200;

/// The advisory lock key of (`domain`, month at `month`), as SQL over `$n` (a domain) and
/// `$m` (a month): one of [`ROLLUP_LOCKS`].
fn key(domain: &str, month: &str) -> String {
    const _: () =
        assert!(ROLLUP_LOCKS.count_ones() == 1 && ROLLUP_LOCK_BASE & (ROLLUP_LOCKS - 1) == 0);
    format!(
        "({ROLLUP_LOCK_BASE}::int8 + (hashtextextended('dmarc-warden rollups ' || {domain} || ' ' \
         || {month}::int8::text, 0) & {}))",
        ROLLUP_LOCKS - 1
    )
}

/// The upkeep's statements in a unit of work's transaction (or any client).
pub(super) struct Sql<'c, C: GenericClient>(pub(super) &'c mut C);

impl<C: GenericClient> RollupSql for Sql<'_, C> {
    fn unreadable() -> StoreError {
        unreadable()
    }

    fn day_row<R>(
        &mut self,
        domain: &str,
        day: i64,
        f: impl FnOnce(Option<&[u8]>) -> R,
    ) -> Result<R, StoreError> {
        let row = self
            .0
            .query_opt(
                "SELECT sums FROM rollup_days WHERE domain = $1 AND day = $2",
                &[&domain, &day],
            )
            .map_err(PgError::from)?;
        Ok(f(row.as_ref().map(|r| r.get::<_, &[u8]>(0))))
    }

    fn put_row(
        &mut self,
        rows: Rows,
        domain: &str,
        at: i64,
        blob: &[u8],
    ) -> Result<(), StoreError> {
        let c = &mut *self.0;
        match (rows, blob.is_empty()) {
            (Rows::Days, true) => c.execute(
                "DELETE FROM rollup_days WHERE domain = $1 AND day = $2",
                &[&domain, &at],
            ),
            (Rows::Days, false) => c.execute(
                "INSERT INTO rollup_days (domain, day, sums) VALUES ($1, $2, $3)
                 ON CONFLICT (domain, day) DO UPDATE SET sums = EXCLUDED.sums",
                &[&domain, &at, &blob],
            ),
            (Rows::Thirds(_), true) => c.execute(
                "DELETE FROM rollup_thirds WHERE domain = $1 AND third = $2",
                &[&domain, &at],
            ),
            (Rows::Thirds(end), false) => c.execute(
                "INSERT INTO rollup_thirds (domain, third, end_day, sums) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (domain, third) DO UPDATE
                 SET end_day = EXCLUDED.end_day, sums = EXCLUDED.sums",
                &[&domain, &at, &end, &blob],
            ),
            (Rows::Months(_), true) => c.execute(
                "DELETE FROM rollup_months WHERE domain = $1 AND month = $2",
                &[&domain, &at],
            ),
            (Rows::Months(end), false) => c.execute(
                "INSERT INTO rollup_months (domain, month, end_day, sums) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (domain, month) DO UPDATE
                 SET end_day = EXCLUDED.end_day, sums = EXCLUDED.sums",
                &[&domain, &at, &end, &blob],
            ),
            (Rows::Quarters(_), true) => c.execute(
                "DELETE FROM rollup_quarters WHERE domain = $1 AND quarter = $2",
                &[&domain, &at],
            ),
            (Rows::Quarters(end), false) => c.execute(
                "INSERT INTO rollup_quarters (domain, quarter, end_day, sums)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (domain, quarter) DO UPDATE
                 SET end_day = EXCLUDED.end_day, sums = EXCLUDED.sums",
                &[&domain, &at, &end, &blob],
            ),
        }
        .map_err(PgError::from)?;
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
                "SELECT sums FROM rollup_days WHERE domain = $1 AND day >= $2 AND day < $3"
            }
            Table::Parts => {
                "SELECT sums FROM rollup_parts WHERE domain = $1 AND day >= $2 AND day < $3"
            }
            Table::Thirds => {
                "SELECT sums FROM rollup_thirds WHERE domain = $1 AND third >= $2 AND end_day <= $3"
            }
            Table::Months => {
                "SELECT sums FROM rollup_months WHERE domain = $1 AND month >= $2 AND end_day <= $3"
            }
            Table::Quarters => {
                "SELECT sums FROM rollup_quarters
                 WHERE domain = $1 AND quarter >= $2 AND end_day <= $3"
            }
        };
        let rows = self
            .0
            .query(sql, &[&domain, &from, &to])
            .map_err(PgError::from)?;
        for r in &rows {
            f(r.get(0))?;
        }
        Ok(())
    }

    fn any_stale(&mut self, domain: &str, from: i64, to: i64) -> Result<bool, StoreError> {
        let row = self
            .0
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM rollup_stale
                 WHERE domain = $1 AND month >= $2 AND end_day <= $3)",
                &[&domain, &from, &to],
            )
            .map_err(PgError::from)?;
        Ok(row.get(0))
    }

    fn has_quarter(&mut self, domain: &str, start: i64) -> Result<bool, StoreError> {
        let row = self
            .0
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM rollup_quarters WHERE domain = $1 AND quarter = $2)",
                &[&domain, &start],
            )
            .map_err(PgError::from)?;
        Ok(row.get(0))
    }

    fn month_rows(&mut self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = self
            .0
            .query(
                "SELECT domain, month FROM rollup_months ORDER BY domain, month",
                &[],
            )
            .map_err(PgError::from)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn take_parts(
        &mut self,
        domain: &str,
        from: i64,
        to: i64,
        mut f: impl FnMut(i64, &[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let rows = self
            .0
            .query(
                "SELECT id, day, sums FROM rollup_parts
                 WHERE domain = $1 AND day >= $2 AND day < $3",
                &[&domain, &from, &to],
            )
            .map_err(PgError::from)?;
        let mut ids = Vec::with_capacity(rows.len());
        for r in &rows {
            ids.push(r.get::<_, i64>(0));
            f(r.get(1), r.get(2))?;
        }
        if !ids.is_empty() {
            // By id: those read, not any a concurrent writer added meanwhile.
            self.0
                .execute("DELETE FROM rollup_parts WHERE id = ANY($1)", &[&ids])
                .map_err(PgError::from)?;
        }
        Ok(())
    }

    fn drop_parts(&mut self, domain: &str, day: i64) -> Result<(), StoreError> {
        // Under the day's key held EXCLUSIVE: no other writer adds to it meanwhile.
        self.0
            .execute(
                "DELETE FROM rollup_parts WHERE domain = $1 AND day = $2",
                &[&domain, &day],
            )
            .map_err(PgError::from)?;
        Ok(())
    }

    fn add_part(&mut self, domain: &str, day: i64, blob: &[u8]) -> Result<i64, StoreError> {
        // The count's snapshot is taken before the insert: one more.
        let row = self
            .0
            .query_one(
                "WITH added AS (INSERT INTO rollup_parts (domain, day, sums) VALUES ($1, $2, $3))
                 SELECT count(*) + 1 FROM rollup_parts WHERE domain = $1 AND day = $2",
                &[&domain, &day, &blob],
            )
            .map_err(PgError::from)?;
        Ok(row.get(0))
    }

    fn tick(&mut self) -> Result<i64, StoreError> {
        let row = self
            .0
            .query_one("SELECT nextval('rollup_clock')", &[])
            .map_err(PgError::from)?;
        Ok(row.get(0))
    }

    fn mark_stale(
        &mut self,
        domain: &str,
        start: i64,
        end: i64,
        clock: i64,
    ) -> Result<(), StoreError> {
        // The quarter holding the month is no longer its months' sum (none: matches no row).
        let quarter = quarter_span(start).map_or(i64::MIN, |(q, _)| q);
        self.0
            .execute(
                "WITH gone AS (DELETE FROM rollup_months WHERE domain = $1 AND month = $2),
                 thirds AS (DELETE FROM rollup_thirds
                    WHERE domain = $1 AND third >= $2 AND third < $3),
                 quarter AS (DELETE FROM rollup_quarters WHERE domain = $1 AND quarter = $5)
                 INSERT INTO rollup_stale (domain, month, end_day, touched)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (domain, month) DO UPDATE
                 SET touched = greatest(rollup_stale.touched, EXCLUDED.touched)",
                &[&domain, &start, &end, &clock, &quarter],
            )
            .map_err(PgError::from)?;
        Ok(())
    }

    fn stale_until(&mut self, before: i64) -> Result<Vec<(String, i64, i64)>, StoreError> {
        let rows = self
            .0
            .query(
                "SELECT domain, month, end_day FROM rollup_stale WHERE touched <= $1
                 ORDER BY domain, month",
                &[&before],
            )
            .map_err(PgError::from)?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    fn unstale(&mut self, domain: &str, start: i64) -> Result<(), StoreError> {
        self.0
            .execute(
                "DELETE FROM rollup_stale WHERE domain = $1 AND month = $2",
                &[&domain, &start],
            )
            .map_err(PgError::from)?;
        Ok(())
    }

    fn records_of_day(
        &mut self,
        domain: &str,
        day: i64,
        mut f: impl FnMut(i64, &StoredRecord<'_>, &str, Option<i64>, Option<i64>, u64),
    ) -> Result<(), StoreError> {
        // The records' partition key says the same as the report's end (for a report without
        // one, when it was stored), so that only the day's month is read.
        let (span, from, to) = match day {
            NO_DAY => (
                "r.date_end IS NULL AND $2::int8 IS NULL AND $3::int8 IS NULL",
                None,
                None,
            ),
            d => (
                "r.date_end >= $2 AND r.date_end < $3 AND c.report_end >= $2 AND c.report_end < $3",
                Some(d * DAY),
                Some((d + 1) * DAY),
            ),
        };
        let rows = self
            .0
            .query(
                &format!(
                    "SELECT c.source_ip, c.header_from, c.auth_dkim_domain, c.auth_dkim_result,
                        c.auth_spf_domain, c.auth_spf_result, c.envelope_from, c.dkim, c.spf,
                        c.disposition, c.forwarded, r.org_name, r.date_begin, r.date_end, c.count,
                        r.id
                     FROM reports r JOIN records c ON c.domain = r.domain AND c.report = r.id
                        AND c.report_end = coalesce(r.date_end, r.ingested_at)
                     WHERE r.domain = $1 AND c.domain = $1 AND {span}"
                ),
                &[&domain, &from, &to],
            )
            .map_err(PgError::from)?;
        for r in &rows {
            let stored = super::stored_record(r, domain, 0);
            f(
                r.get(15),
                &stored,
                r.get(11),
                r.get(12),
                r.get(13),
                count(r.get(14)),
            );
        }
        Ok(())
    }

    fn clear(&mut self) -> Result<(), StoreError> {
        self.0
            .batch_execute(
                "DELETE FROM rollup_days; DELETE FROM rollup_months; DELETE FROM rollup_quarters;
                 DELETE FROM rollup_thirds; DELETE FROM rollup_stale; DELETE FROM rollup_parts",
            )
            .map_err(PgError::from)?;
        Ok(())
    }

    fn report_days(&mut self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = self
            .0
            .query(
                "SELECT DISTINCT domain, CASE WHEN date_end IS NOT NULL
                    THEN (date_end - ((date_end % 86400) + 86400) % 86400) / 86400 END
                 FROM reports ORDER BY 1, 2",
                &[],
            )
            .map_err(PgError::from)?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get::<_, Option<i64>>(1).unwrap_or(NO_DAY)))
            .collect())
    }

    fn prune_rows(&mut self, day: i64, dry_run: bool) -> Result<u64, StoreError> {
        let c = &mut *self.0;
        let days = "FROM rollup_days WHERE day < $1 AND day <> $2";
        let thirds = "FROM rollup_thirds WHERE end_day <= $1 AND $2::int8 IS NOT NULL";
        let months = "FROM rollup_months WHERE end_day <= $1 AND $2::int8 IS NOT NULL";
        let quarters = "FROM rollup_quarters WHERE end_day <= $1 AND $2::int8 IS NOT NULL";
        // A stale month is counted as the row it stands for.
        let stale = "FROM rollup_stale WHERE end_day <= $1 AND $2::int8 IS NOT NULL";
        let mut n = 0;
        for rows in [days, thirds, months, quarters, stale] {
            n += if dry_run {
                let row = c
                    .query_one(&format!("SELECT count(*) {rows}"), &[&day, &NO_DAY])
                    .map_err(PgError::from)?;
                count(row.get(0))
            } else {
                c.execute(&format!("DELETE {rows}"), &[&day, &NO_DAY])
                    .map_err(PgError::from)?
            };
        }
        if !dry_run {
            c.execute(
                "DELETE FROM rollup_parts WHERE day < $1 AND day <> $2",
                &[&day, &NO_DAY],
            )
            .map_err(PgError::from)?;
            // A third or quarter the cutoff splits is no longer its days' or months' sum.
            c.execute("DELETE FROM rollup_thirds WHERE third < $1", &[&day])
                .map_err(PgError::from)?;
            c.execute("DELETE FROM rollup_quarters WHERE quarter < $1", &[&day])
                .map_err(PgError::from)?;
        }
        Ok(n)
    }

    fn months_across(&mut self, day: i64) -> Result<Vec<(String, i64, i64)>, StoreError> {
        let rows = self
            .0
            .query(
                "SELECT domain, month, end_day FROM rollup_months WHERE month < $1 AND end_day > $1
                 ORDER BY domain, month",
                &[&day],
            )
            .map_err(PgError::from)?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    fn domains_on(&mut self, day: i64) -> Result<Vec<String>, StoreError> {
        let rows = self
            .0
            .query(
                "SELECT domain FROM rollup_days WHERE day = $1 ORDER BY domain",
                &[&day],
            )
            .map_err(PgError::from)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn lock(
        &mut self,
        shared: &BTreeSet<(String, i64)>,
        exclusive: &BTreeSet<(String, i64)>,
    ) -> Result<(), StoreError> {
        if shared.is_empty() && exclusive.is_empty() {
            return Ok(());
        }
        let (mut domains, mut months, mut sole) = (Vec::new(), Vec::new(), Vec::new());
        for (set, is_sole) in [(shared, false), (exclusive, true)] {
            for (d, m) in set {
                domains.push(d.as_str());
                months.push(*m);
                sole.push(is_sole);
            }
        }
        // In the keys' order, each once (EXCLUSIVE where any asks for it), in one statement.
        self.0
            .execute(
                &format!(
                    "SELECT CASE WHEN sole THEN pg_advisory_xact_lock(k)
                        ELSE pg_advisory_xact_lock_shared(k) END
                     FROM (SELECT {} AS k, bool_or(sole) AS sole
                           FROM unnest($1::text[], $2::int8[], $3::bool[]) AS u(domain, month, sole)
                           GROUP BY 1 ORDER BY 1) AS keys",
                    key("domain", "month")
                ),
                &[&domains, &months, &sole],
            )
            .map_err(PgError::from)?;
        Ok(())
    }

    fn lock_every_domain(&mut self, months: &[i64]) -> Result<(), StoreError> {
        self.0
            .execute(
                &format!(
                    "SELECT pg_advisory_xact_lock(k)
                     FROM (SELECT DISTINCT {} AS k
                           FROM (SELECT domain FROM rollup_days UNION SELECT domain FROM rollup_parts
                                 UNION SELECT domain FROM rollup_stale) AS d
                           CROSS JOIN unnest($1::int8[]) AS m(month)
                           ORDER BY 1) AS keys",
                    key("d.domain", "m.month")
                ),
                &[&months],
            )
            .map_err(PgError::from)?;
        Ok(())
    }

    fn try_fold(&mut self, domain: &str, month: i64) -> Result<bool, StoreError> {
        let row = self
            .0
            .query_one(
                &format!("SELECT pg_try_advisory_xact_lock({})", key("$1", "$2")),
                &[&domain, &month],
            )
            .map_err(PgError::from)?;
        Ok(row.get(0))
    }

    fn try_settle(&mut self, domain: &str, month: i64, before: i64) -> Result<bool, StoreError> {
        // Still stale, and not touched since, once the lock is held (CASE: in this order).
        let row = self
            .0
            .query_one(
                &format!(
                    "SELECT CASE WHEN pg_try_advisory_xact_lock({}) THEN EXISTS (
                        SELECT 1 FROM rollup_stale
                        WHERE domain = $1 AND month = $2 AND touched <= $3) ELSE false END",
                    key("$1", "$2")
                ),
                &[&domain, &month, &before],
            )
            .map_err(PgError::from)?;
        Ok(row.get(0))
    }
}

/// The reader's statements, prepared once per connection: a domain's evidence is half a dozen
/// of them, and `senders` or a page reads every domain's (an unnamed statement costs a second
/// round trip each time).
#[derive(Default)]
pub(super) struct Prepared(HashMap<String, Statement>);

/// The reader's statements, in one REPEATABLE READ READ ONLY transaction.
struct Read<'t, 'c>(&'t mut Transaction<'c>, &'t mut Prepared);

impl Read<'_, '_> {
    /// `sql`'s statement, prepared on this connection when first used.
    fn prepared(&mut self, sql: String) -> Result<Statement, StoreError> {
        Ok(match self.1.0.get(&sql) {
            Some(s) => s.clone(),
            None => {
                let s = self.0.prepare(&sql).map_err(PgError::from)?;
                self.1.0.insert(sql, s.clone());
                s
            }
        })
    }

    /// `sql`'s rows, through its prepared statement.
    fn query(
        &mut self,
        sql: String,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>, StoreError> {
        let statement = self.prepared(sql)?;
        Ok(self.0.query(&statement, params).map_err(PgError::from)?)
    }
}

impl RollupRead for Read<'_, '_> {
    fn stale_in(
        &mut self,
        domain: Option<&str>,
        months: (i64, i64),
    ) -> Result<Vec<(String, i64, i64)>, StoreError> {
        let rows = self.query(
            format!(
                "SELECT domain, month, end_day FROM rollup_stale
                 WHERE {} AND month >= $2 AND end_day <= $3",
                of_domain(domain)
            ),
            &[&domain, &months.0, &months.1],
        )?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    fn unreadable() -> StoreError {
        unreadable()
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
                 WHERE {of_domain} AND quarter >= $2 AND end_day <= $3"
            ),
            Table::Months => format!(
                "SELECT domain, sums FROM rollup_months m
                 WHERE {of_domain} AND month >= $2 AND end_day <= $3
                 AND NOT EXISTS (SELECT 1 FROM rollup_quarters q
                    WHERE q.domain = m.domain AND q.quarter <= m.month AND q.end_day >= m.end_day
                    AND q.quarter >= $2 AND q.end_day <= $3)"
            ),
            Table::Thirds => format!(
                "SELECT domain, sums FROM rollup_thirds
                 WHERE {of_domain} AND third >= $2 AND end_day <= $3"
            ),
            Table::Days | Table::Parts => format!(
                "SELECT domain, sums FROM {} d
                 WHERE {of_domain} AND day >= $2 AND day < $3
                 AND NOT EXISTS (SELECT 1 FROM rollup_thirds t
                    WHERE t.domain = d.domain AND t.third <= d.day AND t.end_day > d.day
                    AND t.third >= $2 AND t.end_day <= $3)",
                if table == Table::Days {
                    "rollup_days"
                } else {
                    "rollup_parts"
                }
            ),
        };
        // Streamed: each blob is summed as it arrives (a year of an estate is tens of MB).
        let statement = self.prepared(sql)?;
        let params: [&(dyn postgres::types::ToSql + Sync); 3] = [&domain, &a, &b];
        let mut rows = self
            .0
            .query_raw(&statement, params)
            .map_err(PgError::from)?;
        while let Some(r) = rows.next().map_err(PgError::from)? {
            f(r.get(0), r.get(1)).ok_or_else(unreadable)?;
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
        Ok(super::evidence::of_keys_in(
            self.0,
            domain,
            Some(since),
            Some(until),
            keys,
        )?)
    }

    fn source_groups(
        &mut self,
        domain: Option<&str>,
        since: i64,
        until: i64,
    ) -> Result<SourceGroups, StoreError> {
        let f = Filter {
            domain: domain.map(str::to_owned),
            since: Some(since),
            until: Some(until),
            limit: None,
        };
        Ok(super::listings::source_groups(
            self.0,
            &f,
            None,
            super::UntilBy::End,
        )?)
    }

    fn per_ip(
        &mut self,
        domain: Option<&str>,
        since: i64,
        until: i64,
        detail: Detail,
    ) -> Result<EvidenceAndDays, StoreError> {
        Ok(super::evidence::evidence_per_ip(
            self.0,
            domain,
            Some(since),
            Some(until),
            detail,
        )?)
    }
}

/// The condition on the domain, spelled out only when given.
fn of_domain(domain: Option<&str>) -> &'static str {
    if domain.is_some() {
        "domain = $1"
    } else {
        "$1::text IS NULL"
    }
}

/// The evidence of the reports asked for: from the rollups when they answer the window (whole
/// UTC days; rows summed over source IPs), read in one snapshot; else from the records.
pub fn evidence_in(
    client: &mut Client,
    prepared: &mut Prepared,
    domain: Option<&str>,
    since: Option<i64>,
    until: Option<i64>,
    detail: Detail,
) -> Result<(Vec<Evidence>, Vec<DayCount>), StoreError> {
    let rolled = in_snapshot(client, prepared, |read| {
        rollups::evidence_rolled(read, domain, since, until, detail)
    })?;
    match rolled {
        Some(rolled) => Ok(rolled),
        None => Ok(super::evidence::evidence_per_ip(
            client, domain, since, until, detail,
        )?),
    }
}

/// The mail of `domain`'s reports under `keys` per source IP and key: from the rollups when
/// they answer the window (whole UTC days; each IP's own sums), read in one snapshot; else from
/// the records.
pub fn evidence_of_keys(
    client: &mut Client,
    prepared: &mut Prepared,
    domain: &str,
    since: Option<i64>,
    until: Option<i64>,
    keys: &[EvidenceKey],
) -> Result<Vec<IpEvidence>, StoreError> {
    let rolled = in_snapshot(client, prepared, |read| {
        rollups::of_keys_rolled(read, domain, since, until, keys)
    })?;
    match rolled {
        Some(rolled) => Ok(rolled),
        None => Ok(super::evidence::evidence_of_keys(
            client, domain, since, until, keys,
        )?),
    }
}

/// `sources` from the rollups ([`rollups::sources_rolled`]) with the failure reports about each
/// source, when they answer `f`; else `None`.
pub fn sources(
    client: &mut Client,
    prepared: &mut Prepared,
    f: &Filter,
) -> Result<Option<Vec<SourceSummary>>, StoreError> {
    let rolled = in_snapshot(client, prepared, |read| {
        rollups::sources_rolled(read, f.domain.as_deref(), f.since, f.until)
    })?;
    match rolled {
        Some(groups) => Ok(Some(super::listings::finish_sources(client, f, groups)?)),
        None => Ok(None),
    }
}

/// What `read` answers from the rollups, every row in one snapshot (a writer settling a month
/// or summing a quarter between two reads would have one counted twice or not at all); `None`
/// when the rollups are ignored (`DMARC_WARDEN_FROM_RECORDS=1`) or do not answer.
fn in_snapshot<T>(
    client: &mut Client,
    prepared: &mut Prepared,
    read: impl FnOnce(&mut Read<'_, '_>) -> Result<Option<T>, StoreError>,
) -> Result<Option<T>, StoreError> {
    if rollups::from_records() {
        return Ok(None);
    }
    let mut tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(PgError::from)?;
    let rolled = read(&mut Read(&mut tx, prepared))?;
    tx.commit().map_err(PgError::from)?;
    Ok(rolled)
}

/// A unit of work's rollups: what it stored, summed, and written at its commit.
#[derive(Default)]
pub(super) struct Kept {
    pending: Pending,
    presum: Option<Box<Presum>>,
}

impl Kept {
    /// Gives the unit of work the sums of the batch it is to store.
    pub(super) fn use_presum(&mut self, p: Presum) {
        self.presum = Some(Box::new(p));
    }

    /// Adds the reports the unit of work stored ([`Pending::stored`]).
    pub(super) fn stored<'a>(
        &mut self,
        reports: impl ExactSizeIterator<Item = &'a AggregateReport>,
    ) {
        let pre = self.presum.take();
        self.pending.stored(pre, reports.map(StoredReport::Records));
    }

    /// Marks `domain`'s day of `end` (a copy of a report ending then was replaced) to be summed
    /// again from its records at commit.
    pub(super) fn forget_day(&mut self, domain: &str, end: Option<i64>) {
        self.pending.forget_day(domain, end);
    }

    /// Writes the pending sums (at commit), when the unit of work stored or replaced reports.
    pub(super) fn write(
        self,
        client: &mut impl GenericClient,
        run: &rollups::RunClock,
    ) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        rollups::write(&mut Sql(client), self.pending, run)
    }
}

/// Deletes the rollups and sums every stored report again (the migration's back-fill, and
/// after `migrate --to` copied the reports in).
pub(super) fn rebuild(client: &mut impl GenericClient) -> Result<(), PgError> {
    rollups::rebuild(&mut Sql(client)).map_err(pg_error)
}

/// The back-fill a migration of the rollups needs ([`rollups::back_fill`]).
pub(super) fn back_fill(
    client: &mut impl GenericClient,
    need: rollups::BackFill,
) -> Result<(), PgError> {
    rollups::back_fill(&mut Sql(client), need).map_err(pg_error)
}

/// Sums every stale month again from its days (those another writer is adding to are left to
/// it): the end of an `ingest` run, so that the months it touched are read by month, not by day,
/// until a later run touches them ([`crate::store::Store::end_run`]).
pub(super) fn settle_all(client: &mut impl GenericClient) -> Result<(), PgError> {
    rollups::settle(&mut Sql(client), i64::MAX).map_err(pg_error)
}

/// `prune`'s part ([`rollups::prune`]): how many rows went (or would go).
pub(super) fn prune(
    client: &mut impl GenericClient,
    cutoff: i64,
    dry_run: bool,
) -> Result<u64, PgError> {
    rollups::prune(&mut Sql(client), cutoff, dry_run).map_err(pg_error)
}
