//! Evidence summed from rollup rows and from the records of a window's partial days
//! ([`Gathered`]): one row per key without the source IP, its IPs as a set.

use std::collections::BTreeSet;

use super::codec::{Sums, SumsSink, decode_key, encode_key, entries, put_text, split};
use super::{EvidenceAndDays, HashMap};
use crate::analyse::min_opt;
use crate::model::{Evidence, EvidenceKey, IpSet, canonical_v4};

/// Evidence being summed from rollup rows and edge records, one row per key without the IP.
#[derive(Default)]
pub(super) struct Gathered {
    /// (domain, key bytes) → place in `out`.
    index: HashMap<Vec<u8>, usize>,
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
    /// Nothing yet; with `by_day`, day counts are kept too.
    pub(super) fn new(by_day: bool) -> Self {
        Gathered {
            by_day,
            ..Gathered::default()
        }
    }

    /// The place of the key whose bytes (its domain's, then [`encode_key`]'s) are in `buf`.
    fn known(&self) -> Option<usize> {
        self.index.get(self.buf.as_slice()).copied()
    }

    /// A new place for `key` (source IP empty), whose bytes are in `buf`.
    fn add_key(&mut self, key: EvidenceKey) -> usize {
        self.out.push(Evidence {
            key,
            ..Evidence::default()
        });
        self.v4s.push(Vec::new());
        self.others.push(BTreeSet::new());
        self.reps.push(Vec::new());
        self.days.push(Vec::new());
        let at = self.out.len() - 1;
        self.index.insert(self.buf.clone(), at);
        at
    }

    /// Adds a row's blob (of `domain`).
    pub(super) fn add_blob(&mut self, domain: &str, blob: &[u8]) -> Option<()> {
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
            let at = match self.known() {
                Some(at) => at,
                None => self.add_key(decode_key(key, domain)?),
            };
            Sums::visit(sums, names, &mut AddInto { g: self, at })
        })
    }

    /// Adds evidence read per source IP (with its day counts).
    pub(super) fn add_per_ip(&mut self, (evidence, daily): EvidenceAndDays) {
        let mut places = Vec::with_capacity(evidence.len());
        for mut e in evidence {
            let ip = std::mem::take(&mut e.key.source_ip);
            // Keyed by the bytes a rollup row keys it by, so that its sums and the row's meet.
            self.buf.clear();
            put_text(&mut self.buf, e.key.domain.as_bytes());
            encode_key(&e.key, &mut self.buf);
            let at = match self.known() {
                Some(at) => at,
                None => self.add_key(e.key),
            };
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

    pub(super) fn finish(self) -> EvidenceAndDays {
        let mut out = self.out;
        for ((e, mut reps), mut days) in out.iter_mut().zip(self.reps).zip(self.days) {
            reps.sort_unstable();
            reps.dedup();
            let names = reps.iter().filter_map(|r| self.reporters.get(*r as usize));
            // Sets built at once (from sorted lists) where there is nothing yet to add to.
            if e.reporters.is_empty() {
                e.reporters = names.cloned().collect();
            } else {
                for name in names {
                    if !e.reporters.contains(name) {
                        e.reporters.insert(name.clone());
                    }
                }
            }
            days.sort_unstable();
            days.dedup();
            if e.days.is_empty() {
                e.days = days.into_iter().collect();
            } else {
                e.days.extend(days);
            }
        }
        for ((e, v4), other) in out.iter_mut().zip(self.v4s).zip(self.others) {
            e.ips = Some(IpSet::new(v4, other));
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
    fn v4s(&mut self) -> &mut Vec<u32> {
        &mut self.g.v4s[self.at]
    }
    fn other(&mut self, ip: &str) {
        let o = &mut self.g.others[self.at];
        if !o.contains(ip) {
            o.insert(ip.to_owned());
        }
    }
}
