//! `check`: what a domain publishes (DMARC, SPF, DKIM keys, MX with TLS, MTA-STS, TLS-RPT), judged.
//! This module owns the plain data of a check: the [`Facts`] that the probes of
//! [`crate::fetch::probe`] gather from DNS, SMTP and HTTPS, the [`Hints`] the stored reports give,
//! and the outcome, a [`DomainCheck`] of [`Finding`]s. [`judge`] turns facts and hints into findings,
//! [`spf`] evaluates SPF over gathered facts and `start` picks the record `advise` starts from; all
//! are pure (no I/O).

pub mod judge;
pub mod spf;
mod start;

pub use start::{StartingPoint, starting_point};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::Timestamp;

/// The answer to one DNS question: its records (none when the name or the type does not exist),
/// or why there was no answer (`SERVFAIL`, `timed out`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer<T> {
    Records(Vec<T>),
    Failed(String),
}

impl<T> Answer<T> {
    /// The records; none for a failed lookup.
    pub fn records(&self) -> &[T] {
        match self {
            Answer::Records(r) => r,
            Answer::Failed(_) => &[],
        }
    }

    pub fn failure(&self) -> Option<&str> {
        match self {
            Answer::Records(_) => None,
            Answer::Failed(e) => Some(e),
        }
    }
}

impl<T> Default for Answer<T> {
    fn default() -> Self {
        Answer::Records(Vec::new())
    }
}

/// The DMARC record that applies to a domain (from [`crate::fetch::probe::lookup_dmarc`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DmarcLookup {
    /// The domain's own record at `_dmarc.<domain>`.
    Own(crate::parse::records::DmarcRecord),
    /// No record of its own; this one applies by the tree walk, published at `at`.
    Inherited {
        at: String,
        record: crate::parse::records::DmarcRecord,
    },
    /// No record applies.
    Missing,
    /// More than one record, or one that does not parse: receivers apply none.
    Invalid(String),
    /// DNS did not answer (`SERVFAIL`, `timed out`, …).
    Failed(String),
}

/// One MX record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mx {
    pub preference: u16,
    /// Lower case, without the final dot.
    pub host: String,
}

/// What an SMTP connection to one MX host on port 25 showed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MxTls {
    pub host: String,
    /// The address connected to.
    pub addr: Option<String>,
    /// The connection or the conversation failed before TLS could be judged.
    pub error: Option<String>,
    /// EHLO listed STARTTLS.
    pub starttls: bool,
    /// The negotiated version (`TLSv1_2`, `TLSv1_3`); `None` when the handshake failed.
    pub tls_version: Option<String>,
    /// Why the handshake failed (for example no TLS 1.2 or newer in common).
    pub handshake_error: Option<String>,
    /// Why the certificate is not trusted for the host name (chain, name, validity); `None` when it is.
    pub certificate_error: Option<String>,
    /// The leaf certificate's end of validity.
    pub not_after: Option<i64>,
}

/// What fetching the MTA-STS policy gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyFetch {
    /// The policy's text.
    Body(String),
    Failed(String),
}

/// Everything the probes learnt about one domain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub domain: String,
    /// TXT at `_dmarc.<domain>`.
    pub dmarc: Answer<String>,
    /// When the domain has no DMARC record: the record that applies to it by the RFC 9989 tree walk,
    /// with the name it is published at.
    pub inherited: Option<(String, String)>,
    /// TXT at `<policy domain>._report._dmarc.<destination>` (the key), per external report
    /// destination of the record that applies.
    pub report_auth: BTreeMap<String, Answer<String>>,
    /// The DNS answers SPF evaluation of the domain needs, from the TXT records of the domain itself
    /// through every `include`, `redirect`, `a` and `mx`: keys are `TXT name`, `A name` (A and AAAA)
    /// and `MX name`.
    pub spf_dns: BTreeMap<String, Answer<String>>,
    pub mx: Answer<Mx>,
    pub mx_tls: Vec<MxTls>,
    /// TXT at `_mta-sts.<domain>`.
    pub mta_sts: Answer<String>,
    /// `https://mta-sts.<domain>/.well-known/mta-sts.txt`, fetched when `_mta-sts` has a record.
    pub mta_sts_policy: Option<PolicyFetch>,
    /// TXT at `_smtp._tls.<domain>`.
    pub tls_rpt: Answer<String>,
    /// TXT at `<selector>._domainkey.<domain>`, per selector.
    pub dkim: BTreeMap<String, Answer<String>>,
}

/// A DKIM selector seen signing for the domain in stored reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectorSeen {
    pub selector: String,
    pub first: Option<i64>,
    pub last: Option<i64>,
}

/// A source IP the reports show sending as the domain, judged legitimate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LegitimateSource {
    pub ip: String,
    pub sender: String,
    pub messages: u64,
}

/// What the stored reports (and the config) say about a domain, for the checks that join DNS with
/// reports.
#[derive(Debug, Clone, Default)]
pub struct Hints {
    /// The policy in the latest aggregate report, and that report's end.
    pub reported_policy: Option<(crate::model::PolicyPublished, Option<i64>)>,
    /// Selectors from the reports; those named only in the config have no dates.
    pub selectors: Vec<SelectorSeen>,
    pub legitimate: Vec<LegitimateSource>,
    /// Messages the reports show with this domain in From, in the window looked at.
    pub messages: u64,
    /// SMTP TLS reports stored for the domain, and the end of the latest.
    pub tls_reports: u64,
    pub tls_last: Option<i64>,
    /// When the check runs (seconds since the epoch): certificate and selector ages count from it.
    pub now: i64,
}

/// Which check a finding belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    Dmarc,
    ReportAuth,
    Spf,
    Dkim,
    MxTls,
    MtaSts,
    TlsRpt,
}

impl Check {
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Dmarc => "dmarc",
            Check::ReportAuth => "report-auth",
            Check::Spf => "spf",
            Check::Dkim => "dkim",
            Check::MxTls => "mx-tls",
            Check::MtaSts => "mta-sts",
            Check::TlsRpt => "tls-rpt",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Ok,
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub check: Check,
    pub severity: Severity,
    pub message: String,
    /// What to do about it; `None` for `ok`.
    pub fix: Option<String>,
}

/// The raw records found, as `check --format json` shows them under `published`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedRecords {
    pub dmarc: Vec<String>,
    pub spf: Vec<String>,
    pub mta_sts: Vec<String>,
    pub tls_rpt: Vec<String>,
    pub dkim: BTreeMap<String, Vec<String>>,
    /// `preference host`.
    pub mx: Vec<String>,
}

impl PublishedRecords {
    pub fn from_facts(f: &Facts) -> PublishedRecords {
        let starts = |a: &Answer<String>, prefix: &str| -> Vec<String> {
            a.records()
                .iter()
                .filter(|r| {
                    r.trim_start()
                        .get(..prefix.len())
                        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
                })
                .cloned()
                .collect()
        };
        PublishedRecords {
            dmarc: starts(&f.dmarc, "v=DMARC1"),
            spf: f
                .spf_dns
                .get(&format!("TXT {}", f.domain))
                .map(Answer::records)
                .unwrap_or_default()
                .iter()
                .filter(|r| crate::parse::records::is_spf(r))
                .cloned()
                .collect(),
            mta_sts: starts(&f.mta_sts, "v=STSv1"),
            tls_rpt: starts(&f.tls_rpt, "v=TLSRPTv1"),
            dkim: f
                .dkim
                .iter()
                .map(|(s, a)| (s.clone(), a.records().to_vec()))
                .collect(),
            mx: f
                .mx
                .records()
                .iter()
                .map(|m| format!("{} {}", m.preference, m.host))
                .collect(),
        }
    }
}

/// The outcome of checking one domain: what `check` prints and the store keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DomainCheck {
    pub domain: String,
    pub checked_at: Timestamp,
    pub published: PublishedRecords,
    pub findings: Vec<Finding>,
}

impl DomainCheck {
    pub fn worst(&self) -> Severity {
        self.findings
            .iter()
            .map(|f| f.severity)
            .max()
            .unwrap_or(Severity::Ok)
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }
}
