//! Writes a year of a large estate's DMARC reports, for `benches/estate.rs` and by hand:
//! `cargo run --release --example gen-estate -- DIR [--records N] [--domains N] [--days N]
//! [--seed N] [--end YYYY-MM-DD]` (defaults: 10,000,000 records, 50 domains, 365 days ending
//! yesterday UTC, seed 1).
//!
//! An independent generator: it shares no code with the project (it writes the reports' XML, ARF
//! and JSON by hand, as the reporters do), so that what the project reads is not shaped by what it
//! writes. Deterministic: the same arguments write the same bytes, and every day is generated on
//! its own (from a seed of its own), so that a caller may write the year a month at a time,
//! ingest that month and delete it ([`Estate::write_days`]).
//!
//! What it holds, per domain and day: aggregate reports from a pool of 32 reporters (Google,
//! Microsoft, Yahoo… each with its own weight and size; on average 20 records a report, so that
//! 500,000 reports hold about 10M records), of which a few cover 24 hours that do not start at
//! midnight. Their records come from the domain's stable legitimate senders (its own MTAs, Google
//! Workspace or Microsoft 365, an ESP: SPF and DKIM aligned, with their DKIM selectors), a
//! misconfigured service on some domains (SPF passes for the service's own domain, no DKIM),
//! forwarders (SPF fails, DKIM passes), and spoofers from many IPs that change from day to day
//! (both fail). Domains differ in size (a few large, many small) and tighten their policy during
//! the year (p=none → quarantine → reject), so dispositions follow. Failure reports (ARF, some
//! reporters) about spoofed mail and SMTP TLS reports (Google and Microsoft, for the domains with
//! MTA-STS) come beside them. Files are gzip XML mostly, then plain XML and zip, one directory per
//! day (`DIR/YYYY-MM-DD/`).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

/// The mean number of records a report holds.
pub const MEAN_RECORDS: f64 = 20.0;

/// What an estate is: its size and its seed.
#[derive(Debug, Clone)]
pub struct Estate {
    pub domains: usize,
    pub days: u32,
    /// About how many aggregate records the whole estate holds.
    pub records: u64,
    pub seed: u64,
    /// The last day (days since 1970-01-01, UTC); reports end on it at the latest.
    pub end_day: i64,
}

/// What was written.
#[derive(Debug, Default, Clone, Copy)]
pub struct Written {
    pub files: u64,
    pub bytes: u64,
    pub reports: u64,
    pub records: u64,
    pub messages: u64,
    pub failure_reports: u64,
    pub tls_reports: u64,
}

impl std::ops::AddAssign for Written {
    fn add_assign(&mut self, o: Written) {
        self.files += o.files;
        self.bytes += o.bytes;
        self.reports += o.reports;
        self.records += o.records;
        self.messages += o.messages;
        self.failure_reports += o.failure_reports;
        self.tls_reports += o.tls_reports;
    }
}

/// splitmix64: a small deterministic generator, seeded per day, domain and reporter.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// A number in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

fn mix(parts: &[u64]) -> u64 {
    let mut h = 0x51_7CC1_B727_220A_u64;
    for p in parts {
        h = Rng::new(h ^ p.wrapping_mul(0x2545_F491_4F6C_DD1D)).next_u64();
    }
    h
}

/// A reporter: organisation, address, the domain its file names carry, how likely it reports on a
/// domain on a given day (weight), how large its reports are (size), the hour its day starts at
/// (UTC), and whether it sends failure reports.
struct Reporter {
    org: &'static str,
    email: &'static str,
    file_domain: &'static str,
    weight: f64,
    size: f64,
    start_hour: i64,
    ruf: bool,
}

const fn r(
    org: &'static str,
    email: &'static str,
    file_domain: &'static str,
    weight: f64,
    size: f64,
    start_hour: i64,
    ruf: bool,
) -> Reporter {
    Reporter {
        org,
        email,
        file_domain,
        weight,
        size,
        start_hour,
        ruf,
    }
}

const REPORTERS: &[Reporter] = &[
    r(
        "google.com",
        "noreply-dmarc-support@google.com",
        "google.com",
        1.0,
        4.0,
        0,
        false,
    ),
    r(
        "Enterprise Outlook",
        "dmarcreport@microsoft.com",
        "protection.outlook.com",
        1.0,
        3.0,
        0,
        false,
    ),
    r(
        "Outlook.com",
        "dmarcreport@microsoft.com",
        "outlook.com",
        0.9,
        1.6,
        0,
        false,
    ),
    r(
        "Yahoo",
        "dmarchelp@yahooinc.com",
        "yahoo.com",
        0.9,
        1.6,
        0,
        false,
    ),
    r(
        "Mail.Ru",
        "dmarc_support@corp.mail.ru",
        "mail.ru",
        0.6,
        0.7,
        0,
        true,
    ),
    r(
        "AMAZON-SES",
        "postmaster@amazonses.com",
        "amazonses.com",
        0.6,
        0.8,
        0,
        false,
    ),
    r(
        "comcast.net",
        "dmarc_report@comcast.net",
        "comcast.net",
        0.5,
        0.8,
        0,
        false,
    ),
    r(
        "GMX",
        "noreply-dmarc@gmx.net",
        "gmx.net",
        0.5,
        0.6,
        0,
        false,
    ),
    r(
        "WEB.DE",
        "noreply-dmarc@web.de",
        "web.de",
        0.5,
        0.6,
        0,
        false,
    ),
    r(
        "Mimecast",
        "dmarc-report@mimecast.org",
        "mimecast.org",
        0.6,
        1.2,
        5,
        false,
    ),
    r(
        "Proofpoint",
        "dmarc_rua@emaildefense.proofpoint.com",
        "proofpoint.com",
        0.5,
        1.2,
        7,
        false,
    ),
    r(
        "Cisco Secure Email",
        "dmarc-reports@ironport.com",
        "ironport.com",
        0.3,
        0.7,
        0,
        false,
    ),
    r(
        "Yandex",
        "dmarc_support@yandex.ru",
        "yandex.ru",
        0.4,
        0.5,
        21,
        true,
    ),
    r(
        "Seznam.cz a.s.",
        "dmarc-noreply@seznam.cz",
        "seznam.cz",
        0.2,
        0.3,
        0,
        true,
    ),
    r(
        "Fastmail Pty Ltd",
        "dmarc-reports@fastmail.com",
        "fastmail.com",
        0.3,
        0.3,
        0,
        false,
    ),
    r(
        "Zoho",
        "noreply-dmarc@zoho.com",
        "zoho.com",
        0.3,
        0.3,
        0,
        false,
    ),
    r(
        "Orange",
        "dmarc.rua@orange.fr",
        "orange.fr",
        0.3,
        0.4,
        0,
        false,
    ),
    r(
        "t-online.de",
        "dmarc-report@t-online.de",
        "t-online.de",
        0.3,
        0.4,
        0,
        true,
    ),
    r("Free", "dmarc@free.fr", "free.fr", 0.2, 0.3, 0, false),
    r(
        "Tencent",
        "dmarc-noreply@qq.com",
        "qq.com",
        0.2,
        0.3,
        16,
        false,
    ),
    r("NetEase", "dmarc@126.com", "126.com", 0.2, 0.3, 16, false),
    r(
        "Apple Inc.",
        "dmarc_support@icloud.com",
        "icloud.com",
        0.5,
        0.5,
        0,
        false,
    ),
    r(
        "Proton AG",
        "postmaster@proton.me",
        "proton.me",
        0.3,
        0.2,
        0,
        false,
    ),
    r(
        "Barracuda Networks",
        "dmarc@barracuda.com",
        "barracuda.com",
        0.3,
        0.3,
        8,
        false,
    ),
    r(
        "Trend Micro",
        "dmarc-report@trendmicro.com",
        "trendmicro.com",
        0.2,
        0.3,
        0,
        false,
    ),
    r(
        "Sophos",
        "dmarc-noreply@sophos.com",
        "sophos.com",
        0.2,
        0.3,
        0,
        false,
    ),
    r(
        "Hornetsecurity",
        "dmarc@hornetsecurity.com",
        "hornetsecurity.com",
        0.2,
        0.3,
        0,
        false,
    ),
    r("Libero", "dmarc@libero.it", "libero.it", 0.1, 0.2, 0, true),
    r(
        "Virgin Media",
        "dmarc@virginmedia.com",
        "virginmedia.com",
        0.1,
        0.2,
        0,
        false,
    ),
    r(
        "Telstra",
        "dmarc@bigpond.com",
        "bigpond.com",
        0.1,
        0.2,
        10,
        false,
    ),
    r(
        "Rogers",
        "dmarc@rogers.com",
        "rogers.com",
        0.1,
        0.2,
        19,
        false,
    ),
    r("Cox", "dmarc@cox.net", "cox.net", 0.1, 0.2, 0, false),
];

const WORDS: &[&str] = &[
    "acme",
    "northwind",
    "contoso",
    "fabrikam",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "wayne",
    "stark",
];

/// How a domain sends: its legitimate services, and its policy during the year.
struct DomainPlan {
    index: u64,
    name: String,
    /// Relative size (mean 1 over the estate).
    size: f64,
    mailbox: Mailbox,
    esp: Option<Esp>,
    /// A service sending with SPF for its own domain and no DKIM (needs fixing).
    misconfigured: bool,
    /// Day indices (into the estate's days) at which the policy becomes quarantine, then reject.
    quarantine_at: Option<u32>,
    reject_at: Option<u32>,
    /// Published MTA-STS / TLS-RPT: gets TLS reports.
    tls: bool,
    /// Asks for failure reports.
    ruf: bool,
}

#[derive(Clone, Copy)]
enum Mailbox {
    Google,
    Microsoft,
    Own,
}

#[derive(Clone, Copy)]
enum Esp {
    SendGrid,
    Mailchimp,
    AmazonSes,
}

/// One record to write.
struct Rec {
    ip: String,
    count: u64,
    disposition: &'static str,
    /// The receiver's reason for a disposition other than the policy's.
    reason: Option<&'static str>,
    dkim_eval: bool,
    spf_eval: bool,
    envelope_from: String,
    dkim: Vec<(String, &'static str, &'static str)>,
    spf: (String, &'static str),
}

impl Estate {
    /// The estate with the given size, ending yesterday (UTC).
    pub fn new(domains: usize, days: u32, records: u64, seed: u64) -> Estate {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        Estate {
            domains: domains.max(1),
            days: days.max(1),
            records,
            seed,
            end_day: now / 86_400 - 1,
        }
    }

    /// The policy domain names, largest first.
    pub fn domain_names(&self) -> Vec<String> {
        (0..self.domains).map(|d| self.plan(d).name).collect()
    }

    fn first_day(&self) -> i64 {
        self.end_day - i64::from(self.days) + 1
    }

    fn plan(&self, d: usize) -> DomainPlan {
        let mut rng = Rng::new(mix(&[self.seed, 1, d as u64]));
        let word = WORDS[d % WORDS.len()];
        let name = match d % 7 {
            3 => format!("{word}{d}.example.com"),
            5 => format!("mail.{word}{d}.example"),
            _ => format!("{word}{d}.example"),
        };
        let mailbox = match rng.below(10) {
            0..=4 => Mailbox::Google,
            5..=8 => Mailbox::Microsoft,
            _ => Mailbox::Own,
        };
        let esp = match rng.below(10) {
            0..=2 => Some(Esp::SendGrid),
            3..=4 => Some(Esp::Mailchimp),
            5 => Some(Esp::AmazonSes),
            _ => None,
        };
        let days = self.days;
        let (quarantine_at, reject_at) = match rng.below(10) {
            // Tightens during the year, and some reach reject.
            0..=4 => {
                let q = days / 6 + rng.below(u64::from(days / 2 + 1)) as u32;
                let r =
                    (rng.below(2) == 0).then(|| q + 30 + rng.below(u64::from(days / 3 + 1)) as u32);
                (Some(q), r.filter(|r| *r < days))
            }
            // At reject all year.
            5 => (Some(0), Some(0)),
            // At quarantine all year.
            6 => (Some(0), None),
            // Still monitoring.
            _ => (None, None),
        };
        DomainPlan {
            index: d as u64,
            name,
            size: domain_size(d, self.domains),
            mailbox,
            esp,
            misconfigured: rng.chance(0.3),
            quarantine_at,
            reject_at,
            tls: rng.chance(0.4),
            ruf: rng.chance(0.5),
        }
    }

    /// How likely reporter `r` reports on a domain on a day, so that the estate holds about
    /// `records` records; and the mean records of a report.
    fn rates(&self) -> (Vec<f64>, f64) {
        let domain_days = self.domains as f64 * f64::from(self.days);
        let reports = self.records as f64 / MEAN_RECORDS / domain_days;
        let total: f64 = REPORTERS.iter().map(|r| r.weight).sum();
        // At most 80% of the pool a day: beyond that, reports grow instead.
        let cap = 0.8 * REPORTERS.len() as f64;
        let per_day = reports.min(cap);
        let mean = MEAN_RECORDS * reports / per_day.max(1e-9);
        // Each reporter's chance grows with its weight, up to 1: the scale found by bisection, so
        // that the chances add up to `per_day`.
        let chances = |c: f64| REPORTERS.iter().map(move |r| (r.weight * c).min(1.0));
        let (mut low, mut high) = (0.0, REPORTERS.len() as f64 / total * 100.0);
        for _ in 0..60 {
            let mid = (low + high) / 2.0;
            if chances(mid).sum::<f64>() < per_day {
                low = mid;
            } else {
                high = mid;
            }
        }
        (chances(high).collect(), mean)
    }

    /// Writes every day of `days` (indices from 0, the first day, to `self.days`) under `dir`.
    pub fn write_days(&self, dir: &Path, days: std::ops::Range<u32>) -> std::io::Result<Written> {
        use rayon::prelude::*;
        let plans: Vec<DomainPlan> = (0..self.domains).map(|d| self.plan(d)).collect();
        let (q, mean) = self.rates();
        // Sizes normalised so that a report holds `mean` records on average.
        let qsum: f64 = q.iter().sum();
        let qsize: f64 = q.iter().zip(REPORTERS).map(|(q, r)| q * r.size).sum();
        let scale = mean * qsum / qsize.max(1e-9);
        let jobs: Vec<(u32, usize)> = days
            .flat_map(|day| (0..self.domains).map(move |d| (day, d)))
            .collect();
        jobs.par_iter()
            .map(|&(day, d)| self.write_domain_day(dir, &plans[d], d, day, &q, scale))
            .try_reduce(Written::default, |mut a, b| {
                a += b;
                Ok(a)
            })
    }

    fn write_domain_day(
        &self,
        dir: &Path,
        plan: &DomainPlan,
        d: usize,
        day: u32,
        q: &[f64],
        scale: f64,
    ) -> std::io::Result<Written> {
        let unix_day = self.first_day() + i64::from(day);
        let dir = dir.join(ymd(unix_day * 86_400, "%Y-%m-%d"));
        std::fs::create_dir_all(&dir)?;
        let mut w = Written::default();
        let policy = plan.policy(day);
        for (k, reporter) in REPORTERS.iter().enumerate() {
            let mut rng = Rng::new(mix(&[self.seed, 2, d as u64, day as u64, k as u64]));
            if !rng.chance(q[k]) {
                continue;
            }
            let noise = 0.5 + rng.unit();
            let n = (scale * reporter.size * plan.size * noise).round().max(1.0) as usize;
            let begin = unix_day * 86_400 - reporter.start_hour * 3600;
            let end = begin + 86_399 + i64::from(reporter.start_hour > 0);
            let records = records(&mut rng, plan, policy, n, self.seed, unix_day);
            let xml = aggregate_xml(reporter, plan, policy, begin, end, &records, &mut rng);
            let base = format!("{}!{}!{begin}!{end}", reporter.file_domain, plan.name);
            let (file, data) = match rng.below(100) {
                0..=89 => (format!("{base}.xml.gz"), gzip(xml.as_bytes())),
                90..=96 => (format!("{base}.xml"), xml.into_bytes()),
                _ => (
                    format!("{base}.zip"),
                    zip(&format!("{base}.xml"), xml.as_bytes()),
                ),
            };
            std::fs::write(dir.join(&file), &data)?;
            w.files += 1;
            w.bytes += data.len() as u64;
            w.reports += 1;
            w.records += records.len() as u64;
            w.messages += records.iter().map(|r| r.count).sum::<u64>();
            // Failure reports about some of the spoofed mail this reporter saw.
            if reporter.ruf && plan.ruf {
                for (i, rec) in records
                    .iter()
                    .filter(|r| !r.dkim_eval && !r.spf_eval)
                    .take(2)
                    .enumerate()
                {
                    if rng.chance(0.3) {
                        let t = begin + rng.below(86_000) as i64;
                        let data = arf(reporter, plan, rec, t, &format!("{d}-{day}-{k}-{i}"));
                        std::fs::write(
                            dir.join(format!("ruf-{}-{d}-{k}-{i}.eml", reporter.file_domain)),
                            &data,
                        )?;
                        w.files += 1;
                        w.bytes += data.len() as u64;
                        w.failure_reports += 1;
                    }
                }
            }
        }
        if plan.tls {
            for (org, email, file_domain, size) in [
                (
                    "Google Inc.",
                    "smtp-tls-reporting@google.com",
                    "google.com",
                    4.0,
                ),
                (
                    "Microsoft Corporation",
                    "tlsrpt-noreply@microsoft.com",
                    "microsoft.com",
                    3.0,
                ),
            ] {
                let mut rng = Rng::new(mix(&[self.seed, 3, d as u64, day as u64, size as u64]));
                let begin = unix_day * 86_400;
                let json = tls_json(org, email, plan, begin, size, &mut rng);
                let data = gzip(json.as_bytes());
                std::fs::write(
                    dir.join(format!("{file_domain}!{}!{begin}.json.gz", plan.name)),
                    &data,
                )?;
                w.files += 1;
                w.bytes += data.len() as u64;
                w.tls_reports += 1;
            }
        }
        Ok(w)
    }
}

/// Relative sizes: a few large domains, many small ones (Zipf-like), mean 1.
fn domain_size(d: usize, domains: usize) -> f64 {
    let raw = |i: usize| 1.0 / (1.0 + i as f64 / 4.0);
    let mean: f64 = (0..domains).map(raw).sum::<f64>() / domains as f64;
    raw(d) / mean
}

#[derive(Clone, Copy, PartialEq)]
enum Policy {
    None,
    Quarantine,
    Reject,
}

impl Policy {
    fn as_str(self) -> &'static str {
        match self {
            Policy::None => "none",
            Policy::Quarantine => "quarantine",
            Policy::Reject => "reject",
        }
    }
}

impl DomainPlan {
    fn policy(&self, day: u32) -> Policy {
        if self.reject_at.is_some_and(|r| day >= r) {
            Policy::Reject
        } else if self.quarantine_at.is_some_and(|q| day >= q) {
            Policy::Quarantine
        } else {
            Policy::None
        }
    }
}

fn ip(a: u64, b: u64, c: u64, d: u64) -> String {
    format!("{a}.{b}.{c}.{d}")
}

/// The records of one report: `n` distinct sources.
fn records(
    rng: &mut Rng,
    plan: &DomainPlan,
    policy: Policy,
    n: usize,
    seed: u64,
    unix_day: i64,
) -> Vec<Rec> {
    let dom = &plan.name;
    let d = plan.index;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(n);
    let mut tries = 0;
    while out.len() < n && tries < n * 4 {
        tries += 1;
        let kind = rng.below(100);
        let size = plan.size;
        let rec = if kind < 55 {
            // The domain's own mail: its mailbox provider, its ESP, its own MTAs.
            let pick = rng.below(10);
            let (ip, sel, env, count) = match (pick, plan.esp, plan.mailbox) {
                (0..=1, Some(esp), _) => {
                    let k = rng.below(120);
                    let (ip, sel, env) = match esp {
                        Esp::SendGrid => (
                            ip(167, 89, k % 64, 10 + k),
                            "s1",
                            format!("em{}.{dom}", 1000 + d % 9000),
                        ),
                        Esp::Mailchimp => (
                            ip(198, 2, 128 + k % 64, 20 + k),
                            "k1",
                            "mail141.suw13.mcsv.net".to_owned(),
                        ),
                        Esp::AmazonSes => (
                            ip(54, 240, k % 64, 30 + k),
                            "amazonses",
                            format!("bounce.{dom}"),
                        ),
                    };
                    (ip, sel, env, 1 + (rng.below(80) as f64 * size) as u64)
                }
                (_, _, Mailbox::Google) => {
                    let k = rng.below(400);
                    let ip = if k < 300 {
                        ip(209, 85, 128 + k % 128, 2 * k % 250 + 1)
                    } else {
                        ip(35, 190, 247, k % 250)
                    };
                    (
                        ip,
                        "google",
                        dom.clone(),
                        1 + (rng.below(150) as f64 * size) as u64,
                    )
                }
                (_, _, Mailbox::Microsoft) => {
                    let k = rng.below(600);
                    let ip = if k < 400 {
                        ip(40, 107, k % 256, 3 * k % 250 + 1)
                    } else {
                        ip(52, 100, k % 200, k % 250)
                    };
                    let sel = if rng.below(2) == 0 {
                        "selector1"
                    } else {
                        "selector2"
                    };
                    (
                        ip,
                        sel,
                        dom.clone(),
                        1 + (rng.below(150) as f64 * size) as u64,
                    )
                }
                (_, _, Mailbox::Own) => {
                    let k = rng.below(6);
                    (
                        ip(185, 20 + d % 200, d % 256, 10 + k),
                        "mail2026",
                        dom.clone(),
                        1 + (rng.below(100) as f64 * size) as u64,
                    )
                }
            };
            let mailchimp = env.ends_with("mcsv.net");
            Rec {
                ip,
                count,
                disposition: "none",
                reason: None,
                dkim_eval: true,
                spf_eval: !mailchimp,
                envelope_from: env.clone(),
                dkim: if mailchimp {
                    vec![
                        (dom.clone(), sel, "pass"),
                        ("mcsv.net".to_owned(), "k2", "pass"),
                    ]
                } else {
                    vec![(dom.clone(), sel, "pass")]
                },
                spf: (env, "pass"),
            }
        } else if kind < 62 && plan.misconfigured {
            // A service sending as the domain with its own envelope and no DKIM: needs fixing.
            let k = rng.below(40);
            let fail = policy_disposition(policy, rng);
            Rec {
                ip: ip(136, 147, 176 + k % 16, 40 + k),
                count: 1 + rng.below(60),
                disposition: fail,
                reason: None,
                dkim_eval: false,
                spf_eval: false,
                envelope_from: "bounce.salesforce.com".to_owned(),
                dkim: Vec::new(),
                spf: ("bounce.salesforce.com".to_owned(), "pass"),
            }
        } else if kind < 75 {
            // Forwarded: mailing lists and relays keep the signature and break SPF, or rewrite the
            // envelope (SRS) and pass SPF for themselves; a signature broken on the way fails
            // DMARC, and some receivers then say so (reason `forwarded`) and deliver.
            let k = rng.below(300);
            let broken = rng.chance(0.05);
            let list = format!("list{}.forwarder.example", k % 30);
            let (envelope_from, spf) = if rng.chance(0.5) {
                (format!("srs.{list}"), (format!("srs.{list}"), "pass"))
            } else {
                let result = if rng.below(3) == 0 {
                    "softfail"
                } else {
                    "fail"
                };
                (dom.clone(), (dom.clone(), result))
            };
            let excused = broken && rng.chance(0.5);
            Rec {
                ip: ip(128 + k % 40, 30 + k % 200, (k * 7) % 256, 5 + k % 240),
                count: 1 + rng.below(20),
                disposition: if broken && !excused {
                    policy_disposition(policy, rng)
                } else {
                    "none"
                },
                reason: excused.then_some("forwarded"),
                dkim_eval: !broken,
                spf_eval: false,
                envelope_from,
                dkim: vec![(dom.clone(), "google", if broken { "fail" } else { "pass" })],
                spf,
            }
        } else {
            // Spoofers: a few botnets that change weekly, and anywhere, new every day.
            let ip = if rng.chance(0.3) {
                let week = (unix_day / 7) as u64;
                let k = mix(&[seed, 7, week, rng.below(2000)]);
                ip(
                    1 + k % 222,
                    (k >> 8) % 256,
                    (k >> 16) % 256,
                    1 + (k >> 24) % 254,
                )
            } else {
                ip(
                    1 + rng.below(222),
                    rng.below(256),
                    rng.below(256),
                    1 + rng.below(254),
                )
            };
            let signed = rng.chance(0.2);
            Rec {
                ip,
                count: 1 + rng.below(5),
                disposition: policy_disposition(policy, rng),
                reason: None,
                dkim_eval: false,
                spf_eval: false,
                envelope_from: dom.clone(),
                dkim: if signed {
                    vec![(
                        format!("bulk{}.example.net", rng.below(500)),
                        "default",
                        "pass",
                    )]
                } else {
                    Vec::new()
                },
                spf: (
                    dom.clone(),
                    if rng.below(2) == 0 {
                        "fail"
                    } else {
                        "softfail"
                    },
                ),
            }
        };
        if seen.insert((rec.ip.clone(), rec.dkim_eval, rec.spf_eval)) {
            out.push(rec);
        }
    }
    out
}

/// What a receiver did with failing mail under `policy` (some apply local policy instead).
fn policy_disposition(policy: Policy, rng: &mut Rng) -> &'static str {
    match policy {
        Policy::None => "none",
        _ if rng.chance(0.05) => "none",
        Policy::Quarantine => "quarantine",
        Policy::Reject => "reject",
    }
}

fn aggregate_xml(
    reporter: &Reporter,
    plan: &DomainPlan,
    policy: Policy,
    begin: i64,
    end: i64,
    records: &[Rec],
    rng: &mut Rng,
) -> String {
    let mut x = String::with_capacity(600 + records.len() * 520);
    let id = rng.next_u64() % 10_000_000_000_000_000_000;
    let _ = write!(
        x,
        "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<feedback>\n<version>1.0</version>\n<report_metadata>\n\
         <org_name>{}</org_name>\n<email>{}</email>\n<report_id>{id}</report_id>\n<date_range>\n\
         <begin>{begin}</begin>\n<end>{end}</end>\n</date_range>\n</report_metadata>\n<policy_published>\n\
         <domain>{}</domain>\n<adkim>r</adkim>\n<aspf>r</aspf>\n<p>{}</p>\n<sp>{}</sp>\n<pct>100</pct>\n\
         <np>{}</np>\n</policy_published>\n",
        reporter.org,
        reporter.email,
        plan.name,
        policy.as_str(),
        policy.as_str(),
        policy.as_str(),
    );
    let pf = |b: bool| if b { "pass" } else { "fail" };
    for rec in records {
        let _ = write!(
            x,
            "<record>\n<row>\n<source_ip>{}</source_ip>\n<count>{}</count>\n<policy_evaluated>\n\
             <disposition>{}</disposition>\n<dkim>{}</dkim>\n<spf>{}</spf>\n{}</policy_evaluated>\n</row>\n\
             <identifiers>\n<envelope_to>{}</envelope_to>\n<envelope_from>{}</envelope_from>\n\
             <header_from>{}</header_from>\n</identifiers>\n<auth_results>\n",
            rec.ip,
            rec.count,
            rec.disposition,
            pf(rec.dkim_eval),
            pf(rec.spf_eval),
            rec.reason.map_or_else(String::new, |r| format!(
                "<reason>\n<type>{r}</type>\n</reason>\n"
            )),
            reporter.file_domain,
            rec.envelope_from,
            plan.name,
        );
        for (domain, selector, result) in &rec.dkim {
            let _ = write!(
                x,
                "<dkim>\n<domain>{domain}</domain>\n<selector>{selector}</selector>\n<result>{result}</result>\n</dkim>\n"
            );
        }
        let _ = write!(
            x,
            "<spf>\n<domain>{}</domain>\n<scope>mfrom</scope>\n<result>{}</result>\n</spf>\n</auth_results>\n</record>\n",
            rec.spf.0, rec.spf.1
        );
    }
    x.push_str("</feedback>\n");
    x
}

/// An ARF (RFC 6591) failure report about spoofed mail, with the message's headers.
fn arf(reporter: &Reporter, plan: &DomainPlan, rec: &Rec, t: i64, id: &str) -> Vec<u8> {
    let date = ymd(t, "%a, %d %b %Y %H:%M:%S +0000");
    let dom = &plan.name;
    format!(
        "From: DMARC Failure Reports <{email}>\r\nTo: dmarc-ruf@{dom}\r\n\
         Subject: DMARC failure report for {dom} (ip={ip})\r\nDate: {date}\r\n\
         Message-ID: <ruf-{id}@{fd}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=feedback-report; boundary=\"b-{id}\"\r\n\r\n\
         --b-{id}\r\nContent-Type: text/plain; charset=\"us-ascii\"\r\n\r\n\
         This is an authentication failure report for a message received from IP {ip}.\r\n\r\n\
         --b-{id}\r\nContent-Type: message/feedback-report\r\n\r\n\
         Feedback-Type: auth-failure\r\nUser-Agent: {org}/1.0\r\nVersion: 1\r\n\
         Original-Mail-From: <billing@{dom}>\r\nOriginal-Rcpt-To: <user@{fd}>\r\n\
         Arrival-Date: {date}\r\nSource-IP: {ip}\r\nReported-Domain: {dom}\r\n\
         Authentication-Results: mx.{fd}; dmarc=fail (p={p}) header.from={dom}; spf={spf} smtp.mailfrom={dom}; dkim=none\r\n\
         Auth-Failure: dmarc\r\nDelivery-Result: {delivery}\r\nIdentity-Alignment: none\r\n\r\n\
         --b-{id}\r\nContent-Type: text/rfc822-headers\r\n\r\n\
         Received: from unknown ({ip}) by mx.{fd} with SMTP; {date}\r\n\
         From: Accounts <billing@{dom}>\r\nTo: user@{fd}\r\nSubject: Invoice {id} overdue\r\n\
         Date: {date}\r\nMessage-ID: <{id}.{t}@spoof.invalid>\r\n\r\n--b-{id}--\r\n",
        email = reporter.email,
        fd = reporter.file_domain,
        org = reporter.org.replace(' ', "-"),
        ip = rec.ip,
        p = rec.disposition,
        spf = rec.spf.1,
        delivery = match rec.disposition {
            "reject" => "reject",
            "quarantine" => "spam",
            _ => "delivered",
        },
    )
    .into_bytes()
}

/// An SMTP TLS report (RFC 8460) for the domain's MTA-STS policy, with failures some days.
fn tls_json(
    org: &str,
    email: &str,
    plan: &DomainPlan,
    begin: i64,
    size: f64,
    rng: &mut Rng,
) -> String {
    let dom = &plan.name;
    let ok = 1 + (rng.below(2000) as f64 * size * plan.size) as u64;
    let failed = if rng.chance(0.1) {
        1 + rng.below(40)
    } else {
        0
    };
    let details = if failed > 0 {
        format!(
            "{{\"result-type\":\"{}\",\"sending-mta-ip\":\"209.85.128.{}\",\"receiving-mx-hostname\":\"mx2.{dom}\",\
             \"receiving-ip\":\"192.0.2.25\",\"failed-session-count\":{failed}}}",
            if rng.below(2) == 0 {
                "certificate-expired"
            } else {
                "validation-failure"
            },
            rng.below(250)
        )
    } else {
        String::new()
    };
    format!(
        "{{\"organization-name\":\"{org}\",\"date-range\":{{\"start-datetime\":\"{}\",\"end-datetime\":\"{}\"}},\
         \"contact-info\":\"{email}\",\"report-id\":\"{}_{dom}\",\"policies\":[{{\"policy\":{{\"policy-type\":\"sts\",\
         \"policy-string\":[\"version: STSv1\",\"mode: enforce\",\"mx: mx1.{dom}\",\"mx: mx2.{dom}\",\"max_age: 604800\"],\
         \"policy-domain\":\"{dom}\",\"mx-host\":[\"mx1.{dom}\",\"mx2.{dom}\"]}},\"summary\":{{\
         \"total-successful-session-count\":{ok},\"total-failure-session-count\":{failed}}},\"failure-details\":[{details}]}}]}}",
        ymd(begin, "%Y-%m-%dT%H:%M:%SZ"),
        ymd(begin + 86_399, "%Y-%m-%dT%H:%M:%SZ"),
        ymd(begin, "%Y-%m-%dT%H:%M:%SZ"),
    )
}

fn ymd(t: i64, format: &str) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap_or_default()
        .format(format)
        .to_string()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 8),
        flate2::Compression::fast(),
    );
    e.write_all(data).expect("in-memory write");
    e.finish().expect("in-memory write")
}

fn zip(name: &str, data: &[u8]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.start_file(name, zip::write::SimpleFileOptions::default())
        .expect("in-memory zip");
    w.write_all(data).expect("in-memory zip");
    w.finish().expect("in-memory zip").into_inner()
}

#[allow(dead_code)] // the bench includes this file for `Estate` alone
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || -> ! {
        eprintln!(
            "usage: gen-estate DIR [--records N] [--domains N] [--days N] [--seed N] [--end YYYY-MM-DD]\n\
             (a year of 50 domains' reports, 10,000,000 records, ending yesterday UTC, by default)"
        );
        std::process::exit(2);
    };
    let Some(dir) = args.first().filter(|a| !a.starts_with("--")) else {
        usage()
    };
    let value = |name: &str| -> Option<&str> {
        let i = args.iter().position(|a| a == name)?;
        Some(args.get(i + 1).map_or_else(|| usage(), String::as_str))
    };
    let number = |name: &str, default: u64| -> u64 {
        value(name).map_or(default, |v| {
            v.replace('_', "").parse().unwrap_or_else(|_| usage())
        })
    };
    let mut estate = Estate::new(
        number("--domains", 50) as usize,
        number("--days", 365) as u32,
        number("--records", 10_000_000),
        number("--seed", 1),
    );
    if let Some(end) = value("--end") {
        let day = chrono::NaiveDate::parse_from_str(end, "%Y-%m-%d").unwrap_or_else(|_| usage());
        estate.end_day = day
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc()
            .timestamp()
            / 86_400;
    }
    let started = std::time::Instant::now();
    match estate.write_days(Path::new(dir), 0..estate.days) {
        Ok(w) => println!(
            "gen-estate: {} files ({:.1} MB): {} aggregate reports, {} records, {} messages; {} failure and {} TLS reports in {dir} ({:.1} s)",
            w.files,
            w.bytes as f64 / 1e6,
            w.reports,
            w.records,
            w.messages,
            w.failure_reports,
            w.tls_reports,
            started.elapsed().as_secs_f64()
        ),
        Err(e) => {
            eprintln!("gen-estate: {dir}: {e}");
            std::process::exit(2);
        }
    }
}
