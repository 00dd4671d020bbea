//! The real `dmarc-warden` executable, run as a user would, through a small builder.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use tempfile::TempDir;

pub(crate) fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-reports")
}

/// Which database a test's commands use: the tests that matter for a command run on both
/// ([`on_both_backends!`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    /// A fresh database of the test's own on the server of `postgres::support`, reached over TLS
    /// as the password-protected role, the password from a file.
    Postgres,
}

/// A test written once, run on each backend: `NAME::sqlite` and `NAME::postgres`.
macro_rules! on_both_backends {
    ($(#[$meta:meta])* fn $name:ident($backend:ident: Backend) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use crate::cli::Backend;

            fn run($backend: Backend) $body

            #[test]
            fn sqlite() {
                run(Backend::Sqlite)
            }

            #[test]
            fn postgres() {
                run(Backend::Postgres)
            }
        }
    };
}
pub(crate) use on_both_backends;

/// A throwaway database (an SQLite file in a temporary directory, or a PostgreSQL database of its
/// own); each `run` executes the binary against it.
pub(crate) struct Env {
    pub(crate) dir: TempDir,
    pg: Option<crate::postgres::support::TestDb>,
}

pub(crate) struct Out {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Out {
    pub(crate) fn json(&self) -> Vec<Value> {
        serde_json::from_str::<Value>(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
            .as_array()
            .expect("a JSON array")
            .clone()
    }
}

impl Env {
    pub(crate) fn new() -> Env {
        Env::on(Backend::Sqlite)
    }

    pub(crate) fn on(backend: Backend) -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
            pg: (backend == Backend::Postgres)
                .then(|| crate::postgres::support::server().fresh_db()),
        }
    }

    /// The PostgreSQL database, on that backend.
    pub(crate) fn pg(&self) -> Option<&crate::postgres::support::TestDb> {
        self.pg.as_ref()
    }

    pub(crate) fn backend(&self) -> Backend {
        match self.pg {
            Some(_) => Backend::Postgres,
            None => Backend::Sqlite,
        }
    }

    /// The SQLite file (the tests on PostgreSQL do not use it).
    pub(crate) fn db(&self) -> PathBuf {
        self.dir.path().join("warden.db")
    }

    /// What `--db` / `DMARC_WARDEN_DB` names: the file, or the database's URL.
    pub(crate) fn location(&self) -> String {
        match &self.pg {
            Some(pg) => pg.url(),
            None => s(&self.db()).to_owned(),
        }
    }

    /// The records stored, and of them those whose report is not stored: none should be, as
    /// records have no foreign key on either backend and go with their report by the statements
    /// that delete reports (a replaced copy, prune).
    pub(crate) fn records_and_orphans(&self) -> (i64, i64) {
        const SQL: &str = "SELECT count(*), count(*) FILTER (WHERE NOT EXISTS
                               (SELECT 1 FROM reports r WHERE r.id = c.report))
                           FROM records c";
        match &self.pg {
            Some(pg) => {
                let row = crate::postgres::support::server()
                    .admin_to(&pg.name)
                    .query_one(SQL, &[])
                    .unwrap();
                (row.get(0), row.get(1))
            }
            // SQLite keeps a report's records as one block: counted as the store reads them,
            // and an orphan is a block without its report.
            None => {
                let store = dmarc_warden::store::Store::open_read_only(&self.db()).unwrap();
                let counts = store.table_counts().unwrap();
                let records = counts.iter().find(|(t, _)| *t == "records").unwrap().1;
                let orphans: i64 = rusqlite::Connection::open(self.db())
                    .unwrap()
                    .query_row(
                        "SELECT count(*) FROM record_blocks b
                         WHERE NOT EXISTS (SELECT 1 FROM reports r WHERE r.id = b.report)",
                        [],
                        |r| r.get(0),
                    )
                    .unwrap();
                (records as i64, orphans)
            }
        }
    }

    /// Whether a run has created the database (a PostgreSQL database is made by the test).
    pub(crate) fn exists(&self) -> bool {
        self.pg.is_some() || self.db().exists()
    }

    pub(crate) fn run(&self, args: &[&str]) -> Out {
        self.run_with_stdin(args, None)
    }

    /// The command, ready to run against this database; settings that the caller's environment
    /// might hold are removed.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_dmarc-warden"));
        command.args(args).env("DMARC_WARDEN_DB", self.location());
        for (name, _) in std::env::vars() {
            if name.starts_with("DMARC_WARDEN_") && name != "DMARC_WARDEN_DB" {
                command.env_remove(name);
            }
        }
        if self.pg.is_some() {
            command.env(
                "DMARC_WARDEN_DB_PASSWORD_FILE",
                &crate::postgres::support::server().password_file,
            );
        }
        command
    }

    pub(crate) fn run_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        let mut command = self.command(args);
        command.envs(env.iter().copied());
        output(command.stdin(Stdio::null()))
    }

    fn run_with_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Out {
        let mut child = self
            .command(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(data) = stdin {
            child.stdin.take().unwrap().write_all(data).unwrap();
        }
        finish(child)
    }
}

/// Runs `command` (from [`Env::command`]) to the end.
pub(crate) fn output_of(command: &mut Command) -> Out {
    output(command.stdin(Stdio::null()))
}

/// A count as the tables write it: `12,345`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn output(command: &mut Command) -> Out {
    finish(
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

pub(crate) fn finish(child: std::process::Child) -> Out {
    let out = child.wait_with_output().unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub(crate) fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The inputs under `tests/fixtures/bad/`, each rejected for its own reason.
pub(crate) fn bad_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad")
}

#[test]
fn ingest_samples_then_query_every_listing() {
    let env = Env::new();
    let out = env.run(&["ingest", s(&samples())]);
    // The README's first command: every sample is stored, nothing rejected.
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "");
    assert!(
        out.stdout.starts_with(
            "ingest: 206 inputs, 208 reports new, 0 duplicates, 0 rejected, 615 records \
             (new: 7 failure, 4 TLS reports)"
        ),
        "{}",
        out.stdout
    );

    let reports = env.run(&["reports", "--format", "json"]).json();
    assert_eq!(reports.len(), 197);
    let google = reports
        .iter()
        .find(|r| r["report_id"] == "13546938129364318437")
        .unwrap();
    assert_eq!(google["org_name"], "google.com");
    assert_eq!(google["report_id"], "13546938129364318437");
    assert_eq!(google["domain"], "example.org");
    assert_eq!(google["begin"], "2026-11-01T00:00:00Z");
    assert_eq!(google["end"], "2026-11-01T23:59:59Z");
    assert_eq!(google["records"], 4);
    assert_eq!(google["messages"], 456);

    // The per-reporter samples, all of 2026-11-01 (the story begins the next day).
    let sources = env
        .run(&[
            "sources",
            "--domain",
            "EXAMPLE.org",
            "--until",
            "2026-11-02",
            "--format",
            "json",
        ])
        .json();
    let top = &sources[0];
    assert_eq!(top["source_ip"], "209.85.220.41");
    assert_eq!(top["messages"], 473);
    assert_eq!(top["dmarc_pass"], 473);
    assert_eq!(top["dkim_aligned"], 473);
    assert_eq!(top["spf_aligned"], 473);
    assert_eq!(top["header_from"], "example.org");
    let spoof = sources
        .iter()
        .find(|r| r["source_ip"] == "185.220.101.4")
        .unwrap();
    assert_eq!(
        (spoof["dmarc_pass"].as_u64(), spoof["rejected"].as_u64()),
        (Some(0), Some(14))
    );
    // sample-reports/failure/fields-as-part-headers.eml is about this source.
    assert_eq!(spoof["failure_reports"], 1);

    let domains = env.run(&["domains", "--format", "json"]).json();
    let d = domains
        .iter()
        .find(|d| d["domain"] == "example.org")
        .unwrap();
    assert_eq!(
        (&d["reports"], &d["messages"], &d["dmarc_pass"], &d["p"]),
        (&173.into(), &23246.into(), &17892.into(), &"none".into())
    );
    assert_eq!(d["last"], "2026-11-29T23:59:59Z");

    let csv = env.run(&[
        "sources",
        "--format",
        "csv",
        "--limit",
        "1",
        "--until",
        "2026-11-02",
    ]);
    let mut lines = csv.stdout.lines();
    assert_eq!(
        lines.next(),
        Some(
            "domain,source_ip,header_from,messages,dmarc_pass,dkim_aligned,spf_aligned,quarantined,rejected,reports,failure_reports"
        )
    );
    assert_eq!(
        lines.next(),
        Some("example.org,209.85.220.41,example.org,473,473,473,473,0,0,2,0")
    );

    let table = env.run(&["domains"]);
    assert_eq!(table.code, 0);
    assert!(
        table.stdout.starts_with("DOMAIN") && table.stdout.contains("example.org"),
        "{}",
        table.stdout
    );

    assert_eq!(env.run(&["rejects", "--format", "json"]).json().len(), 0);
}

/// The story in `sample-reports/story/` (written by `scripts/gen-samples.py`): example.org at
/// p=none holds because SendGrid signs with its own domain; its forwarder and mailing list are
/// told apart from spoofing; example.net, parked at p=reject, is at target.
#[test]
fn the_samples_tell_a_story_senders_and_advice() {
    let env = Env::new();
    assert_eq!(env.run(&["ingest", s(&samples())]).code, 0);
    let senders = env
        .run(&["senders", "--domain", "example.org", "--format", "json"])
        .json();
    let class = |name: &str| {
        let sender = senders.iter().find(|x| x["sender"] == name);
        sender.map(|x| {
            (
                x["class"].as_str().unwrap().to_owned(),
                x["messages"].as_u64().unwrap(),
            )
        })
    };
    assert_eq!(class("example.org"), Some(("aligned".into(), 8559)));
    assert_eq!(class("SendGrid"), Some(("needs_fixing".into(), 2257)));
    assert_eq!(class("alumni.example"), Some(("forwarded".into(), 114)));
    assert_eq!(class("community.example"), Some(("forwarded".into(), 153)));
    assert_eq!(class("unidentified"), Some(("unauthorised".into(), 118)));

    let advice = env.run(&["advise", "--offline", "--format", "json"]).json();
    let org = advice
        .iter()
        .find(|a| a["domain"] == "example.org")
        .unwrap();
    assert_eq!(org["action"], "hold", "{org}");
    assert_eq!(org["blockers"][0]["sender"], "SendGrid");
    assert_eq!(org["blockers"][0]["messages"], 2257);
    assert_eq!(org["evidence"]["reporters"], 7);
    let net = advice
        .iter()
        .find(|a| a["domain"] == "example.net")
        .unwrap();
    assert_eq!(net["current"]["p"], "reject");

    let text = env
        .run(&["advise", "--offline", "--domain", "example.org"])
        .stdout;
    assert!(text.starts_with("example.org: hold"), "{text}");
    assert!(
        text.contains("  blocker: SendGrid (2257 messages)"),
        "{text}"
    );
}

/// The inputs rejected on purpose: each is named with its reason, kept, and the run exits 1.
#[test]
fn bad_inputs_are_rejected_each_with_its_reason() {
    let env = Env::new();
    let out = env.run(&["ingest", s(&bad_fixtures())]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("ingest: 8 inputs, 0 reports new, 0 duplicates, 8 rejected, 0 records"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr
            .contains("bad/invalid-count.xml: record 1: invalid <count> \"not-a-number\""),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("raise --max-payload-size"),
        "{}",
        out.stderr
    );
    let rejects = env.run(&["rejects", "--format", "json"]).json();
    assert_eq!(rejects.len(), 8);
    assert!(
        rejects
            .iter()
            .all(|r| r["reason"].as_str().is_some_and(|s| !s.is_empty()))
    );
}

#[test]
fn ingest_is_idempotent() {
    let env = Env::new();
    let dir = samples().join("quirks");
    assert_eq!(env.run(&["ingest", s(&dir)]).code, 0);
    let again = env.run(&["ingest", s(&dir), s(&dir.join("several-reports.zip"))]);
    assert_eq!(again.code, 0);
    assert!(
        again
            .stdout
            .starts_with("ingest: 18 inputs, 0 reports new, 22 duplicates, 0 rejected, 0 records"),
        "{}",
        again.stdout
    );
    assert_eq!(env.run(&["reports", "--format", "json"]).json().len(), 19);
}

#[test]
fn stdin_mbox_and_global_db_option_after_subcommand() {
    let env = Env::new();
    let gz =
        std::fs::read(samples().join("yahoo/yahoo.com!example.org!1793491200!1793577599.xml.gz"))
            .unwrap();
    let out = env.run_with_stdin(&["ingest", "-"], Some(&gz));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("1 reports new"), "{}", out.stdout);

    let mbox = std::fs::read(samples().join("quirks/two-messages.mbox")).unwrap();
    let out = env.run_with_stdin(&["ingest", "-", "--quiet"], Some(&mbox));
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{}", out.stderr);

    // `--db` after the subcommand names another database; a listing does not create it.
    let other = env.dir.path().join("other.db");
    let out = env.run(&["reports", "--format", "json", "--db", s(&other)]);
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert_eq!(
        out.stderr,
        format!(
            "dmarc-warden: error: database {} does not exist (`dmarc-warden ingest` or \
             `dmarc-warden fetch` creates it)\n",
            other.display()
        )
    );
    assert!(!other.exists());
    let ids: Vec<Value> = env
        .run(&["reports", "--format", "json"])
        .json()
        .iter()
        .map(|r| r["report_id"].clone())
        .collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    let origins = env.run(&["reports", "--format", "csv"]).stdout;
    assert!(
        origins.contains(",-#1") && origins.contains(",-#2"),
        "{origins}"
    );
}

#[test]
fn maildir_reads_cur_and_new_only() {
    let env = Env::new();
    let md = env.dir.path().join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(md.join(sub)).unwrap();
    }
    let mail = std::fs::read(samples().join("google/report.eml")).unwrap();
    std::fs::write(md.join("new/1700000000.M1P1.host"), &mail).unwrap();
    std::fs::write(
        md.join("cur/1700000001.M2P1.host:2,S"),
        std::fs::read(samples().join("microsoft/report.eml")).unwrap(),
    )
    .unwrap();
    // A message still being delivered, and the server's own bookkeeping: neither is read.
    std::fs::write(md.join("tmp/1700000002.M3P1.host"), b"half a message").unwrap();
    std::fs::write(md.join("dovecot-uidlist"), b"3 V1700000000 N3\n").unwrap();
    let out = env.run(&["ingest", s(&md)]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with("ingest: 2 inputs, 2 reports new"),
        "{}",
        out.stdout
    );
}

#[test]
fn reject_is_kept_and_reprocess_recovers_it_with_a_higher_limit() {
    let env = Env::new();
    let file = samples().join("google/report.eml");
    let out = env.run(&["ingest", "--max-payload-size", "1KiB", s(&file)]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("exceeds the limit of 1024 bytes (raise --max-payload-size"),
        "{}",
        out.stderr
    );
    let rejects = env.run(&["rejects", "--format", "json"]).json();
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0]["origin"], s(&file));

    // Same limit: still rejected, kept once, the attempt counted, first_seen kept.
    let first_seen = rejects[0]["first_seen"].clone();
    assert_eq!(
        env.run(&["reprocess", "--max-payload-size", "1KiB"]).code,
        1
    );
    let rejects = env.run(&["rejects", "--format", "json"]).json();
    assert_eq!(rejects[0]["first_seen"], first_seen);
    assert_eq!(
        (rejects.len(), rejects[0]["attempts"].as_u64()),
        (1, Some(2))
    );

    let out = env.run(&["reprocess"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("1 reports new") && out.stdout.contains("1 recovered"),
        "{}",
        out.stdout
    );
    assert_eq!(env.run(&["rejects", "--format", "json"]).json().len(), 0);
    assert_eq!(env.run(&["reports", "--format", "json"]).json().len(), 1);
}

#[test]
fn fatal_errors_exit_2_with_one_clear_line() {
    let env = Env::new();
    let out = env.run(&["ingest"]);
    assert_eq!(out.code, 2);
    let out = env.run(&["sources", "--since", "last week"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("--since \"last week\": expected a date"),
        "{}",
        out.stderr
    );
    // A database path that is a directory cannot be opened.
    let out = env.run(&["domains", "--db", s(env.dir.path())]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.starts_with("dmarc-warden: error: database "),
        "{}",
        out.stderr
    );
    // Nor by `ingest`, which opens it beside its parsing threads: the same error, and the
    // inputs read meanwhile are neither stored nor rejected.
    let samples = samples();
    let out = env.run(&["ingest", "--db", s(env.dir.path()), s(&samples)]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.starts_with("dmarc-warden: error: database ")
            && !out.stderr.contains("rejected"),
        "{}",
        out.stderr
    );
    let out = env.run(&["ingest", "/nonexistent/report.xml"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("rejected /nonexistent/report.xml: cannot read"),
        "{}",
        out.stderr
    );
}

#[test]
fn help_teaches() {
    let out = Env::new().run(&["ingest", "--help"]);
    assert_eq!(out.code, 0);
    for needle in [
        "DMARC_WARDEN_MAX_PAYLOAD_SIZE",
        "--threads",
        "duplicate",
        "Maildir",
    ] {
        assert!(
            out.stdout.contains(needle),
            "--help lacks {needle}: {}",
            out.stdout
        );
    }
}

/// Issue 3: `fetch --help` says where the password comes from, and never shows it.
#[test]
fn fetch_help_names_password_sources_but_never_the_password() {
    let out = Env::new().run_with_env(
        &["fetch", "--help"],
        &[("DMARC_WARDEN_IMAP_PASSWORD", "hunter2-secret")],
    );
    assert_eq!(out.code, 0);
    for needle in [
        "DMARC_WARDEN_IMAP_PASSWORD",
        "DMARC_WARDEN_IMAP_HOST",
        "--archive",
        "--watch",
    ] {
        assert!(out.stdout.contains(needle), "--help lacks {needle}");
    }
    assert!(!out.stdout.contains("hunter2-secret"), "{}", out.stdout);
    assert!(!out.stdout.contains("--password"), "{}", out.stdout);
}

/// Issue 4: failure (ARF) and SMTP TLS reports from `sample-reports/failure/` and `tls/` are stored
/// once, listed with their documented keys, and filtered.
#[test]
fn issue_4_failure_and_tls_reports_are_stored_once_and_listed() {
    let env = Env::new();
    let (failure, tls) = (samples().join("failure"), samples().join("tls"));
    let args = ["ingest", "--redact", s(&failure), s(&tls)];
    let out = env.run(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains(
            "11 reports new, 0 duplicates, 0 rejected, 0 records (new: 7 failure, 4 TLS reports)"
        ),
        "{}",
        out.stdout
    );
    let again = env.run(&args);
    assert!(
        again.stdout.contains("0 reports new, 11 duplicates"),
        "{}",
        again.stdout
    );

    let failures = env.run(&["failures", "--format", "json"]).json();
    assert_eq!(failures.len(), 7);
    let newest = &failures[0];
    for key in [
        "feedback_type",
        "source_ip",
        "reported_domain",
        "auth_failure",
        "arrival_date",
    ] {
        assert!(newest.get(key).is_some(), "no {key} in {newest}");
    }
    assert_eq!(newest["arrival_date"], "2026-11-09T06:06:59Z");
    let types: Vec<&str> = failures
        .iter()
        .map(|f| f["feedback_type"].as_str().unwrap())
        .collect();
    assert_eq!(types.iter().filter(|t| **t == "abuse").count(), 1);
    // --redact: the local part of the reported message's addresses is a hash, the domain stays.
    let billing = failures
        .iter()
        .find(|f| f["source_ip"] == "203.0.113.77")
        .unwrap();
    let from = billing["original_from"].as_str().unwrap();
    assert!(
        from.starts_with("Example Billing <h-") && from.ends_with("@example.org>"),
        "{from}"
    );

    let one = env
        .run(&[
            "failures",
            "--source-ip",
            "2001:db8:0::25",
            "--format",
            "json",
        ])
        .json();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["auth_failure"], "dmarc");
    let since = env
        .run(&["failures", "--since", "2026-11-06", "--format", "json"])
        .json();
    assert_eq!(since.len(), 3);

    let tls = env
        .run(&["tls", "--domain", "example.org", "--format", "json"])
        .json();
    let enforced = &tls[0];
    assert_eq!(enforced["mx_hosts"], "mx1.example.org, mx2.example.org");
    assert_eq!(enforced["successful_sessions"], 1184 + 311 + 52);
    assert_eq!(enforced["failed_sessions"], 16);
    assert_eq!(
        enforced["top_failures"],
        "certificate-expired: 12, validation-failure: 4"
    );
    assert_eq!(
        enforced["reporters"],
        "Google Inc., Mail.ru, Microsoft Corporation"
    );
    let csv = env.run(&["tls", "--format", "csv"]);
    assert!(
        csv.stdout.starts_with(
            "domain,mx_hosts,policy_types,successful_sessions,failed_sessions,failure_pct,"
        ),
        "{}",
        csv.stdout
    );
}

/// Two different copies of one report (same org, id and policy domain): a reporter's corrected
/// re-send carries more records. The more complete copy is stored whichever arrives first, and none
/// of the other copy's records are left behind.
#[test]
fn issue_2_more_complete_copy_of_a_report_wins_in_either_order() {
    let record = |ip: &str, count: u32| {
        format!(
            "<record><row><source_ip>{ip}</source_ip><count>{count}</count><policy_evaluated>\
             <disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row>\
             <identifiers><header_from>example.org</header_from></identifiers><auth_results>\
             <spf><domain>example.org</domain><result>pass</result></spf></auth_results></record>"
        )
    };
    let report = |records: &str| {
        format!(
            "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>resend.example</org_name>\
             <report_id>r-1</report_id><date_range><begin>1793491200</begin><end>1793577599</end>\
             </date_range></report_metadata><policy_published><domain>example.org</domain><p>none</p>\
             </policy_published>{records}</feedback>"
        )
    };
    let inputs = tempfile::tempdir().unwrap();
    let short = inputs.path().join("short.xml");
    let full = inputs.path().join("full.xml");
    std::fs::write(&short, report(&record("192.0.2.1", 5))).unwrap();
    let both = record("192.0.2.1", 5) + &record("198.51.100.7", 3);
    std::fs::write(&full, report(&both)).unwrap();

    for (first, second, replaced) in [(&short, &full, true), (&full, &short, false)] {
        let env = Env::new();
        assert_eq!(env.run(&["ingest", s(first)]).code, 0);
        let out = env.run(&["ingest", s(second)]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let expected = if replaced {
            "ingest: 1 inputs, 0 reports new, 1 duplicates (1 more complete than the stored copy, \
             kept instead), 0 rejected, 1 records"
        } else {
            "ingest: 1 inputs, 0 reports new, 1 duplicates, 0 rejected, 0 records"
        };
        assert!(out.stdout.starts_with(expected), "{}", out.stdout);

        let reports = env.run(&["reports", "--format", "json"]).json();
        assert_eq!(reports.len(), 1);
        assert_eq!(
            (&reports[0]["records"], &reports[0]["messages"]),
            (&2.into(), &8.into())
        );
        assert_eq!(reports[0]["origin"].as_str(), Some(s(&full)));
        let sources = env.run(&["sources", "--format", "json"]).json();
        let messages: u64 = sources.iter().filter_map(|r| r["messages"].as_u64()).sum();
        assert_eq!(messages, 8, "{sources:?}");
        assert_eq!(sources.len(), 2, "{sources:?}");
        assert_eq!(
            env.records_and_orphans(),
            (2, 0),
            "the replaced copy's record is gone"
        );

        // Both copies in one run, so in one unit of work: the same outcome.
        let env = Env::new();
        let out = env.run(&["ingest", s(first), s(second)]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(
            out.stdout
                .starts_with("ingest: 2 inputs, 1 reports new, 1 duplicates"),
            "{}",
            out.stdout
        );
        let reports = env.run(&["reports", "--format", "json"]).json();
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0]["origin"].as_str(), Some(s(&full)));
        let sources = env.run(&["sources", "--format", "json"]).json();
        let messages: u64 = sources.iter().filter_map(|r| r["messages"].as_u64()).sum();
        assert_eq!((messages, sources.len()), (8, 2), "{sources:?}");
    }
}

on_both_backends! {
    /// Two copies of one report as large as each other (records, messages) but not alike: which one
    /// stays does not depend on which arrived first (racing writers, the order of files), and it is
    /// the same one on both backends: more passing messages, then the later period.
    fn equally_large_copies_leave_the_same_one_in_either_order(backend: Backend) {
        let report = |end: i64, dkim: &str| {
            format!(
                "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>tie.example</org_name>\
                 <report_id>t-1</report_id><date_range><begin>{}</begin><end>{end}</end>\
                 </date_range></report_metadata><policy_published><domain>example.org</domain>\
                 <p>none</p></policy_published><record><row><source_ip>192.0.2.1</source_ip>\
                 <count>4</count><policy_evaluated><disposition>none</disposition><dkim>{dkim}</dkim>\
                 <spf>fail</spf></policy_evaluated></row><identifiers><header_from>example.org\
                 </header_from></identifiers><auth_results><spf><domain>example.org</domain>\
                 <result>fail</result></spf></auth_results></record></feedback>",
                end - 86_399
            )
        };
        let inputs = tempfile::tempdir().unwrap();
        let write = |name: &str, text: String| {
            let path = inputs.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        // The same size and the same passes: the later period stays.
        let early = write("early.xml", report(1_793_577_599, "fail"));
        let late = write("late.xml", report(1_793_663_999, "fail"));
        // The same size: more passing messages stay, whatever the period.
        let passing = write("passing.xml", report(1_793_577_599, "pass"));
        for (a, b, winner) in [
            (&early, &late, &late),
            (&late, &early, &late),
            (&late, &passing, &passing),
            (&passing, &late, &passing),
        ] {
            let env = Env::on(backend);
            assert_eq!(env.run(&["ingest", s(a)]).code, 0);
            assert_eq!(env.run(&["ingest", s(b)]).code, 0);
            let reports = env.run(&["reports", "--format", "json"]).json();
            assert_eq!(reports.len(), 1, "{reports:?}");
            assert_eq!(reports[0]["origin"].as_str(), Some(s(winner)), "{a:?} then {b:?}");
        }
    }
}

/// A domain named with upper case and the final dot of the DNS root is the same domain: every
/// listing, `senders`, `advise` and `digest` give the same rows. A name that is not a domain is
/// refused with one line naming the option.
#[test]
fn domains_are_named_in_one_normal_form_at_every_option() {
    let env = Env::new();
    assert_eq!(env.run(&["ingest", s(&samples()), "-q"]).code, 0);
    for command in [
        &["domains", "--format", "json"][..],
        &["sources", "--format", "json"],
        &["reports", "--format", "json"],
        &["failures", "--format", "json"],
        &["tls", "--format", "json"],
        &["senders", "--format", "json"],
        &["advise", "--offline", "--format", "json"],
        &["digest", "--days", "30"],
    ] {
        let run = |domain: &str| {
            let mut args = command.to_vec();
            args.extend(["--domain", domain]);
            let out = env.run(&args);
            assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
            out.stdout
        };
        let plain = run("example.org");
        assert!(
            plain.contains("example.org") || command[0] == "failures" || command[0] == "tls",
            "{command:?}: {plain}"
        );
        assert_eq!(plain, run("EXAMPLE.Org."), "{command:?}");
        assert_eq!(plain, run(" example.org "), "{command:?}");
    }
    let rows = env
        .run(&["domains", "--domain", "Example.ORG.", "--format", "json"])
        .json();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["domain"], "example.org");

    for (args, option) in [
        (&["sources", "--domain", "exa mple.org"][..], "--domain"),
        (&["senders", "-d", "example..org"], "--domain"),
        (
            &["advise", "--offline", "--domain", "localhost"],
            "--domain",
        ),
        (&["digest", "--domain", "a/b.org"], "--domain"),
        (
            &["report", "--html", "x.html", "--domain", "<b>.org"],
            "--domain",
        ),
        (
            &["check", "--last", "example.org", "exa mple.org"],
            "DOMAIN",
        ),
    ] {
        let out = env.run(args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        let bad = args.last().unwrap();
        assert_eq!(
            out.stderr.lines().collect::<Vec<_>>(),
            [
                format!("dmarc-warden: error: {option}: {bad:?} is not a domain name")
                    + if *bad == "localhost" {
                        ": it has one label, and a policy domain has two or more (example.org)"
                    } else {
                        ""
                    }
            ],
            "{args:?}"
        );
    }
}
