//! `dmarc-warden fetch` against a real Dovecot on 127.0.0.1, started by `scripts/dovecot-test` for each
//! test with its own throwaway configuration, users, Maildirs and TLS certificates. A test fails, never
//! skips, when Dovecot cannot start.

#[allow(dead_code)] // the corpus writer is for benchmarks
#[path = "../benches/support/corpus.rs"]
pub(crate) mod corpus;
#[allow(dead_code)] // shared with tests/oauth.rs and the benchmark
#[path = "../benches/support/dovecot.rs"]
pub(crate) mod dovecot;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::cli::{Env, Out, bad_fixtures, finish, on_both_backends, s, samples};
use crate::golden::files_under;
use dovecot::{Dovecot, PASSWORD, USER, free_port};

/// Runs the real executable's `fetch` against `dovecot` with its environment plus `extra`.
fn fetch(dovecot: &Dovecot, env: &Env, args: &[&str], extra: &[(&str, &str)]) -> Out {
    fetch_env(env, args, &dovecot.env(), extra)
}

/// `fetch` with the environment `base` plus `extra`; an empty value in `extra` unsets the setting.
pub(crate) fn fetch_env(
    env: &Env,
    args: &[&str],
    base: &[(String, String)],
    extra: &[(&str, &str)],
) -> Out {
    let mut all: Vec<(&str, &str)> = base
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
        .collect();
    all.extend(extra.iter().filter(|(_, v)| !v.is_empty()));
    let mut full = vec!["fetch"];
    full.extend_from_slice(args);
    env.run_with_env(&full, &all)
}

/// The per-reporter sample files and the bad fixtures as messages (emails as they are, other files
/// attached to one), with a copy of each message written to `dir` for `ingest` to compare with. The
/// generated story (`sample-reports/story/`) is left out: more of the same, and slower.
pub(crate) fn sample_messages(dir: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = files_under(&samples());
    files.retain(|p| !p.components().any(|c| c.as_os_str() == "story"));
    files.extend(files_under(&bad_fixtures()));
    files.retain(|p| !p.to_string_lossy().ends_with(".mbox"));
    messages_from(&files, dir)
}

fn messages_from(files: &[PathBuf], dir: &Path) -> Vec<Vec<u8>> {
    std::fs::create_dir_all(dir).unwrap();
    files
        .iter()
        .enumerate()
        .map(|(n, path)| {
            let data = std::fs::read(path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let message = if name.ends_with(".eml") || looks_like_email(&data) {
                data
            } else {
                corpus::email(n, &name, &data)
            };
            std::fs::write(dir.join(format!("{n:05}.eml")), &message).unwrap();
            message
        })
        .collect()
}

fn looks_like_email(data: &[u8]) -> bool {
    let head = &data[..data.len().min(2048)];
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    !text.trim_start().starts_with('<')
        && (text.contains("\nfrom:") || text.starts_with("from:") || text.contains("\nreceived:"))
        && (text.contains("\ncontent-type:") || text.contains("\nsubject:"))
}

/// `(org, report id, domain, records, messages)` of every stored report.
pub(crate) fn report_keys(env: &Env) -> BTreeSet<(String, String, String, u64, u64)> {
    let out = env.run(&["reports", "--format", "json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.json()
        .iter()
        .map(|r| {
            (
                r["org_name"].as_str().unwrap().to_owned(),
                r["report_id"].as_str().unwrap().to_owned(),
                r["domain"].as_str().unwrap().to_owned(),
                r["records"].as_u64().unwrap(),
                r["messages"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The counts of a summary line: `fetch: 30 inputs, 26 reports new, …`.
pub(crate) fn summary(out: &Out) -> Vec<u64> {
    let line = out
        .stdout
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no summary line; stderr: {}", out.stderr));
    counts(line)
}

/// The whole numbers of one summary line, in order (the time, with its decimal point, left out).
fn counts(line: &str) -> Vec<u64> {
    line.split(|c: char| !c.is_ascii_digit() && c != '.')
        .filter(|w| !w.is_empty() && !w.contains('.'))
        .map(|w| w.parse().unwrap())
        .collect()
}

on_both_backends! {
fn fetch_stores_what_ingest_stores_and_a_second_fetch_finds_nothing(backend: Backend) {
    let dovecot = Dovecot::start();
    let files = tempfile::tempdir().unwrap();
    let messages = sample_messages(files.path());
    dovecot.append("INBOX", &messages);

    let by_files = Env::new();
    let ingested = by_files.run(&["ingest", s(files.path())]);
    let by_imap = Env::on(backend);
    let fetched = fetch(&dovecot, &by_imap, &[], &[]);
    assert_eq!(fetched.code, ingested.code, "{}", fetched.stderr);
    assert_eq!(fetched.code, 1, "tests/fixtures/bad/ must be rejected");
    // inputs, reports new, duplicates, rejected, records: the same for both ways in.
    assert_eq!(
        summary(&fetched)[..5],
        summary(&ingested)[..5],
        "{}",
        fetched.stdout
    );
    assert_eq!(report_keys(&by_imap), report_keys(&by_files));
    assert!(
        fetched.stderr.contains("imap://dmarc@127.0.0.1:"),
        "rejects are named by IMAP URL: {}",
        fetched.stderr
    );
    assert!(!fetched.stderr.contains(PASSWORD));

    // Nothing new: nothing fetched, nothing rejected again, exit 0, messages untouched.
    let again = fetch(&dovecot, &by_imap, &[], &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(summary(&again)[..5], [0, 0, 0, 0, 0], "{}", again.stdout);
    assert_eq!(dovecot.count("INBOX") as usize, messages.len());

    // --full reads everything again and stores nothing twice.
    let full = fetch(&dovecot, &by_imap, &["--full", "--quiet"], &[]);
    assert_eq!(full.code, 1, "{}", full.stderr);
    assert_eq!(full.stdout, "", "--quiet prints no summary");
    assert_eq!(report_keys(&by_imap), report_keys(&by_files));
}
}

#[test]
fn archive_and_invalid_folders_from_a_config_file_over_starttls() {
    let dovecot = Dovecot::start();
    let files = tempfile::tempdir().unwrap();
    let messages = sample_messages(files.path());
    dovecot.append("INBOX", &messages);
    let bad = std::fs::read_dir(bad_fixtures()).unwrap().count();

    let config = dovecot.dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[[account]]\nname = \"main\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{USER}\"\n\
             password = \"{PASSWORD}\"\ntls = \"starttls\"\nca_file = \"{}\"\n\
             archive = \"DMARC/done\"\ninvalid = \"DMARC/invalid\"\nmark_seen = true\n",
            dovecot.imap,
            s(&dovecot.ca())
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let env = Env::new();
    let base = vec![("DMARC_WARDEN_CONFIG".to_owned(), s(&config).to_owned())];
    let out = fetch_env(&env, &[], &base, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("holds a password and others can read it"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(PASSWORD));
    assert_eq!(dovecot.count("INBOX"), 0);
    assert_eq!(dovecot.count("DMARC/invalid") as usize, bad);
    assert_eq!(dovecot.count("DMARC/done") as usize, messages.len() - bad);

    // Later mail lands the same way; the moved messages are not looked at again.
    let more = vec![corpus::email(
        9000,
        "late.xml",
        corpus::report_xml(&mut corpus::Rng::new(1), 9000, 3).as_bytes(),
    )];
    dovecot.append("INBOX", &more);
    let out = fetch_env(&env, &[], &base, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(summary(&out)[..5], [1, 1, 0, 0, 3], "{}", out.stdout);
    assert_eq!(
        dovecot.count("DMARC/done") as usize,
        messages.len() - bad + 1
    );
}

#[test]
fn every_account_of_the_config_file_is_read_and_env_settings_need_a_chosen_one() {
    let dovecot = Dovecot::start();
    let (messages, _) = generated(5, 31);
    dovecot.append("INBOX", &messages[..2]);
    let mut other = dovecot.account();
    other.user = "other".into();
    other.password = dmarc_warden::secret::Secret::new("other-pw".into());
    let mut session = dmarc_warden::fetch::imap::Session::connect(&other).unwrap();
    for m in &messages[2..] {
        session.append("INBOX", m).unwrap();
    }
    session.logout();
    let secret = dovecot.dir.path().join("other-password");
    std::fs::write(&secret, "other-pw\n").unwrap();
    let config = dovecot.dir.path().join("two.toml");
    let account = |name: &str, user: &str, password: &str| {
        format!(
            "[[account]]\nname = \"{name}\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{user}\"\n\
             {password}\nca_file = \"{}\"\n",
            dovecot.imaps,
            s(&dovecot.ca())
        )
    };
    std::fs::write(
        &config,
        account(
            "reports",
            USER,
            &format!("password_command = \"echo {PASSWORD}\""),
        ) + &account(
            "other",
            "other",
            &format!("password_file = \"{}\"", s(&secret)),
        ),
    )
    .unwrap();
    let base = vec![("DMARC_WARDEN_CONFIG".to_owned(), s(&config).to_owned())];
    let env = Env::new();
    let out = fetch_env(&env, &[], &base, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stderr, "",
        "no password in a world-readable file: no warning"
    );
    assert_eq!(summary(&out)[..2], [5, 5], "{}", out.stdout);

    // Environment settings with two accounts: which one they apply to must be said.
    let out = fetch_env(&env, &[], &base, &[("DMARC_WARDEN_IMAP_FOLDERS", "INBOX")]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--account NAME"), "{}", out.stderr);
    let out = fetch_env(
        &env,
        &["--account", "other"],
        &base,
        &[("DMARC_WARDEN_IMAP_FOLDERS", "INBOX")],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = fetch_env(&env, &["--account", "nope"], &base, &[]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("no account named \"nope\""),
        "{}",
        out.stderr
    );
}

#[test]
fn connection_login_and_certificate_failures_exit_2_with_one_line() {
    let dovecot = Dovecot::start();
    let env = Env::new();
    let closed = free_port().to_string();
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[("DMARC_WARDEN_IMAP_PORT", &closed)],
            "cannot connect to 127.0.0.1:",
        ),
        (
            &[("DMARC_WARDEN_IMAP_PASSWORD", "wrong-pw")],
            "login as dmarc at 127.0.0.1:",
        ),
        // The system's trust store does not know the test CA.
        (&[("DMARC_WARDEN_IMAP_CA_FILE", "")], "TLS with 127.0.0.1:"),
        (
            &[("DMARC_WARDEN_IMAP_PASSWORD", "")],
            "no password (set DMARC_WARDEN_IMAP_PASSWORD",
        ),
    ];
    for (extra, expected) in cases {
        let out = fetch(&dovecot, &env, &[], extra);
        assert_eq!(out.code, 2, "{extra:?}: {}{}", out.stdout, out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{extra:?}: {}", out.stderr);
        assert!(out.stderr.contains(expected), "{extra:?}: {}", out.stderr);
        assert!(!out.stderr.contains(PASSWORD) && !out.stderr.contains("wrong-pw"));
    }
    // With the check turned off, loudly, the same server is accepted.
    let out = fetch(
        &dovecot,
        &env,
        &["--danger-accept-invalid-certs"],
        &[("DMARC_WARDEN_IMAP_CA_FILE", "")],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("NOT verified"), "{}", out.stderr);
}

/// Generated report messages: `(messages, total records)`.
pub(crate) fn generated(count: usize, seed: u64) -> (Vec<Vec<u8>>, usize) {
    let mut rng = corpus::Rng::new(seed);
    let mut total = 0;
    let messages = (0..count)
        .map(|n| {
            let (name, data, records) = corpus::corpus_file(&mut rng, n);
            total += records;
            if name.ends_with(".eml") {
                data
            } else {
                corpus::email(n, &name, &data)
            }
        })
        .collect();
    (messages, total)
}

pub(crate) fn stored(env: &Env) -> (usize, u64) {
    // Before the first run has created the database, nothing is stored.
    if !env.exists() {
        return (0, 0);
    }
    let keys = report_keys(env);
    (keys.len(), keys.iter().map(|k| k.3).sum())
}

#[test]
fn a_fetch_killed_at_any_moment_and_run_again_stores_everything_once() {
    let dovecot = Dovecot::start();
    let (messages, records) = generated(600, 11);
    dovecot.append("INBOX", &messages);
    let env = Env::new();
    let mut all_env = dovecot.env();
    all_env.push(("DMARC_WARDEN_IMAP_ARCHIVE".into(), "Done".into()));
    all_env.push(("DMARC_WARDEN_IMAP_BATCH".into(), "25".into()));
    let mut kills = 0;
    for delay_ms in [150u64, 300, 450, 600, 800, 1100] {
        let mut command = env.command(&["fetch", "--quiet"]);
        command
            .envs(all_env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        let _ = child.wait();
    }
    let out = fetch_env(&env, &[], &all_env, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        kills > 0,
        "no run was killed mid-fetch: the test proves nothing"
    );
    assert_eq!(stored(&env), (messages.len(), records as u64));
    assert_eq!(dovecot.count("INBOX"), 0);
    assert_eq!(dovecot.count("Done") as usize, messages.len());
}

/// A Dovecot whose INBOX holds `small` small report messages, then one of about 340 kB (UID
/// `small + 1`), and the outcome of fetching it with `--max-message-size 40KiB` plus `args`.
fn fetch_with_one_oversized(small: usize, args: &[&str]) -> (Dovecot, Env, Out) {
    let dovecot = Dovecot::start();
    let (mut messages, _) = generated(small, 5);
    let big = corpus::report_xml(&mut corpus::Rng::new(2), 77, 400);
    messages.push(corpus::email(77, "big.xml", big.as_bytes()));
    dovecot.append("INBOX", &messages);
    let env = Env::new();
    let mut all = vec!["--max-message-size", "40KiB"];
    all.extend_from_slice(args);
    let out = fetch(&dovecot, &env, &all, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    (dovecot, env, out)
}

#[test]
fn oversized_messages_are_rejects_not_downloads_until_the_limit_is_raised() {
    let (dovecot, env, out) = fetch_with_one_oversized(3, &[]);
    assert!(
        out.stderr.contains(";UID=4: message of ")
            && out
                .stderr
                .contains("--max-message-size / DMARC_WARDEN_MAX_MESSAGE_SIZE"),
        "{}",
        out.stderr
    );
    assert_eq!(stored(&env).0, 3);
    assert_eq!(env.run(&["rejects", "--format", "json"]).json().len(), 1);

    // `reprocess` cannot help (the bytes were never downloaded) and says what will.
    let out = env.run(&["reprocess"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("fetch --full"), "{}", out.stderr);

    // Raised limit + --full: the message lands, the reject is gone, nothing is stored twice.
    let out = fetch(
        &dovecot,
        &env,
        &["--full", "--max-message-size", "1MiB"],
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(summary(&out)[..4], [4, 1, 3, 0], "{}", out.stdout);
    assert_eq!(stored(&env).0, 4);
    assert!(env.run(&["rejects", "--format", "json"]).json().is_empty());
}

#[test]
fn an_oversized_message_goes_to_the_invalid_folder() {
    let (dovecot, _env, _) = fetch_with_one_oversized(2, &["--invalid", "Too big"]);
    assert_eq!(dovecot.count("Too big"), 1);
    assert_eq!(dovecot.count("INBOX"), 2);
}

#[test]
fn without_move_messages_are_copied_flagged_and_expunged() {
    let dovecot = Dovecot::start_with(&[(
        "DOVECOT_TEST_CAPABILITY",
        "IMAP4rev1 LITERAL+ SASL-IR IDLE UIDPLUS",
    )]);
    let (messages, _) = generated(30, 21);
    dovecot.append("INBOX", &messages);
    let env = Env::new();
    let out = fetch(&dovecot, &env, &["--archive", "Done", "--batch", "7"], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(dovecot.count("INBOX"), 0);
    assert_eq!(dovecot.count("Done"), 30);
    assert!(
        std::fs::read_to_string(dovecot.dir.path().join("dovecot.log"))
            .unwrap()
            .contains("expunged=30"),
        "the originals were expunged by UID EXPUNGE, not MOVE"
    );
}

on_both_backends! {
/// On PostgreSQL the second fetch is refused by the lease on the mailbox, which a fetch on
/// another machine would meet too.
fn watch_ingests_new_mail_and_a_second_fetch_is_refused(backend: Backend) {
    let dovecot = Dovecot::start();
    let env = Env::on(backend);
    let mut command = env.command(&["fetch", "--watch"]);
    command
        .envs(dovecot.env())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = command.spawn().unwrap();
    let watcher = KillOnDrop(Some(child));

    let (messages, _) = generated(4, 9);
    let mut watcher = watcher;
    // Mail already there is read at once; mail that arrives later wakes the IDLE.
    dovecot.append("INBOX", &messages[..2]);
    watcher.wait_for_reports(&env, 2, Duration::from_millis(100));
    let second = fetch(&dovecot, &env, &[], &[]);
    assert_eq!(second.code, 2, "{}", second.stderr);
    assert!(
        second
            .stderr
            .contains("another `dmarc-warden fetch` is running"),
        "{}",
        second.stderr
    );
    if backend == Backend::Postgres {
        assert!(
            second.stderr.contains("(it holds the lease on mailbox dmarc@127.0.0.1:"),
            "{}",
            second.stderr
        );
    }
    dovecot.append("INBOX", &messages[2..]);
    watcher.wait_for_reports(&env, 4, Duration::from_millis(100));
    let out = watcher.finish();
    // One summary line per round that found mail. How many rounds there were depends on when each
    // APPEND lands relative to the watcher (two appends may be read in one round or two), so the
    // lines are checked for what they are and what they add up to: 4 messages, 4 new reports.
    let mut total = [0u64; 2];
    for line in out.stdout.lines() {
        assert!(line.starts_with("fetch: "), "not a summary: {line}");
        let counts = counts(line);
        total[0] += counts[0];
        total[1] += counts[1];
    }
    assert_eq!(total, [4, 4], "one summary per round: {}", out.stdout);
}
}

/// A team's set-up: two `dmarc@` mailboxes fetched at the same moment (as from two machines) into
/// one PostgreSQL database. Each holds the lease on its own mailbox only, so neither waits for or
/// refuses the other; every message of both lands once and is moved after its commit, and the next
/// runs find nothing.
#[test]
fn two_mailboxes_fetched_at_once_into_one_postgres_database() {
    let dovecot = Dovecot::start_with(&[("DOVECOT_TEST_USERS", "second")]);
    let (messages, _) = generated(48, 31);
    dovecot.append("INBOX", &messages[..24]);
    dovecot.append_as("second", "INBOX", &messages[24..]);
    let env = Env::on(crate::cli::Backend::Postgres);
    let as_second = [("DMARC_WARDEN_IMAP_USER", "second")];
    let runs = std::thread::scope(|scope| {
        let args = &["--batch", "5", "--archive", "Done"];
        let a = scope.spawn(|| fetch(&dovecot, &env, args, &[]));
        let b = scope.spawn(|| fetch(&dovecot, &env, args, &as_second));
        [a.join().unwrap(), b.join().unwrap()]
    });
    for out in &runs {
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(counts(&out.stdout)[..2], [24, 24], "{}", out.stdout);
    }
    assert_eq!(stored(&env).0, 48);
    assert_eq!((dovecot.count("INBOX"), dovecot.count("Done")), (0, 24));
    for extra in [&[][..], &as_second[..]] {
        let again = fetch(&dovecot, &env, &[], extra);
        assert_eq!(again.code, 0, "{}", again.stderr);
        assert_eq!(counts(&again.stdout)[..2], [0, 0], "{}", again.stdout);
    }
}

pub(crate) struct KillOnDrop(pub Option<std::process::Child>);

impl KillOnDrop {
    /// Polls until `n` reports are stored; fails if the process ends first or 30 s pass.
    pub(crate) fn wait_for_reports(&mut self, env: &Env, n: usize, every: Duration) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while stored(env).0 < n {
            if let Some(status) = self.0.as_mut().unwrap().try_wait().unwrap() {
                let out = self.0.take().map(finish).unwrap();
                panic!(
                    "dmarc-warden ended ({status}): {}{}",
                    out.stdout, out.stderr
                );
            }
            assert!(
                Instant::now() < deadline,
                "{n} reports not stored within 30 s"
            );
            std::thread::sleep(every);
        }
    }

    pub(crate) fn finish(mut self) -> Out {
        let mut child = self.0.take().unwrap();
        child.kill().unwrap();
        finish(child)
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// 5,000 messages, and the server restarted as soon as the first batch is stored: the fetch
/// reconnects, carries on where its last commit left off, and stores everything once.
#[test]
fn a_folder_of_5000_messages_is_fetched_across_a_server_restart() {
    let dovecot = Dovecot::start();
    let (messages, records) = generated(5000, 3);
    dovecot.append("INBOX", &messages);
    let env = Env::new();
    let mut command = env.command(&["fetch", "--batch", "50"]);
    command
        .envs(dovecot.env())
        .envs([("DMARC_WARDEN_IMAP_ARCHIVE", "Done")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut fetcher = KillOnDrop(Some(command.spawn().unwrap()));
    fetcher.wait_for_reports(&env, 1, Duration::from_millis(10));
    dovecot.restart(Duration::from_millis(500));
    let out = fetcher.0.take().map(finish).unwrap();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("reconnecting in"),
        "the fetch ended before the restart; the test proves nothing: {}",
        out.stderr
    );
    assert_eq!(summary(&out)[..5], [5000, 5000, 0, 0, records as u64]);
    assert_eq!(stored(&env), (5000, records as u64));
    assert_eq!(dovecot.count("INBOX"), 0);
    assert_eq!(dovecot.count("Done"), 5000);
}

/// The corpus's aggregate reports (when `../shared/corpus` is present), fetched from the server and
/// ingested from files: the same reports land.
#[test]
fn corpus_reports_fetched_match_corpus_reports_ingested() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    if !root.join("MANIFEST.tsv").exists() {
        eprintln!(
            "corpus not present at {}: nothing to compare",
            root.display()
        );
        return;
    }
    let files: Vec<PathBuf> = files_under(&root)
        .into_iter()
        .filter(|p| {
            let p = p.to_string_lossy();
            p.contains("/aggregate/") && !p.ends_with(".mbox")
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let messages = messages_from(&files, dir.path());
    let dovecot = Dovecot::start();
    dovecot.append("INBOX", &messages);
    let by_files = Env::new();
    let ingested = by_files.run(&["ingest", "--quiet", s(dir.path())]);
    let by_imap = Env::new();
    let fetched = fetch(&dovecot, &by_imap, &["--quiet"], &[]);
    assert_eq!(fetched.code, ingested.code, "{}", fetched.stderr);
    let (a, b) = (report_keys(&by_imap), report_keys(&by_files));
    assert_eq!(a, b);
    println!(
        "corpus over IMAP: {} messages, {} reports, same as from files",
        messages.len(),
        a.len()
    );
}
