//! `notify` and `digest` over a generated corpus (20,000 reports, 50 domains, a year; `BENCH_REPORTS`
//! to change): the nightly cost of judging every domain and finding nothing new to send, and of a
//! digest. The channel configured takes no domain, so nothing is written or sent.

#[allow(dead_code)] // the other corpora are for other benches
#[path = "support/corpus.rs"]
mod corpus;

use criterion::{Criterion, criterion_group, criterion_main};
use dmarc_warden::fetch::Inputs;
use dmarc_warden::notify::settings::{Channel, Settings, Target, Webhook};
use dmarc_warden::pipeline::{Options, ingest};
use dmarc_warden::secret::Secret;
use dmarc_warden::store::Store;
use dmarc_warden::unpack::Limits;

/// The allocator the executable uses (`src/main.rs`), so that these figures are the tool's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn notify(c: &mut Criterion) {
    // `cargo test --all-targets` runs benches once, unoptimised, without `--bench`: a small corpus
    // keeps the test suite fast.
    let measuring = std::env::args().any(|a| a == "--bench");
    let n = std::env::var("BENCH_REPORTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if measuring { 20_000 } else { 500 });
    let dir = tempfile::tempdir().expect("temp dir");
    let reports = dir.path().join("reports");
    let records = corpus::write_corpus(&reports, n).expect("corpus written");
    let store = Store::open(&dir.path().join("b.db")).expect("database");
    let options = Options {
        failure: Default::default(),
        limits: Limits::default(),
        threads: 0,
    };
    let inputs = Inputs::new(vec![reports], options.limits.max_message_size);
    ingest(&store, inputs, &options, &mut |_| {}).expect("ingest");
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "").expect("config written");
    let config = dmarc_warden::notify::Config {
        resolve: false,
        judgement: dmarc_warden::config::judgement(Some(&empty)).expect("judgement"),
        settings: Settings {
            thresholds: Default::default(),
            channels: vec![Channel {
                id: "bench".into(),
                label: "#1 (bench)".into(),
                domains: Some(vec!["no-such-domain.example".parse().expect("a domain")]),
                target: Target::Webhook(Webhook {
                    url: Secret::new("https://127.0.0.1:9/never".into()),
                    ca_file: None,
                    timeout: std::time::Duration::from_secs(1),
                }),
            }],
        },
    };
    let mut g = c.benchmark_group("notify");
    g.sample_size(10);
    g.bench_function(format!("judge_{n}_reports_{records}_records"), |b| {
        b.iter(|| dmarc_warden::notify::notify(&store, &config).expect("notify"))
    });
    g.bench_function(format!("digest_7_days_{n}_reports"), |b| {
        b.iter(|| dmarc_warden::notify::digest(&store, &config, 7, None).expect("digest"))
    });
    g.finish();
}

criterion_group!(benches, notify);
criterion_main!(benches);
