//! What a unit of work has stored and not yet written to the rollups ([`Pending`]): its
//! reports' sums by domain and day of their end, each record's key computed once per distinct
//! stored columns ([`Keys`]); a batch's sums made and encoded before its unit of work begins
//! ([`Presum`]), and the days to sum again from their records.

use std::collections::BTreeSet;

use super::HashMap;
use super::codec::{Entries, Ip, Scratch, Sums, encode_all, encode_key};
use super::plan::{DAY, day_of};
use crate::analyse::min_opt;
use crate::model::AggregateReport;
use crate::store::blocks::{Records, Unreadable};
use crate::store::source_groups::{FirstInRecords, FirstInReport};
use crate::store::{Block, StoredRecord, same_text};

/// Frees `garbage` on a thread of its own: the sums of a batch are thousands of small allocations,
/// and the writer is the pipeline's narrowest stage.
pub(super) fn free_elsewhere<T: Send + 'static>(garbage: T) {
    if std::thread::Builder::new()
        .name("rollups-free".into())
        .spawn(move || drop(garbage))
        .is_err()
    {
        // No thread to be had: freed here (the spawn's closure, with `garbage`, was dropped).
    }
}

/// Sums of the reports a unit of work stored, not yet written.
#[derive(Default)]
pub(in crate::store) struct Pending {
    /// By domain and day of the reports' end.
    pub(super) days: HashMap<String, HashMap<i64, Entries>>,
    /// More of them, encoded already (blobs as a day's part holds them): the batches' [`Presum`]s,
    /// a (domain, day) once a batch.
    pub(super) encoded: Vec<(String, i64, Vec<u8>)>,
    pub(super) keys: Keys,
    /// The (domain, day)s to sum again from their records at commit.
    pub(super) dirty: BTreeSet<(String, i64)>,
}

impl Pending {
    /// The sums of `domain`'s reports ending on `day`, and the keys.
    pub(super) fn row(&mut self, domain: &str, day: i64) -> (Option<&mut Entries>, &mut Keys) {
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
    pub(super) fn add_report(&mut self, r: &AggregateReport) {
        let (m, domain) = (&r.metadata, r.policy.domain.as_str());
        let (Some(row), keys) = self.row(domain, day_of(m.end)) else {
            return;
        };
        keys.in_report.clear();
        // Records in a row with the same columns (one sender's IPs, as reports list them) are
        // added to their key's sums found once for the run: the key looked up once a run, not
        // once a record (two thirds of the records of the generated corpora).
        let mut run: Option<StoredRecord<'_>> = None;
        let (mut sums, mut reporter): (Option<&mut Sums>, u32) = (None, 0);
        for (i, rec) in r.records.iter().enumerate() {
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
            let first = keys.in_report.first(&r.records, i);
            if !run.as_ref().is_some_and(|c| same_key(c, &stored)) {
                sums = keys.sums(row, &stored);
                if let Some(sums) = sums.as_deref_mut() {
                    reporter = sums.add_reporter(&m.org_name);
                }
                run = Some(stored);
            }
            if let Some(sums) = sums.as_deref_mut() {
                sums.add(reporter, m.begin, m.end, rec.count, &rec.source_ip, first);
            }
        }
    }

    /// Adds one report as stored whose records are in its `block` only ([`StoredReport::Encoded`]):
    /// as [`Self::add_report`] sums them from the model, and as a day's records read back are
    /// summed ([`Keys::add_to`]).
    fn add_block(&mut self, r: &AggregateReport, block: &Block) -> Result<(), Unreadable> {
        let (m, domain) = (&r.metadata, r.policy.domain.as_str());
        let records = Records::new(block.data())?;
        let (Some(row), keys) = self.row(domain, day_of(m.end)) else {
            return Ok(());
        };
        let mut add = keys.add_to(row);
        for rec in records {
            let rec = rec?;
            let count = u64::try_from(rec.count).unwrap_or(0);
            add(0, &rec.stored(domain), &m.org_name, m.begin, m.end, count);
        }
        Ok(())
    }
}

/// Whether `a` and `b` have the same key's columns (all but the source IP).
fn same_key(a: &StoredRecord<'_>, b: &StoredRecord<'_>) -> bool {
    a.forwarded == b.forwarded
        && same_text(Some(a.domain), Some(b.domain))
        && same_text(a.header_from, b.header_from)
        && same_text(a.auth_dkim_domain, b.auth_dkim_domain)
        && same_text(a.auth_dkim_result, b.auth_dkim_result)
        && same_text(a.auth_spf_domain, b.auth_spf_domain)
        && same_text(a.auth_spf_result, b.auth_spf_result)
        && same_text(a.envelope_from, b.envelope_from)
        && same_text(a.dkim, b.dkim)
        && same_text(a.spf, b.spf)
        && same_text(a.disposition, b.disposition)
}

/// A record's stored columns (as [`Keys::sums`] writes them, but the source IP) → its key's
/// bytes ([`encode_key`]): the key is computed once per distinct columns.
#[derive(Default)]
pub(super) struct Keys {
    pub(super) keys: HashMap<Vec<u8>, Vec<u8>>,
    buf: Vec<u8>,
    /// The record of a report summed from the model ([`Pending::add_report`]) that counts it for
    /// its source IP and header From.
    pub(super) in_report: FirstInRecords,
    /// The same, of the reports whose records are read back or from a block ([`Keys::add_to`]).
    firsts: FirstInReport,
}

impl Keys {
    /// Adds stored records to their keys' sums in `row`: each with its report's id, reporter,
    /// begin and end, and its messages (as [`super::RollupSql::records_of_day`] gives them), the
    /// first of a report's records from an IP under a header From counting the report for it
    /// ([`FirstInReport`]).
    pub(super) fn add_to<'s>(
        &'s mut self,
        row: &'s mut Entries,
    ) -> impl FnMut(i64, &StoredRecord<'_>, &str, Option<i64>, Option<i64>, u64) + 's {
        self.firsts.clear();
        move |report, stored, org, begin, end, count| {
            let first = self
                .firsts
                .first(report, stored.source_ip, stored.header_from);
            if let Some(s) = self.sums(row, stored) {
                let reporter = s.add_reporter(org);
                s.add(reporter, begin, end, count, stored.source_ip, first);
            }
        }
    }

    /// The sums in `row` of the key of `stored`, made when new.
    pub(super) fn sums<'r>(
        &mut self,
        row: &'r mut Entries,
        stored: &StoredRecord<'_>,
    ) -> Option<&'r mut Sums> {
        let buf = &mut self.buf;
        buf.clear();
        // Each column as its length in 8 bytes (`u64::MAX` for none) and its bytes: two copies
        // a column, where a varint length took a call and a loop (half of this function's time).
        let text = |buf: &mut Vec<u8>, t: Option<&str>| match t {
            None => buf.extend_from_slice(&u64::MAX.to_le_bytes()),
            Some(t) => {
                buf.extend_from_slice(&(t.len() as u64).to_le_bytes());
                buf.extend_from_slice(t.as_bytes());
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
        // Found by one hash of the key, copied only when new.
        Some(row.entry_ref(key.as_slice()).or_default())
    }
}

impl Sums {
    /// Adds a record of `count` messages from `ip` in a report of the reporter at `reporter` (its
    /// place, [`Sums::add_reporter`]) for (`begin`, `end`), counting the report for `ip` when
    /// `first`: the first of the report's records from `ip` under its header From
    /// ([`FirstInReport`]), whichever key it is under, so that the keys of a From add up to the
    /// reports of each IP (`sources`).
    pub(super) fn add(
        &mut self,
        reporter: u32,
        begin: Option<i64>,
        end: Option<i64>,
        count: u64,
        ip: &str,
        first: bool,
    ) {
        self.messages = self.messages.saturating_add(count);
        self.first = min_opt(self.first, begin);
        self.last = self.last.max(end);
        if let Some(b) = begin {
            self.add_begin(b.div_euclid(DAY), count);
        }
        self.add_ip(Ip::of(ip), reporter, count, u32::from(first));
    }
}

/// The sums of a batch's aggregate reports, made before its unit of work begins, off the writer's
/// thread, and encoded there as the parts of their days: used by the unit of work when it stores
/// every one of them ([`Pending::stored`]).
///
/// Encoded rather than kept as [`Entries`] (issue 21): a batch's sums waited for the writer, and a
/// unit of work's were held until its commit, as maps of keys, each with a list of its records'
/// IPs (a report's day is often its own: over the generated corpus of dates cycling over a year,
/// the pending sums were 4.5 MB of the heap's 16.5 MB at its peak; 0.5 MB encoded); a day's part
/// is its keys' sums with each IP once, in a few bytes. And the encoding, once a day on the
/// writer's thread at commit, is done by the parsing threads.
pub(in crate::store) struct Presum {
    parts: Vec<(String, i64, Vec<u8>)>,
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
    // The sums and the records' keys are freed here, by the thread that made them (the
    // allocator frees at once on the thread that allocated; the writer's thread for freeing
    // them was one more thread started a batch).
    let mut scratch = Scratch::default();
    let parts = (pending.days.iter_mut())
        .flat_map(|(domain, by_day)| by_day.iter_mut().map(move |(day, e)| (domain, *day, e)))
        .filter(|(_, _, sums)| !sums.is_empty())
        .map(|(domain, day, sums)| (domain.clone(), day, encode_all(sums, &mut scratch)))
        .collect();
    Presum { parts, reports: n }
}

/// A report a unit of work stored, as [`Pending::stored`] sums it when no [`Presum`] covers it.
#[derive(Clone, Copy)]
pub(in crate::store) enum StoredReport<'a> {
    /// With its records: summed from them.
    Records(&'a AggregateReport),
    /// Its records freed once encoded (SQLite's blocks, freed on the parsing threads so that a
    /// batch waiting for the writer holds no more than it writes): summed from its block.
    Encoded(&'a AggregateReport, &'a Block),
}

impl Pending {
    /// Adds the reports a unit of work stored: the batch's [`Presum`] (`pre`, if it was given
    /// one) when these are all of its reports (the batch is the reports the presum was made of,
    /// and these a part of it), else summed here. A unit of work may store several batches, each
    /// with its presum: the sums of a day two of them touch are added together here.
    pub(in crate::store) fn stored<'a>(
        &mut self,
        pre: Option<Box<Presum>>,
        reports: impl ExactSizeIterator<Item = StoredReport<'a>>,
    ) {
        if let Some(pre) = pre
            && pre.reports == reports.len()
        {
            // A day two of the unit's batches touch has a part of each, added together at commit
            // ([`super::upkeep::write`]).
            if self.encoded.is_empty() {
                self.encoded = pre.parts;
            } else {
                self.encoded.extend(pre.parts);
            }
            return;
        }
        for r in reports {
            match r {
                StoredReport::Records(r) => self.add_report(r),
                StoredReport::Encoded(r, block) => {
                    if self.add_block(r, block).is_err() {
                        // Never so for a block just made; its day is then summed again from
                        // the records stored, this one's among them.
                        self.forget_day(&r.policy.domain, r.metadata.end);
                    }
                }
            }
        }
    }

    /// Whether there is nothing to write: no sums, no day to sum again.
    pub(in crate::store) fn is_empty(&self) -> bool {
        self.dirty.is_empty()
            && self.encoded.is_empty()
            && self.days.values().all(|d| d.values().all(|e| e.is_empty()))
    }

    /// Marks `domain`'s day of `end` (a report of it is about to be deleted in this unit of
    /// work) to be summed again from its records at commit.
    pub(in crate::store) fn forget_day(&mut self, domain: &str, end: Option<i64>) {
        self.dirty.insert((domain.to_owned(), day_of(end)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::rollups::codec::Scratch;

    /// Every aggregate report of `sample-reports/`, each summed from its records and from its
    /// block: the same sums, byte for byte once encoded, whichever way a unit of work took.
    #[test]
    fn a_report_summed_from_its_block_sums_as_from_its_records() {
        fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).expect("sample-reports/ is read") {
                let path = entry.expect("a directory entry").path();
                if path.is_dir() {
                    files(&path, out);
                } else {
                    out.push(path);
                }
            }
        }
        let mut paths = Vec::new();
        files(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-reports"),
            &mut paths,
        );
        let (mut reports, mut records) = (0, 0);
        for path in paths {
            let bytes = std::fs::read(&path).expect("a sample report is read");
            let mut parsed = Vec::new();
            crate::unpack::walk(&bytes, &Default::default(), &mut |_, leaf| {
                if let crate::unpack::Leaf::Xml(xml) = leaf
                    && let Ok(r) = crate::parse::parse_aggregate(&crate::parse::decode_xml(xml))
                {
                    parsed.push(r);
                }
            });
            for r in parsed {
                let encode = |p: Pending| -> Vec<(String, i64, Vec<u8>)> {
                    let mut days: Vec<_> = (p.days.into_iter())
                        .flat_map(|(domain, by_day)| {
                            by_day.into_iter().map(move |(day, mut sums)| {
                                let blob = encode_all(&mut sums, &mut Scratch::default());
                                (domain.clone(), day, blob)
                            })
                        })
                        .collect();
                    days.sort();
                    days
                };
                let mut from_records = Pending::default();
                from_records.add_report(&r);
                let mut from_block = Pending::default();
                from_block
                    .add_block(&r, &Block::of(&r))
                    .expect("a block just made is read back");
                assert_eq!(
                    encode(from_records),
                    encode(from_block),
                    "{}: {}",
                    path.display(),
                    r.metadata.report_id
                );
                reports += 1;
                records += r.records.len();
            }
        }
        assert!(
            reports >= 100 && records >= 300,
            "{reports} reports, {records} records"
        );
    }
}
