//! `sources`' groups (domain, source IP, header From) summed as a store reads its records
//! ([`SourceGroups`]): a large domain's year is a quarter of a million groups, of which a page
//! shows a hundred, so a group is its key's bytes in one list and its counts, and only the groups
//! returned are made [`SourceSummary`]s with their texts.

use std::cmp::Reverse;
use std::collections::HashMap;

use super::key_list::{KeyList, hash};
use crate::model::{Record, SourceSummary};

/// Groups being summed: each group's key (its texts, each marked present and length-prefixed, as
/// [`put_key_field`] writes them) in one list, its counts in a [`SourceSummary`] whose texts stay
/// empty until [`SourceGroups::finish`], and its reports counted once each.
#[derive(Default)]
pub(crate) struct SourceGroups {
    /// Whether a report's records come together (a group's reports are then counted as they
    /// change), or in any order (also counted so, exact while each group meets its reports in
    /// increasing order; else counted again from the pairs met).
    together: bool,
    /// Every group's key bytes, group `i`'s at place `i`.
    keys: KeyList,
    /// Each group's counts (texts empty).
    counts: Vec<SourceSummary>,
    /// The report each group was last met in.
    last: Vec<i64>,
    /// Each (group, report) met when reports' records may come in any order, counted once each
    /// by [`SourceGroups::count_reports`] (sorted: cheaper than a set) when some group met a
    /// report below its last.
    seen: Vec<(usize, i64)>,
    /// Whether some group met a report below the last it met (records in any order only).
    unordered: bool,
}

/// Appends a key's text field (`None` for NULL) to `buf`: marked present and length-prefixed, so
/// that different fields never give the same bytes.
pub(crate) fn put_key_field(buf: &mut Vec<u8>, field: Option<&[u8]>) {
    match field {
        Some(t) => {
            buf.push(1);
            buf.extend_from_slice(&(t.len() as u32).to_le_bytes());
            buf.extend_from_slice(t);
        }
        None => buf.push(0),
    }
}

/// Appends the key of a source's group to `buf`: its IP, its header From as `sources` groups it
/// (in ASCII lowercase, as an evidence key holds it — [`crate::store::StoredRecord::evidence_key`]
/// — so that the rollups, summed by those keys, answer the listing; none when empty), then its
/// domain when the listing is of several ([`KeyFields::of`] says where each is).
pub(crate) fn put_source_key(
    buf: &mut Vec<u8>,
    ip: &[u8],
    header_from: Option<&[u8]>,
    domain: Option<&[u8]>,
) {
    put_key_field(buf, Some(ip));
    match header_from.filter(|t| !t.is_empty()) {
        Some(t) if t.iter().any(u8::is_ascii_uppercase) => {
            put_key_field(buf, Some(&t.to_ascii_lowercase()))
        }
        from => put_key_field(buf, from),
    }
    if domain.is_some() {
        put_key_field(buf, domain);
    }
}

/// Whether two records are of one source's group: the same IP and header From, as
/// [`put_source_key`] writes them (an empty header From as none, in any case).
pub(crate) fn same_group(
    (ip, header_from): (&str, Option<&str>),
    (other_ip, other_from): (&str, Option<&str>),
) -> bool {
    crate::store::same_bytes(ip.as_bytes(), other_ip.as_bytes())
        && match (
            header_from.filter(|t| !t.is_empty()),
            other_from.filter(|t| !t.is_empty()),
        ) {
            (None, None) => true,
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        }
}

/// Which record of one report counts it for its source's group (its IP and header From, as
/// [`same_group`] compares them): the first, found among the groups met so far by the hash of
/// the IP alone (a report's records of one IP are nearly always of one header From) and compared
/// whole. Issue 21: in place of [`FirstInReport`]'s key written and hashed for every record (and
/// of the records before looked at one by one in reports of up to 32 records): over 400
/// generated reports of 300 records, `presum` 206M → 162M instructions (5,000 mixed reports:
/// 175M → 150M).
#[derive(Default)]
pub(crate) struct FirstInRecords {
    /// The first record of each group met, by the hash of its IP (kept with it).
    firsts: hashbrown::HashTable<(u64, usize)>,
}

impl FirstInRecords {
    /// Forgets the records met: the next report begins.
    pub(crate) fn clear(&mut self) {
        self.firsts.clear();
    }

    /// Whether `records[i]` is the first of its group in `records`, asked of each record in
    /// order after [`FirstInRecords::clear`].
    pub(crate) fn first(&mut self, records: &[Record], i: usize) -> bool {
        let Some(rec) = records.get(i) else {
            return false;
        };
        let group = (rec.source_ip.as_str(), rec.header_from.as_deref());
        let h = hash(rec.source_ip.as_bytes());
        let met = self.firsts.find(h, |&(other, j)| {
            other == h
                && records
                    .get(j)
                    .is_some_and(|e| same_group((&e.source_ip, e.header_from.as_deref()), group))
        });
        if met.is_some() {
            return false;
        }
        self.firsts.insert_unique(h, (h, i), |&(h, _)| h);
        true
    }
}

/// Which record of a report counts the report for its source's group (its IP and header From,
/// as [`put_source_key`] writes them): the first met. The rollups keep each IP's reports so per
/// key, so that a group's keys add up to its reports.
#[derive(Default)]
pub(crate) struct FirstInReport {
    /// Each (report, group) met, as the report's bytes then the group's key.
    seen: KeyList,
    buf: Vec<u8>,
}

impl FirstInReport {
    /// Whether a record of `report` from `ip` under `header_from` is the first met.
    pub(crate) fn first(&mut self, report: i64, ip: &str, header_from: Option<&str>) -> bool {
        self.buf.clear();
        self.buf.extend_from_slice(&report.to_le_bytes());
        put_source_key(
            &mut self.buf,
            ip.as_bytes(),
            header_from.map(str::as_bytes),
            None,
        );
        self.seen.place(&self.buf).1
    }

    /// Forgets every report met (their records are all met).
    pub(crate) fn clear(&mut self) {
        self.seen.clear();
    }
}

/// The fields of a key [`put_key_field`] wrote, in order.
fn key_fields(mut key: &[u8]) -> impl Iterator<Item = Option<&[u8]>> {
    std::iter::from_fn(move || {
        let (&tag, rest) = key.split_first()?;
        if tag == 0 {
            key = rest;
            return Some(None);
        }
        let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let field = rest.get(4..4 + len)?;
        key = &rest[4 + len..];
        Some(Some(field))
    })
}

impl SourceGroups {
    /// No groups yet; `together` when the records will come report by report.
    pub(crate) fn new(together: bool) -> Self {
        SourceGroups {
            together,
            ..SourceGroups::default()
        }
    }

    /// Group `at`'s key bytes.
    fn key(&self, at: usize) -> &[u8] {
        self.keys.key(at)
    }

    fn add(&mut self, hash: u64, key: &[u8], counts: SourceSummary) -> usize {
        self.counts.push(counts);
        self.last.push(i64::MIN);
        self.keys.push(hash, key)
    }

    /// The place of the group whose key bytes are `key`, made (empty) when new.
    fn place(&mut self, key: &[u8]) -> usize {
        let h = hash(key);
        match self.keys.find(h, key) {
            Some(at) => at,
            None => self.add(
                h,
                key,
                SourceSummary::group(String::new(), String::new(), None),
            ),
        }
    }

    /// The counts of the group whose key bytes are `key` (made, empty, when new), met in `report`.
    pub(crate) fn group(&mut self, key: &[u8], report: i64) -> &mut SourceSummary {
        let at = self.place(key);
        let last = &mut self.last[at];
        if *last != report {
            // Counted as it changes, exact while each group meets its reports in increasing
            // order (or together): how the records mostly come.
            if report < *last && !self.together {
                self.unordered = true;
            }
            *last = report;
            self.counts[at].reports += 1;
            if !self.together {
                self.seen.push((at, report));
            }
        }
        &mut self.counts[at]
    }

    /// The counts of the group whose key bytes are `key` (made, empty, when new), its reports
    /// counted by the caller (sums already counted: the rollups').
    pub(crate) fn summed(&mut self, key: &[u8]) -> &mut SourceSummary {
        let at = self.place(key);
        &mut self.counts[at]
    }

    /// Each group's reports counted exactly, when records may come in any order: as counted
    /// when each group met its reports in increasing order, else from the (group, report) pairs
    /// met.
    pub(crate) fn count_reports(&mut self) {
        let mut seen = std::mem::take(&mut self.seen);
        if !self.unordered {
            return;
        }
        for c in &mut self.counts {
            c.reports = 0;
        }
        seen.sort_unstable();
        seen.dedup();
        for (at, _) in seen {
            self.counts[at].reports += 1;
        }
        self.unordered = false;
    }

    /// `other`'s groups added to these: a group both hold is summed, the others appended. Each
    /// holds its own reports counted ([`Self::count_reports`]); a report is read by one of them.
    pub(crate) fn join(&mut self, other: SourceGroups) {
        for (at, theirs) in other.counts.iter().enumerate() {
            let key = other.key(at);
            let h = other.keys.hash_of(at);
            match self.keys.find(h, key) {
                Some(mine) => self.counts[mine].absorb(theirs),
                None => {
                    self.add(h, key, theirs.clone());
                }
            }
        }
    }

    /// The groups, most messages first, then by domain, IP and header From, the first `limit`
    /// when given; made [`SourceSummary`]s with their texts. `fields` names what a key's fields
    /// are: the domain's place among them (`None`: every group is `domain`'s), then the source
    /// IP's and header From's.
    pub(crate) fn finish(
        self,
        limit: Option<usize>,
        domain: Option<&str>,
        fields: KeyFields,
    ) -> Vec<SourceSummary> {
        // A group's domain, IP and header From, as bytes (their order is the texts').
        let texts = |at: usize| {
            let field = |i: usize| key_fields(self.key(at)).nth(i).flatten();
            let d = match fields.domain {
                Some(i) => field(i),
                None => domain.map(str::as_bytes),
            };
            (d, field(fields.ip), field(fields.header_from))
        };
        let order = |a: &usize, b: &usize| {
            let (x, y) = (&self.counts[*a], &self.counts[*b]);
            y.messages
                .cmp(&x.messages)
                .then_with(|| texts(*a).cmp(&texts(*b)))
        };
        let mut places: Vec<usize> = (0..self.counts.len()).collect();
        if let Some(limit) = limit
            && limit < places.len()
        {
            places = self.first(places, limit, order);
        }
        // Sorted by their keys' texts, each group's read from its key once (a large domain's
        // year is a quarter of a million groups; the summaries' strings, compared instead, were
        // each in memory of their own). One domain's groups need not compare it.
        // (`at` is unique, so the domain after it is never compared.)
        let one_domain = fields.domain.is_none();
        let mut sorted: Vec<_> = places
            .into_iter()
            .map(|at| {
                let (d, ip, header_from) = texts(at);
                let compared = if one_domain { None } else { d };
                (
                    Reverse(self.counts[at].messages),
                    compared,
                    ip,
                    header_from,
                    at,
                    d,
                )
            })
            .collect();
        sorted.sort_unstable();
        sorted
            .into_iter()
            .map(|(_, _, ip, header_from, at, d)| {
                let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                let mut s = self.counts[at].clone();
                s.domain = d.map(text).unwrap_or_default();
                s.source_ip = ip.map(text).unwrap_or_default();
                s.header_from = header_from.map(text);
                s
            })
            .collect()
    }

    /// The first `limit` of `places` (fewer than them) in `order`, unsorted: chosen by messages
    /// alone, and by the whole order only among those with as many messages as the last chosen
    /// (the texts, read from the keys, compared for those alone).
    fn first(
        &self,
        mut places: Vec<usize>,
        limit: usize,
        order: impl Fn(&usize, &usize) -> std::cmp::Ordering,
    ) -> Vec<usize> {
        let Some(last) = limit.checked_sub(1) else {
            return Vec::new();
        };
        let messages = |at: &usize| self.counts[*at].messages;
        places.select_nth_unstable_by(last, |a, b| messages(b).cmp(&messages(a)));
        let edge = messages(&places[last]);
        let (mut chosen, mut tied): (Vec<usize>, Vec<usize>) = places
            .into_iter()
            .filter(|at| messages(at) >= edge)
            .partition(|at| messages(at) > edge);
        let room = limit - chosen.len();
        if room < tied.len() {
            tied.select_nth_unstable_by(room, order);
            tied.truncate(room);
        }
        chosen.extend(tied);
        chosen
    }
}

/// Sets each source's failure reports from `counts` (domain → source IP → failure reports about
/// it, whenever they arrived; none where absent).
pub(crate) fn set_failure_reports(
    sources: &mut [SourceSummary],
    counts: &HashMap<String, HashMap<String, u64>>,
) {
    for s in sources {
        s.failure_reports = counts
            .get(s.domain.as_str())
            .and_then(|by_ip| by_ip.get(s.source_ip.as_str()))
            .copied()
            .unwrap_or(0);
    }
}

/// Where a key's texts are among its fields ([`SourceGroups::finish`]).
#[derive(Clone, Copy)]
pub(crate) struct KeyFields {
    pub domain: Option<usize>,
    pub ip: usize,
    pub header_from: usize,
}

impl KeyFields {
    /// The fields [`put_source_key`] writes, with the domain when the listing is of `several`.
    pub(crate) fn of(several: bool) -> KeyFields {
        KeyFields {
            domain: several.then_some(2),
            ip: 0,
            header_from: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// Source IPs and header Froms that are of one group and of another in every way.
    const IPS: [&str; 4] = ["192.0.2.1", "192.0.2.10", "2001:db8::1", ""];
    const FROMS: [Option<&str>; 5] = [
        None,
        Some(""),
        Some("example.org"),
        Some("Example.ORG"),
        Some("example.net"),
    ];

    /// [`FirstInRecords`] says of each record what looking at the records before it says.
    #[test]
    fn the_first_of_a_group_is_the_first_met() {
        let (ips, froms) = (IPS, FROMS);
        let mut x: u64 = 11;
        let mut firsts = FirstInRecords::default();
        for n in [0, 1, 2, 5, 40, 300] {
            let records: Vec<Record> = (0..n)
                .map(|_| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    Record {
                        source_ip: ips[(x >> 33) as usize % ips.len()].into(),
                        header_from: froms[(x >> 45) as usize % froms.len()].map(Into::into),
                        ..Record::default()
                    }
                })
                .collect();
            firsts.clear();
            for (i, rec) in records.iter().enumerate() {
                let group = (rec.source_ip.as_str(), rec.header_from.as_deref());
                let before = records[..i]
                    .iter()
                    .any(|e| same_group((&e.source_ip, e.header_from.as_deref()), group));
                assert_eq!(
                    firsts.first(&records, i),
                    !before,
                    "{n} records, record {i}"
                );
            }
        }
    }

    /// [`same_group`] says what equal keys of [`put_source_key`] say.
    #[test]
    fn same_group_is_equal_keys() {
        let (ips, froms) = (IPS, FROMS);
        let key = |ip: &str, from: Option<&str>| {
            let mut buf = Vec::new();
            put_source_key(&mut buf, ip.as_bytes(), from.map(str::as_bytes), None);
            buf
        };
        for a in ips.iter().flat_map(|ip| froms.map(|f| (*ip, f))) {
            for b in ips.iter().flat_map(|ip| froms.map(|f| (*ip, f))) {
                assert_eq!(
                    same_group(a, b),
                    key(a.0, a.1) == key(b.0, b.1),
                    "{a:?} {b:?}"
                );
            }
        }
    }

    /// Rows of (IP, header From, report, messages) in a scrambled order, with ties in messages
    /// and reports met out of order: each group's counts and reports as counted one by one, and
    /// the first `limit` as the whole list sorted gives them, halves joined alike.
    #[test]
    fn groups_count_reports_once_and_list_in_order() {
        let mut rows = Vec::new();
        let mut x: u64 = 7;
        for i in 0..5_000u64 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let ip = format!("192.0.2.{}", (x >> 33) % 97);
            let hf = (!(x >> 20).is_multiple_of(5)).then(|| format!("h{}.example", (x >> 40) % 3));
            let report = ((x >> 13) % 400) as i64;
            rows.push((
                ip,
                hf,
                report,
                (x >> 50) % 4 + u64::from(i.is_multiple_of(3)),
            ));
        }
        for ordered in [false, true] {
            let mut rows = rows.clone();
            if ordered {
                rows.sort_by_key(|r| r.2);
            }
            let mut want: BTreeMap<(String, Option<String>), (u64, BTreeSet<i64>)> =
                BTreeMap::new();
            for (ip, hf, report, n) in &rows {
                let e = want.entry((ip.clone(), hf.clone())).or_default();
                e.0 += n;
                e.1.insert(*report);
            }
            let read = |rows: &[(String, Option<String>, i64, u64)]| {
                let mut g = SourceGroups::new(false);
                let mut buf = Vec::new();
                for (ip, hf, report, n) in rows {
                    buf.clear();
                    put_key_field(&mut buf, Some(ip.as_bytes()));
                    put_key_field(&mut buf, hf.as_deref().map(str::as_bytes));
                    g.group(&buf, *report).count(None, None, None, *n);
                }
                g.count_reports();
                g
            };
            let fields = KeyFields {
                domain: None,
                ip: 0,
                header_from: 1,
            };
            let mut all: Vec<SourceSummary> = want
                .iter()
                .map(|((ip, hf), (n, reports))| {
                    let mut s = SourceSummary::group("d.example".into(), ip.clone(), hf.clone());
                    s.count(None, None, None, *n);
                    s.reports = reports.len() as u64;
                    s
                })
                .collect();
            all.sort_by(|a, b| {
                (b.messages, &a.source_ip, &a.header_from).cmp(&(
                    a.messages,
                    &b.source_ip,
                    &b.header_from,
                ))
            });
            // Each half's reports are its own, as a store's halves are.
            let (low, high): (Vec<_>, Vec<_>) = rows.iter().cloned().partition(|r| r.2 < 200);
            for limit in [None, Some(0), Some(1), Some(17), Some(all.len())] {
                let expected: Vec<_> = all.iter().take(limit.unwrap_or(usize::MAX)).collect();
                let whole = read(&rows).finish(limit, Some("d.example"), fields);
                assert_eq!(whole.iter().collect::<Vec<_>>(), expected, "{limit:?}");
                let mut halves = read(&low);
                halves.join(read(&high));
                let joined = halves.finish(limit, Some("d.example"), fields);
                assert_eq!(joined.iter().collect::<Vec<_>>(), expected, "{limit:?}");
            }
        }
    }
}
