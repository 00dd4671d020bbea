//! Fetching from a local Dovecot: 10,000 generated report messages (DMARC_WARDEN_BENCH_MESSAGES to
//! change) are APPENDed to a throwaway server, then the release `dmarc-warden fetch` drains the folder
//! into a fresh database. Prints messages/s, records/s, MB/s and the fetch's peak RSS. A benchmark, not
//! a test: it asserts only that everything landed. Run: `cargo bench --bench imap_fetch`.

#[path = "support/corpus.rs"]
#[allow(dead_code)]
mod corpus;
#[path = "support/dovecot.rs"]
#[allow(dead_code)]
mod dovecot;

use std::process::Command;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; with a name filter that is not ours, do nothing.
    if args
        .iter()
        .any(|a| !a.starts_with('-') && !"imap_fetch".contains(a.as_str()))
    {
        return;
    }
    // Without `--bench` this runs under `cargo test`: a smoke run of 50 messages.
    let default = if args.iter().any(|a| a == "--bench") {
        10_000
    } else {
        50
    };
    let count: usize = std::env::var("DMARC_WARDEN_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    let dovecot = dovecot::Dovecot::start();
    let mut rng = corpus::Rng::new(0x1a9);
    let mut records = 0;
    let mut bytes = 0;
    let messages: Vec<Vec<u8>> = (0..count)
        .map(|n| {
            let (name, data, r) = corpus::corpus_file(&mut rng, n);
            records += r;
            let message = if name.ends_with(".eml") {
                data
            } else {
                corpus::email(n, &name, &data)
            };
            bytes += message.len();
            message
        })
        .collect();
    let started = Instant::now();
    dovecot.append("INBOX", &messages);
    let append = started.elapsed().as_secs_f64();
    drop(messages);

    let db = dovecot.dir.path().join("bench.db");
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_dmarc-warden"))
        .args(["--verbose", "fetch"])
        .env("DMARC_WARDEN_DB", &db)
        .envs(dovecot.env())
        .output()
        .expect("run dmarc-warden fetch");
    let secs = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "fetch failed: {stderr}");
    let expected = format!(
        "fetch: {count} inputs, {count} reports new, 0 duplicates, 0 rejected, {records} records"
    );
    assert!(stdout.contains(&expected), "{stdout}");
    let peak = stderr
        .lines()
        .find_map(|l| l.strip_prefix("dmarc-warden: peak memory (VmHWM) "))
        .unwrap_or("unknown");
    println!(
        "imap_fetch: appended {count} messages ({:.1} MB) in {append:.1} s",
        bytes as f64 / 1e6
    );
    println!(
        "imap_fetch: fetched and stored {count} messages, {records} records in {secs:.2} s: \
         {:.0} messages/s, {:.0} records/s, {:.1} MB/s; peak RSS {peak}",
        count as f64 / secs,
        records as f64 / secs,
        bytes as f64 / 1e6 / secs
    );
}
