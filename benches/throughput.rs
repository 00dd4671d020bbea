//! Throughput: parsing one large report (MB/s of XML, records/s), and end-to-end `ingest` of a
//! generated corpus of 10,000 reports in mixed containers into a fresh SQLite database.

#[allow(dead_code)] // the other corpora are for other benches
#[path = "support/corpus.rs"]
mod corpus;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dmarc_warden::fetch::Inputs;
use dmarc_warden::parse::parse_aggregate;
use dmarc_warden::pipeline::{Options, extract, ingest};
use dmarc_warden::store::Store;
use dmarc_warden::unpack::Limits;

/// The allocator the executable uses (`src/main.rs`), so that these figures are the tool's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn parse(c: &mut Criterion) {
    let mut rng = corpus::Rng::new(7);
    let xml = corpus::report_xml(&mut rng, 1, 2000);
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Bytes(xml.len() as u64));
    g.bench_function("aggregate_xml_2000_records_bytes", |b| {
        b.iter(|| parse_aggregate(&xml).expect("generated XML parses"))
    });
    g.throughput(Throughput::Elements(2000));
    g.bench_function("aggregate_xml_2000_records_elements", |b| {
        b.iter(|| parse_aggregate(&xml).expect("generated XML parses"))
    });
    let mail = corpus::email(1, "r.xml.gz", &corpus::gzip(xml.as_bytes()));
    g.throughput(Throughput::Elements(2000));
    g.bench_function("extract_email_gzip_2000_records", |b| {
        b.iter(|| extract(&mail, &Limits::default()))
    });
    g.finish();
}

fn ingest_corpus(c: &mut Criterion) {
    let n = std::env::var("BENCH_REPORTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let records = corpus::write_corpus(dir.path(), n).expect("corpus written");
    let mut g = c.benchmark_group("ingest");
    g.sample_size(10);
    g.throughput(Throughput::Elements(records as u64));
    g.bench_function(format!("{n}_reports_{records}_records"), |b| {
        b.iter_with_setup(
            || {
                let db = tempfile::tempdir().expect("temp dir");
                let store = Store::open(&db.path().join("b.db")).expect("database");
                (db, store)
            },
            |(_db, store)| {
                let options = Options {
                    failure: Default::default(),
                    limits: Limits::default(),
                    threads: 0,
                };
                let inputs =
                    Inputs::new(vec![dir.path().to_owned()], options.limits.max_message_size);
                let stats = ingest(&store, inputs, &options, &mut |_| {}).expect("ingest");
                assert_eq!(stats.records as usize, records);
            },
        )
    });
    g.finish();
}

criterion_group!(benches, parse, ingest_corpus);
criterion_main!(benches);
