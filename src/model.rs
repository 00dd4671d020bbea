//! Plain data types shared by every stage: what a parsed report is, what an input that failed is.
//!
//! Nothing here does I/O or knows about SQLite; the types serialise with serde so that golden tests and
//! `--format json` see the same shape.

use serde::Serialize;

/// A record's short texts (addresses, domains, selectors): up to 24 bytes kept inline rather than
/// allocated, so a record of a typical report allocates for its lists only (issue 21: allocation
/// and, on another thread, freeing were ~1,300 instructions a record). Reads as a `&str`. Also an
/// evidence key's texts: a year of a large estate is ~90k keys, whose texts, each allocated on its
/// own, were read from all over memory by `senders` and put in order (`senders --days 365` on the
/// 10M estate 9% faster inline).
pub type ShortStr = compact_str::CompactString;

/// A record's authentication results of one kind: most records have one, held in the record.
pub type AuthResults<T> = smallvec::SmallVec<[T; 1]>;

/// One DMARC aggregate (rua) report, as RFC 7489 Appendix C and RFC 9990 (`dmarc-2.0`) describe it.
///
/// Results and dispositions are parsed once, here at the edge, into enums ([`DkimResult`],
/// [`SpfResult`], [`DmarcResult`], [`Disposition`]); a value outside the schema (`hardfail`,
/// `unknown`) is kept in their `Other` variant, so what the reporter said is stored, never dropped.
/// Policy values (`p`, `sp`…) stay lower-cased strings.
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
    /// Its messages and those that passed DMARC, over all records.
    pub fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        self.records.iter().for_each(|r| totals.add(r));
        totals
    }

    /// Sum of `<count>` over all records ([`Totals::messages`]).
    pub fn message_count(&self) -> u64 {
        self.totals().messages
    }

    /// Messages that passed DMARC ([`Totals::passed`]).
    pub fn pass_count(&self) -> u64 {
        self.totals().passed
    }
}

/// A report's messages, summed record by record (so that a pass over its records for another
/// purpose can sum them too: [`crate::store::Block`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Sum of `<count>` (saturating: the parser bounds a count, a report built otherwise need
    /// not be).
    pub messages: u64,
    /// Of those, the messages that passed DMARC: aligned DKIM or aligned SPF pass in
    /// `policy_evaluated` ([`Record::dmarc_pass`]).
    pub passed: u64,
}

impl Totals {
    /// Counts `record`'s messages.
    #[inline]
    pub fn add(&mut self, record: &Record) {
        self.messages = self.messages.saturating_add(record.count);
        if record.dmarc_pass() {
            self.passed = self.passed.saturating_add(record.count);
        }
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
    pub source_ip: ShortStr,
    pub count: u64,
    pub disposition: Option<Disposition>,
    /// DMARC-aligned DKIM result from `policy_evaluated`.
    pub dkim: Option<DmarcResult>,
    /// DMARC-aligned SPF result from `policy_evaluated`.
    pub spf: Option<DmarcResult>,
    pub reasons: Vec<PolicyOverride>,
    pub header_from: Option<ShortStr>,
    pub envelope_from: Option<ShortStr>,
    pub envelope_to: Option<ShortStr>,
    pub dkim_results: AuthResults<DkimAuthResult>,
    pub spf_results: AuthResults<SpfAuthResult>,
}

impl Record {
    /// DMARC passes when either aligned identifier passed.
    pub fn dmarc_pass(&self) -> bool {
        self.dkim == Some(DmarcResult::Pass) || self.spf == Some(DmarcResult::Pass)
    }

    /// The DKIM result that says most about the sender: the first passing signature, else the first.
    pub fn deciding_dkim(&self) -> Option<&DkimAuthResult> {
        self.dkim_results
            .iter()
            .find(|d| d.result == DkimResult::Pass)
            .or(self.dkim_results.first())
    }

    /// The SPF result for the envelope sender (`mfrom`, or no scope given), else the first.
    pub fn deciding_spf(&self) -> Option<&SpfAuthResult> {
        self.spf_results
            .iter()
            .find(|s| s.scope.as_deref().is_none_or(|scope| scope == "mfrom"))
            .or(self.spf_results.first())
    }

    /// The receiver overrode the policy because the mail was indirect: forwarded, a mailing list, a
    /// trusted forwarder, or local policy.
    pub fn forwarded(&self) -> bool {
        self.reasons.iter().any(|r| {
            matches!(
                r.kind.as_str(),
                "forwarded" | "mailing_list" | "trusted_forwarder" | "local_policy"
            )
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PolicyOverride {
    /// `forwarded`, `sampled_out`, `trusted_forwarder`, `mailing_list`, `local_policy`, `other`.
    pub kind: String,
    pub comment: Option<String>,
}

/// One `<auth_results><dkim>`: a DKIM signature and how it verified.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DkimAuthResult {
    pub domain: ShortStr,
    pub selector: Option<ShortStr>,
    pub result: DkimResult,
    pub human_result: Option<String>,
}

/// One `<auth_results><spf>`: a domain SPF was checked for, and the result.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SpfAuthResult {
    pub domain: ShortStr,
    /// `helo` or `mfrom`.
    pub scope: Option<ShortStr>,
    pub result: SpfResult,
}

/// An enumerated value of a report: the values of the schema as variants, anything else kept as
/// sent (lower-cased) in `Other`. Written, serialised, compared and ordered as its text, so JSON,
/// CSV and the database see exactly the string the report carried.
macro_rules! report_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A value outside the schema, lower-cased, kept as the reporter sent it (empty when the
            /// element was empty).
            Other(String),
        }

        impl $name {
            /// The value of a report's text (any case); never fails.
            pub fn parse(text: &str) -> Self {
                // As written (reports mostly, stored keys always): one comparison of lengths and
                // bytes, not one case-blind comparison per value in turn.
                match text {
                    $($text => return $name::$variant,)*
                    _ => {}
                }
                match text {
                    $(t if t.eq_ignore_ascii_case($text) => $name::$variant,)*
                    other => $name::Other(other.to_ascii_lowercase()),
                }
            }

            /// The value as reports (and the database) write it.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)*
                    $name::Other(text) => text,
                }
            }
        }

        impl Default for $name {
            /// The empty value of a report that left the element empty.
            fn default() -> Self {
                $name::Other(String::new())
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.as_str() == other.as_str()
            }
        }

        impl Eq for $name {}

        impl std::hash::Hash for $name {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.as_str().hash(state)
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $name {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.as_str().cmp(other.as_str())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

report_enum! {
    /// A DKIM verification result (RFC 7489 `DKIMResultType`, RFC 8601).
    DkimResult {
        None = "none",
        Pass = "pass",
        Fail = "fail",
        Policy = "policy",
        Neutral = "neutral",
        TempError = "temperror",
        PermError = "permerror",
    }
}

report_enum! {
    /// An SPF result (RFC 7489 `SPFResultType`, RFC 7208 §2.6).
    SpfResult {
        None = "none",
        Neutral = "neutral",
        Pass = "pass",
        Fail = "fail",
        SoftFail = "softfail",
        TempError = "temperror",
        PermError = "permerror",
    }
}

report_enum! {
    /// `policy_evaluated`'s DMARC-aligned DKIM or SPF result (RFC 7489 `DMARCResultType`).
    DmarcResult {
        Pass = "pass",
        Fail = "fail",
    }
}

report_enum! {
    /// What the receiver did with the mail (`DispositionType`; `pass` is RFC 9990's).
    Disposition {
        None = "none",
        Pass = "pass",
        Quarantine = "quarantine",
        Reject = "reject",
    }
}

impl Disposition {
    /// The receiver quarantined or rejected the mail.
    pub fn enforced(&self) -> bool {
        matches!(self, Disposition::Quarantine | Disposition::Reject)
    }
}

/// One failure (forensic) report: an ARF message (RFC 5965) with the DMARC extensions of RFC 6591 /
/// RFC 9991, or another ARF type (abuse, fraud, opt-out…), stored by its `Feedback-Type`.
///
/// Multi-valued fields keep every value in order. Addresses may be redacted at parse time
/// (`--redact`): the local part is replaced by a hash.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FailureReport {
    /// SHA-256 over the feedback fields and the original headers as received: what makes storing the
    /// same report twice a no-op.
    pub key: String,
    /// `From` of the report message: who reported.
    pub reporter: Option<String>,
    /// `Message-ID` of the report message.
    pub report_id: Option<String>,
    /// `auth-failure`, `abuse`, `fraud`, `virus`, `not-spam`, `opt-out`, `other`… lower-cased.
    pub feedback_type: String,
    pub user_agent: Option<String>,
    pub version: Option<String>,
    /// `dmarc`, `dkim`, `spf`, `adsp`, `bodyhash`, `revoked`, `signature` (RFC 6591).
    pub auth_failure: Option<String>,
    /// `Arrival-Date`, seconds since the epoch, when it parses as an RFC 5322 date.
    pub arrival_date: Option<i64>,
    /// `Arrival-Date` as written.
    pub arrival_date_text: Option<String>,
    /// `Source-IP`, normalised; a trailing `(host name)` is dropped.
    pub source_ip: Option<String>,
    /// `Reported-Domain` values, lower-cased; the first is the domain the report is filed under.
    pub reported_domains: Vec<String>,
    pub reported_uris: Vec<String>,
    pub original_mail_from: Option<String>,
    pub original_rcpt_to: Vec<String>,
    pub authentication_results: Vec<String>,
    pub dkim_domain: Option<String>,
    pub dkim_identity: Option<String>,
    pub dkim_selector: Option<String>,
    pub spf_dns: Option<String>,
    pub delivery_result: Option<String>,
    pub identity_alignment: Option<String>,
    pub incidents: Option<u64>,
    /// Feedback fields outside the RFCs, as `(name, value)`.
    pub other_fields: Vec<(String, String)>,
    /// The reported message (third part), when the report carried one.
    pub original: Option<OriginalMessage>,
}

/// What is kept of the message a failure report is about.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OriginalMessage {
    pub from: Option<String>,
    pub to: Option<String>,
    pub subject: Option<String>,
    pub date: Option<String>,
    pub message_id: Option<String>,
    /// `Authentication-Results`, `DKIM-Signature`, `Received-SPF`, `ARC-*` headers as `Name: value`.
    pub auth_headers: Vec<String>,
    /// The body, only with `--keep-failure-bodies` (bodies are personal data).
    pub body: Option<String>,
}

/// One SMTP TLS report (RFC 8460).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TlsReport {
    pub org_name: String,
    pub report_id: String,
    pub contact_info: Option<String>,
    pub begin: Option<i64>,
    pub end: Option<i64>,
    pub policies: Vec<TlsPolicy>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TlsPolicy {
    /// `sts`, `tlsa`, `no-policy-found` (lower-cased).
    pub policy_type: String,
    /// Lower-cased, without a trailing dot; empty when the reporter left it out.
    pub policy_domain: String,
    pub policy_strings: Vec<String>,
    pub mx_hosts: Vec<String>,
    pub successful_sessions: u64,
    pub failed_sessions: u64,
    pub failures: Vec<TlsFailure>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TlsFailure {
    /// `starttls-not-supported`, `certificate-expired`, `sts-policy-fetch-error`…
    pub result_type: String,
    pub sending_mta_ip: Option<String>,
    pub receiving_mx_hostname: Option<String>,
    pub receiving_mx_helo: Option<String>,
    pub receiving_ip: Option<String>,
    pub failed_sessions: u64,
    pub additional_information: Option<String>,
    pub failure_reason_code: Option<String>,
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
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failure_reports: Vec<Located<FailureReport>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tls_reports: Vec<Located<TlsReport>>,
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
        match crate::time::format_rfc3339(self.0) {
            Some(t) => f.write_str(&t),
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
    /// Failure reports received about mail from this source IP for this domain.
    pub failure_reports: u64,
}

impl SourceSummary {
    /// The group of (`domain`, `source_ip`, `header_from`), nothing counted yet.
    pub fn group(domain: String, source_ip: String, header_from: Option<String>) -> Self {
        SourceSummary {
            domain,
            source_ip,
            header_from,
            messages: 0,
            dmarc_pass: 0,
            dkim_aligned: 0,
            spf_aligned: 0,
            quarantined: 0,
            rejected: 0,
            reports: 0,
            failure_reports: 0,
        }
    }

    /// Adds the counts of `o`, the same group over other reports.
    pub fn absorb(&mut self, o: &SourceSummary) {
        for (mine, theirs) in [
            (&mut self.messages, o.messages),
            (&mut self.dmarc_pass, o.dmarc_pass),
            (&mut self.dkim_aligned, o.dkim_aligned),
            (&mut self.spf_aligned, o.spf_aligned),
            (&mut self.quarantined, o.quarantined),
            (&mut self.rejected, o.rejected),
            (&mut self.reports, o.reports),
            (&mut self.failure_reports, o.failure_reports),
        ] {
            *mine = mine.saturating_add(theirs);
        }
    }

    /// Counts `messages` messages of records whose `policy_evaluated` says `dkim`, `spf` and
    /// `disposition`.
    pub fn count(
        &mut self,
        dkim: Option<DmarcResult>,
        spf: Option<DmarcResult>,
        disposition: Option<Disposition>,
        messages: u64,
    ) {
        let pass = |r: &Option<DmarcResult>| *r == Some(DmarcResult::Pass);
        let add = |n: &mut u64, yes: bool| *n = n.saturating_add(if yes { messages } else { 0 });
        add(&mut self.messages, true);
        add(&mut self.dmarc_pass, pass(&dkim) || pass(&spf));
        add(&mut self.dkim_aligned, pass(&dkim));
        add(&mut self.spf_aligned, pass(&spf));
        add(
            &mut self.quarantined,
            disposition == Some(Disposition::Quarantine),
        );
        add(&mut self.rejected, disposition == Some(Disposition::Reject));
    }
}

/// `failures`: one row per stored failure (ARF) report, newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailureSummary {
    pub arrival_date: Option<Timestamp>,
    pub feedback_type: String,
    pub reported_domain: Option<String>,
    pub source_ip: Option<String>,
    pub auth_failure: Option<String>,
    pub delivery_result: Option<String>,
    pub original_mail_from: Option<String>,
    pub original_from: Option<String>,
    pub original_subject: Option<String>,
    pub reporter: Option<String>,
}

/// `tls`: one row per policy domain and MX host pattern.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TlsSummary {
    pub domain: String,
    /// The policy's MX host patterns, comma-separated (empty for `no-policy-found`).
    pub mx_hosts: String,
    /// The policy types reported, `sts,tlsa` (without spaces).
    pub policy_types: String,
    pub successful_sessions: u64,
    pub failed_sessions: u64,
    pub failure_pct: f64,
    /// The most frequent failure result types with their session counts, most first.
    pub top_failures: String,
    /// Reporting organisations, comma-separated.
    pub reporters: String,
    pub reports: u64,
}

impl TlsSummary {
    /// A list of names as the listing shows it: `a, b, c`.
    pub fn list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
        items.into_iter().collect::<Vec<_>>().join(", ")
    }

    /// [`TlsSummary::policy_types`] from the types reported.
    pub fn types<'a>(types: impl IntoIterator<Item = &'a str>) -> String {
        types.into_iter().collect::<Vec<_>>().join(",")
    }

    /// [`TlsSummary::top_failures`] from failure result types and their session counts, most first:
    /// the first three, `certificate-expired: 12, validation-failure: 4`.
    pub fn top(failures: &[(String, u64)]) -> String {
        failures
            .iter()
            .take(3)
            .map(|(kind, n)| format!("{kind}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
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

/// What the stored aggregate records say about one kind of mail: a source IP sending as a domain
/// with particular authentication results, summed over reports. The input of sender
/// classification and policy advice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EvidenceKey {
    /// The policy domain of the report.
    pub domain: ShortStr,
    pub source_ip: ShortStr,
    pub header_from: ShortStr,
    /// Domain of the first passing DKIM signature, else of the first signature; empty if unsigned.
    pub dkim_domain: ShortStr,
    pub dkim_result: DkimResult,
    /// SPF-authenticated domain (MAIL FROM, else HELO, else the envelope from); empty if unknown.
    pub spf_domain: ShortStr,
    pub spf_result: SpfResult,
    /// `policy_evaluated`: aligned DKIM / aligned SPF passed.
    pub dkim_aligned: bool,
    pub spf_aligned: bool,
    /// `none` when the report gave none.
    pub disposition: Disposition,
    /// The receiver overrode the policy as forwarded, mailing list, trusted forwarder or local policy.
    pub forwarded: bool,
}

impl EvidenceKey {
    /// The key as bytes that sort as the key does (`a.cmp(b)` is `a.order_bytes().cmp(&b.order_bytes())`),
    /// written into `out`: sorting tens of thousands of keys compares each pair once with one
    /// `memcmp` instead of field by field. Each text is written with 0 and 1 escaped (as 1 1 and
    /// 1 2) and ended by a 0, so a shorter text sorts first; flags are one byte.
    pub fn order_bytes(&self, out: &mut Vec<u8>) {
        fn text(out: &mut Vec<u8>, t: &str) {
            // Names hold neither byte to escape: copied whole (a year's keys, a byte at a time,
            // were two thirds of putting them in order), found by a scan without early exit
            // (which the compiler does many bytes at a time).
            if !t.bytes().fold(false, |found, b| found | (b <= 1)) {
                out.extend_from_slice(t.as_bytes());
            } else {
                for &b in t.as_bytes() {
                    match b {
                        0 | 1 => out.extend_from_slice(&[1, b + 1]),
                        b => out.push(b),
                    }
                }
            }
            out.push(0);
        }
        text(out, &self.domain);
        text(out, &self.source_ip);
        text(out, &self.header_from);
        text(out, &self.dkim_domain);
        text(out, self.dkim_result.as_str());
        text(out, &self.spf_domain);
        text(out, self.spf_result.as_str());
        out.push(u8::from(self.dkim_aligned));
        out.push(u8::from(self.spf_aligned));
        text(out, self.disposition.as_str());
        out.push(u8::from(self.forwarded));
    }

    /// DMARC passes when either aligned identifier passed (as [`Record::dmarc_pass`]).
    pub fn dmarc_pass(&self) -> bool {
        self.dkim_aligned || self.spf_aligned
    }

    /// Messages of this kind were quarantined or rejected by the receiver.
    pub fn enforced(&self) -> bool {
        self.disposition.enforced()
    }
}

/// Message counts and span for one [`EvidenceKey`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evidence {
    pub key: EvidenceKey,
    pub messages: u64,
    pub first: Option<i64>,
    pub last: Option<i64>,
    pub reporters: Reporters,
    /// Days (since the epoch) that reports covering this mail began on: increasing, each once
    /// ([`add_day`]).
    pub days: Vec<i64>,
    /// `None`: the mail of `key.source_ip` alone (a row of the records). `Some`: mail summed over
    /// these source IPs (a row of the rollups, whose key names no IP, or one that stands for
    /// them all): its messages are not known per IP.
    pub ips: Option<IpSet>,
}

/// Adds `day` to `days` (increasing, each once), where it belongs.
pub fn add_day(days: &mut Vec<i64>, day: i64) {
    if let Err(at) = days.binary_search(&day) {
        days.insert(at, day);
    }
}

/// The reporters of an [`Evidence`] row, each once, in order of their names.
///
/// A read of the rollups meets a few dozen names over a year's hundred thousand rows: the names
/// are kept once, in a table the rows of one read share, and each row holds its places in it
/// (each row's names copied into a sorted set of its own, and dropped again, were half a million
/// allocations for a year of a large estate). The table is made by a [`ReporterTable`], as the
/// rows are summed.
#[derive(Clone, Default)]
pub struct Reporters {
    /// Names in increasing order, each once.
    table: std::sync::Arc<Vec<String>>,
    /// This row's places in `table`, increasing: shared too by rows with the same names (a
    /// year's rows have a few dozen sets of them between them).
    places: std::sync::Arc<[u32]>,
}

impl Reporters {
    /// The names at `places` of `table` (a table whose names increase, each once; places are
    /// kept increasing and in the table).
    pub fn shared(table: std::sync::Arc<Vec<String>>, mut places: Vec<u32>) -> Reporters {
        places.retain(|p| (*p as usize) < table.len());
        places.sort_unstable();
        places.dedup();
        Reporters {
            table,
            places: places.into(),
        }
    }

    /// The names, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        self.places
            .iter()
            .filter_map(|p| self.table.get(*p as usize))
            .map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.places.len()
    }

    pub fn is_empty(&self) -> bool {
        self.places.is_empty()
    }
}

impl PartialEq for Reporters {
    fn eq(&self, them: &Reporters) -> bool {
        self.iter().eq(them.iter())
    }
}

impl Eq for Reporters {}

/// The row's names, not the whole table.
impl std::fmt::Debug for Reporters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// The reporters' names met while summing evidence rows, each given a place once, made at the
/// end the table the rows' [`Reporters`] share ([`ReporterTable::finish`]).
#[derive(Debug, Default)]
pub struct ReporterTable {
    names: Vec<String>,
    places: std::collections::HashMap<String, u32, foldhash::fast::RandomState>,
}

impl ReporterTable {
    /// The place of `name`, given when new.
    pub fn place(&mut self, name: &str) -> u32 {
        if let Some(p) = self.places.get(name) {
            return *p;
        }
        let next = self.names.len() as u32;
        self.names.push(name.to_owned());
        self.places.insert(name.to_owned(), next);
        next
    }

    /// The names in order, to be shared by the rows ([`SharedNames::row`]).
    pub fn finish(self) -> SharedNames {
        let mut by_name: Vec<u32> = (0..self.names.len() as u32).collect();
        by_name.sort_unstable_by(|a, b| self.names[*a as usize].cmp(&self.names[*b as usize]));
        let mut renumber = vec![0u32; by_name.len()];
        for (new, old) in by_name.iter().enumerate() {
            renumber[*old as usize] = new as u32;
        }
        let mut names = self.names;
        names.sort_unstable();
        SharedNames {
            table: std::sync::Arc::new(names),
            renumber,
        }
    }
}

/// A [`ReporterTable`]'s names in order, the table every row's [`Reporters`] share.
#[derive(Debug)]
pub struct SharedNames {
    table: std::sync::Arc<Vec<String>>,
    /// Each place the table gave ([`ReporterTable::place`]) → its name's place in `table`.
    renumber: Vec<u32>,
}

impl SharedNames {
    /// How many names.
    pub fn len(&self) -> usize {
        self.renumber.len()
    }

    pub fn is_empty(&self) -> bool {
        self.renumber.is_empty()
    }

    /// A row's reporters: the names at `places`, as [`ReporterTable::place`] gave them.
    pub fn row(&self, places: impl IntoIterator<Item = u32>) -> Reporters {
        let places = places
            .into_iter()
            .filter_map(|p| self.renumber.get(p as usize).copied());
        Reporters::shared(self.table.clone(), places.collect())
    }
}

/// The reporters of several [`Evidence`] rows, each once: names met by where they are (rows of
/// one read share their names, so a name is hashed as an address, not as text), told apart as
/// texts at the end.
#[derive(Debug, Default)]
pub struct ReporterUnion<'e> {
    seen: std::collections::HashMap<(usize, usize), &'e str, foldhash::fast::RandomState>,
}

impl<'e> ReporterUnion<'e> {
    pub fn add(&mut self, r: &'e Reporters) {
        for name in r.iter() {
            self.seen
                .entry((name.as_ptr() as usize, name.len()))
                .or_insert(name);
        }
    }

    /// The names, in order, each once.
    pub fn names(&self) -> Vec<&'e str> {
        let mut names: Vec<&'e str> = self.seen.values().copied().collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

/// One source IP's mail under one of the keys a caller asked for
/// ([`crate::store::Store::evidence_of_keys`]): the records from `ip` whose key without the IP
/// is the caller's `key`-th, summed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpEvidence {
    pub ip: String,
    /// The place of the key among those asked for.
    pub key: usize,
    pub messages: u64,
    pub reporters: std::collections::BTreeSet<String>,
}

/// A set of source IPs as reports write them: canonical IPv4 addresses as numbers, anything else
/// (IPv6, text that is not an address) as the text sent, so that two sets count exactly the
/// distinct strings the records hold.
///
/// The IPv4 addresses are kept where they were gathered — runs of one list (the arena) that a
/// whole read shares, each run increasing, one per row a key was summed from, which may overlap —
/// and sorted, each once, only when a caller asks for the set itself ([`IpSet::v4`],
/// [`IpSet::len`], [`IpSet::iter`]): `senders` counts a sender's addresses from its rows' runs
/// ([`IpSet::v4_runs`], [`distinct_v4`]). Copying each row's addresses out of the arena, and
/// each sender's again, wrote a year's four million addresses twice more (and faulted in the
/// pages to hold them). A plain list rather than a compressed bitmap: source IPs are sparse, so
/// a bitmap's containers held a few addresses each and cost more to build and to walk.
#[derive(Clone, Default)]
pub struct IpSet {
    /// The list the addresses are in, shared by the sets of one read.
    arena: std::sync::Arc<Vec<u32>>,
    /// This set's runs of `arena` (start, end).
    runs: Vec<(usize, usize)>,
    /// The runs are one, increasing (each address once): a key summed from one row.
    increasing: bool,
    /// The addresses sorted, each once, when they are not already: made on first need.
    sorted: std::sync::OnceLock<Vec<u32>>,
    pub other: std::collections::BTreeSet<String>,
}

impl PartialEq for IpSet {
    fn eq(&self, them: &IpSet) -> bool {
        self.v4() == them.v4() && self.other == them.other
    }
}

impl Eq for IpSet {}

/// The set's own addresses, not the whole list they are runs of.
impl std::fmt::Debug for IpSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IpSet")
            .field("v4", &self.v4_runs().collect::<Vec<_>>())
            .field("other", &self.other)
            .finish()
    }
}

/// `ip` as a number when it is an IPv4 address written canonically (as `Ipv4Addr` writes it back:
/// four decimal octets without leading zeros), so that a set of numbers counts exactly the
/// distinct texts.
pub fn canonical_v4(ip: &str) -> Option<u32> {
    // Octet by octet (the parser and the rollups ask this of every record): each is a digit,
    // then up to two more unless the first is a zero, then a dot before the next. Issue 21: a
    // pass byte by byte with its state in four variables took about 50 instructions more an
    // address (the rollups' `Sums::add`, which asks it once a record: 45.8M → 40.1M over
    // 119,935 records).
    let b = ip.as_bytes();
    let digit = |i: usize| {
        b.get(i)
            .map(|c| u32::from(c.wrapping_sub(b'0')))
            .filter(|d| *d <= 9)
    };
    let (mut n, mut i) = (0u32, 0usize);
    for k in 0..4 {
        let mut octet = digit(i)?;
        i += 1;
        if octet != 0 {
            for _ in 0..2 {
                let Some(d) = digit(i) else { break };
                octet = octet * 10 + d;
                i += 1;
            }
            if octet > 255 {
                return None;
            }
        }
        n = n << 8 | octet;
        if k < 3 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
    }
    (i == b.len()).then_some(n)
}

/// Lists reused by [`distinct_v4`] and [`sort_v4`] from one set to the next (a year's senders
/// counted a list of millions, each sort allocating its own and faulting its pages in).
#[derive(Debug, Default)]
pub struct V4Scratch {
    a: Vec<u32>,
    b: Vec<u32>,
}

/// How many distinct addresses `runs` hold together (in any order, repeated or not).
pub fn distinct_v4(runs: &[&[u32]], scratch: &mut V4Scratch) -> usize {
    let sorted = sorted_v4(runs, scratch);
    let mut n = usize::from(!sorted.is_empty());
    n += sorted.windows(2).filter(|w| w[0] != w[1]).count();
    n
}

/// The addresses of `runs` (in any order, repeated or not) as a set: sorted, each once.
pub fn sort_v4(runs: &[&[u32]]) -> Vec<u32> {
    let mut scratch = V4Scratch::default();
    let sorted = sort_runs(runs, &mut scratch);
    let mut v4 = into_sorted(scratch, sorted);
    v4.dedup();
    v4
}

/// The list [`sort_runs`] sorted `n` addresses into (`in_a`), taken from `scratch`.
fn into_sorted(scratch: V4Scratch, (n, in_a): (usize, bool)) -> Vec<u32> {
    let mut v = if in_a { scratch.a } else { scratch.b };
    v.truncate(n);
    v
}

/// The addresses of `runs` sorted (repeats kept), in one of `scratch`'s lists.
fn sorted_v4<'s>(runs: &[&[u32]], scratch: &'s mut V4Scratch) -> &'s [u32] {
    let (n, in_a) = sort_runs(runs, scratch);
    let list = if in_a { &scratch.a } else { &scratch.b };
    &list[..n]
}

/// Sorts the addresses of `runs` (repeats kept) into one of `scratch`'s lists: how many, and
/// whether the list is `a`. A year of a large
/// estate gathers millions, in runs too short for a merge to find, so a long list is sorted by
/// radix — least significant digit first, three digits of 11 bits, one counting pass for all
/// three, a digit that is the same in every address skipped, the first pass reading the runs
/// themselves — and a short one by comparison.
fn sort_runs(runs: &[&[u32]], scratch: &mut V4Scratch) -> (usize, bool) {
    const BITS: usize = 11;
    const BUCKETS: usize = 1 << BITS;
    let n: usize = runs.iter().map(|r| r.len()).sum();
    let V4Scratch { a, b } = scratch;
    if n < 1024 {
        a.clear();
        for r in runs {
            a.extend_from_slice(r);
        }
        a.sort_unstable();
        return (n, true);
    }
    let mut counts = vec![[0usize; BUCKETS]; 3];
    for &x in runs.iter().flat_map(|r| r.iter()) {
        for (digit, count) in counts.iter_mut().enumerate() {
            count[(x >> (digit * BITS)) as usize & (BUCKETS - 1)] += 1;
        }
    }
    // Every slot is written before it is read: the lists only grow, never cleared.
    for list in [&mut *a, &mut *b] {
        if list.len() < n {
            list.resize(n, 0);
        }
    }
    let (mut from, mut to) = (&mut b[..n], &mut a[..n]);
    let (mut first, mut in_a) = (true, false);
    for (digit, count) in counts.iter().enumerate() {
        if count.contains(&n) {
            continue;
        }
        let mut at = [0usize; BUCKETS];
        let mut sum = 0;
        for (slot, c) in at.iter_mut().zip(count) {
            *slot = sum;
            sum += c;
        }
        let mut scatter = |x: u32| {
            let d = (x >> (digit * BITS)) as usize & (BUCKETS - 1);
            to[at[d]] = x;
            at[d] += 1;
        };
        if first {
            runs.iter().flat_map(|r| r.iter()).for_each(|&x| scatter(x));
            first = false;
        } else {
            from.iter().for_each(|&x| scatter(x));
        }
        std::mem::swap(&mut from, &mut to);
        in_a = !in_a;
    }
    if first {
        // Every address the same.
        let one = runs
            .iter()
            .find_map(|r| r.first())
            .copied()
            .unwrap_or_default();
        from.fill(one);
    }
    (n, in_a)
}

impl IpSet {
    /// The set of the IPv4 addresses `v4` (in any order, repeated or not) and the texts `other`.
    pub fn new(v4: Vec<u32>, other: std::collections::BTreeSet<String>) -> IpSet {
        let runs = vec![(0, v4.len())];
        IpSet::gathered(std::sync::Arc::new(v4), runs, other)
    }

    /// The set of the addresses of `arena`'s `runs` (start, end; each increasing, as a rollup
    /// row keeps them), and the texts `other`.
    pub fn gathered(
        arena: std::sync::Arc<Vec<u32>>,
        runs: Vec<(usize, usize)>,
        other: std::collections::BTreeSet<String>,
    ) -> IpSet {
        let runs: Vec<(usize, usize)> = runs
            .into_iter()
            .map(|(a, b)| (a.min(arena.len()), b.min(arena.len())))
            .filter(|(a, b)| a < b)
            .collect();
        let increasing = match runs.as_slice() {
            [] => true,
            [(a, b)] => arena[*a..*b].windows(2).all(|w| w[0] < w[1]),
            _ => false,
        };
        IpSet {
            arena,
            runs,
            increasing,
            sorted: std::sync::OnceLock::new(),
            other,
        }
    }

    /// The canonical IPv4 addresses ([`canonical_v4`]), increasing, each once.
    pub fn v4(&self) -> &[u32] {
        if self.increasing {
            return self.v4_runs().next().unwrap_or_default();
        }
        self.sorted
            .get_or_init(|| sort_v4(&self.v4_runs().collect::<Vec<_>>()))
    }

    /// Every canonical IPv4 address of the set at least once, in runs, in no particular order:
    /// for a caller that unites several sets and sorts the union itself.
    pub fn v4_runs(&self) -> impl Iterator<Item = &[u32]> + '_ {
        self.runs.iter().map(|(a, b)| &self.arena[*a..*b])
    }

    /// How many distinct IPs.
    pub fn len(&self) -> u64 {
        (self.v4().len() + self.other.len()) as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every IP, as text: IPv4 in numeric order, then the rest in byte order.
    pub fn iter(&self) -> impl Iterator<Item = String> + '_ {
        self.v4()
            .iter()
            .map(|a| std::net::Ipv4Addr::from(*a).to_string())
            .chain(self.other.iter().cloned())
    }
}

/// How a sender's mail relates to the domain's DMARC policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SenderClass {
    /// Passes DMARC through aligned DKIM and/or SPF.
    Aligned,
    /// A real sender of the domain's mail that fails alignment: fix before tightening.
    NeedsFixing,
    /// Indirect mail (forwarders, mailing lists): fails SPF for reasons the domain cannot fix.
    Forwarded,
    /// Fails both, with no legitimate pattern: what the policy is there to stop.
    Unauthorised,
}

impl SenderClass {
    /// Every class, in the order outputs list them.
    pub const ALL: [SenderClass; 4] = [
        SenderClass::Aligned,
        SenderClass::NeedsFixing,
        SenderClass::Forwarded,
        SenderClass::Unauthorised,
    ];

    /// Its place in [`SenderClass::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The class in words, as tables, notices and pages show it: `needs fixing`.
    pub fn label(self) -> &'static str {
        match self {
            SenderClass::Aligned => "aligned",
            SenderClass::NeedsFixing => "needs fixing",
            SenderClass::Forwarded => "forwarded",
            SenderClass::Unauthorised => "unauthorised",
        }
    }
}

/// `senders`: one row per sender (organisation or service) of one domain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SenderSummary {
    pub domain: String,
    pub sender: String,
    pub class: SenderClass,
    pub messages: u64,
    pub dmarc_pass: u64,
    pub dmarc_pass_pct: f64,
    pub dkim_aligned: u64,
    pub spf_aligned: u64,
    pub source_ips: u64,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
    pub reporters: String,
    /// One line: why this class, and what to fix.
    pub reason: String,
}

/// Messages of one [`Evidence`] row (by its index) in reports beginning on one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayCount {
    pub evidence: usize,
    /// Days since the epoch.
    pub day: i64,
    pub messages: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Long lists (sorted by radix) and short ones come out as a sorted set, whatever the order
    /// and repetition they come in.
    #[test]
    fn v4_lists_sort_into_sets() {
        let mut x: u32 = 12345;
        let mut scratch = V4Scratch::default();
        for n in [0usize, 1, 5, 1023, 1024, 70000, 5000] {
            let v: Vec<u32> = (0..n)
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    // Some repeated, some sharing their high digits, some their low.
                    match i % 4 {
                        0 => x,
                        1 => x & 0xff,
                        2 => x | 0xffff_0000,
                        _ => x % 97,
                    }
                })
                .collect();
            let mut want = v.clone();
            want.sort_unstable();
            want.dedup();
            // Counted from runs, with lists kept from the last count (longer or shorter).
            let (left, right) = v.split_at(n / 3);
            assert_eq!(distinct_v4(&[left, right], &mut scratch), want.len());
            assert_eq!(sort_v4(&[&v]), want, "{n} addresses");
        }
        let same = vec![7u32; 3000];
        assert_eq!(distinct_v4(&[&same, &same[..5]], &mut scratch), 1);
        assert_eq!(sort_v4(&[&same]), [7]);
    }

    /// A set gathered from overlapping runs is the set of its addresses: sorted, each once, when
    /// read as a set; as gathered when read for a union, and counted once each across sets.
    #[test]
    fn ip_sets_gathered_from_runs() {
        let arena = std::sync::Arc::new(vec![1, 5, 9, 2, 5, 10, 1, 2, 5]);
        let runs = IpSet::gathered(
            arena.clone(),
            vec![(0, 3), (3, 6), (6, 7)],
            Default::default(),
        );
        assert_eq!(runs.v4(), [1, 2, 5, 9, 10]);
        assert_eq!(runs.len(), 5);
        assert_eq!(runs.v4_runs().map(<[u32]>::len).sum::<usize>(), 7);
        let one = IpSet::new(vec![1, 2, 5, 9, 10], Default::default());
        assert_eq!(one.v4_runs().collect::<Vec<_>>(), [one.v4()]);
        assert_eq!(runs, one);
        assert_ne!(runs, IpSet::new(vec![1, 2], Default::default()));
        // One run, increasing: the set as it is; runs out of the arena are cut to it.
        let tail = IpSet::gathered(arena.clone(), vec![(6, 9), (9, 20)], Default::default());
        assert_eq!(tail.v4(), [1, 2, 5]);
        assert_eq!(
            IpSet::new(vec![3, 3], Default::default())
                .iter()
                .collect::<Vec<_>>(),
            ["0.0.0.3"]
        );
        let mut scratch = V4Scratch::default();
        let all: Vec<&[u32]> = runs.v4_runs().chain(tail.v4_runs()).collect();
        assert_eq!(distinct_v4(&all, &mut scratch), 5);
        assert_eq!(distinct_v4(&[], &mut scratch), 0);
    }

    /// Rows share one table of names, in order; a union of rows of two tables names each once.
    #[test]
    fn reporters_share_a_table() {
        let mut t = ReporterTable::default();
        let (y, g, m) = (t.place("Yahoo"), t.place("Google"), t.place("Mail.ru"));
        assert_eq!(t.place("Google"), g);
        let names = t.finish();
        let a = names.row([y, g, y]);
        let b = names.row([m]);
        assert_eq!(a.iter().collect::<Vec<_>>(), ["Google", "Yahoo"]);
        assert_eq!((a.len(), b.len()), (2, 1));
        assert_eq!(format!("{a:?}"), r#"{"Google", "Yahoo"}"#);
        // Another read's table, the same names elsewhere in memory.
        let mut t2 = ReporterTable::default();
        let y2 = t2.place("Yahoo");
        let c = t2.finish().row([y2, 7]);
        assert_eq!(c.iter().collect::<Vec<_>>(), ["Yahoo"]);
        assert_ne!(a, c);
        let mut all = ReporterUnion::default();
        for r in [&a, &b, &c, &a] {
            all.add(r);
        }
        assert_eq!(all.names(), ["Google", "Mail.ru", "Yahoo"]);
    }

    /// Keys sort by their order bytes exactly as by their fields: texts that are prefixes of
    /// others, empty, or hold the escaped bytes 0, 1 and 2; every field deciding in turn.
    #[test]
    fn order_bytes_sort_as_the_keys_do() {
        let texts = [
            "",
            "a",
            "a\u{0}",
            "a\u{1}",
            "a\u{2}",
            "ab",
            "b",
            "\u{0}",
            "\u{e9}x",
            "a.example",
        ];
        let mut keys = Vec::new();
        for (i, t) in texts.iter().enumerate() {
            for (j, u) in texts.iter().enumerate().step_by(3) {
                let base = EvidenceKey {
                    domain: (*t).into(),
                    header_from: (*u).into(),
                    ..EvidenceKey::default()
                };
                keys.push(base.clone());
                keys.push(EvidenceKey {
                    source_ip: (*u).into(),
                    dkim_domain: (*t).into(),
                    dkim_result: DkimResult::parse(u),
                    spf_aligned: i % 2 == 0,
                    ..base.clone()
                });
                keys.push(EvidenceKey {
                    spf_domain: (*t).into(),
                    spf_result: SpfResult::parse(t),
                    dkim_aligned: j % 2 == 1,
                    disposition: Disposition::parse(u),
                    forwarded: i % 3 == 0,
                    ..base
                });
            }
        }
        let bytes: Vec<Vec<u8>> = keys
            .iter()
            .map(|k| {
                let mut b = Vec::new();
                k.order_bytes(&mut b);
                b
            })
            .collect();
        for (a, ab) in keys.iter().zip(&bytes) {
            for (b, bb) in keys.iter().zip(&bytes) {
                assert_eq!(a.cmp(b), ab.cmp(bb), "{a:?} / {b:?}");
            }
        }
    }

    #[test]
    fn canonical_ipv4_is_what_ipv4addr_writes_back() {
        for ip in [
            "0.0.0.0",
            "192.0.2.1",
            "255.255.255.255",
            "10.0.0.01",
            "1.2.3",
            "1.2.3.4.5",
            "256.1.1.1",
            "1.2.3.4 ",
            "+1.2.3.4",
            "01.2.3.4",
            "1..3.4",
            "",
            "::1",
            "100.200.250.99",
            "1.2.3.999",
            "0.0.0.0",
            "255.255.255.255",
            "1.2.3.04",
            "1.2.3.",
            ".1.2.3",
            "1.2.3.4.",
            "1.2.3.256",
            "1.2.3.0000",
            "1.2.3.1000",
            "1.2.3.4a",
            "01.2.3.4",
            "1.02.3.4",
            "1..3.4",
            "1.2.3.4 ",
            " 1.2.3.4",
            "1.2.3",
            "1234.2.3.4",
            "10.20.30.40",
            "9.99.199.249",
            "1.2.3.0",
            "192.168.001.1",
            "1.2.3.4/24",
            "１.2.3.4",
        ] {
            let want = ip
                .parse::<std::net::Ipv4Addr>()
                .ok()
                .filter(|a| a.to_string() == ip)
                .map(u32::from);
            assert_eq!(canonical_v4(ip), want, "{ip}");
        }
    }

    #[test]
    fn report_values_read_in_any_case_and_write_as_sent() {
        assert_eq!(SpfResult::parse("SoftFail"), SpfResult::SoftFail);
        assert_eq!(SpfResult::SoftFail.as_str(), "softfail");
        assert_eq!(DkimResult::parse("PermError"), DkimResult::PermError);
        assert_eq!(Disposition::parse("pass"), Disposition::Pass);
        assert!(Disposition::parse("Reject").enforced() && !Disposition::Pass.enforced());
        // Outside the schema: kept, lower-cased, and still ordered and compared as its text.
        let odd = SpfResult::parse("HardFail");
        assert_eq!(odd, SpfResult::Other("hardfail".into()));
        assert_eq!(odd.to_string(), "hardfail");
        assert!(SpfResult::Fail < odd && odd < SpfResult::None);
        assert_eq!(DmarcResult::default().as_str(), "");
    }

    #[test]
    fn sender_classes_in_order() {
        for (i, c) in SenderClass::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
        }
        assert_eq!(SenderClass::NeedsFixing.label(), "needs fixing");
    }
}
