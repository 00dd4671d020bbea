//! Evidence summed from rollup rows and from the records of a window's partial days
//! ([`Gathered`]): one row per key without the source IP, its IPs as a set.

use super::codec::{Ip, OwnSums, Sums, SumsSink, decode_key, encode_key, entries, split};
use super::{EvidenceAndDays, HashMap};
use crate::analyse::min_opt;
use crate::model::{
    DmarcResult, Evidence, EvidenceKey, IpSet, ReporterTable, Reporters, canonical_v4,
};
use crate::store::Detail;
use crate::store::key_list::KeyList;
use crate::store::of_keys::OfKeys;
use crate::store::source_groups::{SourceGroups, put_source_key};

/// Evidence being summed from rollup rows and edge records, one row per key without the IP.
///
/// What a row gathers a list of (IPv4 addresses, days of begin, reporters, other IPs) goes into
/// one list for all rows, each item (or run of addresses) with its row's place, and is parted
/// per row once at the end ([`by_place`]): a year's rows were grown one push at a time, each list
/// copied again as it grew (a seventh of reading a year).
///
/// A row's key is kept as its bytes (its domain's number, then [`encode_key`]'s) in one list,
/// found by their hash, and made an [`EvidenceKey`] only at the end: a year's hundred thousand
/// keys, each made as met, were copied again each time their list grew (and each key's bytes
/// again, into a map of their own).
#[derive(Default)]
pub(super) struct Gathered {
    /// Each row's key bytes, row `i`'s at place `i`.
    keys: KeyList,
    /// The domains met, numbered (a key is looked up with its domain's number, not its name),
    /// and their names by number.
    domains: HashMap<String, u32>,
    names: Vec<String>,
    /// Each row's totals; made evidence, in order, at the end.
    totals: Vec<Totals>,
    /// Every row's IPv4 addresses; `runs` says whose: (place, start, end) in `v4`.
    v4: Vec<u32>,
    runs: Vec<(usize, (usize, usize))>,
    others: Vec<(usize, String)>,
    /// Each row's reporters among the first 64 places in `reporters`, a bit per place (a year's
    /// rows meet their reporters again in every month: a million places listed, for a few dozen
    /// names), and the rest as (row, place); and each row's days of begin.
    rep_bits: Vec<u64>,
    reps: Vec<(usize, u32)>,
    /// Each row's days of begin within `span` as bits, `span.words` words a row (a year's rows
    /// met a million (row, day) pairs, each listed, parted per row and sorted again), and those
    /// outside it as (row, day).
    span: DaySpan,
    day_bits: Vec<u64>,
    days: Vec<(usize, i64)>,
    reporters: ReporterTable,
    /// The current blob's names' places in `reporters`.
    local: Vec<u32>,
    daily: HashMap<(usize, i64), u64>,
    detail: Detail,
    buf: Vec<u8>,
}

impl Gathered {
    /// Nothing yet, keeping what `detail` asks for; days of begin in `[days.0, days.1)` (the
    /// days a window's reports most likely began on) kept as bits.
    pub(super) fn new(detail: Detail, days: Option<(i64, i64)>) -> Self {
        Gathered {
            detail,
            span: DaySpan::of(days.filter(|_| detail.days())),
            ..Gathered::default()
        }
    }

    /// Notes that the row at `at` has mail in reports that began on `day`.
    fn day(&mut self, at: usize, day: i64) {
        match self.span.bit(day) {
            Some(bit) => self.day_bits[at * self.span.words + bit / 64] |= 1 << (bit % 64),
            None => self.days.push((at, day)),
        }
    }

    /// `domain`'s number, as the bytes keys are looked up with.
    fn domain_number(&mut self, domain: &str) -> [u8; 4] {
        let next = self.domains.len() as u32;
        let n = match self.domains.get(domain) {
            Some(n) => *n,
            None => {
                self.domains.insert(domain.to_owned(), next);
                self.names.push(domain.to_owned());
                next
            }
        };
        n.to_le_bytes()
    }

    /// The place of the key whose bytes (its domain's number, then [`encode_key`]'s) are in
    /// `buf`, given a new place when not met yet.
    fn place(&mut self) -> usize {
        let (at, new) = self.keys.place(&self.buf);
        if new {
            self.totals.push(Totals::default());
            self.rep_bits.push(0);
            self.day_bits
                .resize(self.day_bits.len() + self.span.words, 0);
        }
        at
    }

    /// Adds a row's blob (of `domain`).
    pub(super) fn add_blob(&mut self, domain: &str, blob: &[u8]) -> Option<()> {
        let number = self.domain_number(domain);
        let (names, _) = split(blob)?;
        self.local.clear();
        for name in names {
            let place = self.reporters.place(name);
            self.local.push(place);
        }
        entries(blob, |names, key, sums| {
            self.buf.clear();
            self.buf.extend_from_slice(&number);
            self.buf.extend_from_slice(key);
            let at = self.place();
            let start = self.v4.len();
            Sums::visit(sums, names, &mut AddInto { g: self, at })?;
            self.run(at, start);
            Some(())
        })
    }

    /// Notes that the row at `at` has the reporter at `place` in `reporters`.
    fn reporter(&mut self, at: usize, place: u32) {
        match self.rep_bits.get_mut(at) {
            Some(bits) if place < 64 => *bits |= 1 << place,
            _ => self.reps.push((at, place)),
        }
    }

    /// Notes that the addresses of `v4` from `start` on are the row at `at`'s.
    fn run(&mut self, at: usize, start: usize) {
        if self.v4.len() > start {
            self.runs.push((at, (start, self.v4.len())));
        }
    }

    /// Adds evidence read per source IP (with its day counts).
    pub(super) fn add_per_ip(&mut self, (evidence, daily): EvidenceAndDays) {
        let mut places = Vec::with_capacity(evidence.len());
        for mut e in evidence {
            let ip = std::mem::take(&mut e.key.source_ip);
            // Keyed by the bytes a rollup row keys it by, so that its sums and the row's meet.
            let number = self.domain_number(&e.key.domain);
            self.buf.clear();
            self.buf.extend_from_slice(&number);
            encode_key(&e.key, &mut self.buf);
            let at = self.place();
            places.push(at);
            self.totals[at].add(e.messages, e.first, e.last);
            for name in e.reporters.iter() {
                let place = self.reporters.place(name);
                self.reporter(at, place);
            }
            for d in &e.days {
                self.day(at, *d);
            }
            match canonical_v4(&ip) {
                Some(a) => {
                    let start = self.v4.len();
                    self.v4.push(a);
                    self.run(at, start);
                }
                None => self.others.push((at, ip.into())),
            }
        }
        for d in daily {
            *self.daily.entry((places[d.evidence], d.day)).or_default() += d.messages;
        }
    }

    /// The evidence gathered, in key order, and its day counts; `None` when a key's bytes are
    /// not such (a damaged blob).
    pub(super) fn finish(self) -> Option<EvidenceAndDays> {
        let rows = self.keys.len();
        let mut keys = Vec::with_capacity(rows);
        for at in 0..rows {
            let (number, key) = self.keys.key(at).split_at_checked(4)?;
            let number = u32::from_le_bytes(number.try_into().ok()?);
            keys.push(decode_key(key, self.names.get(number as usize)?)?);
        }
        let rep_bits = self.rep_bits;
        let reps = by_place(rows, self.reps);
        let days = by_place(rows, self.days);
        let runs = by_place(rows, self.runs);
        let others = by_place(rows, self.others);
        let order = crate::store::evidence_order(keys.iter());
        let arena = std::sync::Arc::new(self.v4);
        // The names in order, each once, shared by every row.
        let names = self.reporters.finish();
        let mut out = Vec::with_capacity(rows);
        // Which row last took each name: a row's names met once each without sorting them all
        // (a row meets each of its names once per entry it was summed from).
        let mut taken = vec![usize::MAX; names.len()];
        // The rows whose names are all among the first 64 share their names' places, one list
        // per set of them.
        let mut by_bits: HashMap<u64, Reporters> = HashMap::default();
        let mut places: Vec<u32> = Vec::new();
        for (at, key) in crate::store::in_order(keys, &order) {
            let bits = rep_bits.get(at).copied().unwrap_or(0);
            let more = reps.of(at);
            places.clear();
            places.extend(crate::store::set_bits(bits));
            let reporters = if more.is_empty() {
                by_bits
                    .entry(bits)
                    .or_insert_with(|| names.row(places.iter().copied()))
                    .clone()
            } else {
                for p in more {
                    if let Some(t) = taken.get_mut(*p as usize)
                        && *t != at
                    {
                        *t = at;
                        places.push(*p);
                    }
                }
                names.row(places.iter().copied())
            };
            let outside = days.of(at);
            let words = self
                .day_bits
                .get(at * self.span.words..(at + 1) * self.span.words)
                .unwrap_or_default();
            let mut mine: Vec<i64> = Vec::with_capacity(
                outside.len() + words.iter().map(|w| w.count_ones() as usize).sum::<usize>(),
            );
            for (i, w) in words.iter().enumerate() {
                let first = self.span.start + (i * 64) as i64;
                mine.extend(crate::store::set_bits(*w).map(|b| first + i64::from(b)));
            }
            if !outside.is_empty() {
                mine.extend_from_slice(outside);
                mine.sort_unstable();
                mine.dedup();
            }
            let t = self.totals[at];
            out.push(Evidence {
                key,
                messages: t.messages,
                first: t.first,
                last: t.last,
                reporters,
                days: mine,
                // Runs of the one list of addresses, not copies.
                ips: Some(IpSet::gathered(
                    arena.clone(),
                    runs.of(at).to_vec(),
                    others.of(at).iter().cloned().collect(),
                )),
            });
        }
        let daily = crate::store::days_in_order(&order, self.daily);
        Some((out, daily))
    }
}

/// The days of begin kept as bits: `words` words a row from `start` (none: every day listed).
#[derive(Default, Clone, Copy)]
struct DaySpan {
    start: i64,
    words: usize,
}

impl DaySpan {
    /// Bits enough for `[from, to)`, when that is known and at most 1,024 days.
    fn of(days: Option<(i64, i64)>) -> DaySpan {
        match days {
            Some((from, to)) if from < to && to - from <= 1024 => DaySpan {
                start: from,
                words: usize::try_from(to - from).unwrap_or(0).div_ceil(64),
            },
            _ => DaySpan::default(),
        }
    }

    /// `day`'s bit, when within.
    fn bit(&self, day: i64) -> Option<usize> {
        let bit = usize::try_from(day.checked_sub(self.start)?).ok()?;
        (bit < self.words * 64).then_some(bit)
    }
}

/// A row's messages and the earliest begin and latest end of the reports that carried them.
#[derive(Default, Clone, Copy)]
struct Totals {
    messages: u64,
    first: Option<i64>,
    last: Option<i64>,
}

impl Totals {
    fn add(&mut self, messages: u64, first: Option<i64>, last: Option<i64>) {
        self.messages = self.messages.saturating_add(messages);
        self.first = min_opt(self.first, first);
        self.last = self.last.max(last);
    }
}

/// Items tagged with their row's place, parted per row (in the order met): row `at`'s are
/// `values[ends[at - 1]..ends[at]]`.
struct ByPlace<T> {
    ends: Vec<usize>,
    values: Vec<T>,
}

impl<T> ByPlace<T> {
    fn of(&self, at: usize) -> &[T] {
        let start = if at == 0 { 0 } else { self.ends[at - 1] };
        &self.values[start..self.ends[at]]
    }
}

/// Parts `items` of `rows` rows by place, by counting: two passes, no sort, each item written
/// straight to its place in the one list (a year's days of begin are a million).
fn by_place<T: Clone + Default>(rows: usize, items: Vec<(usize, T)>) -> ByPlace<T> {
    let mut ends = vec![0usize; rows];
    for (at, _) in &items {
        ends[*at] += 1;
    }
    let mut sum = 0;
    for end in &mut ends {
        sum += *end;
        *end = sum;
    }
    // Filled from the back, so that each row's items keep their order.
    let mut next = ends.clone();
    let mut values: Vec<T> = vec![T::default(); items.len()];
    for (at, v) in items.into_iter().rev() {
        let n = &mut next[at];
        *n -= 1;
        values[*n] = v;
    }
    ByPlace { ends, values }
}

/// Stored sums added into the evidence at `at`.
struct AddInto<'g> {
    g: &'g mut Gathered,
    at: usize,
}

impl SumsSink for AddInto<'_> {
    fn totals(&mut self, messages: u64, first: Option<i64>, last: Option<i64>) {
        self.g.totals[self.at].add(messages, first, last);
    }
    fn wants_begins(&self) -> bool {
        self.g.detail.days()
    }
    fn begin(&mut self, day: i64, messages: u64) {
        self.g.day(self.at, day);
        if self.g.detail.daily() {
            *self.g.daily.entry((self.at, day)).or_default() += messages;
        }
    }
    fn reporter(&mut self, place: usize, _: &str) {
        if let Some(&p) = self.g.local.get(place) {
            self.g.reporter(self.at, p);
        }
    }
    fn v4s(&mut self) -> Option<&mut Vec<u32>> {
        Some(&mut self.g.v4)
    }
    fn other(&mut self, ip: &str) {
        self.g.others.push((self.at, ip.to_owned()));
    }
}

/// Hands the IPs' own sums of a key asked for to a sender's page's sums
/// ([`super::of_keys_rolled`]), the key at its place among those asked for.
pub(super) struct OfKey<'f, 'k>(pub(super) &'f mut OfKeys<'k>, pub(super) usize);

impl OwnSums for OfKey<'_, '_> {
    fn own(&mut self, ip: Ip<'_>, messages: u64, _: u32, reporters: &[(usize, &str)]) {
        let ip = ip.to_string();
        self.0
            .add_sums(&ip, self.1, messages, reporters.iter().map(|(_, org)| *org));
    }
}

/// Adds the IPs' own sums of one key to `sources`' groups ([`super::sources_rolled`]): each IP's
/// messages counted as the key's policy results and disposition say, under the key's header From
/// (and its row's domain, for a listing of several), with the reports it counts.
pub(super) struct OfSources<'a> {
    pub(super) groups: &'a mut SourceGroups,
    pub(super) key: &'a EvidenceKey,
    /// The row's domain, when the listing is of several.
    pub(super) domain: Option<&'a str>,
    pub(super) buf: &'a mut Vec<u8>,
    pub(super) ip: &'a mut String,
}

impl OwnSums for OfSources<'_> {
    const REPORTERS: bool = false;
    fn own(&mut self, ip: Ip<'_>, messages: u64, reports: u32, _: &[(usize, &str)]) {
        self.ip.clear();
        ip.push_to(self.ip);
        self.buf.clear();
        let k = self.key;
        put_source_key(
            self.buf,
            self.ip.as_bytes(),
            Some(k.header_from.as_bytes()),
            self.domain.map(str::as_bytes),
        );
        let result = |pass: bool| {
            Some(if pass {
                DmarcResult::Pass
            } else {
                DmarcResult::Fail
            })
        };
        let s = self.groups.summed(self.buf);
        s.count(
            result(k.dkim_aligned),
            result(k.spf_aligned),
            Some(k.disposition.clone()),
            messages,
        );
        s.reports = s.reports.saturating_add(u64::from(reports));
    }
}

#[cfg(test)]
mod tests {
    use super::super::codec::{Entries, Sums, encode_key, merge};
    use super::*;
    use crate::model::EvidenceKey;

    /// A row's reporters each once, in order of their names, whether their places fit its bits
    /// (the first 64 names met) or not, met once or in several rows.
    #[test]
    fn reporters_beyond_the_first_64_are_kept_once() {
        let key = EvidenceKey {
            domain: "example.org".into(),
            header_from: "example.org".into(),
            ..EvidenceKey::default()
        };
        let mut kb = Vec::new();
        encode_key(&key, &mut kb);
        let blob = |names: std::ops::Range<u32>| {
            let mut s = Sums {
                messages: 1,
                ..Sums::default()
            };
            for n in names {
                s.add_reporter(&format!("reporter {n:03}"));
            }
            merge(&[], Entries::from_iter([(kb.clone(), s)])).expect("blob")
        };
        let mut g = Gathered::new(Detail::Days, None);
        for names in [0..100, 50..150, 140..141] {
            g.add_blob("example.org", &blob(names)).expect("read");
        }
        let (rows, _) = g.finish().expect("read");
        assert_eq!(rows.len(), 1);
        let names: Vec<&str> = rows[0].reporters.iter().collect();
        let expected: Vec<String> = (0..150).map(|n| format!("reporter {n:03}")).collect();
        assert_eq!(names, expected);
        assert_eq!(rows[0].messages, 3);
    }
}
