//! Findings from [`Facts`] and [`Hints`]: the rules of `check`, one function per check, each
//! returning its findings (an `ok` one when nothing is wrong). Pure: no I/O, no clock (the time of
//! the check is in the hints).

use std::net::IpAddr;

use super::spf::{self, CheckHostResult};
use super::{Answer, Check, Facts, Finding, Hints, PolicyFetch, Severity};
use crate::parse::records::{
    DMARC_REMOVED_TAGS, DMARC_TAGS, DkimKey, DmarcRecord, KeyBits, Mechanism, SpfTerm, StsPolicy,
    TagList, is_dmarc, is_spf, parse_spf,
};

/// Certificates ending within this many days are a warning.
const EXPIRY_WARNING_DAYS: i64 = 14;
/// A selector signing for longer than this is due for rotation.
const ROTATION_DAYS: i64 = 365;

struct Out {
    check: Check,
    findings: Vec<Finding>,
}

impl Out {
    fn new(check: Check) -> Out {
        Out {
            check,
            findings: Vec::new(),
        }
    }

    fn add(&mut self, severity: Severity, message: impl Into<String>, fix: Option<String>) {
        self.findings.push(Finding {
            check: self.check,
            severity,
            message: message.into(),
            fix,
        });
    }

    fn error(&mut self, message: impl Into<String>, fix: impl Into<String>) {
        self.add(Severity::Error, message, Some(fix.into()));
    }

    fn warning(&mut self, message: impl Into<String>, fix: impl Into<String>) {
        self.add(Severity::Warning, message, Some(fix.into()));
    }

    fn info(&mut self, message: impl Into<String>, fix: impl Into<String>) {
        self.add(Severity::Info, message, Some(fix.into()));
    }

    fn ok(&mut self, message: impl Into<String>) {
        self.add(Severity::Ok, message, None);
    }

    /// The findings, with an `ok` one when `ok` is given and nothing else was found.
    fn done(mut self, ok: Option<String>) -> Vec<Finding> {
        if let Some(message) = ok
            && !self.findings.iter().any(|f| f.severity > Severity::Info)
        {
            self.ok(message);
        }
        self.findings
    }
}

/// A DNS failure as a finding's message.
fn unresolved(name: &str, error: &str) -> String {
    format!("could not resolve {name}: {error}")
}

const DNS_FIX: &str =
    "check the domain's name servers (or --resolver); the check runs again next time";

fn day(t: i64) -> String {
    crate::model::Timestamp(t)
        .to_string()
        .chars()
        .take(10)
        .collect()
}

/// Every finding for one domain, in check order.
pub fn judge(facts: &Facts, hints: &Hints) -> Vec<Finding> {
    let mut out = dmarc(facts, hints);
    out.extend(report_auth(facts));
    out.extend(spf_findings(facts, hints));
    out.extend(dkim(facts, hints));
    out.extend(mx_tls(facts, hints));
    out.extend(mta_sts(facts));
    out.extend(tls_rpt(facts, hints));
    out
}

fn dmarc(facts: &Facts, hints: &Hints) -> Vec<Finding> {
    let d = &facts.domain;
    let mut o = Out::new(Check::Dmarc);
    let name = format!("_dmarc.{d}");
    if let Some(e) = facts.dmarc.failure() {
        o.error(unresolved(&name, e), DNS_FIX);
        return o.done(None);
    }
    let records: Vec<&String> = facts
        .dmarc
        .records()
        .iter()
        .filter(|r| is_dmarc(r))
        .collect();
    let record = match records.as_slice() {
        [] => {
            match &facts.inherited {
                Some((at, record)) => {
                    let p = DmarcRecord::parse(record)
                        .ok()
                        .and_then(|r| r.get("sp").or(r.get("p")).map(str::to_owned))
                        .unwrap_or_else(|| "none".into());
                    o.warning(
                        format!("no DMARC record of its own; by the tree walk {at} applies (policy {p} for subdomains)"),
                        format!("publish {name} TXT \"v=DMARC1; p=…; rua=mailto:…\" so the domain's policy and reports are its own"),
                    );
                }
                None => o.error(
                    format!("no DMARC record at {name}: receivers apply no policy and send no reports"),
                    format!("publish {name} TXT \"v=DMARC1; p=none; rua=mailto:dmarc@{d}\", then tighten with `dmarc-warden advise`"),
                ),
            }
            return o.done(None);
        }
        [one] => *one,
        many => {
            o.error(
                format!(
                    "{} DMARC records at {name}: receivers ignore them all",
                    many.len()
                ),
                format!("keep exactly one v=DMARC1 record at {name}"),
            );
            return o.done(None);
        }
    };
    let r = match DmarcRecord::parse(record) {
        Ok(r) => r,
        Err(e) => {
            o.error(
                format!("the DMARC record does not parse ({e}): {record:?}"),
                "write it as v=DMARC1; tag=value; … (RFC 9989)",
            );
            return o.done(None);
        }
    };
    for (tag, value) in &r.tags.tags {
        if DMARC_REMOVED_TAGS.contains(&tag.as_str()) {
            let fix = if tag == "pct" {
                "remove pct=; to test a policy use t=y (RFC 9989)"
            } else {
                "remove it: receivers following RFC 9989 ignore it"
            };
            o.info(format!("{tag}={value} was removed by RFC 9989"), fix);
        } else if !DMARC_TAGS.contains(&tag.as_str()) {
            o.info(
                format!("unknown tag {tag}={value} (receivers ignore it)"),
                "remove it, or correct its spelling",
            );
        }
    }
    let policies = ["none", "quarantine", "reject"];
    match r.p() {
        None => o.warning(
            "no p= tag: receivers apply no policy",
            "add p=none (then tighten with `dmarc-warden advise`)",
        ),
        Some(p) if !policies.contains(&p.as_str()) => o.error(
            format!("p={p} is not none, quarantine or reject: receivers ignore the record"),
            "set p=none, p=quarantine or p=reject",
        ),
        Some(p) if p == "none" => o.info(
            "p=none: failing mail is only reported, not stopped",
            "see `dmarc-warden advise` for when to move to quarantine and reject",
        ),
        Some(_) => {}
    }
    for tag in ["sp", "np"] {
        if let Some(v) = r.get(tag)
            && !policies.contains(&v.to_ascii_lowercase().as_str())
        {
            o.error(
                format!("{tag}={v} is not none, quarantine or reject"),
                format!("set {tag}= to none, quarantine or reject, or remove it"),
            );
        }
    }
    for tag in ["adkim", "aspf"] {
        if let Some(v) = r.get(tag)
            && !["r", "s"].contains(&v.to_ascii_lowercase().as_str())
        {
            o.error(
                format!("{tag}={v} is not r or s"),
                format!("set {tag}=r or {tag}=s"),
            );
        }
    }
    if let Some(v) = r.get("t")
        && !["y", "n"].contains(&v.to_ascii_lowercase().as_str())
    {
        o.error(
            format!("t={v} is not y or n"),
            "set t=y or t=n, or remove it",
        );
    }
    if let Some(fo) = r.get("fo")
        && !fo
            .split(':')
            .all(|o| ["0", "1", "d", "s"].contains(&o.trim().to_ascii_lowercase().as_str()))
    {
        o.warning(
            format!("fo={fo} is not a list of 0, 1, d and s"),
            "set fo=1 (failure reports for any failing mechanism), or remove it",
        );
    }
    let rua = r.rua();
    if rua.is_empty() {
        o.warning(
            "no rua=: no aggregate reports are sent for this domain",
            format!("add rua=mailto:dmarc@{d} (a mailbox dmarc-warden fetches)"),
        );
    }
    for uri in rua.iter().chain(r.ruf().iter()) {
        if crate::parse::records::mailto_domain(uri).is_none() {
            o.warning(
                format!("report destination {uri:?} is not a mailto: address"),
                "use mailto:address@domain",
            );
        }
    }
    if let Some((reported, end)) = &hints.reported_policy {
        let published = r.p().unwrap_or_else(|| "none".into());
        if let Some(seen) = reported.p.as_deref()
            && !seen.eq_ignore_ascii_case(&published)
        {
            o.warning(
                format!(
                    "published p={published}, but the latest report{} saw p={seen}: the record changed since, or some receivers get another record",
                    end.map(|e| format!(" (ending {})", day(e))).unwrap_or_default()
                ),
                "if the record did not change recently, check every name server serves the same record",
            );
        }
    }
    o.done(Some(format!("one DMARC record: {}", r.to_record())))
}

fn report_auth(facts: &Facts) -> Vec<Finding> {
    let mut o = Out::new(Check::ReportAuth);
    let d = &facts.domain;
    for (name, answer) in &facts.report_auth {
        let dest = name
            .split_once("._report._dmarc.")
            .map_or(name.as_str(), |(_, dest)| dest);
        match answer {
            Answer::Failed(e) => o.warning(unresolved(name, e), DNS_FIX),
            Answer::Records(r) if r.iter().any(|t| is_dmarc(t)) => {
                o.ok(format!("{dest} accepts reports for {d} ({name})"));
            }
            Answer::Records(_) => o.error(
                format!("reports to {dest} are not authorised: no v=DMARC1 record at {name}, so receivers never send them"),
                format!("ask the operator of {dest} to publish {name} TXT \"v=DMARC1\", or report to an address in {d}"),
            ),
        }
    }
    o.findings
}

fn spf_findings(facts: &Facts, hints: &Hints) -> Vec<Finding> {
    let mut o = Out::new(Check::Spf);
    let d = &facts.domain;
    let mut dns = &facts.spf_dns;
    let top = spf::SpfDns::get(&mut dns, &format!("TXT {d}"));
    if let Some(e) = top.failure() {
        o.error(unresolved(&format!("TXT {d}"), e), DNS_FIX);
        return o.done(None);
    }
    let sends_nothing = facts.mx.records().is_empty()
        && facts.mx.failure().is_none()
        && hints.messages == 0
        && hints.legitimate.is_empty();
    let records: Vec<&String> = top.records().iter().filter(|r| is_spf(r)).collect();
    let record = match records.as_slice() {
        [] => {
            let fix = if sends_nothing {
                format!("publish {d} TXT \"v=spf1 -all\" (the domain sends no mail)")
            } else {
                format!("publish {d} TXT \"v=spf1 <your senders> -all\"")
            };
            o.error(format!("no SPF record at {d}"), fix);
            return o.done(None);
        }
        [one] => *one,
        many => {
            o.error(
                format!(
                    "{} SPF records at {d}: receivers return permerror",
                    many.len()
                ),
                "merge them into one v=spf1 record",
            );
            return o.done(None);
        }
    };
    let terms = match parse_spf(record) {
        Ok(t) => t,
        Err(e) => {
            o.error(
                format!("the SPF record does not parse ({e}): receivers return permerror"),
                "correct the record (RFC 7208)",
            );
            return o.done(None);
        }
    };
    let walk = spf::walk(&mut dns, d);
    if walk.lookups > 10 {
        o.error(
            format!("SPF needs {} DNS lookups through its includes (at most 10): receivers return permerror", walk.lookups),
            "replace includes by ip4:/ip6: ranges, or drop senders no longer used",
        );
    }
    if walk.void > 2 {
        o.error(
            format!(
                "{} SPF lookups find nothing (at most 2): receivers may return permerror",
                walk.void
            ),
            "remove the mechanisms that name domains without records",
        );
    }
    for p in &walk.problems {
        o.error(
            format!("SPF: {p}: receivers return permerror"),
            "correct or remove that include",
        );
    }
    for f in &walk.failures {
        o.warning(format!("SPF: could not resolve {f}"), DNS_FIX);
    }
    let all = terms.iter().find_map(|t| match t {
        SpfTerm::Directive(q, Mechanism::All) => Some(*q),
        _ => None,
    });
    match all {
        Some('+') => o.error(
            "+all: SPF authorises every IP address on the internet",
            "end the record with -all (or ~all while you find your senders)",
        ),
        Some('?') => o.warning(
            "?all: SPF says nothing about IPs it does not list",
            "end the record with -all (or ~all)",
        ),
        _ => {}
    }
    let only_fail_all = terms.len() == 1 && all == Some('-');
    if sends_nothing && !only_fail_all {
        o.warning(
            format!("{d} has no MX and no mail in the reports, yet its SPF is not v=spf1 -all"),
            format!("publish {d} TXT \"v=spf1 -all\" so that nobody can send as it"),
        );
    }
    let mut unauthorised: Vec<String> = Vec::new();
    let mut evaluator = spf::Evaluator::new(&facts.spf_dns);
    for source in &hints.legitimate {
        let Ok(ip) = source.ip.parse::<IpAddr>() else {
            continue;
        };
        let result = evaluator.check_host(ip, d);
        if matches!(
            result,
            CheckHostResult::Fail
                | CheckHostResult::SoftFail
                | CheckHostResult::Neutral
                | CheckHostResult::None
        ) {
            unauthorised.push(format!(
                "{} ({}, {} messages: {})",
                source.ip,
                source.sender,
                source.messages,
                result.as_str()
            ));
        }
    }
    if !unauthorised.is_empty() {
        let shown: Vec<&str> = unauthorised.iter().take(5).map(String::as_str).collect();
        let more = match unauthorised.len() {
            n if n > 5 => format!(" and {} more", n - 5),
            _ => String::new(),
        };
        o.warning(
            format!(
                "legitimate sources in the reports that SPF does not authorise: {}{more}",
                shown.join(", ")
            ),
            "add their ip4:/ip6: ranges or the sender's include: to the SPF record (or rely on their aligned DKIM)",
        );
    }
    o.done(Some(format!(
        "one SPF record ({} of 10 DNS lookups): {record}",
        walk.lookups
    )))
}

fn dkim(facts: &Facts, hints: &Hints) -> Vec<Finding> {
    let mut o = Out::new(Check::Dkim);
    let d = &facts.domain;
    if facts.dkim.is_empty() {
        o.info(
            format!("no DKIM selector known for {d}: no report shows one signing, and the config names none"),
            "name the domain's selectors in the config ([[domain]] selectors = [\"…\"])",
        );
        return o.findings;
    }
    for (selector, answer) in &facts.dkim {
        let name = format!("{selector}._domainkey.{d}");
        let before = o.findings.len();
        let records = match answer {
            Answer::Failed(e) => {
                o.warning(unresolved(&name, e), DNS_FIX);
                continue;
            }
            Answer::Records(r) => r,
        };
        let record = match records.as_slice() {
            [] => {
                o.error(
                    format!(
                        "selector {selector}: no key at {name}: mail signed with it fails DKIM"
                    ),
                    format!("publish the selector's public key at {name}, or stop signing with it"),
                );
                continue;
            }
            [one] => one,
            many => {
                o.error(
                    format!("selector {selector}: {} records at {name}", many.len()),
                    "keep one key record per selector",
                );
                continue;
            }
        };
        let key = match DkimKey::parse(record) {
            Ok(k) => k,
            Err(e) => {
                o.error(
                    format!("selector {selector}: the key record does not parse ({e})"),
                    "republish the record as v=DKIM1; k=rsa; p=<base64 key>",
                );
                continue;
            }
        };
        let bits = match key.key() {
            KeyBits::Revoked => {
                o.warning(
                    format!("selector {selector}: the key is revoked (empty p=); mail still signed with it fails DKIM"),
                    "sign with a current selector",
                );
                continue;
            }
            KeyBits::Invalid(e) => {
                o.error(
                    format!("selector {selector}: {e}"),
                    "republish the selector's public key",
                );
                continue;
            }
            KeyBits::Ed25519 => "Ed25519".to_owned(),
            KeyBits::Rsa(bits) => {
                if bits < 1024 {
                    o.error(
                        format!("selector {selector}: RSA key of {bits} bits: receivers reject keys under 1024 bits"),
                        "generate a 2048-bit key under a new selector and sign with it",
                    );
                } else if bits < 2048 {
                    o.warning(
                        format!("selector {selector}: RSA key of {bits} bits (2048 recommended)"),
                        "generate a 2048-bit key under a new selector and sign with it",
                    );
                }
                format!("RSA {bits}-bit")
            }
        };
        if key.testing() {
            o.info(
                format!("selector {selector}: t=y (testing): some receivers treat its signatures as unsigned"),
                "remove t=y once signing works",
            );
        }
        if let Some(seen) = hints.selectors.iter().find(|s| &s.selector == selector)
            && let (Some(first), Some(last)) = (seen.first, seen.last)
            && last - first > ROTATION_DAYS * 86_400
        {
            o.info(
                format!("selector {selector} has been signing since {} (over 12 months)", day(first)),
                "rotate: publish a new key under a new selector, sign with it, then revoke this one",
            );
        }
        if o.findings[before..]
            .iter()
            .all(|f| f.severity < Severity::Warning)
        {
            o.ok(format!("selector {selector}: {bits} key at {name}"));
        }
    }
    o.findings
}

fn mx_tls(facts: &Facts, hints: &Hints) -> Vec<Finding> {
    let mut o = Out::new(Check::MxTls);
    let d = &facts.domain;
    match &facts.mx {
        Answer::Failed(e) => {
            o.error(unresolved(&format!("MX {d}"), e), DNS_FIX);
            return o.findings;
        }
        Answer::Records(r) if r.is_empty() => {
            o.ok(format!("{d} has no MX: it receives no mail"));
            return o.findings;
        }
        Answer::Records(r) if r.iter().all(|m| m.host.is_empty()) => {
            o.ok(format!("{d} publishes a null MX: it receives no mail"));
            return o.findings;
        }
        Answer::Records(_) => {}
    }
    for mx in &facts.mx_tls {
        let h = &mx.host;
        let before = o.findings.len();
        if let Some(e) = &mx.error {
            o.error(
                format!("{h}: {e}"),
                "check the MX host accepts SMTP on port 25",
            );
            continue;
        }
        if !mx.starttls {
            o.error(
                format!("{h} does not offer STARTTLS: mail to {d} travels unencrypted"),
                "enable STARTTLS on the MX host",
            );
            continue;
        }
        if let Some(e) = &mx.handshake_error {
            o.error(
                format!("{h}: the TLS handshake failed ({e}); TLS 1.2 or newer is needed"),
                "enable TLS 1.2 and 1.3 on the MX host",
            );
            continue;
        }
        if let Some(e) = &mx.certificate_error {
            let e = e.trim_start_matches("invalid peer certificate: ");
            let message = match mx.not_after {
                Some(end) if end < hints.now => {
                    format!("{h}: the certificate expired on {}", day(end))
                }
                _ => format!("{h}: the certificate is not trusted for {h}: {e}"),
            };
            o.error(
                message,
                format!("install a certificate for {h} from a trusted CA, with its full chain"),
            );
        } else if let Some(end) = mx.not_after
            && end - hints.now < EXPIRY_WARNING_DAYS * 86_400
        {
            o.warning(
                format!("{h}: the certificate expires on {}", day(end)),
                "renew the certificate",
            );
        }
        if o.findings[before..].is_empty() {
            o.ok(format!(
                "{h}: STARTTLS, {}, certificate valid{}",
                mx.tls_version.as_deref().unwrap_or("TLS"),
                mx.not_after
                    .map(|e| format!(" until {}", day(e)))
                    .unwrap_or_default()
            ));
        }
    }
    o.findings
}

fn mta_sts(facts: &Facts) -> Vec<Finding> {
    let mut o = Out::new(Check::MtaSts);
    let d = &facts.domain;
    let name = format!("_mta-sts.{d}");
    let receives = !facts.mx.records().iter().all(|m| m.host.is_empty());
    if let Some(e) = facts.mta_sts.failure() {
        o.warning(unresolved(&name, e), DNS_FIX);
        return o.findings;
    }
    let records: Vec<&String> = facts
        .mta_sts
        .records()
        .iter()
        .filter(|r| r.trim_start().starts_with("v=STSv1"))
        .collect();
    match records.as_slice() {
        [] => {
            if receives {
                o.warning(
                    format!("no MTA-STS record at {name}: senders may deliver to {d} without TLS"),
                    format!("publish {name} TXT \"v=STSv1; id=…\" and the policy at https://mta-sts.{d}/.well-known/mta-sts.txt"),
                );
            }
            return o.findings;
        }
        [one] => match TagList::parse(one) {
            Ok(tags) => {
                let id_ok = tags.get("id").is_some_and(|id| {
                    !id.is_empty()
                        && id.len() <= 32
                        && id.chars().all(|c| c.is_ascii_alphanumeric())
                });
                if !id_ok {
                    o.error(
                        format!(
                            "the record at {name} has no valid id= (1 to 32 letters and digits)"
                        ),
                        "set id= to a new value each time the policy changes",
                    );
                }
            }
            Err(e) => o.error(
                format!("the record at {name} does not parse: {e}"),
                "write it as v=STSv1; id=…",
            ),
        },
        many => {
            o.error(
                format!(
                    "{} MTA-STS records at {name}: senders ignore them all",
                    many.len()
                ),
                "keep one",
            );
            return o.findings;
        }
    }
    let body = match &facts.mta_sts_policy {
        Some(PolicyFetch::Body(b)) => b,
        Some(PolicyFetch::Failed(e)) => {
            o.error(
                format!("the MTA-STS policy cannot be fetched: {e}"),
                format!("serve it at https://mta-sts.{d}/.well-known/mta-sts.txt as text/plain, with a trusted certificate for mta-sts.{d}"),
            );
            return o.findings;
        }
        None => return o.findings,
    };
    let policy = StsPolicy::parse(body);
    for p in &policy.problems {
        o.error(
            format!("MTA-STS policy: {p}"),
            "correct the policy (RFC 8461 §3.2)",
        );
    }
    if policy.version.as_deref() != Some("STSv1") {
        o.error(
            "MTA-STS policy: version is not STSv1",
            "begin the policy with version: STSv1",
        );
    }
    match policy.mode.as_deref() {
        Some("enforce") => {}
        Some("testing") => o.info(
            "MTA-STS policy mode testing: failures are reported, not enforced",
            "set mode: enforce once TLS reports show no failures",
        ),
        Some("none") => o.warning(
            "MTA-STS policy mode none: the policy is withdrawn",
            "set mode: testing, then enforce",
        ),
        other => o.error(
            format!(
                "MTA-STS policy mode {:?} is not enforce, testing or none",
                other.unwrap_or("")
            ),
            "set mode: enforce (or testing)",
        ),
    }
    match policy.max_age {
        None => o.error(
            "MTA-STS policy has no max_age",
            "add max_age: 604800 (a week) or more",
        ),
        Some(age) if age > 31_557_600 => o.error(
            format!("MTA-STS max_age {age} is over a year (31557600)"),
            "set max_age: 604800 or up to 31557600",
        ),
        Some(age) if age < 86_400 => o.warning(
            format!("MTA-STS max_age {age} is under a day: senders forget the policy quickly"),
            "set max_age: 604800 (a week) or more",
        ),
        Some(_) => {}
    }
    if policy.mode.as_deref() == Some("enforce") {
        for mx in &facts.mx_tls {
            let broken = if !mx.starttls && mx.error.is_none() {
                Some("offers no STARTTLS".to_owned())
            } else if mx.handshake_error.is_some() {
                Some("fails the TLS handshake".to_owned())
            } else {
                mx.certificate_error
                    .as_ref()
                    .map(|_| "has a certificate that does not validate".to_owned())
            };
            if let Some(why) = broken {
                o.error(
                    format!("MTA-STS mode enforce, but {} {why}: senders that honour MTA-STS will not deliver to it", mx.host),
                    format!("fix TLS on {} (see mx-tls), or set mode: testing until it is fixed", mx.host),
                );
            }
        }
    }
    for mx in facts.mx.records() {
        if !mx.host.is_empty() && !policy.covers(&mx.host) {
            o.error(
                format!("MX {} is not covered by any mx: line of the MTA-STS policy: enforcing senders will not deliver to it", mx.host),
                format!("add mx: {} (or a matching *. pattern) to the policy", mx.host),
            );
        }
    }
    o.done(Some(format!(
        "MTA-STS policy mode {} covers every MX, max_age {}",
        policy.mode.as_deref().unwrap_or("?"),
        policy.max_age.unwrap_or_default()
    )))
}

fn tls_rpt(facts: &Facts, hints: &Hints) -> Vec<Finding> {
    let mut o = Out::new(Check::TlsRpt);
    let d = &facts.domain;
    let name = format!("_smtp._tls.{d}");
    let receives = !facts.mx.records().iter().all(|m| m.host.is_empty());
    if let Some(e) = facts.tls_rpt.failure() {
        o.warning(unresolved(&name, e), DNS_FIX);
        return o.findings;
    }
    let records: Vec<&String> = facts
        .tls_rpt
        .records()
        .iter()
        .filter(|r| r.trim_start().starts_with("v=TLSRPTv1"))
        .collect();
    match records.as_slice() {
        [] => {
            if receives {
                o.warning(
                    format!(
                        "no TLS-RPT record at {name}: nobody tells you when TLS to your MX fails"
                    ),
                    format!("publish {name} TXT \"v=TLSRPTv1; rua=mailto:tls-reports@{d}\""),
                );
            }
            return o.findings;
        }
        [one] => {
            let rua = TagList::parse(one)
                .ok()
                .and_then(|t| t.get("rua").map(str::to_owned));
            let valid = rua.as_deref().is_some_and(|r| {
                r.split(',').all(|u| {
                    let u = u.trim().to_ascii_lowercase();
                    u.starts_with("mailto:") || u.starts_with("https:")
                })
            });
            if !valid {
                o.error(
                    format!("the record at {name} has no valid rua= (mailto: or https:)"),
                    format!("write it as v=TLSRPTv1; rua=mailto:tls-reports@{d}"),
                );
                return o.findings;
            }
        }
        many => {
            o.error(
                format!(
                    "{} TLS-RPT records at {name}: senders ignore them all",
                    many.len()
                ),
                "keep one",
            );
            return o.findings;
        }
    }
    if hints.tls_reports == 0 {
        o.warning(
            format!("TLS-RPT is published but no TLS report for {d} is in the database"),
            "check that the rua= address reaches a mailbox that dmarc-warden fetches (reports arrive daily)",
        );
    } else {
        o.ok(format!(
            "TLS-RPT published; {} TLS reports stored{}",
            hints.tls_reports,
            hints
                .tls_last
                .map(|t| format!(", the latest ending {}", day(t)))
                .unwrap_or_default()
        ));
    }
    o.findings
}
