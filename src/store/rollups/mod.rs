//! The sender tier of the rollups (`schemas/0012_rollups.sql`, `schemas/postgres/0005_rollups.sql`):
//! the aggregate records summed per evidence key without the source IP, one row per policy domain and UTC day of the report's end
//! (`rollup_days`), one per domain and calendar month (`rollup_months`), one per domain and
//! calendar quarter (`rollup_quarters`, migration 16 / postgres 6) and one per domain and third
//! of a month (`rollup_thirds`, migration 17 / postgres 7), each row holding every key's sums in
//! one blob; kept in the unit of work that stores the reports, and read by `evidence_in`: whole
//! quarters from the quarter rows, the other whole months from the month rows, the whole thirds
//! of the months at the window's edges from the thirds' rows, the other whole days from the day
//! rows, and a window's partial first (or last) day from the records of just those reports, so
//! that a window means what it means on the records (`analyse::window_start`) and a year reads a
//! handful of rows per domain.
//!
//! Quarters, because a domain's keys hardly change from month to month: a month row holds nearly
//! every key of the year, and a year read from eleven of them summed each key eleven times
//! (`senders --days 365` on a 10M-record estate: 17,860 entries summed for the largest domain;
//! with quarters 11,386, and 16% less time). Thirds, because a window rarely begins on the
//! first of a month: a year read the month it begins in from up to 30 day rows (26 of its 36
//! rows per domain, a third of its entries), now from the days up to the next third and at most
//! two thirds' rows.
//!
//! Without the IP, because source IPs hardly repeat: in a generated estate of 2.0M records, 1.86M
//! distinct (domain, day, IP) but 370k (domain, day, key without IP). What the IP decides is kept
//! exactly: each key's sums hold its source IPs as a set, the distinct IPs of a sender are the
//! union of its rows' sets, and `judge` reads the records per IP for a domain whose rows its IPs
//! would part between senders (declared networks, reverse DNS names:
//! [`crate::analyse::stand_in`]). Each IP of a key also keeps its own messages and reporters
//! (migration 19 / postgres 10), read by a sender's page ([`of_keys_rolled`]): within a key the
//! IPs do repeat (the 10M estate's own sender: 700 IPs in the year's 563k records), and a
//! year's page read them from every record of its keys (0.45–0.9 s; now 0.04–0.05 s). And the
//! reports each IP counts (migration 20 / postgres 11): a report is counted, for each of its
//! source IPs and header Froms (in lower case), by the first of its records from them, whatever
//! that record's key, so that the keys of a From add up to each IP's reports. `sources` (and
//! `/api/sources`) read them ([`sources_rolled`]) rather than every record of their window: its
//! rows are (IP, header From) with messages counted by the keys' policy results and reports
//! counted once each.
//!
//! A blob is a list of entries, each its key's bytes and its sums' bytes, both length-prefixed
//! (so that an entry a batch does not touch is copied as bytes). A key names the row's own
//! domain and its results by a byte each (`codec::encode_key`, migration 18 / postgres 8). The
//! sums: messages, the earliest begin and latest end of the reports that carried them, messages
//! by UTC day of the reports' begin (the days of `Evidence::days` and the web's charts;
//! length-prefixed, so that `senders` steps over them), the reporters, the source IPs
//! (canonical IPv4 addresses increasing, four bytes each, read back as a copy; the rest as
//! texts), and each of those IPs' own messages, reports and reporters, in the same order
//! (length-prefixed too: only a sender's page and `sources` read them).
//!
//! Upkeep: the reports of a batch are summed into a [`Presum`], encoded as the parts of their days,
//! before its unit of work begins, by the pipeline's worker that filled the batch (a unit of work
//! given none, or storing only some of them, sums what it stored into [`Pending`] itself; a
//! record's key is computed once per distinct stored columns). Its commit writes the sums of each
//! (domain, day) as a new part of that day (`rollup_parts`, read by readers beside the day's row
//! and folded into it once a day has [`upkeep::FOLD_PARTS`]; the sums of a day that two of its
//! batches touch added together first), so that a unit of work writes about the bytes of its own
//! sums rather than those of every day it adds to again. The months it touches go stale (their rows
//! deleted and listed in `rollup_stale`; readers read those months by day), and are summed again
//! from their days by the unit of work [`upkeep::SETTLE_AFTER`] units after the last that touched
//! them (counted in a clock), and of a later run ([`RunClock`]; PostgreSQL settles a run's at its
//! end): summing a month again each time a batch skipped it cost more than the rest of the upkeep.
//! A month's thirds are summed from its days with it and deleted with it. A quarter row exists only
//! while it is the sum of its month rows and none of its months is stale: marking a month stale
//! deletes it, and settling a month sums it again from its months once each has a row (and the
//! quarter before, if it has none, from what it has). A replaced copy or `prune` marks the (domain,
//! day) it deletes from; at commit those days are summed again from their records (a minimum or a
//! set cannot be subtracted). The migration's back-fill is the same sum.
//!
//! `DMARC_WARDEN_FROM_RECORDS=1` makes the readers ignore the rollups (to compare the two).
//!
//! What is here is the same for both backends, written once: the stored bytes ([`codec`]), the
//! pending sums ([`pending`]), days, months and windows ([`plan`]), the writer's upkeep
//! ([`upkeep`]) and the reader ([`evidence_rolled`], summing into [`gather`]'s `Gathered`). Each
//! backend gives them its SQL by implementing [`RollupSql`] (the writer's statements, in its
//! unit of work) and [`RollupRead`] (the reader's), in `sqlite/rollups.rs` and
//! `postgres/rollups.rs`; PostgreSQL's several writers at once also take the locks its
//! [`RollupSql::lock`], [`RollupSql::try_fold`] and [`RollupSql::try_settle`] stand for (its
//! file's doc argues why the sums stay exact).

mod codec;
mod gather;
mod pending;
mod plan;
mod upkeep;

pub(in crate::store) use pending::{Pending, Presum, StoredReport, presum};
pub(in crate::store) use plan::{DAY, NO_DAY, quarter_span};
pub(in crate::store) use upkeep::{BackFill, RunClock, back_fill, prune, rebuild, settle, write};

/// The maps the tier's sums are gathered in, keyed by encoded keys, days and names.
type HashMap<K, V> = super::FastMap<K, V>;

use std::collections::BTreeSet;

use crate::model::{DayCount, Evidence, EvidenceKey, IpEvidence};
use crate::store::source_groups::SourceGroups;
use crate::store::{Detail, StoreError, StoredRecord};

use gather::Gathered;
use plan::Plan;

/// Whether the readers are to ignore the rollups (`DMARC_WARDEN_FROM_RECORDS=1`).
pub(in crate::store) fn from_records() -> bool {
    std::env::var_os("DMARC_WARDEN_FROM_RECORDS").is_some_and(|v| v == "1")
}

/// Evidence as its readers return it: the rows and their day counts.
pub(in crate::store) type EvidenceAndDays = (Vec<Evidence>, Vec<DayCount>);

/// A row table: the day rows, the thirds of months, the month rows or the quarter rows.
#[derive(Clone, Copy)]
pub(in crate::store) enum Rows {
    Days,
    /// With the day after the third.
    Thirds(i64),
    /// With the day after the month.
    Months(i64),
    /// With the day after the quarter.
    Quarters(i64),
}

/// The statements of the writer's upkeep ([`upkeep`]), in a backend's unit of work. Days are
/// days since the epoch ([`NO_DAY`] for reports without an end), months their first day.
pub(in crate::store) trait RollupSql {
    /// The error for a stored blob that cannot be read: a damaged database.
    fn unreadable() -> StoreError;

    /// Hands `f` the blob of `domain`'s day row at `day` (`None` when there is none).
    fn day_row<R>(
        &mut self,
        domain: &str,
        day: i64,
        f: impl FnOnce(Option<&[u8]>) -> R,
    ) -> Result<R, StoreError>;

    /// Writes the row of `domain` at `at` (a day, or a month's first day); deletes it when
    /// `blob` is empty.
    fn put_row(&mut self, rows: Rows, domain: &str, at: i64, blob: &[u8])
    -> Result<(), StoreError>;

    /// Hands `f` the blob of each of `domain`'s rows of `table` wholly in `[from, to)` (days,
    /// months or quarters; every month row, whether a quarter row holds it or not).
    fn rows_of(
        &mut self,
        table: Table,
        domain: &str,
        from: i64,
        to: i64,
        f: impl FnMut(&[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;

    /// Whether a month of `domain` wholly in `[from, to)` is listed stale.
    fn any_stale(&mut self, domain: &str, from: i64, to: i64) -> Result<bool, StoreError>;

    /// Whether `domain` has a quarter row at `start`.
    fn has_quarter(&mut self, domain: &str, start: i64) -> Result<bool, StoreError>;

    /// Each (domain, first day) of the month rows.
    fn month_rows(&mut self) -> Result<Vec<(String, i64)>, StoreError>;

    /// Hands `f` the day and blob of each part of `domain`'s days `[from, to)`, and deletes
    /// the parts it handed (those, not others written meanwhile).
    fn take_parts(
        &mut self,
        domain: &str,
        from: i64,
        to: i64,
        f: impl FnMut(i64, &[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;

    /// Deletes the parts of `domain`'s `day` (about to be summed again from its records).
    fn drop_parts(&mut self, domain: &str, day: i64) -> Result<(), StoreError>;

    /// Adds a part to `domain`'s `day`; how many parts the day has now.
    fn add_part(&mut self, domain: &str, day: i64, blob: &[u8]) -> Result<i64, StoreError>;

    /// Adds a part to each (domain, day) of `parts` (each day at most once), in order; how many
    /// parts each day has now, in the same order. By default [`Self::add_part`] for each; a
    /// backend may write them in fewer statements (SQLite: a unit of work of reports from many
    /// domains touches hundreds of days).
    fn add_parts(&mut self, parts: &[(&str, i64, &[u8])]) -> Result<Vec<i64>, StoreError> {
        parts
            .iter()
            .map(|(domain, day, blob)| self.add_part(domain, *day, blob))
            .collect()
    }

    /// This unit of work's number from the clock (each unit of work that writes takes the next).
    fn tick(&mut self) -> Result<i64, StoreError>;

    /// Deletes `domain`'s month row at `start` (with its thirds' rows, and the row of the
    /// quarter holding it) and lists it stale, touched at `clock`.
    fn mark_stale(
        &mut self,
        domain: &str,
        start: i64,
        end: i64,
        clock: i64,
    ) -> Result<(), StoreError>;

    /// [`Self::mark_stale`] for each of `months` (domain, first day, day after; each at most
    /// once). By default one at a time; a backend may do it in fewer statements.
    fn mark_stale_all(
        &mut self,
        months: &[(&str, i64, i64)],
        clock: i64,
    ) -> Result<(), StoreError> {
        for (domain, start, end) in months {
            self.mark_stale(domain, *start, *end, clock)?;
        }
        Ok(())
    }

    /// The stale months last touched at or before `before`: domain, first day, day after.
    fn stale_until(&mut self, before: i64) -> Result<Vec<(String, i64, i64)>, StoreError>;

    /// Takes `domain`'s month at `start` off the stale list.
    fn unstale(&mut self, domain: &str, start: i64) -> Result<(), StoreError>;

    /// Calls `f` with each stored record of `domain`'s reports ending on `day`, with its
    /// report's id, reporter, begin and end, and its messages.
    fn records_of_day(
        &mut self,
        domain: &str,
        day: i64,
        f: impl FnMut(i64, &StoredRecord<'_>, &str, Option<i64>, Option<i64>, u64),
    ) -> Result<(), StoreError>;

    /// Deletes every rollup row.
    fn clear(&mut self) -> Result<(), StoreError>;

    /// Each (domain, day of the end) of the stored aggregate reports, in order.
    fn report_days(&mut self) -> Result<Vec<(String, i64)>, StoreError>;

    /// Deletes (or, dry, counts) the day rows and parts of days before `day` (not [`NO_DAY`]'s),
    /// the rows of thirds, months and quarters and the stale months wholly before it, and the
    /// rows of thirds and quarters that begin before it (their days or months are read until
    /// they are summed again); how many rows (parts and the thirds and quarters across `day`
    /// not counted).
    fn prune_rows(&mut self, day: i64, dry_run: bool) -> Result<u64, StoreError>;

    /// The month rows that begin before `day` and end after it.
    fn months_across(&mut self, day: i64) -> Result<Vec<(String, i64, i64)>, StoreError>;

    /// The domains with a day row at `day`.
    fn domains_on(&mut self, day: i64) -> Result<Vec<String>, StoreError>;

    /// Where several writers write at once: takes the keys (domain, month's first day, as
    /// [`plan::month_key`] names them) a unit of work writes to, `shared` where it only adds
    /// parts, `exclusive` where it sums days again from their records, before it writes. One
    /// writer at a time: nothing to do.
    fn lock(
        &mut self,
        _shared: &BTreeSet<(String, i64)>,
        _exclusive: &BTreeSet<(String, i64)>,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    /// Where several writers write at once: takes the key of each of `months` (first days, as
    /// [`plan::month_key`] names them) of every domain with rollups, exclusive (`prune`).
    fn lock_every_domain(&mut self, _months: &[i64]) -> Result<(), StoreError> {
        Ok(())
    }

    /// Whether the parts of a day of `domain`'s month `month` may be folded now (no other
    /// writer adding to that month); never waits.
    fn try_fold(&mut self, _domain: &str, _month: i64) -> Result<bool, StoreError> {
        Ok(true)
    }

    /// Whether `domain`'s stale month `month` may be settled now (no other writer adding to
    /// it, and still stale as last touched at or before `before`); never waits.
    fn try_settle(&mut self, _domain: &str, _month: i64, _before: i64) -> Result<bool, StoreError> {
        Ok(true)
    }
}

/// A table of rollup rows, read by the reader ([`RollupRead::blobs`]) and the upkeep
/// ([`RollupSql::rows_of`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(in crate::store) enum Table {
    Quarters,
    /// The month rows (to the reader, those no quarter row wholly in its range holds).
    Months,
    /// The thirds of months.
    Thirds,
    /// The day rows and the parts of days (to the reader, those of the days no third's row
    /// wholly in its range holds).
    Days,
    Parts,
}

/// The reader's statements ([`evidence_rolled`]).
pub(in crate::store) trait RollupRead {
    /// The error for a stored blob that cannot be read: a damaged database.
    fn unreadable() -> StoreError;

    /// The stale months of `domain` (every domain's when `None`) that lie wholly in
    /// `[months.0, months.1)`: domain, first day, day after.
    fn stale_in(
        &mut self,
        domain: Option<&str>,
        months: (i64, i64),
    ) -> Result<Vec<(String, i64, i64)>, StoreError>;

    /// Hands `f` each row's domain and blob: of `table`, quarter rows wholly in `[range.0,
    /// range.1)`, month rows wholly in it that no such quarter row holds, rows of thirds wholly
    /// in it, or day rows and parts of days in it that no such third's row holds; when `f` says
    /// `None` (a blob it cannot read), an error (a damaged database).
    fn blobs(
        &mut self,
        table: Table,
        domain: Option<&str>,
        range: (i64, i64),
        f: impl FnMut(&str, &[u8]) -> Option<()>,
    ) -> Result<(), StoreError>;

    /// The mail of `domain`'s reports ending in `[since, until)` under `keys`, read from the
    /// records, per source IP and key ([`crate::store::Store::evidence_of_keys`]).
    fn of_keys(
        &mut self,
        domain: &str,
        since: i64,
        until: i64,
        keys: &[EvidenceKey],
    ) -> Result<Vec<IpEvidence>, StoreError>;

    /// `sources`' groups of the records of reports ending in `[since, until)`, their reports
    /// counted ([`crate::store::source_groups::SourceGroups::count_reports`]).
    fn source_groups(
        &mut self,
        domain: Option<&str>,
        since: i64,
        until: i64,
    ) -> Result<SourceGroups, StoreError>;

    /// The evidence of reports ending in `[since, until)` read from the records, per source IP.
    fn per_ip(
        &mut self,
        domain: Option<&str>,
        since: i64,
        until: i64,
        detail: Detail,
    ) -> Result<EvidenceAndDays, StoreError>;
}

/// The evidence of reports ending in `[since, until)` from the rollups, when the window holds a
/// whole day (else `None`): the same evidence as the records', but one row per key without the
/// source IP, its IPs in [`Evidence::ips`].
pub(in crate::store) fn evidence_rolled<R: RollupRead>(
    read: &mut R,
    domain: Option<&str>,
    since: Option<i64>,
    until: Option<i64>,
    detail: Detail,
) -> Result<Option<EvidenceAndDays>, StoreError> {
    let Some(plan) = Plan::of(since, until) else {
        return Ok(None);
    };
    let today = crate::time::now().div_euclid(DAY);
    let mut g = Gathered::new(detail, plan::likely_begins(since, until, today));
    // Stale months (the writers' current ones) are read by day.
    let stale = read.stale_in(domain, plan.months)?;
    for (table, domain, range) in reads(&plan, domain, &stale) {
        read.blobs(table, domain, range, |d, blob| g.add_blob(d, blob))?;
    }
    for (a, b) in plan.edges {
        g.add_per_ip(read.per_ip(domain, a, b, detail)?);
    }
    Ok(Some(g.finish().ok_or_else(R::unreadable)?))
}

/// The rows an answer over `plan` reads, in order: quarters, months, then the thirds, days and
/// parts of the days the plan reads by day, and the days of stale months.
fn reads<'d>(
    plan: &Plan,
    domain: Option<&'d str>,
    stale: &'d [(String, i64, i64)],
) -> Vec<(Table, Option<&'d str>, (i64, i64))> {
    let mut reads = vec![
        (Table::Quarters, domain, plan.months),
        (Table::Months, domain, plan.months),
    ];
    for range in &plan.days {
        for table in [Table::Thirds, Table::Days, Table::Parts] {
            reads.push((table, domain, *range));
        }
    }
    for (d, start, end) in stale {
        for table in [Table::Days, Table::Parts] {
            reads.push((table, Some(d.as_str()), (*start, *end)));
        }
    }
    reads
}

/// [`crate::store::Store::evidence_of_keys`] from the rollups, when the window holds a whole
/// day (else `None`): each wanted key's IPs' own sums in the rows the window reads whole, and
/// the records of its partial first and last days; the same sums as the records'.
pub(in crate::store) fn of_keys_rolled<R: RollupRead>(
    read: &mut R,
    domain: &str,
    since: Option<i64>,
    until: Option<i64>,
    keys: &[EvidenceKey],
) -> Result<Option<Vec<IpEvidence>>, StoreError> {
    let Some(plan) = Plan::of(since, until) else {
        return Ok(None);
    };
    let mut fold = crate::store::of_keys::OfKeys::new(keys);
    let stale = read.stale_in(Some(domain), plan.months)?;
    for (table, d, range) in reads(&plan, Some(domain), &stale) {
        read.blobs(table, d, range, |_, blob| {
            codec::entries(blob, |names, key, sums| {
                let place = fold.place_by(key, || codec::decode_key(key, domain).ok_or(()));
                match place.ok()? {
                    Some(at) => codec::Sums::visit(sums, names, &mut gather::OfKey(&mut fold, at)),
                    None => Some(()),
                }
            })
        })?;
    }
    for (a, b) in plan.edges {
        for e in read.of_keys(domain, a, b, keys)? {
            fold.add_sums(
                &e.ip,
                e.key,
                e.messages,
                e.reporters.iter().map(String::as_str),
            );
        }
    }
    Ok(Some(fold.finish()))
}

/// `sources`' groups (source IP, header From, and domain when `domain` is none) of the reports
/// ending at or after `since` from the rollups, when the window holds a whole day and has no
/// `until` (else `None`): each key's IPs' own messages, counted as the key's results say, and
/// reports (each report counted by one key of each of its IPs and header Froms:
/// [`codec::Sums::add`]), in the rows the window reads whole, and the records of its partial
/// first day. A listing's `until` bounds the reports' begin (`--until`: periods beginning
/// before it), which the rollups, by day of the end, cannot answer: the records do.
pub(in crate::store) fn sources_rolled<R: RollupRead>(
    read: &mut R,
    domain: Option<&str>,
    since: Option<i64>,
    until: Option<i64>,
) -> Result<Option<SourceGroups>, StoreError> {
    if until.is_some() {
        return Ok(None);
    }
    let Some(plan) = Plan::of(since, None) else {
        return Ok(None);
    };
    let mut groups = SourceGroups::new(false);
    let (mut buf, mut ip) = (Vec::new(), String::new());
    let stale = read.stale_in(domain, plan.months)?;
    for (table, d, range) in reads(&plan, domain, &stale) {
        read.blobs(table, d, range, |row_domain, blob| {
            codec::entries(blob, |names, key, sums| {
                let key = codec::decode_key(key, row_domain)?;
                let mut sink = gather::OfSources {
                    groups: &mut groups,
                    key: &key,
                    domain: domain.is_none().then_some(row_domain),
                    buf: &mut buf,
                    ip: &mut ip,
                };
                codec::Sums::visit(sums, names, &mut sink)
            })
        })?;
    }
    for (a, b) in plan.edges {
        groups.join(read.source_groups(domain, a, b)?);
    }
    Ok(Some(groups))
}

#[cfg(test)]
mod tests {
    use super::codec::*;
    use super::plan::*;
    use crate::model::{DkimResult, EvidenceKey};

    /// Numbers of every length read back as written, whether eight bytes follow them (read a
    /// word at a time) or not (byte by byte), and a number cut short is damage.
    #[test]
    fn varints_read_back() {
        let mut numbers = vec![0, 1, 127, 128, 300, 16_383, 16_384, u64::MAX];
        numbers.extend((0..64).map(|b| 1u64 << b));
        numbers.extend((1..64).map(|b| (1u64 << b) - 1));
        let mut b = Vec::new();
        for n in &numbers {
            put_varint(&mut b, *n);
        }
        let mut c = Cursor::new(&b);
        for n in &numbers {
            assert_eq!(c.varint(), Some(*n));
        }
        assert!(c.done());
        for n in &numbers {
            let mut alone = Vec::new();
            put_varint(&mut alone, *n);
            assert_eq!(Cursor::new(&alone).varint(), Some(*n));
            let cut = &alone[..alone.len() - 1];
            let mut padded = cut.to_vec();
            padded.extend_from_slice(&[0x80; 9]);
            assert_eq!(Cursor::new(cut).varint(), None);
            assert_ne!(Cursor::new(&padded).varint(), Some(*n));
        }
    }

    /// The set of IPs a reader of the set alone reads.
    #[derive(Default)]
    struct Set {
        v4: Vec<u32>,
        other: Vec<String>,
    }

    impl SumsSink for Set {
        fn totals(&mut self, _: u64, _: Option<i64>, _: Option<i64>) {}
        fn begin(&mut self, _: i64, _: u64) {}
        fn reporter(&mut self, _: usize, _: &str) {}
        fn v4s(&mut self) -> Option<&mut Vec<u32>> {
            Some(&mut self.v4)
        }
        fn other(&mut self, ip: &str) {
            self.other.push(ip.to_owned());
        }
    }

    /// Each IP of decoded sums (as the records hold it) with its messages, reports and
    /// reporters.
    fn per_ip(s: &Sums) -> Vec<(String, u64, u32, Vec<String>)> {
        let mut out: std::collections::BTreeMap<String, (u64, u32, Vec<String>)> =
            Default::default();
        let v4 =
            s.v4.iter()
                .map(|(a, r, n, k)| (Ip::V4(*a).to_string(), *r, *n, *k));
        let other = s.other.iter().map(|(t, r, n, k)| (t.clone(), *r, *n, *k));
        for (ip, r, n, k) in v4.chain(other) {
            let e = out.entry(ip).or_default();
            e.0 += n;
            e.1 += k;
            if let Some(name) = s.reporters.get(r as usize)
                && !e.2.contains(name)
            {
                e.2.push(name.clone());
                e.2.sort();
            }
        }
        out.into_iter()
            .map(|(ip, (n, k, r))| (ip, n, k, r))
            .collect()
    }

    /// An IP appended by `push_to` is its `Display` text, every octet's length and the rest.
    #[test]
    fn ips_are_written_as_displayed() {
        let mut out = String::new();
        let mut x: u32 = 12_345;
        let v4 = [
            0,
            1,
            9,
            10,
            99,
            100,
            255,
            0x0a00_0001,
            0xc000_0201,
            u32::MAX,
        ];
        for a in v4.into_iter().chain((0..2_000).map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            x
        })) {
            out.clear();
            Ip::V4(a).push_to(&mut out);
            assert_eq!(out, Ip::V4(a).to_string());
        }
        for t in ["2001:db8::1", "", "192.000.2.1"] {
            out.clear();
            Ip::of(t).push_to(&mut out);
            assert_eq!(out, t);
        }
    }

    #[test]
    fn sums_survive_storing_and_merge() {
        let mut a = Sums::default();
        let google = a.add_reporter("Google");
        let yahoo = a.add_reporter("Yahoo\nInc");
        for (ip, r, n, k) in [
            ("192.0.2.1", google, 2, 1),
            ("2001:db8::1", yahoo, 1, 1),
            ("", google, 1, 0),
            ("192.000.2.1", yahoo, 1, 1),
            ("10.0.0.1", google, 1, 1),
            ("192.0.2.1", yahoo, 1, 1),
        ] {
            a.add_ip(Ip::of(ip), r, n, k);
        }
        assert_eq!(Ip::of("192.000.2.1"), Ip::Other("192.000.2.1"));
        a.messages = 7;
        a.first = Some(-5);
        a.last = Some(86_400 * 20_000);
        a.add_begin(20_000, 3);
        a.add_begin(-2, 4);
        let key = EvidenceKey {
            domain: "example.org".into(),
            header_from: "example.org".into(),
            dkim_result: DkimResult::Pass,
            spf_aligned: true,
            ..EvidenceKey::default()
        };
        let mut kb = Vec::new();
        encode_key(&key, &mut kb);
        assert_eq!(decode_key(&kb, "example.org"), Some(key));
        let blob = merge(&[], Entries::from_iter([(kb.clone(), a.clone())])).unwrap();
        // Another batch's sums of the key, with a reporter the blob names at another place.
        let mut b = Sums {
            messages: 7,
            first: a.first,
            last: a.last,
            begins: a.begins.clone(),
            ..Sums::default()
        };
        let ms = b.add_reporter("Microsoft");
        let google = b.add_reporter("Google");
        b.add_ip(Ip::V4(u32::MAX), ms, 3, 2);
        b.add_ip(Ip::V4(0), google, 0, 0);
        b.add_ip(Ip::of("192.0.2.1"), ms, 4, 1);
        let twice = merge(&blob, Entries::from_iter([(kb.clone(), b)])).unwrap();
        let mut seen = 0;
        entries(&twice, |names, k, stored| {
            assert_eq!(k, kb.as_slice());
            let s = Sums::decode(stored, names)?;
            assert_eq!(s.messages, 14);
            assert_eq!(s.begins, [(-2, 8), (20_000, 6)]);
            assert_eq!(s.reporters, ["Google", "Yahoo\nInc", "Microsoft"]);
            let (g, y, m) = (
                "Google".to_owned(),
                "Yahoo\nInc".to_owned(),
                "Microsoft".to_owned(),
            );
            assert_eq!(
                per_ip(&s),
                [
                    ("".to_owned(), 1, 0, vec![g.clone()]),
                    ("0.0.0.0".to_owned(), 0, 0, vec![g.clone()]),
                    ("10.0.0.1".to_owned(), 1, 1, vec![g.clone()]),
                    (
                        "192.0.2.1".to_owned(),
                        7,
                        3,
                        vec![g.clone(), m.clone(), y.clone()]
                    ),
                    ("192.000.2.1".to_owned(), 1, 1, vec![y.clone()]),
                    ("2001:db8::1".to_owned(), 1, 1, vec![y.clone()]),
                    ("255.255.255.255".to_owned(), 3, 2, vec![m.clone()]),
                ]
            );
            // The set alone, the IPs' own sums stepped over.
            let mut set = Set::default();
            Sums::visit(stored, names, &mut set)?;
            assert_eq!(set.v4, [0, 0x0a00_0001, 0xc000_0201, u32::MAX]);
            assert_eq!(set.other, ["", "192.000.2.1", "2001:db8::1"]);
            seen += 1;
            Some(())
        })
        .unwrap();
        assert_eq!(seen, 1);
        // An untouched entry is copied as it was.
        let other_key = vec![9u8];
        let more = merge(&twice, Entries::from_iter([(other_key, Sums::default())])).unwrap();
        assert!(more.starts_with(&twice));
        assert!(merge(&[3, 1], Entries::default()).is_none());
    }

    #[test]
    fn a_window_reads_months_days_and_partial_edges() {
        let day = |y, m, d| crate::time::parse_day(&format!("{y}-{m:02}-{d:02}")).unwrap() / DAY;
        // Daily reports ending 23:59:59: a window of 365 days starts at a midnight.
        let last = (day(2026, 12, 3) + 1) * DAY - 1;
        let since = crate::analyse::window_start(Some(last), Some(365));
        let p = Plan::of(since, None).unwrap();
        assert_eq!(p.edges, []);
        assert_eq!(p.months, (day(2026, 1, 1), i64::MAX));
        assert_eq!(p.days, [(day(2025, 12, 4), day(2026, 1, 1))]);
        // Reports ending at 06:00: the first day is partial, read from its records.
        let since = day(2026, 3, 10) * DAY + 6 * 3600 + 1;
        let until = day(2026, 5, 2) * DAY + 3600;
        let p = Plan::of(Some(since), Some(until)).unwrap();
        assert_eq!(
            p.edges,
            [
                (since, day(2026, 3, 11) * DAY),
                (day(2026, 5, 2) * DAY, until)
            ]
        );
        assert_eq!(p.months, (day(2026, 4, 1), day(2026, 5, 1)));
        assert_eq!(
            p.days,
            [
                (day(2026, 3, 11), day(2026, 4, 1)),
                (day(2026, 5, 1), day(2026, 5, 2))
            ]
        );
        // Within a month: days only; within a day: none (the records).
        let p = Plan::of(Some(day(2026, 3, 10) * DAY), Some(day(2026, 3, 20) * DAY)).unwrap();
        assert_eq!(p.days, [(day(2026, 3, 10), day(2026, 3, 20))]);
        assert_eq!(Plan::of(Some(100), Some(200)), None);
        // Everything: every month, and the day rows of reports without an end.
        let p = Plan::of(None, None).unwrap();
        assert_eq!(p.months, (NO_DAY + 1, i64::MAX));
        assert_eq!(p.days, [(NO_DAY, NO_DAY + 1)]);
        // Up to a moment: no report without an end.
        let p = Plan::of(None, Some(day(2026, 3, 1) * DAY)).unwrap();
        assert_eq!(p.months, (NO_DAY + 1, day(2026, 3, 1)));
        assert_eq!(p.days, []);
    }
}
