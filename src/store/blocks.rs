//! A report's records as SQLite stores them: one block of bytes a report (`record_blocks.data`,
//! `schemas/0022_record_blocks.sql`) rather than a row a record, read back in SQL through the
//! table-valued function `records_of(data)` (`sqlite/records_of.rs`), whose columns are those the
//! `records` table had.
//!
//! Issue 21: a row a record cost the single writer a B-tree insert into the table and one into
//! its index, 15 values bound, and about 145 bytes written twice (WAL, then checkpoint); over
//! 5,000 mixed reports, leaving the records out took a quarter off `ingest`'s wall time. The
//! records of one report repeat themselves (the same header From, results, DKIM and SPF domains
//! and lists in nearly every record), which a block writes once: about 27 bytes a record.
//!
//! The format: a version byte ([`VERSION`]), then each record in order: its count (a varint,
//! zigzag), a byte for `forwarded` (0 or 1), then its [`TEXTS`] values, each a varint code:
//!
//! - `0`: NULL;
//! - `1`: the same value as this field of the record before (NULL for the first record);
//! - `2 + j`, `j` below this field's place: the same value as this record's field `j`;
//! - `14 + n`: the next `n` bytes, UTF-8.
//!
//! [`Block::of`] writes one on the parsing threads, from the model; [`Writer`] writes one from
//! values (the migration that packs the `records` table, `migrate --to sqlite`); [`Records`] reads
//! one, refusing (never panicking on) bytes that are not a block this version wrote.

use crate::model::{AggregateReport, Record, Totals};
use crate::store::{StoredRecord, lists, same_bytes, same_text, sat};

/// The first byte of a block of this format.
pub const VERSION: u8 = 1;

/// The text fields of a record in a block, in order (the `records_of` columns of the same names).
pub const TEXTS: [&str; 12] = [
    "source_ip",
    "disposition",
    "dkim",
    "spf",
    "header_from",
    "envelope_from",
    "envelope_to",
    "auth_dkim_domain",
    "auth_dkim_result",
    "auth_spf_domain",
    "auth_spf_result",
    "auth",
];

/// Where `auth`, the record's lists ([`lists`]), is in [`TEXTS`].
pub const AUTH: usize = TEXTS.len() - 1;

const _: () = assert!(TEXTS[AUTH].len() == 4);

/// The code of the first literal; codes below it are NULL and references.
const LITERAL: u64 = 2 + TEXTS.len() as u64;

/// One record's values, as a block holds them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Row<'a> {
    pub count: i64,
    pub forwarded: bool,
    /// The [`TEXTS`] in order.
    pub texts: [Option<&'a str>; TEXTS.len()],
}

/// A report's records, encoded ahead of its unit of work ([`Block::of`], on the parsing threads).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Block {
    data: Vec<u8>,
    records: usize,
    /// The report's messages, summed as its records were encoded (so that the writer, which
    /// stores them in the report's row, need not go over the records again): [`Block::of`]'s.
    totals: Option<Totals>,
}

impl Block {
    /// `report`'s records, in order, each with its lists packed ([`lists::pack`]).
    pub fn of(report: &AggregateReport) -> Block {
        let mut writer = Writer::with_capacity(report.records.len());
        let mut auth = String::new();
        let mut before: Option<&Record> = None;
        let mut totals = Totals::default();
        for rec in &report.records {
            totals.add(rec);
            // A record's lists are most often the record before's (one sender's IPs): packed
            // again only when they differ.
            let same = before.is_some_and(|b| same_lists(b, rec));
            if !same {
                auth.clear();
                lists::pack(rec, &mut auth);
            }
            writer.push(&row(rec, &auth));
            before = Some(rec);
        }
        Block {
            totals: Some(totals),
            ..writer.finish()
        }
    }

    /// The report's messages ([`AggregateReport::totals`]), when it was made of the report
    /// ([`Block::of`]) rather than record by record.
    pub fn totals(&self) -> Option<Totals> {
        self.totals
    }

    /// The bytes stored.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// How many records it holds.
    pub fn len(&self) -> usize {
        self.records
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }
}

/// Whether `a` and `b` have the same lists (as `==` has it: [`lists::pack`] writes the same text
/// for both), their texts compared by [`same_bytes`] (issue 21: `==` called `memcmp` for each,
/// five times a record).
fn same_lists(a: &Record, b: &Record) -> bool {
    let text = |x: &str, y: &str| same_bytes(x.as_bytes(), y.as_bytes());
    a.dkim_results.len() == b.dkim_results.len()
        && a.spf_results.len() == b.spf_results.len()
        && a.reasons.len() == b.reasons.len()
        && a.dkim_results.iter().zip(&b.dkim_results).all(|(x, y)| {
            text(&x.domain, &y.domain)
                && same_text(x.selector.as_deref(), y.selector.as_deref())
                && x.result == y.result
                && same_text(x.human_result.as_deref(), y.human_result.as_deref())
        })
        && a.spf_results.iter().zip(&b.spf_results).all(|(x, y)| {
            text(&x.domain, &y.domain)
                && same_text(x.scope.as_deref(), y.scope.as_deref())
                && x.result == y.result
        })
        && a.reasons.iter().zip(&b.reasons).all(|(x, y)| {
            text(&x.kind, &y.kind) && same_text(x.comment.as_deref(), y.comment.as_deref())
        })
}

/// `rec`'s values as a block holds them, its lists being `auth`.
fn row<'a>(rec: &'a Record, auth: &'a str) -> Row<'a> {
    let (d, s) = (rec.deciding_dkim(), rec.deciding_spf());
    Row {
        count: sat(rec.count),
        forwarded: rec.forwarded(),
        texts: [
            Some(rec.source_ip.as_str()),
            rec.disposition.as_ref().map(|v| v.as_str()),
            rec.dkim.as_ref().map(|v| v.as_str()),
            rec.spf.as_ref().map(|v| v.as_str()),
            rec.header_from.as_deref(),
            rec.envelope_from.as_deref(),
            rec.envelope_to.as_deref(),
            d.map(|d| d.domain.as_str()),
            d.map(|d| d.result.as_str()),
            s.map(|s| s.domain.as_str()),
            s.map(|s| s.result.as_str()),
            Some(auth),
        ],
    }
}

impl<'a> Row<'a> {
    /// The record's stored columns under the report's policy `domain`, as the rollups sum them
    /// (the [`TEXTS`] [`row`] wrote, read back by place). A record without a source IP (never
    /// written so) has an empty one.
    pub(in crate::store) fn stored(&self, domain: &'a str) -> StoredRecord<'a> {
        let t = &self.texts;
        StoredRecord {
            domain,
            source_ip: t[0].unwrap_or_default(),
            disposition: t[1],
            dkim: t[2],
            spf: t[3],
            header_from: t[4],
            envelope_from: t[5],
            auth_dkim_domain: t[7],
            auth_dkim_result: t[8],
            auth_spf_domain: t[9],
            auth_spf_result: t[10],
            forwarded: self.forwarded,
        }
    }
}

/// Where a value of the record before or of this record is in the block: its start and end, or
/// [`NOWHERE`] for none.
type Place = (u32, u32);

/// No value ([`Place`]).
const NOWHERE: Place = (u32::MAX, 0);

/// Writes a block record by record.
#[derive(Debug)]
pub struct Writer {
    block: Block,
    /// Where the values of the record before (`places[before]`) and of this one (the other)
    /// are in `block.data`, for the references to them: two lists used in turn, not one copied
    /// into the other once a record (issue 21: that copy, of twelve places of two `usize`s, was
    /// a `memcpy` call a record).
    places: [[Place; TEXTS.len()]; 2],
    before: usize,
}

impl Writer {
    /// A block for about `records` records.
    pub fn with_capacity(records: usize) -> Writer {
        // About 27 bytes a record, more for the first of each sender: room enough that the
        // block is seldom grown (a copy of all of it so far).
        let mut data = Vec::with_capacity(1 + 48 * records);
        data.push(VERSION);
        Writer {
            block: Block {
                data,
                records: 0,
                totals: None,
            },
            places: [[NOWHERE; TEXTS.len()]; 2],
            before: 0,
        }
    }

    /// Appends a record.
    pub fn push(&mut self, row: &Row<'_>) {
        let data = &mut self.block.data;
        varint(data, zigzag(row.count));
        data.push(u8::from(row.forwarded));
        let [first, second] = &mut self.places;
        let (before, here) = if self.before == 0 {
            (&*first, second)
        } else {
            (&*second, first)
        };
        for (i, value) in row.texts.iter().enumerate() {
            let Some(value) = value else {
                data.push(0);
                here[i] = NOWHERE;
                continue;
            };
            let same = |(s, e): Place| {
                s != u32::MAX && same_bytes(&data[s as usize..e as usize], value.as_bytes())
            };
            if same(before[i]) {
                data.push(1);
                here[i] = before[i];
            } else if let Some(j) = (0..i).find(|&j| same(here[j])) {
                data.push(2 + j as u8);
                here[i] = here[j];
            } else {
                varint(data, LITERAL + value.len() as u64);
                // A block is far smaller than 4 GiB (a report's records, each within the input
                // limits); past that, a value is written again rather than referred to.
                here[i] = match (
                    u32::try_from(data.len()),
                    u32::try_from(data.len() + value.len()),
                ) {
                    (Ok(s), Ok(e)) if s != u32::MAX => (s, e),
                    _ => NOWHERE,
                };
                data.extend_from_slice(value.as_bytes());
            }
        }
        self.before ^= 1;
        self.block.records += 1;
    }

    /// The block written.
    pub fn finish(self) -> Block {
        self.block
    }
}

/// What a block that cannot be read is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a report's records (record_blocks.data) are not in a form this version reads")]
pub struct Unreadable;

/// The records of a block, in order.
#[derive(Debug, Clone)]
pub struct Records<'b> {
    data: &'b [u8],
    reader: Reader,
}

impl<'b> Records<'b> {
    /// Reads `data`; [`Unreadable`] when it is not a block of this [`VERSION`].
    pub fn new(data: &'b [u8]) -> Result<Records<'b>, Unreadable> {
        Ok(Records {
            data,
            reader: Reader::new(data)?,
        })
    }
}

impl<'b> Iterator for Records<'b> {
    type Item = Result<Row<'b>, Unreadable>;

    fn next(&mut self) -> Option<Self::Item> {
        let data = self.data;
        let at = |r: Option<(usize, usize)>| r.map(|(s, e)| text(data, s, e));
        match self.reader.next(data) {
            Ok(true) => Some(Ok(Row {
                count: self.reader.count,
                forwarded: self.reader.forwarded,
                texts: self.reader.texts.map(at),
            })),
            Ok(false) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

/// `data[s..e]`, which [`Reader`] found to be UTF-8.
fn text(data: &[u8], s: usize, e: usize) -> &str {
    std::str::from_utf8(&data[s..e]).unwrap_or_default()
}

/// Reads a block's records one by one, holding where the current record's values are rather
/// than the bytes (so that what holds the bytes, `records_of`'s cursor, can hold it too).
#[derive(Debug, Clone, Default)]
pub struct Reader {
    at: usize,
    /// The current record's count and `forwarded`.
    pub count: i64,
    pub forwarded: bool,
    /// Where its [`TEXTS`] are in the block, each checked to be UTF-8 ([`Reader::text`]).
    pub texts: [Option<(usize, usize)>; TEXTS.len()],
}

impl Reader {
    /// A reader of `data`; [`Unreadable`] when it is not a block of this [`VERSION`].
    pub fn new(data: &[u8]) -> Result<Reader, Unreadable> {
        match data.first() {
            Some(&VERSION) => Ok(Reader {
                at: 1,
                ..Reader::default()
            }),
            _ => Err(Unreadable),
        }
    }

    /// Moves to the next record of `data` (the block it was made for): false at the end; after
    /// an error, nothing more is read.
    pub fn next(&mut self, data: &[u8]) -> Result<bool, Unreadable> {
        if self.at >= data.len() {
            return Ok(false);
        }
        let read = self.read(data);
        if read.is_err() {
            self.at = usize::MAX;
        }
        read.map(|()| true)
    }

    /// The current record's field `i` of [`TEXTS`] in `data`.
    pub fn text<'b>(&self, data: &'b [u8], i: usize) -> Option<&'b str> {
        self.texts
            .get(i)
            .copied()
            .flatten()
            .map(|(s, e)| text(data, s, e))
    }

    fn read(&mut self, data: &[u8]) -> Result<(), Unreadable> {
        self.count = unzigzag(self.varint(data)?);
        self.forwarded = match self.byte(data)? {
            0 => false,
            1 => true,
            _ => return Err(Unreadable),
        };
        for i in 0..TEXTS.len() {
            self.texts[i] = match self.varint(data)? {
                0 => None,
                1 => self.texts[i],
                c if c < LITERAL => *self.texts[..i].get(c as usize - 2).ok_or(Unreadable)?,
                c => {
                    let n = usize::try_from(c - LITERAL).map_err(|_| Unreadable)?;
                    let end = self.at.checked_add(n).ok_or(Unreadable)?;
                    let bytes = data.get(self.at..end).ok_or(Unreadable)?;
                    std::str::from_utf8(bytes).map_err(|_| Unreadable)?;
                    let start = self.at;
                    self.at = end;
                    Some((start, end))
                }
            };
        }
        Ok(())
    }

    fn byte(&mut self, data: &[u8]) -> Result<u8, Unreadable> {
        let b = *data.get(self.at).ok_or(Unreadable)?;
        self.at += 1;
        Ok(b)
    }

    fn varint(&mut self, data: &[u8]) -> Result<u64, Unreadable> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte(data)?;
            value |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(Unreadable)
    }
}

fn varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(n: u64) -> i64 {
    (n >> 1) as i64 ^ -((n & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Row<'static>> {
        let mut a = Row {
            count: 3,
            forwarded: false,
            texts: [
                Some("192.0.2.1"),
                Some("none"),
                Some("pass"),
                Some("pass"),
                Some("example.org"),
                None,
                None,
                Some("example.org"),
                Some("pass"),
                Some("example.org"),
                Some("pass"),
                Some("~example.org;s1;pass|=;mfrom;pass|"),
            ],
        };
        let mut b = a;
        b.count = i64::MAX;
        b.forwarded = true;
        b.texts[0] = Some("2001:db8::1");
        b.texts[5] = Some("é".repeat(200).leak());
        let mut c = b;
        c.count = -1;
        c.texts = [None; TEXTS.len()];
        a.texts[6] = Some("");
        vec![a, b, c, a]
    }

    #[test]
    fn records_read_back_as_written() {
        let mut w = Writer::with_capacity(4);
        for r in rows() {
            w.push(&r);
        }
        let block = w.finish();
        assert_eq!(block.len(), 4);
        let read: Vec<Row<'_>> = Records::new(block.data())
            .expect("a block")
            .collect::<Result<_, _>>()
            .expect("readable");
        assert_eq!(read, rows());
        // Repeated values are written once: a record like the one before costs a byte a field,
        // and a value repeated within a record a byte.
        let mut w = Writer::with_capacity(2);
        w.push(&rows()[0]);
        let one = w.block.data.len();
        w.push(&rows()[0]);
        assert_eq!(w.block.data.len() - one, 2 + TEXTS.len());
        assert!(one <= 77, "{one}");
    }

    #[test]
    fn a_report_s_block_holds_each_record_with_its_lists() {
        use crate::model::{PolicyOverride, Record};
        let mut rec = Record {
            source_ip: "192.0.2.7".into(),
            count: u64::MAX,
            ..Record::default()
        };
        let mut report = AggregateReport::default();
        report.records.push(rec.clone());
        rec.reasons.push(PolicyOverride {
            kind: "forwarded".into(),
            comment: Some("a \"list\"".into()),
        });
        report.records.push(rec.clone());
        rec.source_ip = "192.0.2.8".into();
        report.records.push(rec.clone());
        report.records.push(Record::default());
        let block = Block::of(&report);
        assert_eq!(block.len(), 4);
        let read: Vec<Row<'_>> = Records::new(block.data())
            .expect("a block")
            .collect::<Result<_, _>>()
            .expect("readable");
        assert_eq!(read.len(), 4);
        for (rec, row) in report.records.iter().zip(&read) {
            let mut auth = String::new();
            lists::pack(rec, &mut auth);
            assert_eq!(*row, super::row(rec, &auth));
        }
        assert_eq!(read[0].count, i64::MAX);
        assert!(read[1].forwarded && !read[0].forwarded);
        assert!(Block::of(&AggregateReport::default()).is_empty());
    }

    /// A report's block carries its totals, as the report sums them; a block written record by
    /// record has none to carry.
    #[test]
    fn a_report_s_block_carries_its_totals() {
        use crate::model::{DmarcResult, Record};
        let rec = |count, dkim, spf| Record {
            count,
            dkim,
            spf,
            ..Record::default()
        };
        let (pass, fail) = (|| Some(DmarcResult::Pass), || Some(DmarcResult::Fail));
        let report = AggregateReport {
            records: vec![
                rec(3, pass(), fail()),
                rec(5, fail(), fail()),
                rec(7, None, pass()),
                rec(u64::MAX, fail(), None),
            ],
            ..AggregateReport::default()
        };
        let totals = report.totals();
        assert_eq!((totals.messages, totals.passed), (u64::MAX, 10));
        assert_eq!(Block::of(&report).totals(), Some(totals));
        assert_eq!(Writer::with_capacity(0).finish().totals(), None);
    }

    /// [`same_lists`] says what `==` of the three lists says.
    #[test]
    fn same_lists_is_equal_lists() {
        use crate::model::{DkimAuthResult, DkimResult, PolicyOverride, SpfAuthResult, SpfResult};
        let dkim = |d: &str, s: Option<&str>, r: DkimResult, h: Option<&str>| DkimAuthResult {
            domain: d.into(),
            selector: s.map(Into::into),
            result: r,
            human_result: h.map(str::to_owned),
        };
        let spf = |d: &str, s: Option<&str>, r: SpfResult| SpfAuthResult {
            domain: d.into(),
            scope: s.map(Into::into),
            result: r,
        };
        let mut records = vec![Record::default()];
        for (i, d) in [
            dkim("example.org", Some("s1"), DkimResult::Pass, None),
            dkim("example.org", Some("s2"), DkimResult::Pass, None),
            dkim("example.org", None, DkimResult::Pass, None),
            dkim("example.org", Some("s1"), DkimResult::Fail, None),
            dkim("example.org", Some("s1"), DkimResult::Pass, Some("ok")),
            dkim("example.net", Some("s1"), DkimResult::Pass, None),
            dkim(
                "a-much-longer-domain-name.example.org",
                Some("s1"),
                DkimResult::Pass,
                None,
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let mut r = Record::default();
            r.dkim_results.push(d.clone());
            records.push(r.clone());
            r.dkim_results.push(d);
            records.push(r.clone());
            r.spf_results
                .push(spf("example.org", Some("mfrom"), SpfResult::Pass));
            records.push(r.clone());
            let scope = ["mfrom", "helo"][i % 2];
            r.spf_results[0] = spf("example.org", Some(scope), SpfResult::SoftFail);
            records.push(r.clone());
            r.reasons.push(PolicyOverride {
                kind: "forwarded".into(),
                comment: (i % 3 == 0).then(|| "a comment".to_owned()),
            });
            records.push(r);
        }
        for a in &records {
            for b in &records {
                let equal = a.dkim_results == b.dkim_results
                    && a.spf_results == b.spf_results
                    && a.reasons == b.reasons;
                assert_eq!(same_lists(a, b), equal, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn a_report_without_records_is_a_block_of_none() {
        let block = Writer::with_capacity(0).finish();
        assert!(block.is_empty());
        assert_eq!(Records::new(block.data()).expect("a block").count(), 0);
    }

    #[test]
    fn anything_else_is_unreadable_and_never_a_panic() {
        let mut w = Writer::with_capacity(4);
        for r in rows() {
            w.push(&r);
        }
        let good = w.finish().data().to_vec();
        assert_eq!(Records::new(&[]).err(), Some(Unreadable));
        assert_eq!(Records::new(b"[1,2]").err(), Some(Unreadable));
        // Every truncation and every single-byte change reads as records or as an error.
        for n in 1..good.len() {
            let read: Vec<_> = Records::new(&good[..n]).expect("a block").collect();
            assert!(read.len() < 4 || read.iter().any(|r| r.is_err()), "{n}");
        }
        for i in 1..good.len() {
            for b in [0u8, 1, 2, 13, 14, 0x7f, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[i] = b;
                let _ = Records::new(&bad).map(|r| r.count());
            }
        }
        // A reference forward, to a field not read yet.
        let mut forward = vec![VERSION, 2, 0, 0, 3];
        forward.extend([0; 11]);
        assert!(Records::new(&forward).expect("a block").any(|r| r.is_err()));
    }
}
