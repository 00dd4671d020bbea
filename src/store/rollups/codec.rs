//! How the rollups' sums are stored: varints, a key as bytes ([`encode_key`]), one key's sums
//! ([`Sums`]), and a row's blob of entries with its reporters' names ([`merge`], [`encode_all`],
//! [`entries`]); the same bytes in either backend.

use crate::analyse::min_opt;
use crate::model::{Disposition, DkimResult, EvidenceKey, SpfResult, canonical_v4};

/// `n` as a LEB128 varint.
pub(super) fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// `n` as a zigzag varint (small negative numbers stay small).
pub(super) fn put_signed(out: &mut Vec<u8>, n: i64) {
    put_varint(out, ((n << 1) ^ (n >> 63)) as u64);
}

/// A text (or any bytes) as its length and bytes.
pub(super) fn put_text(out: &mut Vec<u8>, t: &[u8]) {
    put_varint(out, t.len() as u64);
    out.extend_from_slice(t);
}

/// Reads what the `put_` functions wrote; `None` when the bytes end early or are not such.
pub(super) struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(b: &'a [u8]) -> Self {
        Cursor { b, at: 0 }
    }

    pub(super) fn done(&self) -> bool {
        self.at >= self.b.len()
    }

    #[inline]
    pub(super) fn varint(&mut self) -> Option<u64> {
        let first = *self.b.get(self.at)?;
        if first < 0x80 {
            self.at += 1;
            return Some(u64::from(first));
        }
        // Eight bytes at hand (all but a blob's last few numbers): the number's end found and its
        // seven-bit groups joined without a branch per byte; the same number as the loop below.
        if let Some(eight) = self.b.get(self.at..self.at + 8) {
            let word = u64::from_le_bytes(eight.try_into().ok()?);
            let ends = !word & 0x8080_8080_8080_8080;
            if ends != 0 {
                // Eight times the length: the bit after the last byte's high bit.
                let bits = ends.trailing_zeros() + 1;
                let x = word & (u64::MAX >> (64 - bits));
                let n = (x & 0x7f)
                    | ((x >> 1) & (0x7f << 7))
                    | ((x >> 2) & (0x7f << 14))
                    | ((x >> 3) & (0x7f << 21))
                    | ((x >> 4) & (0x7f << 28))
                    | ((x >> 5) & (0x7f << 35))
                    | ((x >> 6) & (0x7f << 42))
                    | ((x >> 7) & (0x7f << 49));
                self.at += bits as usize / 8;
                return Some(n);
            }
        }
        let rest = self.b.get(self.at..)?;
        let mut n: u64 = 0;
        // Ten bytes at most: the tenth's bits beyond the 64th are dropped.
        for (i, &byte) in rest.iter().take(10).enumerate() {
            n |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                self.at += i + 1;
                return Some(n);
            }
        }
        None
    }

    pub(super) fn signed(&mut self) -> Option<i64> {
        let n = self.varint()?;
        Some(((n >> 1) as i64) ^ -((n & 1) as i64))
    }

    /// The next `n` bytes.
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let out = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(out)
    }

    pub(super) fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.varint()?).ok()?;
        self.take(n)
    }

    pub(super) fn text(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }

    pub(super) fn count(&mut self) -> Option<usize> {
        // Each item takes a byte at least: a count beyond the bytes left is damage.
        usize::try_from(self.varint()?)
            .ok()
            .filter(|n| *n <= self.b.len() - self.at)
    }
}

/// The results and dispositions a key names, stored as their number here (from 1; 0: the text
/// follows). Stored: words are only ever added at the end.
const WORDS: [&str; 11] = [
    "",
    "none",
    "pass",
    "fail",
    "softfail",
    "neutral",
    "policy",
    "temperror",
    "permerror",
    "quarantine",
    "reject",
];

/// A result or disposition as stored: its number among [`WORDS`], or 0 and its text.
fn put_word(out: &mut Vec<u8>, t: &str) {
    match WORDS.iter().position(|w| *w == t) {
        Some(at) => out.push(at as u8 + 1),
        None => {
            out.push(0);
            put_text(out, t.as_bytes());
        }
    }
}

/// A domain name of a key as stored: 0 when empty, 1 when the row's domain, else its length
/// plus 2 and its bytes.
fn put_name(out: &mut Vec<u8>, t: &str, domain: &str) {
    if t.is_empty() {
        out.push(0);
    } else if t == domain {
        out.push(1);
    } else {
        put_varint(out, t.len() as u64 + 2);
        out.extend_from_slice(t.as_bytes());
    }
}

impl<'a> Cursor<'a> {
    /// What [`put_word`] wrote.
    fn word(&mut self) -> Option<&'a str> {
        let code = *self.b.get(self.at)?;
        self.at += 1;
        match code {
            0 => self.text(),
            n => WORDS.get(usize::from(n) - 1).copied(),
        }
    }

    /// What [`put_name`] wrote, of a row of `domain`.
    fn name(&mut self, domain: &str) -> Option<crate::model::ShortStr> {
        Some(match self.varint()? {
            0 => crate::model::ShortStr::default(),
            1 => domain.into(),
            n => std::str::from_utf8(self.take(usize::try_from(n - 2).ok()?)?)
                .ok()?
                .into(),
        })
    }
}

/// A key as stored: what [`EvidenceKey`] says but its domain (the row's) and source IP; its
/// names as the row's domain where they are (most keys' From and many an SPF domain) and its
/// results by number ([`WORDS`]): a year's entries had been 78 bytes of key each, half of what
/// it read.
pub(super) fn encode_key(k: &EvidenceKey, out: &mut Vec<u8>) {
    let domain = k.domain.as_str();
    put_name(out, &k.header_from, domain);
    put_name(out, &k.dkim_domain, domain);
    put_word(out, k.dkim_result.as_str());
    put_name(out, &k.spf_domain, domain);
    put_word(out, k.spf_result.as_str());
    put_word(out, k.disposition.as_str());
    out.push(u8::from(k.dkim_aligned) | u8::from(k.spf_aligned) << 1 | u8::from(k.forwarded) << 2);
}

/// The key [`encode_key`] wrote, for `domain`.
pub(super) fn decode_key(b: &[u8], domain: &str) -> Option<EvidenceKey> {
    let mut c = Cursor::new(b);
    let header_from = c.name(domain)?;
    let dkim_domain = c.name(domain)?;
    let dkim_result = DkimResult::parse(c.word()?);
    let spf_domain = c.name(domain)?;
    let spf_result = SpfResult::parse(c.word()?);
    let disposition = Disposition::parse(c.word()?);
    let flags = *c.b.get(c.at)?;
    Some(EvidenceKey {
        domain: domain.into(),
        source_ip: crate::model::ShortStr::default(),
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
pub(super) struct Sums {
    pub(super) messages: u64,
    pub(super) first: Option<i64>,
    pub(super) last: Option<i64>,
    /// Messages by UTC day of their reports' begin (reports without one are in none).
    pub(super) begins: Vec<(i64, u64)>,
    pub(super) reporters: Vec<String>,
    /// Each record's (or stored IP's) source IP, as a canonical IPv4 address ([`canonical_v4`]),
    /// with the place of its reporter in `reporters` ([`NO_REPORTER`] for none), its messages
    /// and the reports it counts ([`Sums::add`]): the key's set of IPs and each IP's own sums
    /// are made of them by [`Sums::encode`].
    pub(super) v4: Vec<(u32, u32, u64, u32)>,
    /// The same for the other IPs, as sent.
    pub(super) other: Vec<(String, u32, u64, u32)>,
}

/// The reporter of an IP's sums that names none (stored sums of an IP without reporters).
const NO_REPORTER: u32 = u32::MAX;

/// An IP as a blob stores it: a canonical IPv4 address as its number, anything else as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ip<'a> {
    V4(u32),
    Other(&'a str),
}

impl<'a> Ip<'a> {
    /// `ip` as a blob stores it.
    pub(super) fn of(ip: &'a str) -> Ip<'a> {
        canonical_v4(ip).map_or(Ip::Other(ip), Ip::V4)
    }
}

impl Ip<'_> {
    /// Appends the IP as [`std::fmt::Display`] writes it, without the formatter's machinery (a
    /// large domain's year of sources is millions of them).
    pub(super) fn push_to(&self, out: &mut String) {
        match self {
            Ip::V4(a) => {
                for (i, b) in a.to_be_bytes().into_iter().enumerate() {
                    if i > 0 {
                        out.push('.');
                    }
                    if b >= 100 {
                        out.push(char::from(b'0' + b / 100));
                    }
                    if b >= 10 {
                        out.push(char::from(b'0' + b / 10 % 10));
                    }
                    out.push(char::from(b'0' + b % 10));
                }
            }
            Ip::Other(t) => out.push_str(t),
        }
    }
}

impl std::fmt::Display for Ip<'_> {
    /// The IP as the records hold it (a canonical IPv4 address is its dotted decimals).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ip::V4(a) => std::net::Ipv4Addr::from(*a).fmt(f),
            Ip::Other(t) => f.write_str(t),
        }
    }
}

impl Sums {
    pub(super) fn add_begin(&mut self, day: i64, n: u64) {
        match self.begins.iter_mut().find(|(d, _)| *d == day) {
            Some((_, m)) => *m = m.saturating_add(n),
            None => self.begins.push((day, n)),
        }
    }

    /// The place of `org` in `reporters`, added when new.
    pub(super) fn add_reporter(&mut self, org: &str) -> u32 {
        match self.reporters.iter().position(|r| r == org) {
            Some(at) => at as u32,
            None => {
                self.reporters.push(org.to_owned());
                (self.reporters.len() - 1) as u32
            }
        }
    }

    /// Adds `messages` from `ip`, reported by the reporter at `reporter` in `reporters`, in
    /// `reports` reports (counted as [`Sums::add`] says).
    pub(super) fn add_ip(&mut self, ip: Ip<'_>, reporter: u32, messages: u64, reports: u32) {
        match ip {
            Ip::V4(a) => self.v4.push((a, reporter, messages, reports)),
            Ip::Other(t) => self.other.push((t.to_owned(), reporter, messages, reports)),
        }
    }

    pub(super) fn absorb(&mut self, o: Sums) {
        self.messages = self.messages.saturating_add(o.messages);
        self.first = min_opt(self.first, o.first);
        self.last = self.last.max(o.last);
        for (d, n) in o.begins {
            self.add_begin(d, n);
        }
        // `o`'s reporters' places among these.
        let places: Vec<u32> = o.reporters.iter().map(|r| self.add_reporter(r)).collect();
        let place = |r: u32| places.get(r as usize).copied().unwrap_or(NO_REPORTER);
        self.v4
            .extend(o.v4.into_iter().map(|(a, r, n, k)| (a, place(r), n, k)));
        self.other
            .extend(o.other.into_iter().map(|(t, r, n, k)| (t, place(r), n, k)));
    }

    /// Writes the sums (sets sorted and made sets here), reporters as their places in `names`;
    /// the lists it needs meanwhile are `scratch`'s, kept from one sums to the next.
    pub(super) fn encode(&mut self, out: &mut Vec<u8>, names: &mut Names, scratch: &mut Scratch) {
        let Scratch {
            days,
            at,
            places,
            own,
            ip_places,
            ..
        } = scratch;
        put_varint(out, self.messages);
        out.push(u8::from(self.first.is_some()) | u8::from(self.last.is_some()) << 1);
        for t in [self.first, self.last].into_iter().flatten() {
            put_signed(out, t);
        }
        // The days of begin behind their length in bytes, so that a reader without use for
        // them steps over them (a year's rows hold 800,000).
        self.begins.sort_unstable();
        days.clear();
        put_varint(days, self.begins.len() as u64);
        let mut prev = 0i64;
        for (d, n) in &self.begins {
            put_signed(days, d.wrapping_sub(prev));
            put_varint(days, *n);
            prev = *d;
        }
        put_text(out, days);
        // Each reporter's place in `names`, by its place in `reporters`: looked up once here,
        // not once per IP it reported.
        at.clear();
        at.extend(self.reporters.iter().map(|r| names.place(r)));
        places.clear();
        places.extend_from_slice(at);
        places.sort_unstable();
        places.dedup();
        put_varint(out, places.len() as u64);
        for p in places.iter() {
            put_varint(out, *p);
        }
        // The set of IPs, increasing, each canonical IPv4 address as its four bytes: read back
        // as a copy (as varint differences they took 3.4 bytes each, and a year's 3.6 million
        // were a fifth of reading it); then each IP's own sums in the same order, behind their
        // length, so that a reader of the set alone steps over them: its messages, its reports
        // and its reporters' places in `names`.
        own.clear();
        put_ips(out, own, ip_places, at, &mut self.v4, |out, a| {
            out.extend_from_slice(&a.to_le_bytes());
        });
        put_ips(out, own, ip_places, at, &mut self.other, |out, t| {
            put_text(out, t.as_bytes());
        });
        put_text(out, own);
    }

    /// Reads the sums [`Sums::encode`] wrote, handing each part to `sink` (no structure is built
    /// for a reader that only adds them up).
    pub(super) fn visit(b: &[u8], names: &[&str], sink: &mut impl SumsSink) -> Option<()> {
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
        let days = c.bytes()?;
        if sink.wants_begins() {
            let mut d = Cursor::new(days);
            let mut prev = 0i64;
            for _ in 0..d.count()? {
                prev = prev.wrapping_add(d.signed()?);
                sink.begin(prev, d.varint()?);
            }
            if !d.done() {
                return None;
            }
        }
        for _ in 0..c.count()? {
            let place = usize::try_from(c.varint()?).ok()?;
            sink.reporter(place, names.get(place)?);
        }
        let n = c.count()?;
        let v4 = c.take(n.checked_mul(4)?)?;
        let v4 = v4
            .chunks_exact(4)
            .map(|a| u32::from_le_bytes([a[0], a[1], a[2], a[3]]));
        if let Some(set) = sink.v4s() {
            set.extend(v4.clone());
        }
        let wants_ips = sink.wants_ips();
        let wants_reporters = sink.wants_reporters();
        let mut others = Vec::new();
        for _ in 0..c.count()? {
            let ip = c.text()?;
            sink.other(ip);
            if wants_ips {
                others.push(ip);
            }
        }
        let own = c.bytes()?;
        if wants_ips {
            let mut o = Cursor::new(own);
            let mut places = Vec::new();
            let ips = v4.map(Ip::V4).chain(others.into_iter().map(Ip::Other));
            for ip in ips {
                let messages = o.varint()?;
                let reports = u32::try_from(o.varint()?).ok()?;
                places.clear();
                for _ in 0..o.count()? {
                    let place = usize::try_from(o.varint()?).ok()?;
                    if wants_reporters {
                        places.push((place, *names.get(place)?));
                    }
                }
                sink.ip(ip, messages, reports, &places);
            }
            if !o.done() {
                return None;
            }
        }
        c.done().then_some(())
    }

    pub(super) fn decode(b: &[u8], names: &[&str]) -> Option<Sums> {
        let mut s = Sums::default();
        Sums::visit(b, names, &mut s)?;
        Some(s)
    }
}

/// Writes `ips` (each IP with a reporter's place in the key's reporters, messages and reports,
/// sorted here) as a set to `out`, how many then each distinct IP by `put`, and each one's own
/// sums to `own`: its messages, its reports, and its reporters' places in the row's names (`at`:
/// by their place in the key's reporters).
fn put_ips<T: Ord>(
    out: &mut Vec<u8>,
    own: &mut Vec<u8>,
    places: &mut Vec<u64>,
    at: &[u64],
    ips: &mut [(T, u32, u64, u32)],
    put: impl Fn(&mut Vec<u8>, &T),
) {
    ips.sort_unstable();
    let same = |a: &(T, u32, u64, u32), b: &(T, u32, u64, u32)| a.0 == b.0;
    put_varint(out, ips.chunk_by(same).count() as u64);
    for ip in ips.chunk_by(same) {
        put(out, &ip[0].0);
        let messages = ip.iter().fold(0u64, |m, (_, _, n, _)| m.saturating_add(*n));
        let reports = ip.iter().fold(0u32, |m, (_, _, _, k)| m.saturating_add(*k));
        put_varint(own, messages);
        put_varint(own, u64::from(reports));
        places.clear();
        places.extend(ip.iter().filter_map(|(_, r, _, _)| at.get(*r as usize)));
        places.sort_unstable();
        places.dedup();
        put_varint(own, places.len() as u64);
        for p in places.iter() {
            put_varint(own, *p);
        }
    }
}

/// What [`Sums::visit`] hands the parts of stored sums to.
pub(super) trait SumsSink {
    fn totals(&mut self, messages: u64, first: Option<i64>, last: Option<i64>);
    /// Whether [`SumsSink::begin`] is to be called (else the days of begin are stepped over).
    fn wants_begins(&self) -> bool {
        true
    }
    fn begin(&mut self, day: i64, messages: u64);
    /// A reporter: its place in the blob's names, and its name.
    fn reporter(&mut self, place: usize, org: &str);
    /// Where the set's IPv4 addresses go (pushed in increasing order): the longest part of most
    /// sums, decoded straight into the list; `None` to step over them.
    fn v4s(&mut self) -> Option<&mut Vec<u32>>;
    /// An IP of the set that is not a canonical IPv4 address.
    fn other(&mut self, ip: &str);
    /// Whether [`SumsSink::ip`] is to be called (else each IP's own sums are stepped over).
    fn wants_ips(&self) -> bool {
        false
    }
    /// Whether [`SumsSink::ip`] is to be handed each IP's reporters (else an empty list).
    fn wants_reporters(&self) -> bool {
        true
    }
    /// An IP's own sums: its messages, the reports it counts ([`Sums::add`]) and its reporters
    /// (their places in the blob's names, and their names).
    fn ip(&mut self, _ip: Ip<'_>, _messages: u64, _reports: u32, _reporters: &[(usize, &str)]) {}
}

/// A reader of each IP's own sums alone ([`SumsSink::ip`]), every other part stepped over.
pub(super) trait OwnSums {
    /// Whether [`OwnSums::own`] is to be handed each IP's reporters.
    const REPORTERS: bool = true;
    /// What [`SumsSink::ip`] is handed.
    fn own(&mut self, ip: Ip<'_>, messages: u64, reports: u32, reporters: &[(usize, &str)]);
}

impl<T: OwnSums> SumsSink for T {
    fn totals(&mut self, _: u64, _: Option<i64>, _: Option<i64>) {}
    fn wants_begins(&self) -> bool {
        false
    }
    fn begin(&mut self, _: i64, _: u64) {}
    fn reporter(&mut self, _: usize, _: &str) {}
    fn v4s(&mut self) -> Option<&mut Vec<u32>> {
        None
    }
    fn other(&mut self, _: &str) {}
    fn wants_ips(&self) -> bool {
        true
    }
    fn wants_reporters(&self) -> bool {
        T::REPORTERS
    }
    fn ip(&mut self, ip: Ip<'_>, messages: u64, reports: u32, reporters: &[(usize, &str)]) {
        self.own(ip, messages, reports, reporters);
    }
}

/// The sums as stored, each IP's own included (merging, and tests).
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
    fn v4s(&mut self) -> Option<&mut Vec<u32>> {
        None
    }
    fn other(&mut self, _: &str) {}
    fn wants_ips(&self) -> bool {
        true
    }
    fn ip(&mut self, ip: Ip<'_>, messages: u64, reports: u32, reporters: &[(usize, &str)]) {
        // The IP's messages and reports go with its first reporter; the others add none.
        let places: Vec<u32> = reporters
            .iter()
            .map(|(_, org)| self.add_reporter(org))
            .collect();
        let mut places = places.into_iter();
        self.add_ip(ip, places.next().unwrap_or(NO_REPORTER), messages, reports);
        for r in places {
            self.add_ip(ip, r, 0, 0);
        }
    }
}

/// The sums of one row: each key's bytes ([`encode_key`]) and its sums.
pub(super) type Entries = hashbrown::HashMap<Vec<u8>, Sums, foldhash::fast::RandomState>;

/// The lists [`Sums::encode`] fills and empties for each sums it writes, kept from one to the
/// next, and from one blob to the next (issue 21: allocated for each, six a key, they and the
/// blob's growth were a third of the instructions of encoding a unit of work's day parts).
#[derive(Default)]
pub(super) struct Scratch {
    /// One sums' bytes ([`Scratch::put_entry`]).
    sums: Vec<u8>,
    days: Vec<u8>,
    at: Vec<u64>,
    places: Vec<u64>,
    own: Vec<u8>,
    ip_places: Vec<u64>,
}

impl Scratch {
    /// Appends an entry to `out`: `key`, then `s` encoded ([`Sums::encode`], its reporters as
    /// places in `names`), each behind its length.
    fn put_entry(&mut self, out: &mut Vec<u8>, key: &[u8], s: &mut Sums, names: &mut Names) {
        put_text(out, key);
        let mut sums = std::mem::take(&mut self.sums);
        sums.clear();
        s.encode(&mut sums, names, self);
        put_text(out, &sums);
        self.sums = sums;
    }
}

/// The reporters' names a blob's entries refer to by place: a blob begins with them (how many,
/// then each as a text), so that each entry's reporters cost a byte or two each. Those of the
/// blob merged into (borrowed, in their places) and those added; looked up in order (a blob names
/// a few dozen reporters at most: one per organisation that reports on a domain).
pub(super) struct Names<'a> {
    old: &'a [&'a str],
    new: Vec<String>,
}

impl<'a> Names<'a> {
    pub(super) fn of(old: &'a [&'a str]) -> Names<'a> {
        Names {
            old,
            new: Vec::new(),
        }
    }

    /// The place of `name`, added when new.
    pub(super) fn place(&mut self, name: &str) -> u64 {
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

    pub(super) fn len(&self) -> usize {
        self.old.len() + self.new.len()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &str> {
        self.old
            .iter()
            .copied()
            .chain(self.new.iter().map(String::as_str))
    }
}

/// A stored blob's reporters' names and its entries' bytes; empty for an empty blob.
pub(super) fn split(blob: &[u8]) -> Option<(Vec<&str>, &[u8])> {
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
pub(super) fn merge(old: &[u8], mut add: Entries) -> Option<Vec<u8>> {
    let (old_names, body) = split(old)?;
    let mut names = Names::of(&old_names);
    let mut out = Vec::with_capacity(body.len() + add.len() * 64);
    let mut c = Cursor::new(body);
    let mut scratch = Scratch::default();
    while !c.done() {
        let start = c.at;
        let key = c.bytes()?;
        let stored = c.bytes()?;
        match add.remove(key) {
            None => out.extend_from_slice(&body[start..c.at]),
            Some(a) => {
                let mut s = Sums::decode(stored, &old_names)?;
                s.absorb(a);
                scratch.put_entry(&mut out, key, &mut s, &mut names);
            }
        }
    }
    let mut new: Vec<(Vec<u8>, Sums)> = add.into_iter().collect();
    new.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for (key, mut s) in new {
        scratch.put_entry(&mut out, &key, &mut s, &mut names);
    }
    Some(with_names(&names, out))
}

/// A blob: the reporters' `names` its entries refer to, then the entries (`entries`, as
/// [`Scratch::put_entry`] wrote them); empty when there are none.
fn with_names(names: &Names, entries: Vec<u8>) -> Vec<u8> {
    if entries.is_empty() {
        return entries;
    }
    let mut blob = Vec::with_capacity(entries.len() + names.len() * 16 + 2);
    put_varint(&mut blob, names.len() as u64);
    for n in names.iter() {
        put_text(&mut blob, n.as_bytes());
    }
    blob.extend_from_slice(&entries);
    blob
}

/// A new blob of `sums`' entries (in key order, sets sorted in place), without consuming them;
/// `scratch` holds the lists needed meanwhile, for the next blob too.
pub(super) fn encode_all(sums: &mut Entries, scratch: &mut Scratch) -> Vec<u8> {
    let mut order: Vec<(&Vec<u8>, &mut Sums)> = sums.iter_mut().collect();
    order.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut names = Names::of(&[]);
    // About what each entry takes, so that the blob is seldom grown (a copy of all of it).
    let room: usize = (order.iter())
        .map(|(k, s)| k.len() + 24 + 8 * (s.v4.len() + s.other.len()) + 4 * s.begins.len())
        .sum();
    let mut out = Vec::with_capacity(room);
    for (key, s) in order {
        scratch.put_entry(&mut out, key, s, &mut names);
    }
    with_names(&names, out)
}

/// Calls `each` with every entry of a stored blob: its key's bytes and its sums' bytes (whose
/// reporters are places in `names`).
#[inline]
pub(super) fn entries<'a>(
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

/// Adds `from`'s sums to `into`'s, key by key.
pub(super) fn absorb_entries(into: &mut Entries, from: Entries) {
    for (key, sums) in from {
        match into.get_mut(&key) {
            Some(have) => have.absorb(sums),
            None => {
                into.insert(key, sums);
            }
        }
    }
}

/// Adds every entry of a stored blob to `all`; `None` when it is not such a blob.
pub(super) fn add_entries(all: &mut Entries, blob: &[u8]) -> Option<()> {
    entries(blob, |names, key, sums| {
        if !all.contains_key(key) {
            all.insert(key.to_vec(), Sums::default());
        }
        Sums::visit(sums, names, all.get_mut(key)?)
    })
}
