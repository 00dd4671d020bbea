//! How `evidence_of_keys` folds the records it reads, for both backends: a record is kept only when
//! its key without the source IP is one of the keys asked for, and kept records are summed per
//! (source IP, key). Each backend reads its rows and makes each row's lookup bytes; what is kept
//! and how it is summed is written here once.

use super::{FastMap, StoredRecord};
use crate::model::{EvidenceKey, IpEvidence};

/// The records of a sender's keys being summed per source IP and key.
pub(crate) struct OfKeys<'k> {
    /// Each key asked for → its place among them.
    wanted: FastMap<&'k EvidenceKey, usize>,
    /// A record's stored columns but the IP (their bytes) → the place of their key among those
    /// asked for, if there: each distinct set of columns is turned into a key once.
    kinds: FastMap<Vec<u8>, Option<usize>>,
    /// An IP's bytes and its key's place → its row in `out`.
    places: FastMap<Vec<u8>, usize>,
    out: Vec<IpEvidence>,
    buf: Vec<u8>,
}

impl<'k> OfKeys<'k> {
    pub(crate) fn new(keys: &'k [EvidenceKey]) -> OfKeys<'k> {
        OfKeys {
            wanted: keys.iter().enumerate().map(|(i, k)| (k, i)).collect(),
            kinds: FastMap::default(),
            places: FastMap::default(),
            out: Vec::new(),
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
        if let Some(k) = self.kinds.get(columns) {
            return Ok(*k);
        }
        let mut key = record()?.evidence_key();
        key.source_ip.clear();
        let k = self.wanted.get(&key).copied();
        self.kinds.insert(columns.to_vec(), k);
        Ok(k)
    }

    /// Adds a kept record's messages, from `ip` under the key at `key`, reported by `reporter`.
    pub(crate) fn add(&mut self, ip: &str, key: usize, reporter: &str, messages: u64) {
        self.buf.clear();
        self.buf.extend_from_slice(ip.as_bytes());
        self.buf.extend_from_slice(&key.to_le_bytes());
        let at = match self.places.get(self.buf.as_slice()) {
            Some(&at) => at,
            None => {
                self.out.push(IpEvidence {
                    ip: ip.to_owned(),
                    key,
                    ..IpEvidence::default()
                });
                self.places.insert(self.buf.clone(), self.out.len() - 1);
                self.out.len() - 1
            }
        };
        let e = &mut self.out[at];
        if !e.reporters.contains(reporter) {
            e.reporters.insert(reporter.to_owned());
        }
        e.messages = e.messages.saturating_add(messages);
    }

    /// The sums, one per (source IP, key), in the order first met.
    pub(crate) fn finish(self) -> Vec<IpEvidence> {
        self.out
    }
}
