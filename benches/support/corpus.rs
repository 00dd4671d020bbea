//! Generates a synthetic corpus of aggregate reports in mixed containers, shaped like real ones:
//! plain XML, gzip, zip, and emails with a base64 gzip attachment. Deterministic for a given seed.
//! Shared by `examples/gen-corpus.rs` and the benches.

use std::io::Write;

use base64::Engine;

/// A small deterministic generator (xorshift64*): reproducible corpora without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const REPORTERS: &[(&str, &str)] = &[
    ("google.com", "noreply-dmarc-support@google.com"),
    ("Yahoo", "dmarchelp@yahooinc.com"),
    ("Enterprise Outlook", "dmarcreport@microsoft.com"),
    ("Mail.Ru", "dmarc_support@corp.mail.ru"),
    ("Mimecast", "dmarc-report@mimecast.org"),
];

/// Whether the `n`th report's day follows `n` (`CORPUS_DATES=ordered`: 274 reports a day, a year
/// every 100,000, in the order a mailbox delivers them) rather than cycling over a year every 365
/// reports (the default: each batch of reports then spans the whole year, the hardest case for the
/// store's indexes that are led by a date).
pub fn dates_in_order() -> bool {
    static ORDERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ORDERED.get_or_init(|| std::env::var("CORPUS_DATES").is_ok_and(|v| v == "ordered"))
}

/// One report's XML with `records` records.
pub fn report_xml(rng: &mut Rng, n: usize, records: usize) -> String {
    let (org, email) = REPORTERS[n % REPORTERS.len()];
    let domain = format!("domain{}.example", n % 50);
    let day = if dates_in_order() { n / 274 } else { n % 365 };
    let begin = 1_790_000_000 + day as i64 * 86_400;
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n  <report_metadata>\n    \
         <org_name>{org}</org_name>\n    <email>{email}</email>\n    <report_id>gen-{n}</report_id>\n    \
         <date_range>\n      <begin>{begin}</begin>\n      <end>{}</end>\n    </date_range>\n  \
         </report_metadata>\n  <policy_published>\n    <domain>{domain}</domain>\n    <adkim>r</adkim>\n    \
         <aspf>r</aspf>\n    <p>none</p>\n    <sp>none</sp>\n    <pct>100</pct>\n  </policy_published>\n",
        begin + 86_399
    );
    for _ in 0..records {
        // As in real reports, most mail comes from a few thousand recurring servers; one record in
        // ten is from anywhere (spoofers, forwarders).
        let ip = if rng.below(10) < 9 {
            let k = rng.below(2000);
            format!("198.{}.{}.{}", 18 + k / 65_536, (k / 256) % 256, k % 256)
        } else {
            format!(
                "{}.{}.{}.{}",
                rng.below(223) + 1,
                rng.below(256),
                rng.below(256),
                rng.below(256)
            )
        };
        let pass = rng.below(10) < 8;
        let (d, s) = if pass {
            ("pass", "pass")
        } else {
            ("fail", "fail")
        };
        x.push_str(&format!(
            "  <record>\n    <row>\n      <source_ip>{ip}</source_ip>\n      <count>{}</count>\n      \
             <policy_evaluated>\n        <disposition>none</disposition>\n        <dkim>{d}</dkim>\n        \
             <spf>{s}</spf>\n      </policy_evaluated>\n    </row>\n    <identifiers>\n      \
             <header_from>{domain}</header_from>\n    </identifiers>\n    <auth_results>\n      <dkim>\n        \
             <domain>{domain}</domain>\n        <selector>s1</selector>\n        <result>{d}</result>\n      \
             </dkim>\n      <spf>\n        <domain>{domain}</domain>\n        <scope>mfrom</scope>\n        \
             <result>{s}</result>\n      </spf>\n    </auth_results>\n  </record>\n",
            rng.below(50) + 1
        ));
    }
    x.push_str("</feedback>\n");
    x
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("in-memory write");
    e.finish().expect("in-memory write")
}

pub fn zip(name: &str, data: &[u8]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.start_file(name, zip::write::SimpleFileOptions::default())
        .expect("in-memory zip");
    w.write_all(data).expect("in-memory zip");
    w.finish().expect("in-memory zip").into_inner()
}

/// An email from a reporter with `data` attached as `filename` (base64).
pub fn email(n: usize, filename: &str, data: &[u8]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(data);
    let mut body = String::new();
    for chunk in b64.as_bytes().chunks(76) {
        body.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        body.push_str("\r\n");
    }
    format!(
        "From: noreply-dmarc-support@google.com\r\nTo: dmarc@example.org\r\nSubject: Report {n}\r\n\
         Message-ID: <gen-{n}@example>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b{n}\"\r\n\r\n--b{n}\r\n\
         Content-Type: text/plain\r\n\r\nDMARC aggregate report.\r\n--b{n}\r\n\
         Content-Type: application/octet-stream; name=\"{filename}\"\r\nContent-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"{filename}\"\r\n\r\n{body}--b{n}--\r\n"
    )
    .into_bytes()
}

/// The `n`-th file of a corpus: (file name, bytes, records in it). Containers rotate: XML, gzip, zip,
/// email; records per report vary from 1 to 39 (20 on average).
pub fn corpus_file(rng: &mut Rng, n: usize) -> (String, Vec<u8>, usize) {
    let records = 1 + rng.below(39) as usize;
    let xml = report_xml(rng, n, records);
    let name = format!("report-{n}.xml");
    match n % 4 {
        0 => (name, xml.into_bytes(), records),
        1 => (format!("{name}.gz"), gzip(xml.as_bytes()), records),
        2 => (
            format!("report-{n}.zip"),
            zip(&name, xml.as_bytes()),
            records,
        ),
        _ => (
            format!("report-{n}.eml"),
            email(n, &format!("{name}.gz"), &gzip(xml.as_bytes())),
            records,
        ),
    }
}

/// The `n`-th file of a corpus of large reports, as the big receivers send: one gzip file of 250 to
/// 349 records.
pub fn large_gzip_file(rng: &mut Rng, n: usize) -> (String, Vec<u8>, usize) {
    let records = 250 + rng.below(100) as usize;
    let xml = report_xml(rng, n, records);
    (format!("report-{n}.xml.gz"), gzip(xml.as_bytes()), records)
}

/// Writes `count` files into `dir` (in subdirectories of 1,000); returns the total number of records.
pub fn write_corpus(dir: &std::path::Path, count: usize) -> std::io::Result<usize> {
    write_files(dir, count, corpus_file)
}

/// [`write_corpus`] with large gzip reports ([`large_gzip_file`]).
pub fn write_large_corpus(dir: &std::path::Path, count: usize) -> std::io::Result<usize> {
    write_files(dir, count, large_gzip_file)
}

fn write_files(
    dir: &std::path::Path,
    count: usize,
    file: fn(&mut Rng, usize) -> (String, Vec<u8>, usize),
) -> std::io::Result<usize> {
    let mut rng = Rng::new(0x5eed);
    let mut total = 0;
    for n in 0..count {
        let sub = dir.join(format!("{:04}", n / 1000));
        if n % 1000 == 0 {
            std::fs::create_dir_all(&sub)?;
        }
        let (name, data, records) = file(&mut rng, n);
        std::fs::write(sub.join(name), data)?;
        total += records;
    }
    Ok(total)
}
