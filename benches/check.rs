//! `check`'s judgement over a large domain: an SPF tree of 10 nested includes with 50 ranges each,
//! and 10,000 legitimate sources from the reports, each evaluated against it (`check_host` over the
//! recorded answers). Generated data; no network.

use std::collections::BTreeMap;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dmarc_warden::analyse::check::{Answer, Facts, Hints, LegitimateSource, judge};

/// The allocator the executable uses (`src/main.rs`), so that these figures are the tool's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SOURCES: usize = 10_000;

fn facts() -> Facts {
    let mut dns = BTreeMap::new();
    let txt = |s: String| Answer::Records(vec![s]);
    dns.insert(
        "TXT example.org".to_owned(),
        txt("v=spf1 mx include:i0.example.net ~all".into()),
    );
    dns.insert(
        "MX example.org".to_owned(),
        Answer::Records(vec!["mx.example.org".into()]),
    );
    dns.insert(
        "A mx.example.org".to_owned(),
        Answer::Records(vec!["192.0.2.25".into()]),
    );
    for i in 0..10 {
        let ranges: Vec<String> = (0..50).map(|j| format!("ip4:10.{i}.{j}.0/24")).collect();
        let next = if i < 9 {
            format!(" include:i{}.example.net", i + 1)
        } else {
            String::new()
        };
        dns.insert(
            format!("TXT i{i}.example.net"),
            txt(format!("v=spf1 {}{next} -all", ranges.join(" "))),
        );
    }
    Facts {
        domain: "example.org".into(),
        spf_dns: dns,
        ..Facts::default()
    }
}

fn hints() -> Hints {
    Hints {
        legitimate: (0..SOURCES)
            .map(|n| LegitimateSource {
                // Half inside the published ranges, half outside.
                ip: format!("10.{}.{}.{}", n % 20, n / 20 % 60, n % 250 + 1),
                sender: "DKIM d=example.org".into(),
                messages: 1,
            })
            .collect(),
        now: 1_793_491_200,
        ..Hints::default()
    }
}

fn judge_domain(c: &mut Criterion) {
    let (facts, hints) = (facts(), hints());
    let mut g = c.benchmark_group("check");
    g.throughput(Throughput::Elements(SOURCES as u64));
    g.sample_size(10);
    g.bench_function("judge_10000_sources_against_spf_of_10_includes", |b| {
        b.iter(|| judge::judge(&facts, &hints))
    });
    g.finish();
}

criterion_group!(benches, judge_domain);
criterion_main!(benches);
