//! Rollups (issue 20): every answer computed from the rollups is the answer computed from the
//! records (`DMARC_WARDEN_FROM_RECORDS=1`, the hidden switch to the record-based readers), on
//! both backends: over the samples, the bad fixtures and the shared corpus, over generated
//! reports, after copies replaced by more complete ones (with another period), a reprocess of
//! kept rejects and a second ingest of everything; an existing database is back-filled by the
//! migration; and a rollup that is off by one message is noticed.

use std::path::Path;

use crate::cli::{Env, on_both_backends, s};
use crate::imap::corpus::{Rng, report_xml, write_corpus};

/// The answers compared: every listing that reads rollups, `senders` and `advise` over several
/// windows, the digest and the HTML report (the dashboard's pages).
const QUERIES: &[&[&str]] = &[
    &["domains", "--format", "json"],
    &[
        "domains",
        "--since",
        "2025-01-01",
        "--until",
        "2026-06-01",
        "--format",
        "json",
    ],
    &["sources", "--format", "json"],
    &["sources", "--since", "2024-06-01", "--format", "json"],
    &["sources", "--domain", "example.org", "--format", "json"],
    &["senders", "--days", "0", "--format", "json"],
    &["senders", "--days", "14", "--format", "json"],
    &["senders", "--days", "365", "--format", "json"],
    &[
        "senders",
        "--domain",
        "example.org",
        "--days",
        "90",
        "--format",
        "json",
    ],
    &["advise", "--offline", "--days", "0", "--format", "json"],
    &["advise", "--offline", "--days", "30", "--format", "json"],
    &["advise", "--offline", "--days", "365", "--format", "json"],
    &["digest", "--days", "7"],
];

const FROM_RECORDS: (&str, &str) = ("DMARC_WARDEN_FROM_RECORDS", "1");

/// Every answer of [`QUERIES`] and the HTML report, from the rollups or from the records.
fn answers(env: &Env, from_records: bool) -> Vec<String> {
    let vars: &[(&str, &str)] = if from_records { &[FROM_RECORDS] } else { &[] };
    let mut out: Vec<String> = QUERIES
        .iter()
        .map(|args| {
            let o = env.run_with_env(args, vars);
            assert_eq!(o.code, 0, "{args:?}: {}", o.stderr);
            o.stdout
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    let o = env.run_with_env(&["report", "--html", s(&html)], vars);
    assert_eq!(o.code, 0, "report --html: {}", o.stderr);
    // Without the minute it was written in.
    let html = std::fs::read_to_string(&html).unwrap();
    let html = match html.split_once(" · generated ") {
        Some((head, tail)) => format!("{head}{}", &tail[tail.find(" UTC").unwrap_or(0)..]),
        None => html,
    };
    out.push(html);
    out
}

/// The first answer that differs between the rollups and the records, if any.
fn difference(env: &Env) -> Option<String> {
    let (rolled, recorded) = (answers(env, false), answers(env, true));
    let names = QUERIES
        .iter()
        .map(|q| q.join(" "))
        .chain(["report --html".to_owned()]);
    for ((a, b), name) in rolled.iter().zip(&recorded).zip(names) {
        if a != b {
            let at = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
            let near = |t: &str| -> String {
                let bytes = t.as_bytes();
                let part =
                    &bytes[at.saturating_sub(150).min(bytes.len())..(at + 150).min(bytes.len())];
                String::from_utf8_lossy(part).into_owned()
            };
            return Some(format!(
                "{name}: from rollups and from records differ at byte {at}:\n{}\n{}",
                near(a),
                near(b)
            ));
        }
    }
    None
}

#[track_caller]
fn same(env: &Env, what: &str) {
    if let Some(d) = difference(env) {
        panic!("{what}: {d}");
    }
}

fn ingest(env: &Env, paths: &[&Path], extra: &[&str]) {
    let mut args = vec!["ingest", "--quiet", "--threads", "2"];
    args.extend(extra);
    args.extend(paths.iter().map(|p| s(p)));
    let out = env.run(&args);
    assert!(out.code <= 1, "{}", out.stderr);
}

on_both_backends! {
    fn rollups_answer_as_the_records_over_the_corpus_and_generated_reports(backend: Backend) {
        let env = Env::on(backend);
        let inputs = crate::tables::inputs();
        let inputs: Vec<&Path> = inputs.iter().map(|p| p.as_path()).collect();
        ingest(&env, &inputs, &[]);
        same(&env, "samples and corpus");
        let dir = tempfile::tempdir().unwrap();
        write_corpus(dir.path(), 300).unwrap();
        ingest(&env, &[dir.path()], &[]);
        same(&env, "with generated reports");
    }
}

/// A generated report `n` with `records` records and its period ending `shift` seconds later:
/// copies with fewer records have the first records of the whole one.
fn generated(n: usize, records: usize, shift: i64) -> String {
    let xml = report_xml(&mut Rng::new(n as u64 + 1), n, records);
    if shift == 0 {
        return xml;
    }
    let (head, rest) = xml.split_once("<end>").unwrap();
    let (end, tail) = rest.split_once("</end>").unwrap();
    let end: i64 = end.trim().parse().unwrap();
    format!("{head}<end>{}</end>{tail}", end + shift)
}

on_both_backends! {
    fn replacements_reprocess_and_a_second_ingest_keep_the_rollups_exact(backend: Backend) {
        let env = Env::on(backend);
        let dir = tempfile::tempdir().unwrap();
        let (partial, whole, big) = (
            dir.path().join("partial"),
            dir.path().join("whole"),
            dir.path().join("big"),
        );
        for d in [&partial, &whole, &big] {
            std::fs::create_dir(d).unwrap();
        }
        // Reports 0..40: first copies with 2 records, half of them over another period (an hour
        // longer); then the whole copies (8 records), which replace them.
        for n in 0..40 {
            let shift = if n % 2 == 0 { 3600 } else { 0 };
            std::fs::write(partial.join(format!("{n}.xml")), generated(n, 2, shift)).unwrap();
            std::fs::write(whole.join(format!("{n}.xml")), generated(n, 8, 0)).unwrap();
        }
        ingest(&env, &[&partial], &[]);
        same(&env, "partial copies");
        ingest(&env, &[&whole, &partial], &[]);
        same(&env, "partial copies replaced by whole ones");
        // Reports too large for the first ingest are kept as rejects; reprocess stores them.
        for n in 40..50 {
            std::fs::write(big.join(format!("{n}.xml")), generated(n, 60, 0)).unwrap();
        }
        ingest(&env, &[&big], &["--max-payload-size", "4KiB"]);
        let out = env.run(&["reprocess"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(
            env.run(&["reports", "--format", "json"]).json().len(),
            50,
            "the rejects were stored by reprocess"
        );
        same(&env, "after reprocess");
        // Everything once more: nothing changes.
        let before = answers(&env, false);
        ingest(&env, &[&whole, &partial, &big], &[]);
        assert!(before == answers(&env, false), "a second ingest changed an answer");
        same(&env, "after a second ingest");
    }
}

/// A database made before the rollups (their tables dropped, the schema version set back) gets
/// them from its records on first use; a rollup row off by one message is noticed.
#[test]
fn an_existing_database_is_back_filled_and_a_wrong_rollup_is_noticed() {
    let env = Env::new();
    let inputs = crate::tables::inputs();
    let inputs: Vec<&Path> = inputs.iter().map(|p| p.as_path()).collect();
    ingest(&env, &inputs, &[]);
    let want = answers(&env, true);
    {
        let conn = rusqlite::Connection::open(env.db()).unwrap();
        conn.execute_batch(
            "DROP TABLE rollup_domains; DROP TABLE rollup_evidence; DROP TABLE rollup_sources;
             PRAGMA user_version = 7;",
        )
        .unwrap();
    }
    assert!(
        answers(&env, false) == want,
        "the back-filled rollups answer as the records"
    );
    {
        let conn = rusqlite::Connection::open(env.db()).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 9, "every migration since 7 applied");
        conn.execute(
            "UPDATE rollup_evidence SET messages = messages + 1
             WHERE (domain, date_end, date_begin, org_name, source_ip) IN
                (SELECT domain, date_end, date_begin, org_name, source_ip FROM rollup_evidence
                 ORDER BY messages DESC LIMIT 1)",
            [],
        )
        .unwrap();
    }
    let found = difference(&env).expect("a wrong rollup is noticed");
    assert!(
        found.contains("from rollups and from records differ"),
        "{found}"
    );
}
