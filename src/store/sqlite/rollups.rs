//! The sender tier of the rollups (`schemas/0011_rollups.sql`): the aggregate records summed per
//! policy domain, UTC day of the report's end, day of its begin and evidence key without the
//! source IP, with the row's reporters and source IPs as sets; kept in the unit of work that stores
//! the reports, and read by [`Db::evidence_in`] for windows of whole UTC days.
//!
//! Without the IP, because source IPs hardly repeat: in a generated estate of 2.0M records, 1.86M
//! distinct (domain, day, IP) but 370k (domain, day, key without IP). What the IP decides is kept
//! exactly: the distinct IPs of a sender are the union of its rows' sets, and `judge` reads the
//! records per IP for a domain whose rows its IPs would part between senders (declared networks,
//! reverse DNS names: [`crate::analyse::stand_in`]), and where a caller needs IPs' own messages.
//!
//! Upkeep: each report a unit of work stores is summed into [`Pending`] in memory (no record is
//! read back), and [`Tx::commit`] writes the sums with multi-row upserts in key order (counts
//! added, min/max for the first begin and last end, the sets merged by the SQL functions
//! registered by [`register_functions`]). A replaced copy or `prune` marks the (domain, day) it
//! deletes from; at commit those days are summed again from their records (a minimum or a set
//! cannot be subtracted), their pending sums dropped. The migration's back-fill is the same sum.
//!
//! `DMARC_WARDEN_FROM_RECORDS=1` makes the readers ignore the rollups (to compare the two).

use std::collections::{BTreeSet, HashMap};

use rusqlite::functions::FunctionFlags;
use rusqlite::types::Value;
use rusqlite::{Connection, params};

use super::{Db, Tx};
use crate::analyse::min_opt;
use crate::model::{
    AggregateReport, DayCount, Disposition, DkimResult, Evidence, EvidenceKey, IpSet, SpfResult,
};
use crate::store::{StoreError, StoredRecord};

/// The day stored for a report without an end (or a begin): below every real day.
pub const NO_DAY: i64 = i64::MIN;

/// Seconds in a day.
const DAY: i64 = 86_400;

/// Rows an upsert statement carries at most (17 values a row).
const ROWS_PER_UPSERT: usize = 32;

/// The UTC day of a moment, [`NO_DAY`] without one.
fn day_of(t: Option<i64>) -> i64 {
    t.map_or(NO_DAY, |t| t.div_euclid(DAY))
}

/// Whether the readers are to ignore the rollups (`DMARC_WARDEN_FROM_RECORDS=1`).
pub(super) fn from_records() -> bool {
    std::env::var_os("DMARC_WARDEN_FROM_RECORDS").is_some_and(|v| v == "1")
}

/// Evidence as its readers return it: the rows and their day counts.
type EvidenceAndDays = (Vec<Evidence>, Vec<DayCount>);

/// A row's key: (day, begin_day, evidence key with an empty `source_ip`).
type RowKey = (i64, i64, EvidenceKey);

/// A row's sums.
#[derive(Default)]
struct Sums {
    messages: u64,
    first: Option<i64>,
    last: Option<i64>,
    reporters: BTreeSet<String>,
    ips: IpSet,
}

/// Sums of the reports a unit of work stored, not yet written.
#[derive(Default)]
pub(super) struct Pending {
    rows: HashMap<RowKey, Sums>,
    /// The (domain, day)s to sum again from their records at commit.
    dirty: BTreeSet<(String, i64)>,
}

impl Pending {
    /// Adds one report as stored (its records as `insert_records` writes them).
    fn add_report(&mut self, r: &AggregateReport) {
        let (m, domain) = (&r.metadata, r.policy.domain.as_str());
        for rec in &r.records {
            let (dk, sp) = (rec.deciding_dkim(), rec.deciding_spf());
            let stored = StoredRecord {
                domain,
                source_ip: &rec.source_ip,
                header_from: rec.header_from.as_deref(),
                auth_dkim_domain: dk.map(|d| d.domain.as_str()),
                auth_dkim_result: dk.map(|d| d.result.as_str()),
                auth_spf_domain: sp.map(|s| s.domain.as_str()),
                auth_spf_result: sp.map(|s| s.result.as_str()),
                envelope_from: rec.envelope_from.as_deref(),
                dkim: rec.dkim.as_ref().map(|d| d.as_str()),
                spf: rec.spf.as_ref().map(|s| s.as_str()),
                disposition: rec.disposition.as_ref().map(|d| d.as_str()),
                forwarded: rec.forwarded(),
            };
            self.add_record(&stored, &m.org_name, m.begin, m.end, rec.count);
        }
    }

    /// Adds one record of a report of `org` for (`begin`, `end`) with `count` messages.
    fn add_record(
        &mut self,
        stored: &StoredRecord<'_>,
        org: &str,
        begin: Option<i64>,
        end: Option<i64>,
        count: u64,
    ) {
        let mut key = stored.evidence_key();
        let ip = std::mem::take(&mut key.source_ip);
        let s = self
            .rows
            .entry((day_of(end), day_of(begin), key))
            .or_default();
        s.messages = s.messages.saturating_add(count);
        s.first = min_opt(s.first, begin);
        s.last = s.last.max(end);
        if !s.reporters.contains(org) {
            s.reporters.insert(org.to_owned());
        }
        s.ips.insert(&ip);
    }
}

/// A set of texts as stored: each as its length (u32, little-endian) and bytes, in order.
fn encode_texts<'a>(texts: impl Iterator<Item = &'a String>, out: &mut Vec<u8>) {
    for t in texts {
        out.extend_from_slice(&(t.len() as u32).to_le_bytes());
        out.extend_from_slice(t.as_bytes());
    }
}

/// The texts of [`encode_texts`]; `None` when the bytes are not such a list.
fn decode_texts(mut b: &[u8], out: &mut BTreeSet<String>) -> Option<()> {
    while !b.is_empty() {
        let n = u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as usize;
        let text = std::str::from_utf8(b.get(4..4 + n)?).ok()?;
        if !out.contains(text) {
            out.insert(text.to_owned());
        }
        b = &b[4 + n..];
    }
    Some(())
}

/// `n` as a LEB128 varint.
fn put_varint(out: &mut Vec<u8>, mut n: u32) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// The varint at the start of `b`, and the bytes after it.
fn get_varint(b: &[u8]) -> Option<(u32, &[u8])> {
    let mut n: u32 = 0;
    for (i, byte) in b.iter().enumerate().take(5) {
        n |= u32::from(byte & 0x7f).checked_shl(7 * i as u32)?;
        if byte & 0x80 == 0 {
            return Some((n, &b[i + 1..]));
        }
    }
    None
}

/// A set of IPs as stored: how many canonical IPv4 addresses (a varint), the addresses in
/// increasing order as varint differences (the first from 0), then the other IPs as
/// [`encode_texts`]. Small, and read without building a structure: most rows hold one IP, few
/// more than a hundred, and spread over the address space, which a bitmap stores no better.
fn encode_ips(v4: &[u32], other: &BTreeSet<String>) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + v4.len() * 4);
    put_varint(&mut out, v4.len() as u32);
    let mut prev = 0;
    for &a in v4 {
        put_varint(&mut out, a - prev);
        prev = a;
    }
    encode_texts(other.iter(), &mut out);
    out
}

/// Appends the IPs `b` holds ([`encode_ips`]) to `v4` (in their order) and `other`; `None` when
/// `b` is not such a set.
fn decode_ips(b: &[u8], v4: &mut Vec<u32>, other: &mut BTreeSet<String>) -> Option<()> {
    let (n, mut rest) = get_varint(b)?;
    let mut prev: u32 = 0;
    v4.reserve(n as usize);
    for _ in 0..n {
        let (d, r) = get_varint(rest)?;
        prev = prev.checked_add(d)?;
        v4.push(prev);
        rest = r;
    }
    decode_texts(rest, other)
}

/// A stored set that cannot be read: a damaged database.
fn unreadable(column: usize) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        column,
        rusqlite::types::Type::Blob,
        "unreadable rollup set".into(),
    )
}

/// Registers `rollup_texts(a, b)` and `rollup_ips(a, b)` (the union of two stored sets), which the
/// upserts merge with, on a connection that writes.
pub(super) fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("rollup_texts", 2, flags, |ctx| {
        let mut set = BTreeSet::new();
        for i in 0..2 {
            let b = ctx.get_raw(i).as_blob().map_err(|_| unreadable(i))?;
            decode_texts(b, &mut set).ok_or_else(|| unreadable(i))?;
        }
        let mut out = Vec::new();
        encode_texts(set.iter(), &mut out);
        Ok(out)
    })?;
    conn.create_scalar_function("rollup_ips", 2, flags, |ctx| {
        let (mut v4, mut other) = (Vec::new(), BTreeSet::new());
        for i in 0..2 {
            let b = ctx.get_raw(i).as_blob().map_err(|_| unreadable(i))?;
            decode_ips(b, &mut v4, &mut other).ok_or_else(|| unreadable(i))?;
        }
        v4.sort_unstable();
        v4.dedup();
        Ok(encode_ips(&v4, &other))
    })
}

/// The key columns of `rollup_senders`, in its primary key's order.
const KEY_COLUMNS: [&str; 12] = [
    "domain",
    "day",
    "begin_day",
    "header_from",
    "dkim_domain",
    "dkim_result",
    "spf_domain",
    "spf_result",
    "dkim_aligned",
    "spf_aligned",
    "disposition",
    "forwarded",
];

/// Writes `p`'s sums, but for its dirty days (summed again from their records first).
fn write(conn: &Connection, mut p: Pending) -> Result<(), StoreError> {
    if !p.dirty.is_empty() {
        let dirty = std::mem::take(&mut p.dirty);
        p.rows
            .retain(|(day, _, k), _| !dirty.contains(&(k.domain.clone(), *day)));
        for (domain, day) in &dirty {
            conn.prepare_cached("DELETE FROM rollup_senders WHERE domain = ?1 AND day = ?2")?
                .execute(params![domain, day])?;
            sum_day(conn, domain, *day, &mut p)?;
        }
    }
    if p.rows.is_empty() {
        return Ok(());
    }
    // In the table's key order: each page of its B-tree is visited once.
    let mut rows: Vec<(RowKey, Sums)> = p.rows.into_iter().collect();
    rows.sort_unstable_by(|a, b| {
        let (x, y) = (&a.0, &b.0);
        (&x.2.domain, x.0, x.1, &x.2).cmp(&(&y.2.domain, y.0, y.1, &y.2))
    });
    let text = |s: &str| Value::Text(s.to_owned());
    let values = rows.into_iter().map(|((day, begin_day, k), s)| {
        let mut reporters = Vec::new();
        encode_texts(s.reporters.iter(), &mut reporters);
        [
            text(&k.domain),
            day.into(),
            begin_day.into(),
            Value::Text(k.header_from),
            Value::Text(k.dkim_domain),
            text(k.dkim_result.as_str()),
            Value::Text(k.spf_domain),
            text(k.spf_result.as_str()),
            i64::from(k.dkim_aligned).into(),
            i64::from(k.spf_aligned).into(),
            text(k.disposition.as_str()),
            i64::from(k.forwarded).into(),
            super::sat(s.messages).into(),
            s.first.into(),
            s.last.into(),
            Value::Blob(reporters),
            Value::Blob(encode_ips(
                &s.ips.v4.iter().collect::<Vec<_>>(),
                &s.ips.other,
            )),
        ]
    });
    let values: Vec<[Value; 17]> = values.collect();
    let columns = format!(
        "{}, messages, first, last, reporters, ips",
        KEY_COLUMNS.join(", ")
    );
    let one = format!("({})", ["?"; 17].join(", "));
    let mut at = 0;
    while at < values.len() {
        // Tails as powers of two: few statements to compile.
        let n = 1 << (values.len() - at).min(ROWS_PER_UPSERT).ilog2();
        let sql = format!(
            "INSERT INTO rollup_senders ({columns}) VALUES {}
             ON CONFLICT ({}) DO UPDATE SET messages = messages + excluded.messages,
                first = min(coalesce(first, excluded.first), coalesce(excluded.first, first)),
                last = max(coalesce(last, excluded.last), coalesce(excluded.last, last)),
                reporters = rollup_texts(reporters, excluded.reporters),
                ips = rollup_ips(ips, excluded.ips)",
            vec![one.as_str(); n].join(", "),
            KEY_COLUMNS.join(", ")
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        stmt.execute(rusqlite::params_from_iter(
            values[at..at + n].iter().flatten(),
        ))?;
        at += n;
    }
    Ok(())
}

/// Adds to `p` the stored records of `domain`'s reports ending on `day`.
fn sum_day(conn: &Connection, domain: &str, day: i64, p: &mut Pending) -> Result<(), StoreError> {
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
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT c.source_ip, c.header_from, c.auth_dkim_domain, c.auth_dkim_result,
            c.auth_spf_domain, c.auth_spf_result, c.envelope_from, c.dkim, c.spf,
            c.disposition, c.forwarded, r.org_name, r.date_begin, r.date_end, c.count
         FROM reports r CROSS JOIN records c ON c.report = r.id
         WHERE r.domain = ?1 AND {span}"
    ))?;
    let mut rows = stmt.query(params![domain, from, to])?;
    while let Some(r) = rows.next()? {
        let text = |i| r.get_ref(i).map(|v| v.as_str_or_null().ok().flatten());
        let stored = StoredRecord {
            domain,
            source_ip: text(0)?.unwrap_or_default(),
            header_from: text(1)?,
            auth_dkim_domain: text(2)?,
            auth_dkim_result: text(3)?,
            auth_spf_domain: text(4)?,
            auth_spf_result: text(5)?,
            envelope_from: text(6)?,
            dkim: text(7)?,
            spf: text(8)?,
            disposition: text(9)?,
            forwarded: r.get(10)?,
        };
        let org = text(11)?.unwrap_or_default();
        p.add_record(&stored, org, r.get(12)?, r.get(13)?, r.get(14)?);
    }
    Ok(())
}

/// Deletes the rollups and sums every stored report again, one (domain, day) at a time (the
/// migration's back-fill; after `migrate --to` copied the reports in).
pub(super) fn rebuild(conn: &Connection) -> Result<(), StoreError> {
    conn.execute("DELETE FROM rollup_senders", [])?;
    let days: Vec<(String, Option<i64>)> = conn
        .prepare(
            "SELECT DISTINCT domain, CASE WHEN date_end IS NOT NULL
                THEN (date_end - ((date_end % 86400) + 86400) % 86400) / 86400 END
             FROM reports",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (domain, day) in days {
        let mut p = Pending::default();
        sum_day(conn, &domain, day.unwrap_or(NO_DAY), &mut p)?;
        write(conn, p)?;
    }
    Ok(())
}

/// `prune`'s part: deletes (or, dry, counts) the rows of days before the day `cutoff` starts
/// (reports ending before it go); the reports without an end, pruned by when they were stored,
/// are summed again from what remains. How many rows went (or would go).
pub(super) fn prune(conn: &Connection, cutoff: i64, dry_run: bool) -> Result<u64, StoreError> {
    let before = "day < ?1 AND day > -9223372036854775808";
    let day = cutoff.div_euclid(DAY);
    if dry_run {
        let n: i64 = conn.query_row(
            &format!("SELECT count(*) FROM rollup_senders WHERE {before}"),
            [day],
            |r| r.get(0),
        )?;
        return Ok(u64::try_from(n).unwrap_or(0));
    }
    let gone = conn.execute(&format!("DELETE FROM rollup_senders WHERE {before}"), [day])?;
    let undated: Vec<String> = conn
        .prepare("SELECT DISTINCT domain FROM rollup_senders WHERE day = ?1")?
        .query_map([NO_DAY], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let p = Pending {
        dirty: undated.into_iter().map(|d| (d, NO_DAY)).collect(),
        ..Pending::default()
    };
    write(conn, p)?;
    Ok(gone as u64)
}

impl Tx<'_> {
    /// Adds the reports this unit of work stored to the rollups' pending sums.
    pub(super) fn roll_up(&self, reports: &[(i64, &AggregateReport)]) {
        let mut p = self.rollups.borrow_mut();
        for (_, r) in reports {
            p.add_report(r);
        }
    }

    /// Marks `domain`'s day of `end` (a report of it is about to be deleted in this unit of
    /// work) to be summed again from its records at commit.
    pub(super) fn forget_day(&self, domain: &str, end: Option<i64>) {
        let mut p = self.rollups.borrow_mut();
        p.dirty.insert((domain.to_owned(), day_of(end)));
    }

    /// Writes the pending sums (at commit).
    pub(super) fn keep_rollups(&mut self) -> Result<(), StoreError> {
        let p = self.rollups.take();
        write(&self.tx, p)
    }

    /// Deletes the rollups and sums every stored report again (after `migrate --to` copied the
    /// reports in).
    pub fn rebuild_rollups(&mut self) -> Result<(), StoreError> {
        self.rollups.take();
        rebuild(&self.tx)
    }
}

/// The whole days `[since, until)` covers, when both are UTC midnights (or absent): the rollups
/// answer only windows of whole days.
fn whole_days(since: Option<i64>, until: Option<i64>) -> Option<(Option<i64>, Option<i64>)> {
    let day = |t: Option<i64>| match t {
        None => Some(None),
        Some(t) if t.rem_euclid(DAY) == 0 => Some(Some(t / DAY)),
        Some(_) => None,
    };
    Some((day(since)?, day(until)?))
}

impl Db {
    /// [`Db::evidence_in`] from the rollups, when the window is whole days (else `None`): the
    /// same evidence, but one row per key without the source IP, its IPs in [`Evidence::ips`].
    pub(super) fn evidence_rolled(
        &self,
        domain: Option<&str>,
        since: Option<i64>,
        until: Option<i64>,
        by_day: bool,
    ) -> Result<Option<EvidenceAndDays>, StoreError> {
        let Some((from, to)) = whole_days(since, until) else {
            return Ok(None);
        };
        // Spelled out only when given (`IS NULL OR …` would keep the planner from the key).
        let conditions = [
            if domain.is_some() {
                "domain = ?1"
            } else {
                "?1 IS NULL"
            },
            if from.is_some() {
                "day >= ?2"
            } else {
                "?2 IS NULL"
            },
            if to.is_some() {
                "day < ?3 AND day > -9223372036854775808"
            } else {
                "?3 IS NULL"
            },
        ]
        .join(" AND ");
        let mut stmt = self.conn.prepare(&format!(
            "SELECT domain, header_from, dkim_domain, dkim_result, spf_domain, spf_result,
                dkim_aligned, spf_aligned, disposition, forwarded, begin_day, messages, first,
                last, reporters, ips
             FROM rollup_senders WHERE {conditions}"
        ))?;
        let mut rows = stmt.query(params![domain, from, to])?;
        // Rows are summed by their key columns, looked up by those columns' bytes in a reused
        // buffer (a row like one seen before allocates nothing); each row's IPv4 addresses are
        // gathered in a list, sorted and made a set once at the end.
        let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut by_key: HashMap<EvidenceKey, usize> = HashMap::new();
        let mut out: Vec<Evidence> = Vec::new();
        let mut v4s: Vec<Vec<u32>> = Vec::new();
        let mut others: Vec<BTreeSet<String>> = Vec::new();
        let mut daily: HashMap<(usize, i64), u64> = HashMap::new();
        let mut buf = Vec::new();
        while let Some(r) = rows.next()? {
            buf.clear();
            for i in 0..10 {
                super::listings::key_bytes(&mut buf, r.get_ref(i)?);
            }
            let at = match index.get(buf.as_slice()) {
                Some(at) => *at,
                None => {
                    let text = |i| r.get_ref(i).map(|v| v.as_str().unwrap_or_default());
                    let key = EvidenceKey {
                        domain: r.get(0)?,
                        source_ip: String::new(),
                        header_from: r.get(1)?,
                        dkim_domain: r.get(2)?,
                        dkim_result: DkimResult::parse(text(3)?),
                        spf_domain: r.get(4)?,
                        spf_result: SpfResult::parse(text(5)?),
                        dkim_aligned: r.get(6)?,
                        spf_aligned: r.get(7)?,
                        disposition: Disposition::parse(text(8)?),
                        forwarded: r.get(9)?,
                    };
                    let at = *by_key.entry(key).or_insert_with_key(|key| {
                        out.push(Evidence {
                            key: key.clone(),
                            ..Evidence::default()
                        });
                        v4s.push(Vec::new());
                        others.push(BTreeSet::new());
                        out.len() - 1
                    });
                    index.insert(buf.clone(), at);
                    at
                }
            };
            let begin_day: i64 = r.get(10)?;
            let count: u64 = r.get(11)?;
            let e = &mut out[at];
            e.messages = e.messages.saturating_add(count);
            e.first = min_opt(e.first, r.get(12)?);
            e.last = e.last.max(r.get(13)?);
            let reporters = r.get_ref(14)?.as_blob().map_err(|_| unreadable(14))?;
            decode_texts(reporters, &mut e.reporters).ok_or(unreadable(14))?;
            let ips = r.get_ref(15)?.as_blob().map_err(|_| unreadable(15))?;
            decode_ips(ips, &mut v4s[at], &mut others[at]).ok_or(unreadable(15))?;
            if begin_day != NO_DAY {
                e.days.insert(begin_day);
                if by_day {
                    *daily.entry((at, begin_day)).or_default() += count;
                }
            }
        }
        for ((e, mut v4), other) in out.iter_mut().zip(v4s).zip(others) {
            v4.sort_unstable();
            v4.dedup();
            let v4 = roaring::RoaringBitmap::from_sorted_iter(v4).unwrap_or_default();
            e.ips = Some(IpSet { v4, other });
        }
        Ok(Some(super::evidence::sorted(out, daily)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_survive_storing_and_merge_as_unions() {
        let mut a = IpSet::default();
        for ip in [
            "192.0.2.1",
            "2001:db8::1",
            "",
            "192.000.2.1",
            "not an ip",
            "10.0.0.1",
        ] {
            a.insert(ip);
        }
        assert_eq!(a.v4.len(), 2);
        assert_eq!(a.len(), 6);
        let sorted: Vec<u32> = a.v4.iter().collect();
        let (mut v4, mut other) = (Vec::new(), BTreeSet::new());
        decode_ips(&encode_ips(&sorted, &a.other), &mut v4, &mut other).unwrap();
        assert_eq!((&v4, &other), (&sorted, &a.other));
        let far = [0, 1, 0x7f, 0x80, 0x3fff, 0x4000, u32::MAX];
        let mut again = Vec::new();
        decode_ips(&encode_ips(&far, &other), &mut again, &mut other).unwrap();
        assert_eq!(again, far);
        let texts: BTreeSet<String> = ["Google", "", "Yahoo\nInc"].map(String::from).into();
        let mut bytes = Vec::new();
        encode_texts(texts.iter(), &mut bytes);
        let mut again = BTreeSet::new();
        decode_texts(&bytes, &mut again).unwrap();
        assert_eq!(again, texts);
        assert!(decode_texts(&[9, 0, 0, 0, b'x'], &mut again).is_none());
        assert!(decode_ips(&[2, 0x80], &mut v4, &mut other).is_none());
    }
}
