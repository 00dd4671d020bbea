//! Over the shared corpus of real reports (`../shared/corpus/`, present in CI): every report that the
//! independent reference parser read (`expected.tsv`, status `ok`) must come out the same: aggregate
//! reports with exactly its record count and message sum, failure reports with its feedback type,
//! domain and source IP, SMTP TLS reports with its policy count and session counts. Every other file
//! must be recovered or rejected with a reason.

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
    /// JSON: `feedback_type`, `source_ip` (failure); `successful`, `failed` (tlsrpt).
    extra: serde_json::Value,
}

/// `../shared/corpus` beside the checkout, or `CORPUS_DIR` (for a checkout elsewhere, e.g. a git
/// worktree).
pub(crate) fn corpus_dir() -> PathBuf {
    match std::env::var_os("CORPUS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"),
    }
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
            extra: f
                .get(11)
                .and_then(|e| serde_json::from_str(e).ok())
                .unwrap_or_default(),
        });
    }
    Some(files)
}

#[derive(Default, Debug)]
struct Tally {
    files: usize,
    ok_expected: usize,
    ok_matched: usize,
    failure_expected: usize,
    failure_matched: usize,
    tls_expected: usize,
    tls_matched: usize,
    others_recovered: usize,
    others_rejected: usize,
    mismatches: Vec<String>,
}

#[test]
fn corpus_reports_match_reference_counts() {
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
            for row in rows.iter().filter(|r| r.status == "ok") {
                match row.kind.as_str() {
                    "failure" => {
                        t.failure_expected += 1;
                        if got.failure_reports.iter().any(|f| failure_matches(&f.item, row)) {
                            t.failure_matched += 1;
                        } else {
                            t.mismatches.push(format!(
                                "{file}#{}: no failure report like {}; got {:?}; failures {:?}",
                                row.idx, row.extra, got.failure_reports, got.failures
                            ));
                        }
                    }
                    "tlsrpt" => {
                        t.tls_expected += 1;
                        if got.tls_reports.iter().any(|r| tls_matches(&r.item, row)) {
                            t.tls_matched += 1;
                        } else {
                            t.mismatches.push(format!(
                                "{file}#{}: no TLS report {:?} with {} policies, {}; got {:?}; failures {:?}",
                                row.idx, row.report_id, row.records, row.extra, got.tls_reports, got.failures
                            ));
                        }
                    }
                    _ => {}
                }
            }
            if rows.iter().all(|r| r.status != "ok") {
                if !got.reports.is_empty()
                    || !got.failure_reports.is_empty()
                    || !got.tls_reports.is_empty()
                {
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
        total.failure_expected += t.failure_expected;
        total.failure_matched += t.failure_matched;
        total.tls_expected += t.tls_expected;
        total.tls_matched += t.tls_matched;
        total.others_recovered += t.others_recovered;
        total.others_rejected += t.others_rejected;
        total.mismatches.extend(t.mismatches);
    }
    eprintln!(
        "corpus: {} files; {}/{} reference-ok aggregate reports matched exactly; \
         {}/{} failure reports and {}/{} SMTP TLS reports matched; \
         other files: {} recovered, {} rejected with a reason",
        total.files,
        total.ok_matched,
        total.ok_expected,
        total.failure_matched,
        total.failure_expected,
        total.tls_matched,
        total.tls_expected,
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
    assert_eq!(total.failure_matched, total.failure_expected);
    assert_eq!(total.tls_matched, total.tls_expected);
}

/// Same feedback type, first reported domain and source IP (the reference keeps the IP as written,
/// `192.0.2.1 (host)` included; we keep the address).
fn failure_matches(f: &dmarc_warden::model::FailureReport, row: &Expected) -> bool {
    let extra = |key: &str| row.extra[key].as_str().unwrap_or_default().to_owned();
    let ip = extra("source_ip");
    let ip = ip.split_whitespace().next().unwrap_or_default();
    f.feedback_type == extra("feedback_type")
        && f.reported_domains.first().map_or("", String::as_str) == row.domain
        && f.source_ip.as_deref().unwrap_or_default() == ip
        && f.auth_failure.as_deref().unwrap_or_default() == extra("auth_failure")
}

/// Same organisation, report id, number of policies and session counts.
fn tls_matches(r: &dmarc_warden::model::TlsReport, row: &Expected) -> bool {
    let successful: u64 = r.policies.iter().map(|p| p.successful_sessions).sum();
    let failed: u64 = r.policies.iter().map(|p| p.failed_sessions).sum();
    r.org_name == row.org
        && r.report_id == row.report_id
        && r.policies.len() as u64 == row.records
        && successful + failed == row.messages
        && row.extra["successful"].as_u64() == Some(successful)
        && row.extra["failed"].as_u64() == Some(failed)
}
