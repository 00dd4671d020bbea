//! Every file under `sample-reports/` against its golden JSON, `tests/golden/<same path>.json`: what the
//! real input path (fetch, then unpack and parse) makes of it, reports and failures alike. The goldens
//! live in a mirror tree, not beside the samples, so that `ingest sample-reports/` reads only reports.
//! Regenerate after an intended change with `UPDATE_GOLDEN=1 scripts/test golden` and review the diff.

use std::path::{Path, PathBuf};

use dmarc_warden::fetch::{Input, Inputs, read_file};
use dmarc_warden::model::Extracted;
use dmarc_warden::pipeline::extract;
use dmarc_warden::unpack::Limits;

/// Every file below `root`, sorted by path.
pub(crate) fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn sample_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-reports");
    let mut files = files_under(&root);
    files.retain(|p| !p.ends_with("README.md"));
    files
}

/// What the pipeline extracts from one file: one entry per input (an mbox gives several).
fn extract_file(path: &Path) -> Vec<Extracted> {
    let limits = Limits::default();
    Inputs::new(vec![path.to_owned()], limits.max_message_size)
        .map(|input| match input {
            Input::File(p) => extract(&read_file(&p, limits.max_message_size).unwrap(), &limits),
            Input::Bytes { data, .. } => extract(&data, &limits),
            Input::Unreadable { origin, reason } => panic!("{origin}: {reason}"),
        })
        .collect()
}

#[test]
fn sample_reports_match_golden_json() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let files = sample_files();
    assert!(
        files.len() >= 25,
        "sample-reports/ looks incomplete: {files:?}"
    );
    let mut stale = Vec::new();
    for file in &files {
        let got = serde_json::to_string_pretty(&extract_file(file)).unwrap() + "\n";
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let relative = file.strip_prefix(manifest).unwrap();
        let golden = manifest
            .join("tests/golden")
            .join(format!("{}.json", relative.display()));
        if update {
            std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
            std::fs::write(&golden, &got).unwrap();
            continue;
        }
        match std::fs::read_to_string(&golden) {
            Ok(want) if want == got => {}
            Ok(_) => stale.push(format!(
                "{} differs from {}",
                file.display(),
                golden.display()
            )),
            Err(_) => stale.push(format!("{} has no golden file", file.display())),
        }
    }
    assert!(
        stale.is_empty(),
        "{}\n(re-run with UPDATE_GOLDEN=1 if the change is intended, and review the diff)",
        stale.join("\n")
    );
}

/// Each reporter's sample must yield at least one report with records, and each `bad/` sample must
/// yield a failure and no report: the golden files cannot silently bless a regression of that kind.
#[test]
fn sample_reports_land_and_bad_ones_fail() {
    for file in sample_files() {
        let results = extract_file(&file);
        let reports: usize = results
            .iter()
            .map(|e| e.reports.len() + e.failure_reports.len() + e.tls_reports.len())
            .sum();
        let failures: usize = results.iter().map(|e| e.failures.len()).sum();
        let bad = file.parent().unwrap().ends_with("bad");
        if bad {
            assert!(
                reports == 0 && failures > 0,
                "{} should be rejected",
                file.display()
            );
        } else {
            assert!(
                reports > 0 && failures == 0,
                "{} should land whole: {results:?}",
                file.display()
            );
        }
    }
}
