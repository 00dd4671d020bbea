//! Page times of `serve` over a large generated database: 10 million aggregate records by default
//! (`DMARC_WARDEN_BENCH_RECORDS`), 20 per report, from `support/corpus.rs` (50 domains over a
//! year, five reporters, 2,000 recurring servers and random others). The database is built once
//! into `target/web-bench-<records>.db` and kept for later runs. The executable's `serve` runs on
//! 127.0.13.1; every page and API call is fetched over HTTP once (`first`: rendered from the
//! database, unless `serve` rendered it ahead: the overview `/`) and then
//! `DMARC_WARDEN_BENCH_ROUNDS` (5) more times (from serve's page cache, as long as the database
//! does not change). Target: every page under 300 ms.

// Only the report generator of the shared corpus module is used here.
#[allow(dead_code)]
#[path = "support/corpus.rs"]
mod corpus;
#[path = "support/serve.rs"]
mod serve;

/// How long a page may take to start answering.
const PAGE_WAIT: Duration = Duration::from_secs(600);

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dmarc_warden::fetch::Input;
use dmarc_warden::pipeline::{Options, ingest};
use dmarc_warden::store::Store;
use dmarc_warden::unpack::Limits;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RECORDS_PER_REPORT: usize = 20;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn build(db: &Path, records: usize) {
    let reports = records / RECORDS_PER_REPORT;
    eprintln!("web bench: building {} ({reports} reports)…", db.display());
    let started = Instant::now();
    let partial = db.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let store = Store::open(&partial).expect("bench database");
    let mut rng = corpus::Rng::new(0x5eed);
    let inputs = (0..reports).map(move |n| Input::Bytes {
        origin: format!("gen-{n}"),
        data: corpus::report_xml(&mut rng, n, RECORDS_PER_REPORT).into_bytes(),
    });
    let options = Options {
        failure: Default::default(),
        limits: Limits::default(),
        threads: 0,
    };
    let stats = ingest(&store, inputs, &options, &mut |_| {}).expect("ingest");
    drop(store);
    std::fs::rename(&partial, db).expect("bench database renamed");
    eprintln!(
        "web bench: {} records in {:.0} s",
        stats.records,
        started.elapsed().as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` (scripts/test) runs this binary
    // without it, and must not build ten million records.
    if !std::env::args().any(|a| a == "--bench") {
        println!("web bench: skipped (run it with `cargo bench --bench web`)");
        return;
    }
    let records = env("DMARC_WARDEN_BENCH_RECORDS", 10_000_000);
    let rounds = env("DMARC_WARDEN_BENCH_ROUNDS", 5).max(1);
    let db = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/web-bench-{records}.db"));
    if !db.exists() {
        build(&db, records);
    }
    // A database kept from an older version gets its schema brought up to date (serve reads only).
    drop(Store::open(&db).expect("bench database"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_dmarc-warden"))
        .args([
            "--db",
            db.to_str().expect("UTF-8 path"),
            "serve",
            "--listen",
            "127.0.13.1:0",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let addr = serve::listening(&mut child);
    let pages = [
        "/",
        "/?days=14",
        "/?days=90",
        "/?from=2027-01-01&to=2027-01-31",
        "/domain/domain7.example",
        "/domain/domain7.example?days=90",
        "/domain/domain7.example/sender/domain7.example",
        "/domain/domain7.example/sender/unidentified",
        "/api/domains",
        "/api/senders",
        "/api/advise",
        "/api/sources?domain=domain7.example&limit=100",
    ];
    println!("web pages over {records} records (first request, then {rounds} more):");
    println!(
        "{:<52} {:>9} {:>9} {:>9} {:>9} {:>10}",
        "page", "first ms", "min ms", "median", "max ms", "bytes"
    );
    let mut slow = 0;
    let mut slow_first = 0;
    // Give serve a moment to render the overview ahead, as it does on start.
    std::thread::sleep(Duration::from_secs(10));
    for page in pages {
        let t = Instant::now();
        let (status, _) = serve::get(&addr, page, PAGE_WAIT);
        let first = t.elapsed().as_secs_f64() * 1000.0;
        if first >= 300.0 {
            slow_first += 1;
        }
        assert_eq!(status, 200, "{page}");
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..rounds {
            let t = Instant::now();
            let (status, raw) = serve::get(&addr, page, PAGE_WAIT);
            let bytes = raw.len();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(status, 200, "{page}");
            size = bytes;
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        if median >= 300.0 {
            slow += 1;
        }
        println!(
            "{page:<52} {first:>9.1} {:>9.1} {median:>9.1} {:>9.1} {size:>10}{}",
            times[0],
            times[times.len() - 1],
            if median >= 300.0 { "  over 300 ms" } else { "" }
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "{slow} of {} pages over 300 ms (median); {slow_first} over 300 ms when first rendered",
        pages.len()
    );
}
