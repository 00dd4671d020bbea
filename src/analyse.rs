//! Judgements over stored data: who sends as a domain (senders, classified) and when it is safe to
//! tighten its DMARC policy (advice). Pure functions over model types, no I/O: the evidence comes
//! from `store`, what the user declared and the map of known services from `config`.
//!
//! The ladder follows the UK NCSC guidance: p=none while reports are read, then quarantine at pct 10,
//! 25, 50 and 100, then reject, then the same protection for subdomains (sp=).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::Serialize;

use crate::model::{Evidence, PolicyPublished, SenderClass, SenderSummary, Timestamp};

/// `part` as a percentage of `whole`, rounded to one decimal; 0 when `whole` is 0.
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    (part as f64 * 1000.0 / whole as f64).round() / 10.0
}

/// The registrable domain (Public Suffix List): `mail.example.co.uk` → `example.co.uk`. Names the list
/// does not know are returned lower-cased as they are.
pub fn registrable(name: &str) -> String {
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    psl::domain_str(&name).map_or(name.clone(), str::to_owned)
}

/// A sender the user declared in the config file.
#[derive(Debug, Clone, Default)]
pub struct DeclaredSender {
    pub name: String,
    pub networks: Vec<ipnet::IpNet>,
    /// Registrable domains it signs DKIM with.
    pub dkim_domains: Vec<String>,
    /// Registrable domains its SPF (envelope-from) authenticates.
    pub spf_domains: Vec<String>,
    /// `false`: mail matching it is unauthorised whatever it looks like.
    pub legitimate: bool,
}

/// A well-known sending service and the registrable domains it signs or bounces with.
#[derive(Debug, Clone, Default)]
pub struct Service {
    pub name: String,
    pub domains: Vec<String>,
}

/// What is known beyond the reports.
#[derive(Debug, Clone, Default)]
pub struct Knowledge {
    pub declared: Vec<DeclaredSender>,
    pub services: Vec<Service>,
}

/// Thresholds of the advice; every one can be set in the config file's `[advice]` table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Days of reports the advice looks at, back from the latest report.
    pub window_days: u32,
    /// Fewer days with reports than this: keep collecting.
    pub min_days: u32,
    /// Fewer reporting organisations than this: keep collecting.
    pub min_reporters: u32,
    /// Fewer messages than this: keep collecting.
    pub min_messages: u64,
    /// A sender passing DMARC for at least this share (%) of its mail is aligned.
    pub aligned_pct: f64,
    /// A needs-fixing sender with at least this share (%) of the legitimate mail blocks the next step.
    pub blocking_pct: f64,
    /// Legitimate mail quarantined or rejected above this share (%): step back.
    pub backoff_pct: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            window_days: 14,
            min_days: 7,
            min_reporters: 2,
            min_messages: 100,
            aligned_pct: 98.0,
            blocking_pct: 0.1,
            backoff_pct: 0.5,
        }
    }
}

/// Who is behind some mail, and how sure we are of it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Origin {
    /// Declared in the config; `false` when declared not legitimate.
    Declared(bool),
    /// A known service of the map.
    Service,
    /// The domain itself (its own SPF or DKIM passes).
    Own,
    /// Authenticates (SPF or DKIM pass) as some other organisation.
    Other,
    /// Nothing passes.
    Unidentified,
}

/// Reverse DNS names of source IPs (`--resolve`); empty when not asked for.
pub type Names = std::collections::HashMap<String, Option<String>>;

/// `own`: the registrable domain of the policy domain.
fn identify(e: &Evidence, own: &str, k: &Knowledge, names: &Names) -> (String, Origin) {
    let key = &e.key;
    let ip: Option<IpAddr> = key.source_ip.parse().ok();
    let dkim = (!key.dkim_domain.is_empty()).then(|| registrable(&key.dkim_domain));
    let spf = (!key.spf_domain.is_empty()).then(|| registrable(&key.spf_domain));
    let dkim_pass = dkim.clone().filter(|_| key.dkim_result == "pass");
    let spf_pass = spf.clone().filter(|_| key.spf_result == "pass");
    for d in &k.declared {
        let by_ip = ip.is_some_and(|ip| d.networks.iter().any(|n| n.contains(&ip)));
        let by_dkim = dkim_pass
            .as_ref()
            .is_some_and(|x| d.dkim_domains.contains(x));
        let by_spf = spf_pass.as_ref().is_some_and(|x| d.spf_domains.contains(x));
        if by_ip || by_dkim || by_spf {
            return (d.name.clone(), Origin::Declared(d.legitimate));
        }
    }
    for s in &k.services {
        let signs = |x: &Option<String>| x.as_ref().is_some_and(|x| s.domains.contains(x));
        if signs(&spf_pass) || signs(&dkim_pass) {
            return (s.name.clone(), Origin::Service);
        }
    }
    // The operator of the sending IP is whoever SPF authorises it for; failing that, the signer;
    // failing both, the reverse DNS name, when looked up.
    match (spf_pass, dkim_pass) {
        (Some(s), _) if s == own => (key.domain.clone(), Origin::Own),
        (Some(s), _) => (s, Origin::Other),
        (None, Some(d)) if d == own => (key.domain.clone(), Origin::Own),
        (None, Some(d)) => (d, Origin::Other),
        (None, None) => match names.get(&key.source_ip).cloned().flatten() {
            Some(name) => {
                let org = registrable(&name);
                let declared = k
                    .declared
                    .iter()
                    .find(|d| d.dkim_domains.contains(&org) || d.spf_domains.contains(&org));
                if let Some(d) = declared {
                    (d.name.clone(), Origin::Declared(d.legitimate))
                } else if let Some(s) = k.services.iter().find(|s| s.domains.contains(&org)) {
                    (s.name.clone(), Origin::Service)
                } else if org == own {
                    (key.domain.clone(), Origin::Own)
                } else {
                    (format!("{org} (reverse DNS)"), Origin::Other)
                }
            }
            None => ("unidentified".to_owned(), Origin::Unidentified),
        },
    }
}

/// One sender's mail, summed.
#[derive(Debug, Default)]
struct Tally {
    messages: u64,
    pass: u64,
    dkim_aligned: u64,
    spf_aligned: u64,
    forwarded_flag: u64,
    /// Passing DKIM or SPF, but for a domain other than the policy domain.
    dkim_other: BTreeMap<String, u64>,
    spf_other: BTreeMap<String, u64>,
    spf_fail_own: u64,
    dkim_fail_own: u64,
    /// Messages quarantined or rejected by receivers.
    enforced: u64,
    ips: BTreeSet<String>,
    first: Option<i64>,
    last: Option<i64>,
    reporters: BTreeSet<String>,
    /// Of these messages, those whose From is a subdomain of the policy domain.
    subdomain: u64,
}

impl Tally {
    /// `own`: the registrable domain of the policy domain.
    fn add(&mut self, e: &Evidence, own: &str) {
        let k = &e.key;
        let n = e.messages;
        self.messages += n;
        if k.dkim_aligned || k.spf_aligned {
            self.pass += n;
        }
        if k.dkim_aligned {
            self.dkim_aligned += n;
        }
        if k.spf_aligned {
            self.spf_aligned += n;
        }
        if k.forwarded {
            self.forwarded_flag += n;
        }
        if k.dkim_result == "pass" && !k.dkim_aligned && !k.dkim_domain.is_empty() {
            *self.dkim_other.entry(k.dkim_domain.clone()).or_default() += n;
        }
        if k.spf_result == "pass" && !k.spf_aligned && !k.spf_domain.is_empty() {
            *self.spf_other.entry(k.spf_domain.clone()).or_default() += n;
        }
        let is_own = |d: &str| !d.is_empty() && registrable(d) == own;
        if k.spf_result != "pass" && is_own(&k.spf_domain) {
            self.spf_fail_own += n;
        }
        if k.dkim_result != "pass" && is_own(&k.dkim_domain) {
            self.dkim_fail_own += n;
        }
        if k.disposition == "quarantine" || k.disposition == "reject" {
            self.enforced += n;
        }
        if k.header_from
            .strip_suffix(k.domain.as_str())
            .is_some_and(|sub| sub.ends_with('.'))
        {
            self.subdomain += n;
        }
        self.ips.insert(k.source_ip.clone());
        self.first = min_opt(self.first, e.first);
        self.last = self.last.max(e.last);
        self.reporters.extend(e.reporters.iter().cloned());
    }
}

/// The earlier of two times, either of which may be unknown.
pub fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The most frequent entry of a count map.
fn top(map: &BTreeMap<String, u64>) -> Option<&str> {
    map.iter()
        .max_by_key(|(name, n)| (**n, std::cmp::Reverse(*name)))
        .map(|(name, _)| name.as_str())
}

fn classify(
    name: &str,
    origin: &Origin,
    t: &Tally,
    domain: &str,
    th: &Thresholds,
) -> (SenderClass, String) {
    let pass_pct = percent(t.pass, t.messages);
    if *origin == Origin::Declared(false) {
        return (
            SenderClass::Unauthorised,
            "declared not legitimate in the config".to_owned(),
        );
    }
    if t.forwarded_flag * 2 >= t.messages && t.messages > 0 {
        return (
            SenderClass::Forwarded,
            "receivers marked it forwarded / mailing list: indirect mail, not a sender to fix"
                .into(),
        );
    }
    if pass_pct >= th.aligned_pct {
        if *origin == Origin::Other && t.spf_aligned == 0 && t.dkim_aligned > 0 {
            return (
                SenderClass::Forwarded,
                format!(
                    "indirect mail: {domain}'s DKIM survives, SPF passes only for {name} (a forwarder or list)"
                ),
            );
        }
        let how = match (t.dkim_aligned > 0, t.spf_aligned > 0) {
            (true, true) => "aligned DKIM and SPF",
            (true, false) => "aligned DKIM",
            _ => "aligned SPF",
        };
        return (
            SenderClass::Aligned,
            format!("{pass_pct}% pass DMARC through {how}"),
        );
    }
    let legitimate = matches!(
        origin,
        Origin::Declared(true) | Origin::Service | Origin::Own
    );
    if !legitimate {
        return (
            SenderClass::Unauthorised,
            match origin {
                Origin::Other => format!(
                    "fails DMARC ({pass_pct}% pass); authenticates only as {name}, which is neither a \
                     known service nor declared: declare it in the config if it sends for you"
                ),
                _ => "fails DKIM and SPF, no legitimate pattern".to_owned(),
            },
        );
    }
    let mut fixes = Vec::new();
    if let Some(d) = top(&t.dkim_other) {
        fixes.push(format!(
            "DKIM signs with {d}, not {domain}: have {name} sign with a key published under {domain}"
        ));
    }
    if let Some(s) = top(&t.spf_other) {
        fixes.push(format!(
            "SPF passes for {s}, not {domain}: use a return-path (bounce) domain under {domain}"
        ));
    }
    if t.spf_fail_own > 0 {
        fixes.push(format!(
            "SPF fails for {domain}: add {name}'s servers ({} IPs) to the SPF record",
            t.ips.len()
        ));
    }
    if t.dkim_fail_own > 0 {
        fixes.push(format!(
            "DKIM signatures of {domain} fail: check the selector's key"
        ));
    }
    if fixes.is_empty() {
        fixes.push(format!(
            "{pass_pct}% pass DMARC: sign with DKIM under {domain} or align the envelope-from"
        ));
    }
    (
        SenderClass::NeedsFixing,
        format!("{pass_pct}% pass; {}", fixes.join("; ")),
    )
}

/// A sender of one domain, with what the advice needs beyond the listing.
#[derive(Debug, Clone)]
pub struct Sender {
    pub summary: SenderSummary,
    /// Messages receivers quarantined or rejected.
    pub enforced: u64,
    /// Messages whose From is a subdomain.
    pub subdomain: u64,
}

/// Groups evidence into senders per domain and classifies them; most messages first.
pub fn senders(
    evidence: &[Evidence],
    k: &Knowledge,
    th: &Thresholds,
    names: &Names,
) -> Vec<Sender> {
    let mut groups: BTreeMap<(String, String), (Origin, Tally)> = BTreeMap::new();
    // Evidence comes sorted by policy domain: its registrable domain is looked up once per domain.
    let mut own = (String::new(), String::new());
    for e in evidence {
        if own.0 != e.key.domain {
            own = (e.key.domain.clone(), registrable(&e.key.domain));
        }
        let (name, origin) = identify(e, &own.1, k, names);
        let entry = groups
            .entry((e.key.domain.clone(), name))
            .or_insert_with(|| (origin.clone(), Tally::default()));
        // Mixed evidence for one name: the surest origin wins.
        entry.0 = entry.0.clone().min(origin);
        entry.1.add(e, &own.1);
    }
    let mut out: Vec<Sender> = groups
        .into_iter()
        .map(|((domain, name), (origin, t))| {
            let (class, reason) = classify(&name, &origin, &t, &domain, th);
            Sender {
                summary: SenderSummary {
                    domain,
                    sender: name,
                    class,
                    messages: t.messages,
                    dmarc_pass: t.pass,
                    dmarc_pass_pct: percent(t.pass, t.messages),
                    dkim_aligned: t.dkim_aligned,
                    spf_aligned: t.spf_aligned,
                    source_ips: t.ips.len() as u64,
                    first: t.first.map(Timestamp),
                    last: t.last.map(Timestamp),
                    reporters: t.reporters.into_iter().collect::<Vec<_>>().join(", "),
                    reason,
                },
                enforced: t.enforced,
                subdomain: t.subdomain,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (
            &a.summary.domain,
            std::cmp::Reverse(a.summary.messages),
            &a.summary.sender,
        )
            .cmp(&(
                &b.summary.domain,
                std::cmp::Reverse(b.summary.messages),
                &b.summary.sender,
            ))
    });
    out
}

/// Where reports go, as published (the aggregate reports do not say): from the config file.
#[derive(Debug, Clone, Default)]
pub struct Published {
    pub rua: Option<String>,
    pub ruf: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyStep {
    pub p: String,
    pub pct: u32,
    pub sp: Option<String>,
    /// RFC 9990: the policy for non-existent subdomains.
    pub np: Option<String>,
}

/// The policy published, as the latest report saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CurrentPolicy {
    pub p: String,
    pub pct: u32,
    pub sp: Option<String>,
    pub np: Option<String>,
    /// RFC 9990 `t=`: `y` while testing.
    pub testing: Option<String>,
    pub adkim: Option<String>,
    pub aspf: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Blocker {
    pub sender: String,
    pub messages: u64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvidenceWindow {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub days: u64,
    pub reporters: u64,
    pub messages: u64,
}

/// What to do next with one domain's policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Advice {
    pub domain: String,
    pub current: CurrentPolicy,
    /// `step up`, `hold` (blockers), `keep collecting`, `back off`, `at target`.
    pub action: String,
    pub ready: bool,
    pub recommended: PolicyStep,
    pub evidence: EvidenceWindow,
    /// Share of legitimate mail (aligned, needs-fixing and forwarded senders) passing DMARC or
    /// forwarded.
    pub legitimate_pass_pct: f64,
    pub blockers: Vec<Blocker>,
    /// The DMARC TXT record to publish at `_dmarc.<domain>` for the recommended step.
    pub record: String,
    /// Why, and warnings, most important first.
    pub notes: Vec<String>,
}

/// The ladder: (p, pct).
const LADDER: [(&str, u32); 6] = [
    ("none", 100),
    ("quarantine", 10),
    ("quarantine", 25),
    ("quarantine", 50),
    ("quarantine", 100),
    ("reject", 100),
];

fn rung(p: &str, pct: u32) -> usize {
    match p {
        "reject" => 5,
        "quarantine" => LADDER
            .iter()
            .rposition(|(lp, lpct)| *lp == "quarantine" && *lpct <= pct.max(10))
            .unwrap_or(1),
        _ => 0,
    }
}

fn strength(p: &str) -> usize {
    match p {
        "reject" => 2,
        "quarantine" => 1,
        _ => 0,
    }
}

/// Advice for one domain from its latest published policy and its senders within the window.
pub fn advise(
    policy: &PolicyPublished,
    senders: &[Sender],
    evidence: &[Evidence],
    published: &Published,
    th: &Thresholds,
) -> Advice {
    let domain = policy.domain.clone();
    let p = policy.p.clone().unwrap_or_else(|| "none".into());
    let pct = policy.pct.unwrap_or(100).min(100);
    let current = CurrentPolicy {
        p: p.clone(),
        pct,
        sp: policy.sp.clone(),
        np: policy.np.clone(),
        testing: policy.testing.clone(),
        adkim: policy.adkim.clone(),
        aspf: policy.aspf.clone(),
    };
    let mut days = BTreeSet::new();
    let mut reporters = BTreeSet::new();
    let (mut from, mut to) = (None, None);
    for e in evidence.iter().filter(|e| e.key.domain == domain) {
        days.extend(e.days.iter().copied());
        reporters.extend(e.reporters.iter().cloned());
        from = min_opt(from, e.first);
        to = to.max(e.last);
    }
    let mine: Vec<&Sender> = senders
        .iter()
        .filter(|s| s.summary.domain == domain)
        .collect();
    let messages: u64 = mine.iter().map(|s| s.summary.messages).sum();
    let window = EvidenceWindow {
        from: from.map(Timestamp),
        to: to.map(Timestamp),
        days: days.len() as u64,
        reporters: reporters.len() as u64,
        messages,
    };
    let legit: Vec<&&Sender> = mine
        .iter()
        .filter(|s| s.summary.class != SenderClass::Unauthorised)
        .collect();
    let legit_messages: u64 = legit.iter().map(|s| s.summary.messages).sum();
    let legit_ok: u64 = legit
        .iter()
        .map(|s| match s.summary.class {
            SenderClass::Forwarded => s.summary.messages,
            _ => s.summary.dmarc_pass,
        })
        .sum();
    let legitimate_pass_pct = percent(legit_ok, legit_messages);
    let mut notes = Vec::new();
    let here = rung(&p, pct);
    let mut action = "step up";
    let mut next = here;
    let mut blockers = Vec::new();

    // A tightening that hurts comes first.
    let hurt: u64 = legit
        .iter()
        .filter(|s| s.summary.class == SenderClass::NeedsFixing)
        .map(|s| s.enforced)
        .sum();
    if here > 0 && percent(hurt, legit_messages.max(1)) > th.backoff_pct {
        action = "back off";
        next = here - 1;
        notes.push(format!(
            "legitimate mail is being quarantined or rejected: {hurt} messages ({}% of legitimate \
             mail) from senders that fail alignment; step back until they are fixed",
            percent(hurt, legit_messages)
        ));
    } else {
        let mut missing = Vec::new();
        if window.days < u64::from(th.min_days) {
            missing.push(format!(
                "{} more days of reports (have {}, need {})",
                u64::from(th.min_days) - window.days,
                window.days,
                th.min_days
            ));
        }
        if window.reporters < u64::from(th.min_reporters) {
            missing.push(format!(
                "reports from {} more reporting organisations (have {})",
                u64::from(th.min_reporters) - window.reporters,
                window.reporters
            ));
        }
        if messages < th.min_messages {
            missing.push(format!(
                "{} more messages (have {messages}, need {})",
                th.min_messages - messages,
                th.min_messages
            ));
        }
        for s in legit
            .iter()
            .filter(|s| s.summary.class == SenderClass::NeedsFixing)
        {
            if percent(s.summary.messages, legit_messages) >= th.blocking_pct {
                blockers.push(Blocker {
                    sender: s.summary.sender.clone(),
                    messages: s.summary.messages,
                    reason: s.summary.reason.clone(),
                });
            }
        }
        if !missing.is_empty() {
            action = "keep collecting";
            notes.push(format!("keep collecting: need {}", missing.join(", ")));
        } else if !blockers.is_empty() {
            action = "hold";
            notes.push(format!(
                "{} legitimate sender(s) fail alignment; fix them before tightening",
                blockers.len()
            ));
        } else if here < LADDER.len() - 1 {
            next = here + 1;
            notes.push(format!(
                "{legitimate_pass_pct}% of legitimate mail passes DMARC or is forwarded; \
                 unauthorised mail: {} messages",
                messages - legit_messages
            ));
        } else {
            action = "at target";
        }
    }
    let (next_p, next_pct) = LADDER[next];
    // Subdomains: protect them as the domain once the domain is enforced, unless mail from
    // subdomains still fails.
    let subdomain_failing: u64 = legit
        .iter()
        .filter(|s| s.summary.class == SenderClass::NeedsFixing)
        .map(|s| s.subdomain)
        .sum();
    let mut sp = policy.sp.clone();
    if strength(next_p) > 0 {
        if subdomain_failing > 0 {
            notes.push(format!(
                "{subdomain_failing} messages from subdomains fail alignment: sp= stays as published \
                 until they are fixed"
            ));
        } else if sp
            .as_deref()
            .is_none_or(|cur| strength(cur) < strength(next_p))
        {
            sp = Some(next_p.to_owned());
            if action == "at target" {
                action = "step up";
                notes.push(format!("protect subdomains too: sp={next_p}"));
            }
        }
    }
    let ready = action == "step up";
    // Non-existent subdomains send no legitimate mail: with a step up they get the policy the
    // subdomains get.
    let np = match &sp {
        Some(sp) if ready && strength(sp) > 0 => Some(sp.clone()),
        _ => policy.np.clone(),
    };
    let recommended = PolicyStep {
        p: next_p.to_owned(),
        pct: next_pct,
        sp,
        np,
    };
    let rua = published
        .rua
        .clone()
        .unwrap_or_else(|| format!("mailto:dmarc@{domain}"));
    if published.rua.is_none() {
        notes.push(format!(
            "rua= assumed to be {rua}: set rua (and ruf) for {domain} in the config's [[domain]] table"
        ));
    }
    for uri in rua
        .split(',')
        .chain(published.ruf.iter().map(String::as_str))
    {
        if let Some(addr) = uri.trim().strip_prefix("mailto:") {
            let host = addr.rsplit('@').next().unwrap_or_default();
            let host = host.split('!').next().unwrap_or(host);
            if !host.is_empty() && registrable(host) != registrable(&domain) {
                notes.push(format!(
                    "reports go to {host}: it must publish TXT \"v=DMARC1\" at \
                     {domain}._report._dmarc.{host} (external reporting authorisation)"
                ));
            }
        }
    }
    let mut record = format!("v=DMARC1; p={next_p}");
    if next_pct < 100 {
        record.push_str(&format!("; pct={next_pct}"));
    }
    if let Some(sp) = &recommended.sp {
        record.push_str(&format!("; sp={sp}"));
    }
    if let Some(np) = &recommended.np {
        record.push_str(&format!("; np={np}"));
    }
    for (tag, value) in [("adkim", &policy.adkim), ("aspf", &policy.aspf)] {
        if value.as_deref() == Some("s") {
            record.push_str(&format!("; {tag}=s"));
        }
    }
    record.push_str(&format!("; rua={rua}"));
    if let Some(ruf) = &published.ruf {
        record.push_str(&format!("; ruf={ruf}"));
        if let Some(fo) = &policy.fo {
            record.push_str(&format!("; fo={fo}"));
        }
    }
    Advice {
        domain,
        current,
        action: action.to_owned(),
        ready,
        recommended,
        evidence: window,
        legitimate_pass_pct,
        blockers,
        record,
        notes,
    }
}

/// The name `senders` gives the sender of one piece of evidence (for `notify`, which tells which of
/// an unauthorised sender's source IPs are new).
pub fn sender_name(e: &Evidence, k: &Knowledge, names: &Names) -> String {
    identify(e, &registrable(&e.key.domain), k, names).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages() {
        assert_eq!(percent(0, 0), 0.0);
        assert_eq!(percent(1, 3), 33.3);
        assert_eq!(percent(2, 3), 66.7);
        assert_eq!(percent(5, 5), 100.0);
    }

    #[test]
    fn registrable_domains() {
        assert_eq!(registrable("mail.example.co.uk"), "example.co.uk");
        assert_eq!(registrable("Bounces.SendGrid.NET."), "sendgrid.net");
    }

    #[test]
    fn ladder_positions() {
        assert_eq!(rung("none", 100), 0);
        assert_eq!(rung("quarantine", 10), 1);
        assert_eq!(rung("quarantine", 30), 2);
        assert_eq!(rung("quarantine", 100), 4);
        assert_eq!(rung("reject", 100), 5);
    }
}
