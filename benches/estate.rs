//! A year of a large estate (issue 20): every query timed as a user meets it, over a generated
//! estate, on SQLite and on PostgreSQL, beside the goals.
//!
//! The estate is `examples/gen-estate.rs`'s (an independent generator: 50 domains over 365 days
//! ending yesterday UTC, about 20 records a report, 10M records by default). It is written a month
//! at a time under the work directory, ingested by the executable (`dmarc-warden ingest DIR`) into
//! the database, and deleted, so that the disk holds one month of files at a time; ingest
//! throughput is the records over the time of those `ingest` runs alone. A database that is already
//! complete is reused: the SQLite file `DIR/estate-<records>.db` with its `.done` stamp, or the one
//! `--db` names (a path or a `postgres://` URL) when it holds reports. PostgreSQL is, unless
//! `--db` names one, Debian's server started for this run as the tests start it
//! (`tests/support/postgres.rs`: TLS, a password, `fsync = off`) in a temporary directory (run with
//! `TMPDIR=/tmp/estate` to keep it there) and removed when the run ends.
//!
//! Then, by running the executable as a user would: `domains`, `reports`, `sources --domain D`
//! (the largest domain), `failures`, `tls`, `senders --days 14/90/365`, `advise --offline --days
//! 14/365` and `digest`, each `--rounds` times (median and best); and `serve` on 127.0.16.1, each
//! page requested `--rounds` times with a query parameter of its own each time (`bench=N`, which
//! the pages ignore and the page cache keys on), so that every request is a first render from the
//! database. The table gives each figure beside the goal: listings, `senders` and `advise`
//! 1.5 s, pages 0.5 s, `senders --days 365` at most 3× `--days 14`.
//!
//! `cargo bench --bench estate -- [--records N] [--domains N] [--days N] [--end YYYY-MM-DD]
//! [--backend sqlite|postgres|both] [--db PATH|URL] [--dir DIR] [--rounds N] [--drop]`, or the
//! variables `ESTATE_RECORDS`, `ESTATE_BACKEND`, `ESTATE_DB`, `ESTATE_DIR`, `ESTATE_ROUNDS`.
//! Defaults: 10,000,000 records, both backends, `/tmp/estate`, 3 rounds; `--drop` deletes the
//! SQLite database at the end (it is kept for the next run otherwise). Under `cargo test` it runs
//! one tiny round (20,000 records, 3 domains over 20 days, SQLite) as a smoke test.

#[allow(dead_code)] // the generator alone, not its `main`
#[path = "../examples/gen-estate.rs"]
mod generator;

#[allow(dead_code, clippy::unwrap_used)] // the tests' server as the tests have it
#[path = "../tests/support/postgres.rs"]
mod pg;

#[path = "support/serve.rs"]
mod serve;

/// How long a page may take to start answering (a year of an estate before rollups: minutes).
const PAGE_WAIT: Duration = Duration::from_secs(900);

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use generator::Estate;

const EXE: &str = env!("CARGO_BIN_EXE_dmarc-warden");
/// The goals (its "done when"), in seconds.
const LISTING_GOAL: f64 = 1.5;
const PAGE_GOAL: f64 = 0.5;
const RATIO_GOAL: f64 = 3.0;
/// Days of reports generated and ingested at a time.
const CHUNK_DAYS: u32 = 30;

struct Settings {
    benching: bool,
    estate: Estate,
    backends: Vec<Backend>,
    db: Option<String>,
    dir: PathBuf,
    rounds: usize,
    drop: bool,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A database to measure: what `--db` is given, and the environment the executable needs.
struct Db {
    location: String,
    env: Vec<(String, String)>,
    /// Bytes on disk, when known.
    size: Box<dyn Fn() -> Option<u64>>,
}

impl Db {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(EXE);
        c.arg("--db").arg(&self.location).args(args);
        c.env_remove("DMARC_WARDEN_CONFIG")
            .env("XDG_CONFIG_HOME", "/nonexistent")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }
}

fn settings() -> Settings {
    // `cargo bench` passes `--bench`; `cargo test` runs this once, tiny, as a smoke test.
    let benching = std::env::args().any(|a| a == "--bench");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str, var: &str| -> Option<String> {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1).cloned())
            .or_else(|| std::env::var(var).ok())
            .filter(|v| !v.is_empty())
    };
    let number = |flag: &str, var: &str, default: u64| -> u64 {
        value(flag, var).map_or(default, |v| {
            v.replace('_', "")
                .parse()
                .unwrap_or_else(|_| panic!("{flag} {v:?}: expected a number"))
        })
    };
    let (records, domains, days) = if benching {
        (10_000_000, 50, 365)
    } else {
        (20_000, 3, 20)
    };
    let mut estate = Estate::new(
        number("--domains", "ESTATE_DOMAINS", domains) as usize,
        number("--days", "ESTATE_DAYS", days) as u32,
        number("--records", "ESTATE_RECORDS", records),
        number("--seed", "ESTATE_SEED", 1),
    );
    if let Some(end) = value("--end", "ESTATE_END") {
        let day = chrono::NaiveDate::parse_from_str(&end, "%Y-%m-%d")
            .unwrap_or_else(|_| panic!("--end {end:?}: expected YYYY-MM-DD"));
        estate.end_day = day
            .signed_duration_since(chrono::NaiveDate::default())
            .num_days();
    }
    let db = value("--db", "ESTATE_DB");
    let backends = match value("--backend", "ESTATE_BACKEND").as_deref() {
        Some("sqlite") => vec![Backend::Sqlite],
        Some("postgres") => vec![Backend::Postgres],
        Some("both") => vec![Backend::Sqlite, Backend::Postgres],
        Some(other) => panic!("--backend {other:?}: expected sqlite, postgres or both"),
        None if db.as_deref().is_some_and(|d| d.starts_with("postgres")) => {
            vec![Backend::Postgres]
        }
        None if db.is_some() || !benching => vec![Backend::Sqlite],
        None => vec![Backend::Sqlite, Backend::Postgres],
    };
    Settings {
        benching,
        estate,
        backends,
        db,
        dir: value("--dir", "ESTATE_DIR").map_or_else(
            || {
                if benching {
                    PathBuf::from("/tmp/estate")
                } else {
                    std::env::temp_dir().join(format!("estate-smoke-{}", std::process::id()))
                }
            },
            PathBuf::from,
        ),
        rounds: number("--rounds", "ESTATE_ROUNDS", if benching { 3 } else { 1 }).max(1) as usize,
        drop: args.iter().any(|a| a == "--drop") || !benching,
    }
}

fn main() {
    let s = settings();
    std::fs::create_dir_all(&s.dir).expect("the work directory");
    let e = &s.estate;
    println!(
        "estate: {} domains over {} days ending {}, about {} records; {} rounds; work directory {}",
        e.domains,
        e.days,
        day_name(e.end_day),
        e.records,
        s.rounds,
        s.dir.display()
    );
    for backend in &s.backends {
        run(&s, *backend);
    }
    if !s.benching {
        let _ = std::fs::remove_dir_all(&s.dir);
    }
}

fn day_name(unix_day: i64) -> String {
    chrono::DateTime::from_timestamp(unix_day * 86_400, 0)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn run(s: &Settings, backend: Backend) {
    let e = &s.estate;
    let given =
        s.db.clone()
            .filter(|d| d.starts_with("postgres") == (backend == Backend::Postgres));
    let (db, stamp) = match (backend, given) {
        (Backend::Sqlite, given) => {
            let path = given.map_or_else(
                || s.dir.join(format!("estate-{}.db", e.records)),
                PathBuf::from,
            );
            let size_of = path.clone();
            let db = Db {
                location: path.display().to_string(),
                env: Vec::new(),
                size: Box::new(move || {
                    let size = |suffix: &str| {
                        std::fs::metadata(format!("{}{suffix}", size_of.display()))
                            .map_or(0, |m| m.len())
                    };
                    Some(size("") + size("-wal"))
                }),
            };
            (db, Some(path.with_extension("done")))
        }
        (Backend::Postgres, Some(url)) => (
            Db {
                location: url,
                env: Vec::new(),
                size: Box::new(|| None),
            },
            None,
        ),
        (Backend::Postgres, None) => {
            let server = pg::server();
            let test_db = server.fresh_db();
            let name = test_db.name.clone();
            let db = Db {
                location: test_db.url(),
                env: vec![(
                    "DMARC_WARDEN_DB_PASSWORD_FILE".to_owned(),
                    server.password_file.display().to_string(),
                )],
                size: Box::new(move || {
                    let row = pg::server()
                        .admin()
                        .query_one("SELECT pg_database_size($1)::bigint", &[&name])
                        .ok()?;
                    Some(row.get::<_, i64>(0) as u64)
                }),
            };
            (db, None)
        }
    };
    println!("\n== {backend:?}: {}", db.location);

    // Ingest, unless the database is complete already.
    let done = stamp.as_ref().and_then(|p| std::fs::read_to_string(p).ok());
    let holds_reports = done.is_some() || (s.db.is_some() && holds_reports(&db));
    if let Some(figures) = &done {
        println!("reusing the database ({})", figures.trim());
    } else if holds_reports {
        println!("reusing the database (it holds reports)");
    } else {
        if stamp.is_some() && s.db.is_none() {
            // A database left by a run that did not finish.
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", db.location));
            }
        }
        let figures = ingest(s, &db);
        println!("{figures}");
        if let Some(stamp) = &stamp {
            std::fs::write(stamp, format!("{figures}\n")).expect("stamp written");
        }
    }
    if let Some(bytes) = (db.size)() {
        println!("database: {:.2} GB", bytes as f64 / 1e9);
    }

    let domains = e.domain_names();
    let largest = domains[0].as_str();
    let mut rows: Vec<Row> = Vec::new();
    print_head(s.rounds);
    let commands: Vec<(String, Vec<&str>)> = vec![
        ("domains".into(), vec!["domains"]),
        ("reports".into(), vec!["reports"]),
        (
            format!("sources --domain {largest}"),
            vec!["sources", "--domain", largest],
        ),
        ("failures".into(), vec!["failures"]),
        ("tls".into(), vec!["tls"]),
        ("senders --days 14".into(), vec!["senders", "--days", "14"]),
        ("senders --days 90".into(), vec!["senders", "--days", "90"]),
        (
            "senders --days 365".into(),
            vec!["senders", "--days", "365"],
        ),
        (
            "advise --offline --days 14".into(),
            vec!["advise", "--offline", "--days", "14"],
        ),
        (
            "advise --offline --days 365".into(),
            vec!["advise", "--offline", "--days", "365"],
        ),
        ("digest --days 7".into(), vec!["digest", "--days", "7"]),
    ];
    for (label, args) in &commands {
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..s.rounds {
            let (t, b) = timed_command(&db, args);
            times.push(t);
            bytes = b;
        }
        rows.push(Row::new(label.clone(), times, bytes, LISTING_GOAL));
    }
    let ratio = |a: &str, b: &str| {
        let find = |l: &str| rows.iter().find(|r| r.label == l).map(|r| r.median);
        Some(find(a)? / find(b)?)
    };
    let ratios = [
        (
            "senders 365 / 14 days",
            ratio("senders --days 365", "senders --days 14"),
        ),
        (
            "advise 365 / 14 days",
            ratio("advise --offline --days 365", "advise --offline --days 14"),
        ),
    ];

    rows.extend(pages(s, &db, largest));
    print_tail(&rows);
    for (label, r) in ratios {
        if let Some(r) = r {
            println!(
                "  {label:<46} {r:>8.2}×   goal ≤ {RATIO_GOAL}×  {}",
                if r <= RATIO_GOAL { "ok" } else { "OVER" }
            );
        }
    }

    if s.drop
        && let Some(stamp) = &stamp
    {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.location));
        }
        let _ = std::fs::remove_file(stamp);
    }
}

/// Whether a database given by `--db` holds reports already.
fn holds_reports(db: &Db) -> bool {
    let out = db
        .command(&["domains", "--format", "json"])
        .stderr(Stdio::null())
        .output()
        .expect("run dmarc-warden domains");
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("\"domain\"")
}

/// Generates the estate a month at a time, ingests each month with the executable and deletes it.
/// Returns the figures, as one line.
fn ingest(s: &Settings, db: &Db) -> String {
    let e = &s.estate;
    let chunk = s.dir.join("chunk");
    let (mut generating, mut ingesting) = (Duration::ZERO, Duration::ZERO);
    let mut written = generator::Written::default();
    let mut stored_records = 0u64;
    let mut day = 0;
    while day < e.days {
        let to = (day + CHUNK_DAYS).min(e.days);
        let _ = std::fs::remove_dir_all(&chunk);
        let t = Instant::now();
        written += e.write_days(&chunk, day..to).expect("the estate written");
        generating += t.elapsed();
        let t = Instant::now();
        let out = db
            .command(&["ingest", chunk.to_str().expect("UTF-8 path")])
            .stdin(Stdio::null())
            .output()
            .expect("run dmarc-warden ingest");
        ingesting += t.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "ingest of days {day}..{to} failed: {stderr}"
        );
        // On stdout: "ingest: N inputs, N reports new, N duplicates, 0 rejected, N records …"
        let stdout = String::from_utf8_lossy(&out.stdout);
        let summary = stdout
            .lines()
            .rfind(|l| l.starts_with("ingest: "))
            .unwrap_or_default();
        assert!(summary.contains(" 0 rejected"), "{summary}");
        stored_records += summary
            .split(", ")
            .find_map(|part| {
                part.strip_suffix(" records")
                    .or_else(|| part.split_once(" records").map(|(n, _)| n))
            })
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or(0);
        if s.benching {
            eprintln!(
                "  days {day}..{to}: {} records so far; ingest {:.0} s, generation {:.0} s",
                stored_records,
                ingesting.as_secs_f64(),
                generating.as_secs_f64()
            );
        }
        day = to;
    }
    let _ = std::fs::remove_dir_all(&chunk);
    assert_eq!(stored_records, written.records, "every record stored");
    format!(
        "ingest: {} aggregate reports ({} records, {} messages), {} failure and {} TLS reports, \
         {:.2} GB of files, in {:.1} s: {:.0} records/s (generation {:.1} s, not counted)",
        written.reports,
        written.records,
        written.messages,
        written.failure_reports,
        written.tls_reports,
        written.bytes as f64 / 1e9,
        ingesting.as_secs_f64(),
        written.records as f64 / ingesting.as_secs_f64(),
        generating.as_secs_f64(),
    )
}

/// Runs the executable with `args`, reading all it prints; its wall time and stdout's bytes.
fn timed_command(db: &Db, args: &[&str]) -> (f64, usize) {
    let t = Instant::now();
    let mut child = db
        .command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run dmarc-warden");
    let mut out = Vec::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_end(&mut out)
        .expect("stdout read");
    let mut err = String::new();
    let _ = child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err);
    let status = child.wait().expect("dmarc-warden ran");
    let elapsed = t.elapsed().as_secs_f64();
    assert!(status.success(), "dmarc-warden {args:?} failed: {err}");
    (elapsed, out.len())
}

/// `serve`'s pages, each requested `rounds` times, each time under an address of its own.
fn pages(s: &Settings, db: &Db, domain: &str) -> Vec<Row> {
    let mut child = db
        .command(&["serve", "--listen", "127.0.16.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let addr = serve::listening(&mut child);
    // The overview is rendered ahead as serve starts: wait for that, untimed.
    let _ = serve::get(&addr, "/", PAGE_WAIT);
    let (status, body) = serve::get(&addr, &format!("/domain/{domain}"), PAGE_WAIT);
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "/domain/{domain}");
    // Two of the domain's senders, as its page links them.
    let prefix = format!("href=\"/domain/{domain}/sender/");
    let senders: Vec<String> = body
        .split(&prefix)
        .skip(1)
        .filter_map(|rest| rest.split(['"', '?']).next().map(str::to_owned))
        .fold(Vec::new(), |mut v, s| {
            if !v.contains(&s) {
                v.push(s);
            }
            v
        })
        .into_iter()
        .take(2)
        .collect();
    assert!(
        !senders.is_empty(),
        "no sender linked from /domain/{domain}"
    );
    let mut urls = vec![
        "/".to_owned(),
        "/?days=90".to_owned(),
        "/?days=365".to_owned(),
        format!("/domain/{domain}"),
        format!("/domain/{domain}?days=90"),
        format!("/domain/{domain}?days=365"),
    ];
    for sender in &senders {
        urls.push(format!("/domain/{domain}/sender/{sender}"));
        urls.push(format!("/domain/{domain}/sender/{sender}?days=365"));
    }
    urls.extend([
        "/api/domains".to_owned(),
        "/api/senders".to_owned(),
        "/api/advise".to_owned(),
        format!("/api/sources?domain={domain}&limit=100"),
        "/metrics".to_owned(),
    ]);
    let mut rows = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let mut times = Vec::new();
        let mut bytes = 0;
        for round in 0..s.rounds {
            let sep = if url.contains('?') { '&' } else { '?' };
            let fresh = format!("{url}{sep}bench={i}-{round}");
            let t = Instant::now();
            let (status, body) = serve::get(&addr, &fresh, PAGE_WAIT);
            times.push(t.elapsed().as_secs_f64());
            assert_eq!(status, 200, "{fresh}");
            bytes = body.len();
        }
        rows.push(Row::new(format!("GET {url}"), times, bytes, PAGE_GOAL));
    }
    let _ = child.kill();
    let _ = child.wait();
    rows
}

struct Row {
    label: String,
    median: f64,
    best: f64,
    bytes: usize,
    goal: f64,
}

impl Row {
    fn new(label: String, mut times: Vec<f64>, bytes: usize, goal: f64) -> Row {
        times.sort_by(f64::total_cmp);
        let row = Row {
            label,
            median: times[times.len() / 2],
            best: times[0],
            bytes,
            goal,
        };
        println!(
            "  {:<56} {:>9.3} {:>9.3} {:>10}   ≤ {} s {}",
            row.label,
            row.median,
            row.best,
            row.bytes,
            row.goal,
            if row.median <= row.goal { "ok" } else { "OVER" }
        );
        row
    }
}

/// The table's head; each row is printed as it is measured ([`Row::new`]).
fn print_head(rounds: usize) {
    println!(
        "  {:<56} {:>9} {:>9} {:>10}   goal   (median of {rounds})",
        "query", "median s", "best s", "bytes"
    );
}

fn print_tail(rows: &[Row]) {
    let over = rows.iter().filter(|r| r.median > r.goal).count();
    println!("  {over} of {} over their goal", rows.len());
}
