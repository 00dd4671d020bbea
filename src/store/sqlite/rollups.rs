//! The sender tier of the rollups (`schemas/0012_rollups.sql`): the aggregate records summed per
//! evidence key without the source IP, one row per policy domain and UTC day of the report's end
//! (`rollup_days`) and one per domain and calendar month (`rollup_months`), each row holding every
//! key's sums in one blob; kept in the unit of work that stores the reports, and read by
//! [`Db::evidence_in`]: whole months from the month rows, the other whole days from the day rows,
//! and a window's partial first (or last) day from the records of just those reports, so that a
//! window means what it means on the records (`analyse::window_start`) and a year reads about a
//! dozen rows per domain.
//!
//! Without the IP, because source IPs hardly repeat: in a generated estate of 2.0M records, 1.86M
//! distinct (domain, day, IP) but 370k (domain, day, key without IP). What the IP decides is kept
//! exactly: each key's sums hold its source IPs as a set, the distinct IPs of a sender are the
//! union of its rows' sets, and `judge` reads the records per IP for a domain whose rows its IPs
//! would part between senders (declared networks, reverse DNS names:
//! [`crate::analyse::stand_in`]), and where a caller needs IPs' own messages.
//!
//! A blob is a list of entries, each its key's bytes and its sums' bytes, both length-prefixed
//! (so that an entry a batch does not touch is copied as bytes): messages, the earliest begin and
//! latest end of the reports that carried them, messages by UTC day of the reports' begin (the
//! days of `Evidence::days` and the web's charts), the reporters, and the source IPs (canonical
//! IPv4 addresses as increasing varint differences, the rest as texts).
//!
//! Upkeep: the reports of a batch are summed into a [`Presum`] before its unit of work begins, on
//! the pipeline's gatherer thread (a unit of work given none, or storing only some of them, sums
//! what it stored into [`Pending`] itself; a record's key is computed once per distinct stored
//! columns). [`Tx::commit`] writes the sums of each (domain, day) as a new part of that day
//! (`rollup_parts`, read by readers beside the day's row and folded into it once a day has
//! [`FOLD_PARTS`]), so that a unit of work writes about the bytes of its own sums rather than
//! those of every day it adds to again. The months it touches go stale (their rows deleted and
//! listed in `rollup_stale`; readers read those months by day), and are summed again from their
//! days by the unit of work [`SETTLE_AFTER`] units after the last that touched them (counted in
//! `rollup_clock`): summing a month again each time a batch skipped it cost more than the rest of
//! the upkeep. A replaced copy or `prune` marks the (domain, day) it deletes from; at commit those
//! days are summed again from their records (a minimum or a set cannot be subtracted). The
//! migration's back-fill is the same sum.
//!
//! `DMARC_WARDEN_FROM_RECORDS=1` makes the readers ignore the rollups (to compare the two).

use std::collections::{BTreeMap, BTreeSet};

/// The maps the tier's sums are gathered in, keyed by encoded keys, days and names, with
/// foldhash's fast hasher (already built for hashbrown): std's SipHash was most of what a lookup
/// cost here.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

use rusqlite::{Connection, params};

use super::evidence::{STORED_COLUMNS, STORED_COUNT, stored_record, text};
use super::{Db, Tx};
use crate::analyse::min_opt;
use crate::model::{
    AggregateReport, DayCount, Disposition, DkimResult, Evidence, EvidenceKey, IpSet, SpfResult,
    canonical_v4,
};
use crate::store::{StoreError, StoredRecord};

/// The day stored for a report without an end: below every real day.
pub const NO_DAY: i64 = i64::MIN;

/// Seconds in a day.
const DAY: i64 = 86_400;

/// The UTC day of a moment, [`NO_DAY`] without one.
fn day_of(t: Option<i64>) -> i64 {
    t.map_or(NO_DAY, |t| t.div_euclid(DAY))
}

/// The days `[start, end)` the month row holding `day` sums: its UTC calendar month, or the day
/// alone outside the years [`crate::time::month_of`] knows; `None` for [`NO_DAY`] (day rows only).
fn month_span(day: i64) -> Option<(i64, i64)> {
    if day == NO_DAY {
        return None;
    }
    match day.checked_mul(DAY).and_then(crate::time::month_of) {
        Some((start, end)) => Some((start / DAY, end / DAY)),
        None => Some((day, day.saturating_add(1))),
    }
}

/// Whether the readers are to ignore the rollups (`DMARC_WARDEN_FROM_RECORDS=1`).
pub(super) fn from_records() -> bool {
    std::env::var_os("DMARC_WARDEN_FROM_RECORDS").is_some_and(|v| v == "1")
}

/// Evidence as its readers return it: the rows and their day counts.
type EvidenceAndDays = (Vec<Evidence>, Vec<DayCount>);

/// `n` as a LEB128 varint.
fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// `n` as a zigzag varint (small negative numbers stay small).
fn put_signed(out: &mut Vec<u8>, n: i64) {
    put_varint(out, ((n << 1) ^ (n >> 63)) as u64);
}

/// A text (or any bytes) as its length and bytes.
fn put_text(out: &mut Vec<u8>, t: &[u8]) {
    put_varint(out, t.len() as u64);
    out.extend_from_slice(t);
}

/// Reads what the `put_` functions wrote; `None` when the bytes end early or are not such.
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn new(b: &'a [u8]) -> Self {
        Cursor { b, at: 0 }
    }

    fn done(&self) -> bool {
        self.at >= self.b.len()
    }

    fn varint(&mut self) -> Option<u64> {
        let mut n: u64 = 0;
        for i in 0..10 {
            let byte = *self.b.get(self.at)?;
            self.at += 1;
            n |= u64::from(byte & 0x7f).checked_shl(7 * i)?;
            if byte & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    fn signed(&mut self) -> Option<i64> {
        let n = self.varint()?;
        Some(((n >> 1) as i64) ^ -((n & 1) as i64))
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.varint()?).ok()?;
        let out = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(out)
    }

    fn text(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }

    fn count(&mut self) -> Option<usize> {
        // Each item takes a byte at least: a count beyond the bytes left is damage.
        usize::try_from(self.varint()?)
            .ok()
            .filter(|n| *n <= self.b.len() - self.at)
    }
}

/// A key as stored: what [`EvidenceKey`] says but its domain (the row's) and source IP.
fn encode_key(k: &EvidenceKey, out: &mut Vec<u8>) {
    for t in [
        k.header_from.as_str(),
        &k.dkim_domain,
        k.dkim_result.as_str(),
        &k.spf_domain,
        k.spf_result.as_str(),
        k.disposition.as_str(),
    ] {
        put_text(out, t.as_bytes());
    }
    out.push(u8::from(k.dkim_aligned) | u8::from(k.spf_aligned) << 1 | u8::from(k.forwarded) << 2);
}

/// The key [`encode_key`] wrote, for `domain`.
fn decode_key(b: &[u8], domain: &str) -> Option<EvidenceKey> {
    let mut c = Cursor::new(b);
    let header_from = c.text()?.to_owned();
    let dkim_domain = c.text()?.to_owned();
    let dkim_result = DkimResult::parse(c.text()?);
    let spf_domain = c.text()?.to_owned();
    let spf_result = SpfResult::parse(c.text()?);
    let disposition = Disposition::parse(c.text()?);
    let flags = *c.b.get(c.at)?;
    Some(EvidenceKey {
        domain: domain.to_owned(),
        source_ip: String::new(),
        header_from,
        dkim_domain,
        dkim_result,
        spf_domain,
        spf_result,
        dkim_aligned: flags & 1 != 0,
        spf_aligned: flags & 2 != 0,
        disposition,
        forwarded: flags & 4 != 0,
    })
}

/// One key's sums.
#[derive(Debug, Default, Clone, PartialEq)]
struct Sums {
    messages: u64,
    first: Option<i64>,
    last: Option<i64>,
    /// Messages by UTC day of their reports' begin (reports without one are in none).
    begins: Vec<(i64, u64)>,
    reporters: Vec<String>,
    /// Canonical IPv4 addresses ([`canonical_v4`]), and the other IPs as sent.
    v4: Vec<u32>,
    other: Vec<String>,
}

impl Sums {
    fn add_begin(&mut self, day: i64, n: u64) {
        match self.begins.iter_mut().find(|(d, _)| *d == day) {
            Some((_, m)) => *m = m.saturating_add(n),
            None => self.begins.push((day, n)),
        }
    }

    fn add_reporter(&mut self, org: &str) {
        if !self.reporters.iter().any(|r| r == org) {
            self.reporters.push(org.to_owned());
        }
    }

    fn add_ip(&mut self, ip: &str) {
        match canonical_v4(ip) {
            Some(a) => self.v4.push(a),
            None => self.other.push(ip.to_owned()),
        }
    }

    fn absorb(&mut self, o: Sums) {
        self.messages = self.messages.saturating_add(o.messages);
        self.first = min_opt(self.first, o.first);
        self.last = self.last.max(o.last);
        for (d, n) in o.begins {
            self.add_begin(d, n);
        }
        for r in o.reporters {
            if !self.reporters.contains(&r) {
                self.reporters.push(r);
            }
        }
        self.v4.extend(o.v4);
        self.other.extend(o.other);
    }

    /// Writes the sums (sets sorted and made sets here), reporters as their places in `names`.
    fn encode(&mut self, out: &mut Vec<u8>, names: &mut Names) {
        put_varint(out, self.messages);
        out.push(u8::from(self.first.is_some()) | u8::from(self.last.is_some()) << 1);
        for t in [self.first, self.last].into_iter().flatten() {
            put_signed(out, t);
        }
        self.begins.sort_unstable();
        put_varint(out, self.begins.len() as u64);
        let mut prev = 0i64;
        for (d, n) in &self.begins {
            put_signed(out, d.wrapping_sub(prev));
            put_varint(out, *n);
            prev = *d;
        }
        let mut places: Vec<u64> = self.reporters.iter().map(|r| names.place(r)).collect();
        places.sort_unstable();
        places.dedup();
        put_varint(out, places.len() as u64);
        for p in places {
            put_varint(out, p);
        }
        self.v4.sort_unstable();
        self.v4.dedup();
        put_varint(out, self.v4.len() as u64);
        let mut prev = 0u32;
        for a in &self.v4 {
            put_varint(out, u64::from(a - prev));
            prev = *a;
        }
        self.other.sort_unstable();
        self.other.dedup();
        put_varint(out, self.other.len() as u64);
        for o in &self.other {
            put_text(out, o.as_bytes());
        }
    }

    /// Reads the sums [`Sums::encode`] wrote, handing each part to `sink` (no structure is built
    /// for a reader that only adds them up).
    fn visit(b: &[u8], names: &[&str], sink: &mut impl SumsSink) -> Option<()> {
        let mut c = Cursor::new(b);
        let messages = c.varint()?;
        let flags = *c.b.get(c.at)?;
        c.at += 1;
        let first = if flags & 1 != 0 {
            Some(c.signed()?)
        } else {
            None
        };
        let last = if flags & 2 != 0 {
            Some(c.signed()?)
        } else {
            None
        };
        sink.totals(messages, first, last);
        let mut prev = 0i64;
        for _ in 0..c.count()? {
            prev = prev.wrapping_add(c.signed()?);
            sink.begin(prev, c.varint()?);
        }
        for _ in 0..c.count()? {
            let place = usize::try_from(c.varint()?).ok()?;
            sink.reporter(place, names.get(place)?);
        }
        let mut prev = 0u32;
        for _ in 0..c.count()? {
            prev = prev.checked_add(u32::try_from(c.varint()?).ok()?)?;
            sink.v4(prev);
        }
        for _ in 0..c.count()? {
            sink.other(c.text()?);
        }
        c.done().then_some(())
    }

    fn decode(b: &[u8], names: &[&str]) -> Option<Sums> {
        let mut s = Sums::default();
        Sums::visit(b, names, &mut s)?;
        Some(s)
    }
}

/// What [`Sums::visit`] hands the parts of stored sums to.
trait SumsSink {
    fn totals(&mut self, messages: u64, first: Option<i64>, last: Option<i64>);
    fn begin(&mut self, day: i64, messages: u64);
    /// A reporter: its place in the blob's names, and its name.
    fn reporter(&mut self, place: usize, org: &str);
    fn v4(&mut self, a: u32);
    fn other(&mut self, ip: &str);
}

impl SumsSink for Sums {
    fn totals(&mut self, messages: u64, first: Option<i64>, last: Option<i64>) {
        self.messages = self.messages.saturating_add(messages);
        self.first = min_opt(self.first, first);
        self.last = self.last.max(last);
    }
    fn begin(&mut self, day: i64, messages: u64) {
        self.add_begin(day, messages);
    }
    fn reporter(&mut self, _: usize, org: &str) {
        self.add_reporter(org);
    }
    fn v4(&mut self, a: u32) {
        self.v4.push(a);
    }
    fn other(&mut self, ip: &str) {
        self.other.push(ip.to_owned());
    }
}

/// The sums of one row: each key's bytes ([`encode_key`]) and its sums.
type Entries = HashMap<Vec<u8>, Sums>;

/// The reporters' names a blob's entries refer to by place: a blob begins with them (how many,
/// then each as a text), so that each entry's reporters cost a byte or two each. Those of the
/// blob merged into (borrowed, in their places) and those added; looked up in order (a blob names
/// a few dozen reporters at most: one per organisation that reports on a domain).
struct Names<'a> {
    old: &'a [&'a str],
    new: Vec<String>,
}

impl<'a> Names<'a> {
    fn of(old: &'a [&'a str]) -> Names<'a> {
        Names {
            old,
            new: Vec::new(),
        }
    }

    /// The place of `name`, added when new.
    fn place(&mut self, name: &str) -> u64 {
        let at = match self.old.iter().position(|n| *n == name) {
            Some(at) => at,
            None => {
                self.old.len()
                    + match self.new.iter().position(|n| n == name) {
                        Some(at) => at,
                        None => {
                            self.new.push(name.to_owned());
                            self.new.len() - 1
                        }
                    }
            }
        };
        at as u64
    }

    fn len(&self) -> usize {
        self.old.len() + self.new.len()
    }

    fn iter(&self) -> impl Iterator<Item = &str> {
        self.old
            .iter()
            .copied()
            .chain(self.new.iter().map(String::as_str))
    }
}

/// A stored blob's reporters' names and its entries' bytes; empty for an empty blob.
fn split(blob: &[u8]) -> Option<(Vec<&str>, &[u8])> {
    let mut c = Cursor::new(blob);
    if c.done() {
        return Some((Vec::new(), blob));
    }
    let n = c.count()?;
    let mut names = Vec::with_capacity(n);
    for _ in 0..n {
        names.push(c.text()?);
    }
    Some((names, &blob[c.at..]))
}

/// `old` (a stored blob, or empty) with `add` merged in: entries `add` does not touch are copied
/// as they are (the names they refer to stay in their places); `None` when `old` is not such a
/// blob. Empty when there are no entries.
fn merge(old: &[u8], mut add: Entries) -> Option<Vec<u8>> {
    let (old_names, body) = split(old)?;
    let mut names = Names::of(&old_names);
    let mut out = Vec::with_capacity(body.len() + add.len() * 64);
    let mut c = Cursor::new(body);
    let mut sums = Vec::new();
    while !c.done() {
        let start = c.at;
        let key = c.bytes()?;
        let stored = c.bytes()?;
        match add.remove(key) {
            None => out.extend_from_slice(&body[start..c.at]),
            Some(a) => {
                let mut s = Sums::decode(stored, &old_names)?;
                s.absorb(a);
                put_text(&mut out, key);
                sums.clear();
                s.encode(&mut sums, &mut names);
                put_text(&mut out, &sums);
            }
        }
    }
    let mut new: Vec<(Vec<u8>, Sums)> = add.into_iter().collect();
    new.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for (key, mut s) in new {
        put_text(&mut out, &key);
        sums.clear();
        s.encode(&mut sums, &mut names);
        put_text(&mut out, &sums);
    }
    if out.is_empty() {
        return Some(out);
    }
    let mut blob = Vec::with_capacity(out.len() + names.len() * 16 + 2);
    put_varint(&mut blob, names.len() as u64);
    for n in names.iter() {
        put_text(&mut blob, n.as_bytes());
    }
    blob.extend_from_slice(&out);
    Some(blob)
}

/// A new blob of `sums`' entries (in key order, sets sorted in place), without consuming them.
fn encode_all(sums: &mut Entries) -> Vec<u8> {
    let mut order: Vec<(&Vec<u8>, &mut Sums)> = sums.iter_mut().collect();
    order.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut names = Names::of(&[]);
    let (mut out, mut buf) = (Vec::new(), Vec::new());
    for (key, s) in order {
        put_text(&mut out, key);
        buf.clear();
        s.encode(&mut buf, &mut names);
        put_text(&mut out, &buf);
    }
    if out.is_empty() {
        return out;
    }
    let mut blob = Vec::with_capacity(out.len() + names.len() * 16 + 2);
    put_varint(&mut blob, names.len() as u64);
    for n in names.iter() {
        put_text(&mut blob, n.as_bytes());
    }
    blob.extend_from_slice(&out);
    blob
}

/// Frees `garbage` on a thread of its own: the sums of a batch are thousands of small allocations,
/// and the writer is the pipeline's narrowest stage.
fn free_elsewhere<T: Send + 'static>(garbage: T) {
    if std::thread::Builder::new()
        .name("rollups-free".into())
        .spawn(move || drop(garbage))
        .is_err()
    {
        // No thread to be had: freed here (the spawn's closure, with `garbage`, was dropped).
    }
}

/// Calls `each` with every entry of a stored blob: its key's bytes and its sums' bytes (whose
/// reporters are places in `names`).
fn entries<'a>(
    blob: &'a [u8],
    mut each: impl FnMut(&[&'a str], &'a [u8], &'a [u8]) -> Option<()>,
) -> Option<()> {
    let (names, body) = split(blob)?;
    let mut c = Cursor::new(body);
    while !c.done() {
        let key = c.bytes()?;
        each(&names, key, c.bytes()?)?;
    }
    Some(())
}

/// Sums of the reports a unit of work stored, not yet written.
#[derive(Default)]
pub(super) struct Pending {
    /// By domain and day of the reports' end.
    days: HashMap<String, HashMap<i64, Entries>>,
    keys: Keys,
    /// The (domain, day)s to sum again from their records at commit.
    dirty: BTreeSet<(String, i64)>,
}

impl Pending {
    /// The sums of `domain`'s reports ending on `day`, and the keys.
    fn row(&mut self, domain: &str, day: i64) -> (Option<&mut Entries>, &mut Keys) {
        if !self.days.contains_key(domain) {
            self.days.insert(domain.to_owned(), HashMap::default());
        }
        let row = self
            .days
            .get_mut(domain)
            .map(|by_day| by_day.entry(day).or_default());
        (row, &mut self.keys)
    }

    /// Adds one report as stored (its records as `insert_records` writes them).
    fn add_report(&mut self, r: &AggregateReport) {
        let (m, domain) = (&r.metadata, r.policy.domain.as_str());
        let (Some(row), keys) = self.row(domain, day_of(m.end)) else {
            return;
        };
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
            if let Some(s) = keys.sums(row, &stored) {
                s.add(&m.org_name, m.begin, m.end, rec.count, stored.source_ip);
            }
        }
    }
}

/// A record's stored columns (as [`Keys::sums`] writes them, but the source IP) → its key's
/// bytes ([`encode_key`]): the key is computed once per distinct columns.
#[derive(Default)]
struct Keys {
    keys: HashMap<Vec<u8>, Vec<u8>>,
    buf: Vec<u8>,
}

impl Keys {
    /// The sums in `row` of the key of `stored`, made when new.
    fn sums<'r>(
        &mut self,
        row: &'r mut Entries,
        stored: &StoredRecord<'_>,
    ) -> Option<&'r mut Sums> {
        let buf = &mut self.buf;
        buf.clear();
        let text = |buf: &mut Vec<u8>, t: Option<&str>| match t {
            None => buf.push(0),
            Some(t) => {
                buf.push(1);
                put_text(buf, t.as_bytes());
            }
        };
        for t in [
            Some(stored.domain),
            stored.header_from,
            stored.auth_dkim_domain,
            stored.auth_dkim_result,
            stored.auth_spf_domain,
            stored.auth_spf_result,
            stored.envelope_from,
            stored.dkim,
            stored.spf,
            stored.disposition,
        ] {
            text(buf, t);
        }
        buf.push(u8::from(stored.forwarded));
        let key = match self.keys.get(buf.as_slice()) {
            Some(key) => key,
            None => {
                let mut key = Vec::new();
                encode_key(&stored.evidence_key(), &mut key);
                self.keys.entry(buf.clone()).or_insert(key)
            }
        };
        if !row.contains_key(key) {
            row.insert(key.clone(), Sums::default());
        }
        row.get_mut(key)
    }
}

impl Sums {
    /// Adds a record of `count` messages from `ip` in a report of `org` for (`begin`, `end`).
    fn add(&mut self, org: &str, begin: Option<i64>, end: Option<i64>, count: u64, ip: &str) {
        self.messages = self.messages.saturating_add(count);
        self.first = min_opt(self.first, begin);
        self.last = self.last.max(end);
        if let Some(b) = begin {
            self.add_begin(b.div_euclid(DAY), count);
        }
        self.add_reporter(org);
        self.add_ip(ip);
    }
}

/// A stored blob that cannot be read: a damaged database.
fn unreadable() -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Blob,
        "unreadable rollup row".into(),
    )
}

/// A row table: the day rows or the month rows.
#[derive(Clone, Copy)]
enum Rows {
    Days,
    /// With the day after the month.
    Months(i64),
}

/// Merges `add` into the row of `domain` at `at` (a day or a month's first day).
fn merge_row(
    conn: &Connection,
    rows: Rows,
    domain: &str,
    at: i64,
    add: Entries,
) -> Result<(), StoreError> {
    let select = match rows {
        Rows::Days => "SELECT sums FROM rollup_days WHERE domain = ?1 AND day = ?2",
        Rows::Months(_) => "SELECT sums FROM rollup_months WHERE domain = ?1 AND month = ?2",
    };
    let mut stmt = conn.prepare_cached(select)?;
    let mut found = stmt.query(params![domain, at])?;
    let new = match found.next()? {
        Some(r) => merge(r.get_ref(0)?.as_blob().map_err(|_| unreadable())?, add),
        None => merge(&[], add),
    }
    .ok_or_else(unreadable)?;
    drop(found);
    put_row(conn, rows, domain, at, &new)
}

/// Writes the row of `domain` at `at` (deletes it when `blob` is empty).
fn put_row(
    conn: &Connection,
    rows: Rows,
    domain: &str,
    at: i64,
    blob: &[u8],
) -> Result<(), StoreError> {
    match (rows, blob.is_empty()) {
        (Rows::Days, true) => conn
            .prepare_cached("DELETE FROM rollup_days WHERE domain = ?1 AND day = ?2")?
            .execute(params![domain, at])?,
        (Rows::Days, false) => conn
            .prepare_cached(
                "INSERT OR REPLACE INTO rollup_days (domain, day, sums) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![domain, at, blob])?,
        (Rows::Months(_), true) => conn
            .prepare_cached("DELETE FROM rollup_months WHERE domain = ?1 AND month = ?2")?
            .execute(params![domain, at])?,
        (Rows::Months(end), false) => conn
            .prepare_cached(
                "INSERT OR REPLACE INTO rollup_months (domain, month, end_day, sums)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![domain, at, end, blob])?,
    };
    Ok(())
}

/// Sums `domain`'s month `[start, end)` again from its day rows.
fn rebuild_month(conn: &Connection, domain: &str, start: i64, end: i64) -> Result<(), StoreError> {
    let mut all = Entries::default();
    let mut stmt = conn.prepare_cached(
        "SELECT sums FROM rollup_days WHERE domain = ?1 AND day >= ?2 AND day < ?3",
    )?;
    let mut rows = stmt.query(params![domain, start, end])?;
    while let Some(r) = rows.next()? {
        add_entries(&mut all, r.get_ref(0)?.as_blob().map_err(|_| unreadable())?)?;
    }
    drop(rows);
    let blob = merge(&[], all).ok_or_else(unreadable)?;
    put_row(conn, Rows::Months(end), domain, start, &blob)
}

/// Parts a day may gather before a unit of work adding to it folds them into its row.
const FOLD_PARTS: i64 = 16;

/// Units of work a stale month waits, untouched, before one sums it again: reports arrive for a
/// few days at a time, so a month the last few did not add to is most likely done with (summing
/// it again each time a batch skipped it would cost more than all the rest of the upkeep).
const SETTLE_AFTER: i64 = 4;

/// Writes `p`'s sums: its dirty days summed again from their records; the rest as new parts of
/// the days they touch (`rollup_parts`: written without reading the day's row, so that a unit of
/// work writes about the bytes of its own sums, not those of every day it adds to again), folded
/// into the day's row once it has [`FOLD_PARTS`], or when its month settles. The month rows of the
/// days touched go stale (deleted, and listed in `rollup_stale` with the unit of work's number from
/// `rollup_clock`; readers read those months by day); a unit of work [`SETTLE_AFTER`] units after
/// the last that touched a stale month folds its days' parts and sums the month again from them.
fn write(conn: &Connection, p: Pending) -> Result<(), StoreError> {
    let Pending {
        mut days, dirty, ..
    } = p;
    let mut touched: BTreeSet<(String, i64, i64)> = BTreeSet::new();
    for (domain, day) in &dirty {
        if let Some(by_day) = days.get_mut(domain) {
            by_day.remove(day);
        }
        conn.prepare_cached("DELETE FROM rollup_parts WHERE domain = ?1 AND day = ?2")?
            .execute(params![domain, day])?;
        let mut again = Pending::default();
        sum_day(conn, domain, *day, &mut again)?;
        let sums = again
            .days
            .remove(domain)
            .and_then(|mut d| d.remove(day))
            .unwrap_or_default();
        let blob = merge(&[], sums).ok_or_else(unreadable)?;
        put_row(conn, Rows::Days, domain, *day, &blob)?;
        if let Some((start, end)) = month_span(*day) {
            touched.insert((domain.clone(), start, end));
        }
    }
    let mut rows: Vec<(String, i64, Entries)> = days
        .into_iter()
        .flat_map(|(domain, by_day)| {
            by_day
                .into_iter()
                .map(move |(day, sums)| (domain.clone(), day, sums))
        })
        .filter(|(_, _, sums)| !sums.is_empty())
        .collect();
    rows.sort_unstable_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    for (domain, day, sums) in &mut rows {
        let (domain, day) = (domain.as_str(), *day);
        let blob = encode_all(sums);
        conn.prepare_cached("INSERT INTO rollup_parts (domain, day, sums) VALUES (?1, ?2, ?3)")?
            .execute(params![domain, day, blob])?;
        let parts: i64 = conn
            .prepare_cached("SELECT count(*) FROM rollup_parts WHERE domain = ?1 AND day = ?2")?
            .query_row(params![domain, day], |r| r.get(0))?;
        if parts >= FOLD_PARTS {
            fold(conn, domain, day, day.saturating_add(1))?;
        }
        if let Some((start, end)) = month_span(day) {
            touched.insert((domain.to_owned(), start, end));
        }
    }
    free_elsewhere(rows);
    let clock: i64 = conn
        .prepare_cached("UPDATE rollup_clock SET n = n + 1 RETURNING n")?
        .query_row([], |r| r.get(0))?;
    for (domain, start, end) in &touched {
        conn.prepare_cached("DELETE FROM rollup_months WHERE domain = ?1 AND month = ?2")?
            .execute(params![domain, start])?;
        conn.prepare_cached(
            "INSERT INTO rollup_stale (domain, month, end_day, touched) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (domain, month) DO UPDATE SET touched = excluded.touched",
        )?
        .execute(params![domain, start, end, clock])?;
    }
    settle(conn, clock.saturating_sub(SETTLE_AFTER))
}

/// Folds the parts of `domain`'s days `[from, to)` into their rows.
fn fold(conn: &Connection, domain: &str, from: i64, to: i64) -> Result<(), StoreError> {
    let mut by_day: BTreeMap<i64, Entries> = BTreeMap::new();
    let mut stmt = conn.prepare_cached(
        "SELECT day, sums FROM rollup_parts WHERE domain = ?1 AND day >= ?2 AND day < ?3",
    )?;
    let mut rows = stmt.query(params![domain, from, to])?;
    while let Some(r) = rows.next()? {
        let all = by_day.entry(r.get(0)?).or_default();
        add_entries(all, r.get_ref(1)?.as_blob().map_err(|_| unreadable())?)?;
    }
    drop(rows);
    for (day, all) in by_day {
        merge_row(conn, Rows::Days, domain, day, all)?;
    }
    conn.prepare_cached("DELETE FROM rollup_parts WHERE domain = ?1 AND day >= ?2 AND day < ?3")?
        .execute(params![domain, from, to])?;
    Ok(())
}

/// Sums each stale month last touched at or before `before` (a `rollup_clock` number; every
/// one with `i64::MAX`) again from its days (their parts folded first).
fn settle(conn: &Connection, before: i64) -> Result<(), StoreError> {
    let stale: Vec<(String, i64, i64)> = conn
        .prepare_cached("SELECT domain, month, end_day FROM rollup_stale WHERE touched <= ?1")?
        .query_map([before], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    for month in stale {
        let (domain, start, end) = &month;
        fold(conn, domain, *start, *end)?;
        rebuild_month(conn, domain, *start, *end)?;
        conn.prepare_cached("DELETE FROM rollup_stale WHERE domain = ?1 AND month = ?2")?
            .execute(params![domain, start])?;
    }
    Ok(())
}

/// Adds every entry of a stored blob to `all`.
fn add_entries(all: &mut Entries, blob: &[u8]) -> Result<(), StoreError> {
    entries(blob, |names, key, sums| {
        if !all.contains_key(key) {
            all.insert(key.to_vec(), Sums::default());
        }
        Sums::visit(sums, names, all.get_mut(key)?)
    })
    .ok_or_else(|| unreadable().into())
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
        "SELECT {STORED_COLUMNS}, r.org_name, r.date_begin, r.date_end, c.count
         FROM reports r CROSS JOIN records c ON c.report = r.id
         WHERE r.domain = ?1 AND {span}"
    ))?;
    let mut rows = stmt.query(params![domain, from, to])?;
    let (Some(row), keys) = p.row(domain, day) else {
        return Ok(());
    };
    while let Some(r) = rows.next()? {
        let stored = stored_record(r, 0, domain)?;
        let org = text(r, STORED_COUNT)?.unwrap_or_default();
        if let Some(s) = keys.sums(row, &stored) {
            s.add(
                org,
                r.get(STORED_COUNT + 1)?,
                r.get(STORED_COUNT + 2)?,
                r.get(STORED_COUNT + 3)?,
                stored.source_ip,
            );
        }
    }
    Ok(())
}

/// Deletes the rollups and sums every stored report again, one (domain, day) at a time, then
/// each month from its days (the migration's back-fill; after `migrate --to` copied the reports
/// in).
pub(super) fn rebuild(conn: &Connection) -> Result<(), StoreError> {
    conn.execute("DELETE FROM rollup_days", [])?;
    conn.execute("DELETE FROM rollup_months", [])?;
    conn.execute("DELETE FROM rollup_stale", [])?;
    conn.execute("DELETE FROM rollup_parts", [])?;
    let days: Vec<(String, Option<i64>)> = conn
        .prepare(
            "SELECT DISTINCT domain, CASE WHEN date_end IS NOT NULL
                THEN (date_end - ((date_end % 86400) + 86400) % 86400) / 86400 END
             FROM reports ORDER BY 1, 2",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut months = BTreeSet::new();
    for (domain, day) in days {
        let day = day.unwrap_or(NO_DAY);
        let mut p = Pending::default();
        sum_day(conn, &domain, day, &mut p)?;
        let sums = p
            .days
            .remove(&domain)
            .and_then(|mut d| d.remove(&day))
            .unwrap_or_default();
        let blob = merge(&[], sums).ok_or_else(unreadable)?;
        put_row(conn, Rows::Days, &domain, day, &blob)?;
        if let Some((start, end)) = month_span(day) {
            months.insert((domain, start, end));
        }
    }
    for (domain, start, end) in months {
        rebuild_month(conn, &domain, start, end)?;
    }
    Ok(())
}

/// `prune`'s part: deletes (or, dry, counts) the day rows of days before the day `cutoff` starts
/// (reports ending before it go) and the month rows of months wholly before it; the month that
/// holds it is summed again from its remaining days, and the reports without an end, pruned by
/// when they were stored, from what remains. How many rows went (or would go).
pub(super) fn prune(conn: &Connection, cutoff: i64, dry_run: bool) -> Result<u64, StoreError> {
    let day = cutoff.div_euclid(DAY);
    let days = "FROM rollup_days WHERE day < ?1 AND day > -9223372036854775808";
    let months = "FROM rollup_months WHERE end_day <= ?1";
    // A stale month is counted as the row it stands for (whether a unit of work sums it again
    // before this one does not change the count).
    let stale = "FROM rollup_stale WHERE end_day <= ?1";
    if dry_run {
        let mut n = 0;
        for rows in [days, months, stale] {
            let c: i64 = conn.query_row(&format!("SELECT count(*) {rows}"), [day], |r| r.get(0))?;
            n += u64::try_from(c).unwrap_or(0);
        }
        return Ok(n);
    }
    let mut gone = conn.execute(&format!("DELETE {days}"), [day])? as u64;
    gone += conn.execute(&format!("DELETE {months}"), [day])? as u64;
    gone += conn.execute(&format!("DELETE {stale}"), [day])? as u64;
    conn.execute(
        "DELETE FROM rollup_parts WHERE day < ?1 AND day > -9223372036854775808",
        [day],
    )?;
    // The month that holds the cutoff lost days: summed again from those left.
    let split: Vec<(String, i64, i64)> = conn
        .prepare(
            "SELECT domain, month, end_day FROM rollup_months WHERE month < ?1 AND end_day > ?1",
        )?
        .query_map([day], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    for (domain, start, end) in split {
        rebuild_month(conn, &domain, start, end)?;
    }
    let undated: Vec<String> = conn
        .prepare("SELECT domain FROM rollup_days WHERE day = ?1")?
        .query_map([NO_DAY], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let p = Pending {
        dirty: undated.into_iter().map(|d| (d, NO_DAY)).collect(),
        ..Pending::default()
    };
    write(conn, p)?;
    Ok(gone)
}

/// The sums of a batch's aggregate reports, made before its unit of work begins, off the writer's
/// thread: used by the unit of work when it stores every one of them ([`Tx::roll_up`]).
pub(in crate::store) struct Presum {
    pending: Pending,
    reports: usize,
}

/// The [`Presum`] of `reports`.
pub(in crate::store) fn presum<'a>(reports: impl Iterator<Item = &'a AggregateReport>) -> Presum {
    let mut pending = Pending::default();
    let mut n = 0;
    for r in reports {
        pending.add_report(r);
        n += 1;
    }
    Presum {
        pending,
        reports: n,
    }
}

impl Tx<'_> {
    /// Gives this unit of work the sums of the batch it is to store.
    pub(in crate::store) fn use_presum(&self, p: Presum) {
        self.presum.replace(Some(Box::new(p)));
    }

    /// Adds the reports this unit of work stored to the rollups' pending sums: the batch's
    /// [`Presum`] when these are all of its reports (the batch is the reports the presum was made
    /// of, and these a part of it), else summed here.
    pub(super) fn roll_up(&self, reports: &[(i64, &AggregateReport)]) {
        if let Some(pre) = self.presum.take()
            && pre.reports == reports.len()
        {
            let mut p = self.rollups.borrow_mut();
            if p.days.is_empty() {
                let Pending { days, keys, .. } = pre.pending;
                p.days = days;
                free_elsewhere(keys);
                return;
            }
        }
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

/// Which rows answer a window `[since, until)` of report ends: the whole days `[from, to)` it
/// covers (the months wholly inside from month rows, the other days from day rows), and the
/// partial days at its edges, from the records.
#[derive(Debug, PartialEq)]
struct Plan {
    /// Days `[from, to)` read from day rows (one or two ranges).
    days: Vec<(i64, i64)>,
    /// Months wholly in `[months.0, months.1)`, read from month rows.
    months: (i64, i64),
    /// Moments `[a, b)` of report ends read from the records.
    edges: Vec<(i64, i64)>,
}

impl Plan {
    /// `None` when the window holds no whole day (the records answer it alone).
    fn of(since: Option<i64>, until: Option<i64>) -> Option<Plan> {
        // The first whole day, and the day after the last.
        let from = since.map(|s| s.div_euclid(DAY) + i64::from(s.rem_euclid(DAY) != 0));
        let to = until.map(|u| u.div_euclid(DAY));
        if let (Some(a), Some(b)) = (from, to)
            && a >= b
        {
            return None;
        }
        let mut edges = Vec::new();
        if let (Some(s), Some(a)) = (since, from)
            && s < a.checked_mul(DAY)?
        {
            edges.push((s, a * DAY));
        }
        if let (Some(u), Some(b)) = (until, to)
            && b.checked_mul(DAY)? < u
        {
            edges.push((b * DAY, u));
        }
        // A report without an end is in a window only when it has neither bound.
        let lower = from.unwrap_or(if until.is_some() { NO_DAY + 1 } else { NO_DAY });
        let upper = to.unwrap_or(i64::MAX);
        let start = match from {
            None => NO_DAY + 1,
            Some(a) => month_span(a).map_or(a, |(s, e)| if s == a { s } else { e }),
        };
        let end = match to {
            None => i64::MAX,
            Some(b) => month_span(b).map_or(b, |(s, _)| s),
        };
        let (months, days) = if start < end {
            (
                (start, end),
                vec![(lower, start.min(upper)), (end.max(lower), upper)],
            )
        } else {
            ((upper, upper), vec![(lower, upper)])
        };
        let days = days.into_iter().filter(|(a, b)| a < b).collect();
        Some(Plan {
            days,
            months,
            edges,
        })
    }
}

/// Evidence being summed from rollup rows and edge records, one row per key without the IP.
#[derive(Default)]
struct Gathered {
    /// (domain, key bytes) → place in `out`.
    index: HashMap<Vec<u8>, usize>,
    by_key: HashMap<EvidenceKey, usize>,
    out: Vec<Evidence>,
    v4s: Vec<Vec<u32>>,
    others: Vec<BTreeSet<String>>,
    /// Each row's reporters (places in `reporters`) and days of begin, made sets at the end.
    reps: Vec<Vec<u32>>,
    days: Vec<Vec<i64>>,
    reporters: Vec<String>,
    reporter_places: HashMap<String, u32>,
    /// The current blob's names' places in `reporters`.
    local: Vec<u32>,
    daily: HashMap<(usize, i64), u64>,
    by_day: bool,
    buf: Vec<u8>,
}

impl Gathered {
    /// The place of `key` (source IP empty), made when new.
    fn place(&mut self, key: EvidenceKey) -> usize {
        let Gathered {
            by_key,
            out,
            v4s,
            others,
            reps,
            days,
            ..
        } = self;
        *by_key.entry(key).or_insert_with_key(|key| {
            out.push(Evidence {
                key: key.clone(),
                ..Evidence::default()
            });
            v4s.push(Vec::new());
            others.push(BTreeSet::new());
            reps.push(Vec::new());
            days.push(Vec::new());
            out.len() - 1
        })
    }

    /// Adds a row's blob (of `domain`).
    fn add_blob(&mut self, domain: &str, blob: &[u8]) -> Option<()> {
        let (names, _) = split(blob)?;
        self.local.clear();
        for name in names {
            let next = self.reporters.len() as u32;
            let place = match self.reporter_places.get(name) {
                Some(p) => *p,
                None => {
                    self.reporters.push(name.to_owned());
                    self.reporter_places.insert(name.to_owned(), next);
                    next
                }
            };
            self.local.push(place);
        }
        entries(blob, |names, key, sums| {
            self.buf.clear();
            put_text(&mut self.buf, domain.as_bytes());
            self.buf.extend_from_slice(key);
            let at = match self.index.get(self.buf.as_slice()) {
                Some(at) => *at,
                None => {
                    let at = self.place(decode_key(key, domain)?);
                    self.index.insert(self.buf.clone(), at);
                    at
                }
            };
            Sums::visit(sums, names, &mut AddInto { g: self, at })
        })
    }

    /// Adds evidence read per source IP (with its day counts).
    fn add_per_ip(&mut self, (evidence, daily): EvidenceAndDays) {
        let mut places = Vec::with_capacity(evidence.len());
        for mut e in evidence {
            let ip = std::mem::take(&mut e.key.source_ip);
            let at = self.place(e.key);
            places.push(at);
            let g = &mut self.out[at];
            g.messages = g.messages.saturating_add(e.messages);
            g.first = min_opt(g.first, e.first);
            g.last = g.last.max(e.last);
            g.reporters.extend(e.reporters);
            g.days.extend(e.days);
            match canonical_v4(&ip) {
                Some(a) => self.v4s[at].push(a),
                None => {
                    self.others[at].insert(ip);
                }
            }
        }
        for d in daily {
            *self.daily.entry((places[d.evidence], d.day)).or_default() += d.messages;
        }
    }

    fn finish(self) -> EvidenceAndDays {
        let mut out = self.out;
        for ((e, mut reps), mut days) in out.iter_mut().zip(self.reps).zip(self.days) {
            reps.sort_unstable();
            reps.dedup();
            for r in reps {
                if let Some(name) = self.reporters.get(r as usize)
                    && !e.reporters.contains(name)
                {
                    e.reporters.insert(name.clone());
                }
            }
            days.sort_unstable();
            days.dedup();
            e.days.extend(days);
        }
        for ((e, mut v4), other) in out.iter_mut().zip(self.v4s).zip(self.others) {
            v4.sort_unstable();
            v4.dedup();
            let v4 = roaring::RoaringBitmap::from_sorted_iter(v4).unwrap_or_default();
            e.ips = Some(IpSet { v4, other });
        }
        crate::store::sorted_evidence(out, self.daily)
    }
}

/// Stored sums added into the evidence at `at`.
struct AddInto<'g> {
    g: &'g mut Gathered,
    at: usize,
}

impl SumsSink for AddInto<'_> {
    fn totals(&mut self, messages: u64, first: Option<i64>, last: Option<i64>) {
        let e = &mut self.g.out[self.at];
        e.messages = e.messages.saturating_add(messages);
        e.first = min_opt(e.first, first);
        e.last = e.last.max(last);
    }
    fn begin(&mut self, day: i64, messages: u64) {
        self.g.days[self.at].push(day);
        if self.g.by_day {
            *self.g.daily.entry((self.at, day)).or_default() += messages;
        }
    }
    fn reporter(&mut self, place: usize, _: &str) {
        if let Some(p) = self.g.local.get(place) {
            self.g.reps[self.at].push(*p);
        }
    }
    fn v4(&mut self, a: u32) {
        self.g.v4s[self.at].push(a);
    }
    fn other(&mut self, ip: &str) {
        let o = &mut self.g.others[self.at];
        if !o.contains(ip) {
            o.insert(ip.to_owned());
        }
    }
}

impl Db {
    /// [`Db::evidence_in`] from the rollups, when the window holds a whole day (else `None`): the
    /// same evidence, but one row per key without the source IP, its IPs in [`Evidence::ips`].
    pub(super) fn evidence_rolled(
        &self,
        domain: Option<&str>,
        since: Option<i64>,
        until: Option<i64>,
        by_day: bool,
    ) -> Result<Option<EvidenceAndDays>, StoreError> {
        let Some(plan) = Plan::of(since, until) else {
            return Ok(None);
        };
        let mut g = Gathered {
            by_day,
            ..Gathered::default()
        };
        // Spelled out only when given (`IS NULL OR …` would keep the planner from the key).
        let of_domain = if domain.is_some() {
            "domain = ?1"
        } else {
            "?1 IS NULL"
        };
        let mut reads = vec![(
            format!(
                "SELECT domain, sums FROM rollup_months
                 WHERE {of_domain} AND month >= ?2 AND end_day <= ?3"
            ),
            plan.months,
        )];
        for range in &plan.days {
            for table in ["rollup_days", "rollup_parts"] {
                reads.push((
                    format!(
                        "SELECT domain, sums FROM {table}
                         WHERE {of_domain} AND day >= ?2 AND day < ?3"
                    ),
                    *range,
                ));
            }
        }
        // Stale months (the writer's current ones) are read by day.
        let stale: Vec<(String, i64, i64)> = self
            .conn
            .prepare_cached(&format!(
                "SELECT domain, month, end_day FROM rollup_stale
                 WHERE {of_domain} AND month >= ?2 AND end_day <= ?3"
            ))?
            .query_map(params![domain, plan.months.0, plan.months.1], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        let mut reads: Vec<(String, Option<&str>, (i64, i64))> = reads
            .into_iter()
            .map(|(sql, range)| (sql, domain, range))
            .collect();
        for (d, start, end) in &stale {
            for table in ["rollup_days", "rollup_parts"] {
                reads.push((
                    format!(
                        "SELECT domain, sums FROM {table}
                         WHERE domain = ?1 AND day >= ?2 AND day < ?3"
                    ),
                    Some(d.as_str()),
                    (*start, *end),
                ));
            }
        }
        for (sql, domain, (a, b)) in reads {
            let mut stmt = self.conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params![domain, a, b])?;
            while let Some(r) = rows.next()? {
                let d = r.get_ref(0)?.as_str().map_err(|_| unreadable())?;
                g.add_blob(d, r.get_ref(1)?.as_blob().map_err(|_| unreadable())?)
                    .ok_or_else(unreadable)?;
            }
        }
        for (a, b) in plan.edges {
            g.add_per_ip(self.evidence_per_ip(domain, Some(a), Some(b), by_day)?);
        }
        Ok(Some(g.finish()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_survive_storing_and_merge() {
        let mut a = Sums::default();
        for ip in ["192.0.2.1", "2001:db8::1", "", "192.000.2.1", "10.0.0.1"] {
            a.add_ip(ip);
        }
        a.messages = 7;
        a.first = Some(-5);
        a.last = Some(86_400 * 20_000);
        a.add_begin(20_000, 3);
        a.add_begin(-2, 4);
        a.add_reporter("Google");
        a.add_reporter("Yahoo\nInc");
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
        let mut b = a.clone();
        b.v4 = vec![u32::MAX, 0];
        b.other.clear();
        b.reporters = vec!["Google".into()];
        let twice = merge(&blob, Entries::from_iter([(kb.clone(), b)])).unwrap();
        let mut seen = 0;
        entries(&twice, |names, k, s| {
            assert_eq!(k, kb.as_slice());
            let s = Sums::decode(s, names)?;
            assert_eq!(s.messages, 14);
            assert_eq!(s.begins, [(-2, 8), (20_000, 6)]);
            assert_eq!(s.reporters, ["Google", "Yahoo\nInc"]);
            assert_eq!(s.v4, [0, 0x0a00_0001, 0xc000_0201, u32::MAX]);
            assert_eq!(s.other, ["", "192.000.2.1", "2001:db8::1"]);
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
