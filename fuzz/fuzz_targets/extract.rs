//! The whole input path for one input held in memory: content sniffing, MIME, gzip, zlib, zip, XML
//! decoding and the aggregate parser. Any panic, hang or unbounded allocation is a bug.
//! Run: `cargo fuzz run extract -- -max_total_time=600` (seed it with `sample-reports/` and
//! `tests/fixtures/bad/`).
#![no_main]

use dmarc_warden::pipeline::extract;
use dmarc_warden::unpack::Limits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Small limits so that the fuzzer explores the limit paths too, and stays fast.
    let limits = Limits {
        max_payload_size: 1 << 20,
        max_message_size: 1 << 20,
        max_zip_entries: 16,
    };
    let _ = extract(data, &limits);
});
