//! The writer's side of the tier, written once over [`RollupSql`]: a unit of work's sums written
//! as parts of their days ([`write`]), parts folded into day rows ([`fold`]), stale months (and
//! their thirds) summed again from their days ([`settle`], [`rebuild_month`]), quarters summed
//! again from their months ([`requarter`]), everything summed again from the records
//! ([`rebuild`]), the migrations' back-fill ([`back_fill`]), and `prune`'s part ([`prune`]).

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};

use super::codec::{Entries, Scratch, absorb_entries, add_entries, encode_all, merge};
use super::pending::{Pending, free_elsewhere};
use super::plan::{NO_DAY, month_key, month_span, quarter_span, thirds};
use super::{RollupSql, Rows, Table};
use crate::store::StoreError;

/// Merges `add` into the day row of `domain` at `day`.
fn merge_day<S: RollupSql>(
    sql: &mut S,
    domain: &str,
    day: i64,
    add: Entries,
) -> Result<(), StoreError> {
    let new = sql
        .day_row(domain, day, |old| merge(old.unwrap_or(&[]), add))?
        .ok_or_else(S::unreadable)?;
    sql.put_row(Rows::Days, domain, day, &new)
}

/// Sums `domain`'s month `[start, end)` again from its day rows, and the rows of its thirds
/// with it: each third from its days, the month from its thirds' sums (a month that is a day
/// alone has no thirds: from its day).
pub(super) fn rebuild_month<S: RollupSql>(
    sql: &mut S,
    domain: &str,
    start: i64,
    end: i64,
) -> Result<(), StoreError> {
    let thirds = thirds(start, end);
    let mut month = Entries::default();
    if thirds.is_empty() {
        sql.rows_of(Table::Days, domain, start, end, |blob| {
            add_entries(&mut month, blob).ok_or_else(S::unreadable)
        })?;
    }
    for (a, b) in thirds {
        let mut third = Entries::default();
        sql.rows_of(Table::Days, domain, a, b, |blob| {
            add_entries(&mut third, blob).ok_or_else(S::unreadable)
        })?;
        // Empty (no days): the row deleted.
        let blob = encode_all(&mut third, &mut Scratch::default());
        sql.put_row(Rows::Thirds(b), domain, a, &blob)?;
        absorb_entries(&mut month, third);
    }
    let blob = merge(&[], month).ok_or_else(S::unreadable)?;
    sql.put_row(Rows::Months(end), domain, start, &blob)
}

/// How many of a quarter's months need a row before [`requarter`] sums them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(in crate::store) enum Need {
    /// Every one: a quarter still being written to is summed once, as its last month settles
    /// (summing it again as each month settled cost the ingest a tenth of its speed).
    Every,
    /// Two or more: a quarter the mail has moved past, or that `prune` cut, whatever months it
    /// has (a domain without mail in one of them).
    Two,
}

/// Sums `domain`'s quarter holding the month that begins on `month` again from its month rows:
/// its row is deleted, and written again when none of its months is stale, no other writer adds
/// to them ([`RollupSql::try_fold`]) and as many of them have rows as `need` says (else its
/// months are read instead).
pub(in crate::store) fn requarter<S: RollupSql>(
    sql: &mut S,
    domain: &str,
    month: i64,
    need: Need,
) -> Result<(), StoreError> {
    let Some((start, end)) = quarter_span(month) else {
        return Ok(());
    };
    sql.put_row(Rows::Quarters(end), domain, start, &[])?;
    let (mut m, mut months) = (start, 0);
    while let Some((_, next)) = month_span(m).filter(|_| m < end) {
        if !sql.try_fold(domain, m)? {
            return Ok(());
        }
        (m, months) = (next, months + 1);
    }
    if sql.any_stale(domain, start, end)? {
        return Ok(());
    }
    let mut blobs = Vec::new();
    sql.rows_of(Table::Months, domain, start, end, |blob| {
        blobs.push(blob.to_vec());
        Ok(())
    })?;
    let enough = match need {
        Need::Every => months,
        Need::Two => 2,
    };
    if blobs.len() < enough.max(2) {
        return Ok(());
    }
    let mut all = Entries::default();
    for b in &blobs {
        add_entries(&mut all, b).ok_or_else(S::unreadable)?;
    }
    let blob = merge(&[], all).ok_or_else(S::unreadable)?;
    sql.put_row(Rows::Quarters(end), domain, start, &blob)
}

/// After a month of `domain` settled: its quarter once all of its months have rows, and the
/// quarter before it, once, from whatever months that one has.
fn quarters_after_settling<S: RollupSql>(
    sql: &mut S,
    domain: &str,
    month: i64,
) -> Result<(), StoreError> {
    requarter(sql, domain, month, Need::Every)?;
    let before = quarter_span(month)
        .and_then(|(start, _)| quarter_span(start.checked_sub(1)?))
        .map(|(start, _)| start);
    if let Some(before) = before
        && !sql.has_quarter(domain, before)?
    {
        requarter(sql, domain, before, Need::Two)?;
    }
    Ok(())
}

/// Parts a day may gather before a unit of work adding to it folds them into its row.
pub(in crate::store) const FOLD_PARTS: i64 = 16;

/// Units of work a stale month waits, untouched, before one sums it again: reports arrive for a
/// few days at a time, so a month the last few did not add to is most likely done with (summing
/// it again each time a batch skipped it would cost more than all the rest of the upkeep). Counted
/// across runs: within one run, the order of its inputs (a backfill's files by name, each
/// reporter's years after the last's) says nothing of which months are done with ([`RunClock`]).
pub(in crate::store) const SETTLE_AFTER: i64 = 4;

/// The clock's number of the first unit of work a run wrote (from its first [`write`] until the
/// run ends: [`crate::store::Store::end_run`]): the months a run touched are not summed again
/// within it, only by a later run's units of work (or, on PostgreSQL, at the run's end). Over
/// 2,000 generated reports of 300 records, whose months each unit of work touched again in turn,
/// a unit settled months that a later one made stale again: `ingest` 0.98 → 0.72 s without those
/// settles (issue 21). A run is an `ingest`, a `reprocess`, or a round of a mailbox (`fetch
/// --watch` reads round after round over one connection, whose months must settle in later rounds).
#[derive(Debug, Default)]
pub(in crate::store) struct RunClock(Cell<Option<i64>>);

impl RunClock {
    /// The run's first unit of work's number, `clock` when this is the first.
    fn first(&self, clock: i64) -> i64 {
        let first = self.0.get().unwrap_or(clock);
        self.0.set(Some(first));
        first
    }

    /// Ends the run: the next unit of work begins another. Whether this one wrote any.
    pub(in crate::store) fn end(&self) -> bool {
        self.0.take().is_some()
    }
}

/// The sums of `domain`'s reports ending on `day`, from their stored records.
fn day_from_records<S: RollupSql>(
    sql: &mut S,
    domain: &str,
    day: i64,
) -> Result<Vec<u8>, StoreError> {
    let mut again = Pending::default();
    sum_day(sql, domain, day, &mut again)?;
    let sums = again
        .days
        .remove(domain)
        .and_then(|mut d| d.remove(&day))
        .unwrap_or_default();
    merge(&[], sums).ok_or_else(S::unreadable)
}

/// Writes `p`'s sums: its dirty days summed again from their records; the rest as new parts of
/// the days they touch (`rollup_parts`: written without reading the day's row, so that a unit of
/// work writes about the bytes of its own sums, not those of every day it adds to again), folded
/// into the day's row once it has [`FOLD_PARTS`], or when its month settles. The month rows of the
/// days touched go stale (deleted, and listed in `rollup_stale` with the unit of work's number from
/// the clock; readers read those months by day); a unit of work [`SETTLE_AFTER`] units after
/// the last that touched a stale month, and of a later run than that one ([`RunClock`]), folds its
/// days' parts and sums the month again from them.
pub(in crate::store) fn write<S: RollupSql>(
    sql: &mut S,
    p: Pending,
    run: &RunClock,
) -> Result<(), StoreError> {
    let Pending {
        mut days,
        mut encoded,
        dirty,
        ..
    } = p;
    let exclusive: BTreeSet<(String, i64)> = dirty
        .iter()
        .map(|(domain, day)| (domain.clone(), month_key(*day)))
        .collect();
    let shared: BTreeSet<(String, i64)> = days
        .iter()
        .flat_map(|(domain, by_day)| {
            by_day
                .iter()
                .filter(|(_, sums)| !sums.is_empty())
                .map(move |(day, _)| (domain.clone(), month_key(*day)))
        })
        .chain((encoded.iter()).map(|(domain, day, _)| (domain.clone(), month_key(*day))))
        .filter(|k| !exclusive.contains(k))
        .collect();
    sql.lock(&shared, &exclusive)?;
    let mut touched: BTreeSet<(String, i64, i64)> = BTreeSet::new();
    for (domain, day) in &dirty {
        if let Some(by_day) = days.get_mut(domain) {
            by_day.remove(day);
        }
        sql.drop_parts(domain, *day)?;
        let blob = day_from_records(sql, domain, *day)?;
        sql.put_row(Rows::Days, domain, *day, &blob)?;
        if let Some((start, end)) = month_span(*day) {
            touched.insert((domain.clone(), start, end));
        }
    }
    if !dirty.is_empty() {
        // Summed again from their records, which hold these sums' reports too.
        encoded.retain(|(domain, day, _)| !dirty.contains(&(domain.clone(), *day)));
    }
    // Each day's sums: encoded ([`super::Presum`]), or summed by the unit of work itself, or both.
    let mut rows: Vec<(String, i64, Day)> = days
        .into_iter()
        .flat_map(|(domain, by_day)| {
            by_day
                .into_iter()
                .filter(|(_, sums)| !sums.is_empty())
                .map(move |(day, sums)| (domain.clone(), day, Day::Sums(sums)))
        })
        .chain((encoded.into_iter()).map(|(domain, day, blob)| (domain, day, Day::Encoded(blob))))
        .collect();
    rows.sort_unstable_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    // Every day's new part at once (each day once), then the days that now have enough parts
    // folded: as if each were folded as its part was added, since a fold takes only its own
    // day's parts. A day with sums from more than one place has them added together (as a fold
    // adds a day's parts).
    let mut scratch = Scratch::default();
    let mut blobs: Vec<(String, i64, Vec<u8>)> = Vec::with_capacity(rows.len());
    let mut rows = rows.into_iter().peekable();
    while let Some((domain, day, first)) = rows.next() {
        let same = |r: &(String, i64, Day)| r.1 == day && r.0 == domain;
        let blob = match (first, rows.peek().is_some_and(same)) {
            (Day::Encoded(blob), false) => blob,
            (Day::Sums(mut sums), false) => encode_all(&mut sums, &mut scratch),
            (first, true) => {
                let mut all = Entries::default();
                let mut add = |sums: Day| match sums {
                    Day::Encoded(blob) => add_entries(&mut all, &blob).ok_or_else(S::unreadable),
                    Day::Sums(sums) => {
                        absorb_entries(&mut all, sums);
                        Ok(())
                    }
                };
                add(first)?;
                while let Some((_, _, sums)) = rows.next_if(same) {
                    add(sums)?;
                }
                encode_all(&mut all, &mut scratch)
            }
        };
        blobs.push((domain, day, blob));
    }
    let parts: Vec<(&str, i64, &[u8])> = (blobs.iter())
        .map(|(domain, day, blob)| (domain.as_str(), *day, blob.as_slice()))
        .collect();
    let counts = sql.add_parts(&parts)?;
    for ((domain, day, _), n) in parts.iter().zip(counts) {
        if n >= FOLD_PARTS && sql.try_fold(domain, month_key(*day))? {
            fold(sql, domain, *day, day.saturating_add(1))?;
        }
        if let Some((start, end)) = month_span(*day) {
            touched.insert(((*domain).to_owned(), start, end));
        }
    }
    drop(parts);
    free_elsewhere(blobs);
    let clock = sql.tick()?;
    let months: Vec<(&str, i64, i64)> = touched
        .iter()
        .map(|(domain, start, end)| (domain.as_str(), *start, *end))
        .collect();
    sql.mark_stale_all(&months, clock)?;
    // Months untouched since before the run began, SETTLE_AFTER units of work ago or more.
    let first = run.first(clock);
    settle(
        sql,
        clock
            .saturating_sub(SETTLE_AFTER)
            .min(first.saturating_sub(1)),
    )
}

/// A day's sums in a unit of work's [`Pending`]: encoded (a batch's [`super::Presum`]), or summed
/// by the unit of work itself.
enum Day {
    Encoded(Vec<u8>),
    Sums(Entries),
}

/// Folds the parts of `domain`'s days `[from, to)` into their rows.
pub(super) fn fold<S: RollupSql>(
    sql: &mut S,
    domain: &str,
    from: i64,
    to: i64,
) -> Result<(), StoreError> {
    let mut by_day: BTreeMap<i64, Entries> = BTreeMap::new();
    sql.take_parts(domain, from, to, |day, blob| {
        add_entries(by_day.entry(day).or_default(), blob).ok_or_else(S::unreadable)
    })?;
    for (day, all) in by_day {
        merge_day(sql, domain, day, all)?;
    }
    Ok(())
}

/// Sums each stale month last touched at or before `before` (a clock number; every one with
/// `i64::MAX`) again from its days (their parts folded first).
pub(in crate::store) fn settle<S: RollupSql>(sql: &mut S, before: i64) -> Result<(), StoreError> {
    for month in sql.stale_until(before)? {
        let (domain, start, end) = &month;
        if !sql.try_settle(domain, *start, before)? {
            continue;
        }
        fold(sql, domain, *start, *end)?;
        rebuild_month(sql, domain, *start, *end)?;
        sql.unstale(domain, *start)?;
        quarters_after_settling(sql, domain, *start)?;
    }
    Ok(())
}

/// Adds to `p` the stored records of `domain`'s reports ending on `day`.
fn sum_day<S: RollupSql>(
    sql: &mut S,
    domain: &str,
    day: i64,
    p: &mut Pending,
) -> Result<(), StoreError> {
    let (Some(row), keys) = p.row(domain, day) else {
        return Ok(());
    };
    sql.records_of_day(domain, day, keys.add_to(row))
}

/// Deletes the rollups and sums every stored report again, one (domain, day) at a time, then
/// each month (and its thirds) from its days and each quarter from its months (the migration's
/// back-fill; after `migrate --to` copied the reports in).
pub(in crate::store) fn rebuild<S: RollupSql>(sql: &mut S) -> Result<(), StoreError> {
    sql.clear()?;
    let mut months = BTreeSet::new();
    for (domain, day) in sql.report_days()? {
        let blob = day_from_records(sql, &domain, day)?;
        sql.put_row(Rows::Days, &domain, day, &blob)?;
        if let Some((start, end)) = month_span(day) {
            months.insert((domain, start, end));
        }
    }
    for (domain, start, end) in months {
        rebuild_month(sql, &domain, start, end)?;
    }
    quarters(sql)
}

/// What a migration of the rollups needs summed again, least first: the migrations applied at
/// once need the most of theirs ([`back_fill`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(in crate::store) enum BackFill {
    /// The months from their days, with their thirds (`0017_rollup_thirds`, postgres 7).
    Months,
    /// The months, then the quarters from them (`0016_rollup_quarters`, postgres 6).
    Quarters,
    /// Everything from the records: the tier made (`0012_rollups`, postgres 5), or its blobs'
    /// form changed (`0018_rollup_keys`, `0019_rollup_ips`, `0020_rollup_reports`; postgres 8, 10
    /// and 11).
    Everything,
}

/// The back-fill a migration needs ([`BackFill`]), once every table is made.
pub(in crate::store) fn back_fill<S: RollupSql>(
    sql: &mut S,
    need: BackFill,
) -> Result<(), StoreError> {
    if need == BackFill::Everything {
        return rebuild(sql);
    }
    for (domain, month) in sql.month_rows()? {
        if let Some((start, end)) = month_span(month) {
            rebuild_month(sql, &domain, start, end)?;
        }
    }
    if need == BackFill::Quarters {
        quarters(sql)?;
    }
    Ok(())
}

/// Sums every quarter that has month rows again from them (the end of [`rebuild`] and of the
/// quarters' [`back_fill`]).
fn quarters<S: RollupSql>(sql: &mut S) -> Result<(), StoreError> {
    let quarters: BTreeSet<(String, i64)> = sql
        .month_rows()?
        .into_iter()
        .filter_map(|(domain, month)| Some((domain, quarter_span(month)?.0)))
        .collect();
    for (domain, start) in quarters {
        requarter(sql, &domain, start, Need::Two)?;
    }
    Ok(())
}

/// `prune`'s part: deletes (or, dry, counts) the day rows of days before the day `cutoff` starts
/// (reports ending before it go) and the month rows of months wholly before it; the month that
/// holds it is summed again from its remaining days, and the reports without an end, pruned by
/// when they were stored, from what remains. How many rows went (or would go).
pub(in crate::store) fn prune<S: RollupSql>(
    sql: &mut S,
    cutoff: i64,
    dry_run: bool,
) -> Result<u64, StoreError> {
    let day = cutoff.div_euclid(super::plan::DAY);
    if !dry_run {
        // No writer adds to the month the cutoff splits, or to the days without an end, while
        // they are summed again.
        sql.lock_every_domain(&[month_key(day), month_key(NO_DAY)])?;
    }
    let gone = sql.prune_rows(day, dry_run)?;
    if dry_run {
        return Ok(gone);
    }
    // The month that holds the cutoff lost days: summed again from those left, and its quarter
    // from its months (the quarters that begin before the cutoff went with `prune_rows`).
    for (domain, start, end) in sql.months_across(day)? {
        rebuild_month(sql, &domain, start, end)?;
        requarter(sql, &domain, start, Need::Two)?;
    }
    // The reports without an end, pruned by when they were stored, from what remains.
    let undated = sql.domains_on(NO_DAY)?;
    let p = Pending {
        dirty: undated.into_iter().map(|d| (d, NO_DAY)).collect(),
        ..Pending::default()
    };
    write(sql, p, &RunClock::default())?;
    Ok(gone)
}
