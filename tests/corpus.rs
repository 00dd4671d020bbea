//! Over the shared corpus of real reports (`../shared/corpus/`, present in CI): every aggregate report
//! that the independent reference parser counted (`expected.tsv`, status `ok`) must come out with exactly
//! its record count and message sum; every other file must be recovered or rejected with a reason.

use std::collections::BTreeMap;
use std::path::PathBuf;

use dmarc_warden::pipeline::extract;
use dmarc_warden::unpack::Limits;
use rayon::prelude::*;

struct Expected {
    idx: usize,
    kind: String,
    status: String,
    org: String,
    report_id: String,
    domain: String,
    records: u64,
    messages: u64,
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")
}

/// The corpus is part of CI's checkout; a developer without it is told so loudly.
fn load_expected() -> Option<BTreeMap<String, Vec<Expected>>> {
    let path = corpus_dir().join("expected.tsv");
    let Ok(text) = std::fs::read(&path) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have the corpus at {}",
            path.display()
        );
        eprintln!(
            "corpus not found at {}: corpus tests skipped",
            path.display()
        );
        return None;
    };
    let mut files: BTreeMap<String, Vec<Expected>> = BTreeMap::new();
    // Fields are quoted CSV-style where they hold quotes, so read it with a CSV reader.
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b'\t')
        .from_reader(text.as_slice());
    for row in reader.records() {
        let row = row.expect("expected.tsv is readable");
        let f: Vec<&str> = row.iter().collect();
        assert!(f.len() >= 11, "short expected.tsv row: {row:?}");
        files.entry(f[0].to_owned()).or_default().push(Expected {
            idx: f[1].parse().unwrap(),
            kind: f[2].to_owned(),
            status: f[3].to_owned(),
            org: f[4].to_owned(),
            report_id: f[5].to_owned(),
            domain: f[6].to_ascii_lowercase(),
            records: f[9].parse().unwrap_or(0),
            messages: f[10].parse().unwrap_or(0),
        });
    }
    Some(files)
}

#[derive(Default, Debug)]
struct Tally {
    files: usize,
    ok_expected: usize,
    ok_matched: usize,
    others_recovered: usize,
    others_rejected: usize,
    mismatches: Vec<String>,
}

#[test]
fn corpus_aggregate_reports_match_reference_counts() {
    let Some(expected) = load_expected() else {
        return;
    };
    let limits = Limits::default();
    let tallies: Vec<Tally> = expected
        .par_iter()
        .map(|(file, rows)| {
            let mut t = Tally {
                files: 1,
                ..Tally::default()
            };
            let bytes = std::fs::read(corpus_dir().join(file)).unwrap();
            let got = extract(&bytes, &limits);
            for row in rows {
                if row.kind == "aggregate" && row.status == "ok" {
                    t.ok_expected += 1;
                    let found = got.reports.iter().find(|r| {
                        r.item.metadata.report_id == row.report_id
                            && r.item.policy.domain == row.domain
                            && r.item.metadata.org_name == row.org
                    });
                    match found {
                        Some(r)
                            if r.item.records.len() as u64 == row.records
                                && r.item.message_count() == row.messages =>
                        {
                            t.ok_matched += 1
                        }
                        Some(r) => t.mismatches.push(format!(
                            "{file}#{}: {} records / {} messages, expected {} / {}",
                            row.idx,
                            r.item.records.len(),
                            r.item.message_count(),
                            row.records,
                            row.messages
                        )),
                        None => t.mismatches.push(format!(
                            "{file}#{}: report {:?} not found; failures: {:?}",
                            row.idx, row.report_id, got.failures
                        )),
                    }
                }
            }
            if rows
                .iter()
                .all(|r| !(r.kind == "aggregate" && r.status == "ok"))
            {
                if !got.reports.is_empty() {
                    t.others_recovered += 1;
                } else if got.failures.iter().all(|f| !f.item.reason.is_empty())
                    && !got.failures.is_empty()
                {
                    t.others_rejected += 1;
                } else {
                    t.mismatches
                        .push(format!("{file}: neither a report nor a reason came out"));
                }
            }
            t
        })
        .collect();
    let mut total = Tally::default();
    for t in tallies {
        total.files += t.files;
        total.ok_expected += t.ok_expected;
        total.ok_matched += t.ok_matched;
        total.others_recovered += t.others_recovered;
        total.others_rejected += t.others_rejected;
        total.mismatches.extend(t.mismatches);
    }
    eprintln!(
        "corpus: {} files; {}/{} reference-ok aggregate reports matched exactly; \
         other files: {} recovered, {} rejected with a reason",
        total.files,
        total.ok_matched,
        total.ok_expected,
        total.others_recovered,
        total.others_rejected
    );
    assert!(
        total.mismatches.is_empty(),
        "{} mismatches:\n{}",
        total.mismatches.len(),
        total.mismatches.join("\n")
    );
    assert_eq!(total.ok_matched, total.ok_expected);
}
