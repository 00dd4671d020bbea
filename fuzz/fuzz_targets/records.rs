//! `check`'s parsers and judge on DNS answers anyone can publish: the input is split into TXT
//! records, parsed as DMARC, SPF, DKIM, MTA-STS and TLS-RPT, and judged as one domain's facts (SPF
//! walk and `check_host` included). Any panic or hang is a bug.
//! Run: `cargo fuzz run records -- -max_total_time=600`.
#![no_main]

use std::collections::BTreeMap;

use dmarc_warden::analyse::check::{Answer, Facts, Hints, LegitimateSource, Mx, PolicyFetch, judge};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parts: Vec<String> = text.split('\n').map(str::to_owned).collect();
    let get = |i: usize| parts.get(i).cloned().unwrap_or_default();
    let answer = |i: usize| Answer::Records(vec![get(i)]);
    let mut spf_dns = BTreeMap::new();
    spf_dns.insert("TXT example.org".to_owned(), answer(1));
    spf_dns.insert("TXT a.example.org".to_owned(), answer(2));
    spf_dns.insert("A example.org".to_owned(), answer(3));
    spf_dns.insert("MX example.org".to_owned(), answer(4));
    let facts = Facts {
        domain: "example.org".into(),
        dmarc: answer(0),
        spf_dns,
        mx: Answer::Records(vec![Mx {
            preference: 10,
            host: get(4),
        }]),
        mta_sts: answer(5),
        mta_sts_policy: Some(PolicyFetch::Body(get(6))),
        tls_rpt: answer(7),
        dkim: [("s".to_owned(), answer(8))].into_iter().collect(),
        ..Facts::default()
    };
    let hints = Hints {
        legitimate: vec![LegitimateSource {
            ip: get(9),
            sender: "s".into(),
            messages: 1,
        }],
        ..Hints::default()
    };
    let _ = judge::judge(&facts, &hints);
});
