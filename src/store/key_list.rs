//! Keys as bytes, each once, in one list ([`KeyList`]): what groups rows by a key of several
//! texts without an allocation per key (`sources`' groups, the rollups' gathered rows).

/// Distinct keys' bytes one after another, each with its place (in the order first met) and its
/// hash, found by that hash: key `i`'s bytes are `bytes[ends[i - 1]..ends[i]]`.
#[derive(Default)]
pub(crate) struct KeyList {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    hashes: Vec<u64>,
    table: hashbrown::HashTable<usize>,
}

/// The hash of a key's bytes; the same in every [`KeyList`], so that one list's keys are looked
/// up in another's by their stored hash ([`KeyList::hash_of`]).
pub(crate) fn hash(key: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0x646d_6172_6377_6172).hash_one(key)
}

impl KeyList {
    /// How many keys.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Forgets every key (keeping the room they took).
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
        self.hashes.clear();
        self.table.clear();
    }

    /// Key `at`'s bytes.
    pub(crate) fn key(&self, at: usize) -> &[u8] {
        let start = if at == 0 { 0 } else { self.ends[at - 1] };
        &self.bytes[start..self.ends[at]]
    }

    /// Key `at`'s hash.
    pub(crate) fn hash_of(&self, at: usize) -> u64 {
        self.hashes[at]
    }

    /// The place of `key`, whose hash is `hash`, when it is in the list.
    pub(crate) fn find(&self, hash: u64, key: &[u8]) -> Option<usize> {
        self.table.find(hash, |&at| self.key(at) == key).copied()
    }

    /// Appends `key` (not in the list), whose hash is `hash`: its place.
    pub(crate) fn push(&mut self, hash: u64, key: &[u8]) -> usize {
        let at = self.ends.len();
        self.bytes.extend_from_slice(key);
        self.ends.push(self.bytes.len());
        self.hashes.push(hash);
        let hashes = &self.hashes;
        self.table.insert_unique(hash, at, |&i| hashes[i]);
        at
    }

    /// The place of `key`, and whether it was just added.
    pub(crate) fn place(&mut self, key: &[u8]) -> (usize, bool) {
        let h = hash(key);
        match self.find(h, key) {
            Some(at) => (at, false),
            None => (self.push(h, key), true),
        }
    }
}
