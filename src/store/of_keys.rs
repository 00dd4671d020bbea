//! How `evidence_of_keys` folds the records it reads, for both backends: a record is kept only when
//! its key without the source IP is one of the keys asked for, and kept records are summed per
//! (source IP, key). Each backend reads its rows and makes each row's lookup bytes; what is kept
//! and how it is summed is written here once.

use super::key_list::KeyList;
use super::{FastMap, StoredRecord, set_bits};
use crate::model::{EvidenceKey, IpEvidence, ReporterTable};

/// The records of a sender's keys being summed per source IP and key.
pub(crate) struct OfKeys<'k> {
    /// Each key asked for → its place among them.
    wanted: FastMap<&'k EvidenceKey, usize>,
    /// The bytes a key is met by (a record's stored columns but the IP, or a rollup's encoded
    /// key: one form a fold) → the place of the key among those asked for, if there: each is
    /// turned into a key once.
    kinds: FastMap<Vec<u8>, Option<usize>>,
    /// Each (source IP, key's place) met, as the IP's bytes then the place's: its sum is the same
    /// place in `sums`.
    places: KeyList,
    sums: Vec<Sum>,
    /// The reporters met, each given a place once: a sum's reporters are places here.
    reporters: ReporterTable,
    /// The reporter last met and its place (records come report by report).
    last_reporter: Option<(String, u32)>,
    buf: Vec<u8>,
}

/// One (source IP, key)'s messages and reporters.
#[derive(Default)]
struct Sum {
    messages: u64,
    /// The reporters among the first 64 met, as bits of their places.
    first: u64,
    /// The others' places (a domain rarely hears from more than 64 reporters).
    more: Vec<u32>,
}

impl<'k> OfKeys<'k> {
    pub(crate) fn new(keys: &'k [EvidenceKey]) -> OfKeys<'k> {
        OfKeys {
            wanted: keys.iter().enumerate().map(|(i, k)| (k, i)).collect(),
            kinds: FastMap::default(),
            places: KeyList::default(),
            sums: Vec::new(),
            reporters: ReporterTable::default(),
            last_reporter: None,
            buf: Vec::new(),
        }
    }

    /// The place among the keys asked for of a record whose stored columns but the IP have the
    /// bytes `columns`; `record` reads the record when these columns are new (its IP, whatever it
    /// is, is left out of the key).
    pub(crate) fn kind<'r, E>(
        &mut self,
        columns: &[u8],
        record: impl FnOnce() -> Result<StoredRecord<'r>, E>,
    ) -> Result<Option<usize>, E> {
        self.place_by(columns, || Ok(record()?.evidence_key()))
    }

    /// The place among the keys asked for of the key met as `bytes`; `key` makes it when these
    /// bytes are new (its IP, if any, is left out).
    pub(crate) fn place_by<E>(
        &mut self,
        bytes: &[u8],
        key: impl FnOnce() -> Result<EvidenceKey, E>,
    ) -> Result<Option<usize>, E> {
        if let Some(k) = self.kinds.get(bytes) {
            return Ok(*k);
        }
        let mut key = key()?;
        key.source_ip.clear();
        let k = self.wanted.get(&key).copied();
        self.kinds.insert(bytes.to_vec(), k);
        Ok(k)
    }

    /// Adds a kept record's messages, from `ip` under the key at `key`, reported by `reporter`.
    pub(crate) fn add(&mut self, ip: &str, key: usize, reporter: &str, messages: u64) {
        self.add_sums(ip, key, messages, std::iter::once(reporter));
    }

    /// Adds `messages` from `ip` under the key at `key`, reported by `reporters`.
    pub(crate) fn add_sums<'r>(
        &mut self,
        ip: &str,
        key: usize,
        messages: u64,
        reporters: impl Iterator<Item = &'r str>,
    ) {
        self.buf.clear();
        self.buf.extend_from_slice(ip.as_bytes());
        self.buf.extend_from_slice(&key.to_le_bytes());
        let (at, new) = self.places.place(&self.buf);
        if new {
            self.sums.push(Sum::default());
        }
        for reporter in reporters {
            let who = self.reporter(reporter);
            let sum = &mut self.sums[at];
            if who < 64 {
                sum.first |= 1 << who;
            } else if !sum.more.contains(&who) {
                sum.more.push(who);
            }
        }
        let sum = &mut self.sums[at];
        sum.messages = sum.messages.saturating_add(messages);
    }

    /// The place of `name` among the reporters met.
    fn reporter(&mut self, name: &str) -> u32 {
        match &self.last_reporter {
            Some((last, place)) if last == name => *place,
            _ => {
                let place = self.reporters.place(name);
                self.last_reporter = Some((name.to_owned(), place));
                place
            }
        }
    }

    /// The sums, one per (source IP, key), in the order first met.
    pub(crate) fn finish(self) -> Vec<IpEvidence> {
        let names = self.reporters.finish();
        self.sums
            .into_iter()
            .enumerate()
            .map(|(at, sum)| {
                let bytes = self.places.key(at);
                let (ip, key) = bytes.split_at(bytes.len() - size_of::<usize>());
                let mut key_bytes = [0; size_of::<usize>()];
                key_bytes.copy_from_slice(key);
                IpEvidence {
                    ip: String::from_utf8_lossy(ip).into_owned(),
                    key: usize::from_le_bytes(key_bytes),
                    messages: sum.messages,
                    reporters: names
                        .row(set_bits(sum.first).chain(sum.more))
                        .iter()
                        .map(str::to_owned)
                        .collect(),
                }
            })
            .collect()
    }
}
