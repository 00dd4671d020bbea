//! Plain data types shared by every stage: what a parsed report is, what an input that failed is.
//!
//! Nothing here does I/O or knows about SQLite; the types serialise with serde so that golden tests and
//! `--format json` see the same shape.

use serde::Serialize;

/// One DMARC aggregate (rua) report, as RFC 7489 Appendix C and RFC 9990 (`dmarc-2.0`) describe it.
///
/// Enumerated values (`p`, `disposition`, DKIM/SPF results…) are kept as lower-cased strings rather than
/// Rust enums: reporters send values outside the schema (`hardfail`, `unknown`) and we store what they
/// said instead of dropping the record.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AggregateReport {
    /// `<version>` (RFC 7489 says `1.0`; many reporters omit it).
    pub version: Option<String>,
    /// XML namespace of the root element, if any (`urn:ietf:params:xml:ns:dmarc-2.0` for RFC 9990).
    pub namespace: Option<String>,
    pub metadata: ReportMetadata,
    pub policy: PolicyPublished,
    pub records: Vec<Record>,
    /// Raw XML of the report-level `<extensions>` element (RFC 9990), kept verbatim.
    pub extensions: Option<String>,
}

impl AggregateReport {
    /// Sum of `<count>` over all records.
    pub fn message_count(&self) -> u64 {
        self.records.iter().map(|r| r.count).sum()
    }

    /// Messages that passed DMARC: aligned DKIM or aligned SPF pass in `policy_evaluated`.
    pub fn pass_count(&self) -> u64 {
        self.records
            .iter()
            .filter(|r| r.dmarc_pass())
            .map(|r| r.count)
            .sum()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReportMetadata {
    pub org_name: String,
    pub email: Option<String>,
    pub extra_contact_info: Option<String>,
    pub report_id: String,
    /// Start of the reporting period, seconds since the Unix epoch (UTC); `None` when not reported.
    pub begin: Option<i64>,
    /// End of the reporting period, seconds since the Unix epoch (UTC); `None` when not reported.
    pub end: Option<i64>,
    pub errors: Vec<String>,
    /// RFC 9990 `<generator>`: the software that wrote the report.
    pub generator: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PolicyPublished {
    pub domain: String,
    pub adkim: Option<String>,
    pub aspf: Option<String>,
    pub p: Option<String>,
    pub sp: Option<String>,
    /// RFC 9990 policy for non-existent subdomains.
    pub np: Option<String>,
    /// RFC 7489 sampling rate, 0–100 (removed in RFC 9990 in favour of `testing`).
    pub pct: Option<u32>,
    pub fo: Option<String>,
    /// RFC 9990 `t=` flag: `y` or `n`.
    pub testing: Option<String>,
    /// RFC 9990: how the policy was found (`psl` or `treewalk`).
    pub discovery_method: Option<String>,
}

/// One `<record>`: a source IP and the authentication results of the messages it sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Record {
    /// Normalised textual form (`::ffff:192.0.2.1` becomes `192.0.2.1`, IPv6 compressed). Kept as sent
    /// when it does not parse as an address.
    pub source_ip: String,
    pub count: u64,
    pub disposition: Option<String>,
    /// DMARC-aligned DKIM result from `policy_evaluated`.
    pub dkim: Option<String>,
    /// DMARC-aligned SPF result from `policy_evaluated`.
    pub spf: Option<String>,
    pub reasons: Vec<PolicyOverride>,
    pub header_from: Option<String>,
    pub envelope_from: Option<String>,
    pub envelope_to: Option<String>,
    pub dkim_results: Vec<DkimResult>,
    pub spf_results: Vec<SpfResult>,
}

impl Record {
    /// DMARC passes when either aligned identifier passed.
    pub fn dmarc_pass(&self) -> bool {
        self.dkim.as_deref() == Some("pass") || self.spf.as_deref() == Some("pass")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PolicyOverride {
    /// `forwarded`, `sampled_out`, `trusted_forwarder`, `mailing_list`, `local_policy`, `other`.
    pub kind: String,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DkimResult {
    pub domain: String,
    pub selector: Option<String>,
    pub result: String,
    pub human_result: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SpfResult {
    pub domain: String,
    /// `helo` or `mfrom`.
    pub scope: Option<String>,
    pub result: String,
}

/// Where an input came from: a file path, `path#N` for the N-th message of an mbox, `-` for stdin.
pub type Origin = String;

/// Something found inside an input, with the path to it inside its containers
/// (e.g. `attachment "report.zip" > google.com!example.org!1700000000!1700086399.xml`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Located<T> {
    pub location: String,
    #[serde(flatten)]
    pub item: T,
}

/// The outcome of unpacking and parsing one input: the reports found and the parts that failed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Extracted {
    pub reports: Vec<Located<AggregateReport>>,
    pub failures: Vec<Located<Failure>>,
}

/// Why a part of an input could not be turned into a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    pub reason: String,
}

/// Seconds since the Unix epoch, shown and serialised as RFC 3339 UTC (`2026-11-01T00:00:00Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub i64);

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match chrono::DateTime::from_timestamp(self.0, 0) {
            Some(t) => write!(f, "{}", t.format("%Y-%m-%dT%H:%M:%SZ")),
            None => write!(f, "{}", self.0),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Which stored reports a query looks at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Policy domain, exact (lower case).
    pub domain: Option<String>,
    /// Reports whose period ends at or after this time.
    pub since: Option<i64>,
    /// Reports whose period begins before this time.
    pub until: Option<i64>,
    /// At most this many rows.
    pub limit: Option<u64>,
}

/// `domains`: one row per policy domain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DomainSummary {
    pub domain: String,
    pub reports: u64,
    pub messages: u64,
    pub dmarc_pass: u64,
    /// Share of messages passing DMARC, 0–100, one decimal.
    pub dmarc_pass_pct: f64,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
    /// Policy published in the latest report.
    pub p: Option<String>,
    pub sp: Option<String>,
    pub pct: Option<u32>,
}

/// `sources`: one row per policy domain, source IP and header From.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceSummary {
    pub domain: String,
    pub source_ip: String,
    pub header_from: Option<String>,
    pub messages: u64,
    pub dmarc_pass: u64,
    pub dkim_aligned: u64,
    pub spf_aligned: u64,
    pub quarantined: u64,
    pub rejected: u64,
    pub reports: u64,
}

/// `reports`: one row per stored report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportSummary {
    pub org_name: String,
    pub report_id: String,
    pub domain: String,
    pub begin: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub records: u64,
    pub messages: u64,
    pub dmarc_pass: u64,
    pub p: Option<String>,
    pub origin: String,
}

/// `rejects`: one row per failed part of a kept input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RejectSummary {
    pub id: i64,
    pub origin: String,
    pub location: String,
    pub reason: String,
    /// Bytes kept for reprocessing; absent when the input could not be read.
    pub size: Option<u64>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub attempts: u64,
}
