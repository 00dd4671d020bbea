//! Who sends as each domain: evidence grouped into senders (the domain itself, a known service, a
//! declared sender, another organisation, or nobody identifiable) and classified as aligned, needs
//! fixing, forwarded or unauthorised, each with a one-line reason that names the fix.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::{Thresholds, min_opt, percent, registrable};
use crate::model::{
    DkimResult, Evidence, ReporterUnion, SenderClass, SenderSummary, SpfResult, Timestamp,
    V4Scratch, canonical_v4, distinct_v4,
};

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

/// The registrable domains ([`registrable`]) of the names in the evidence being grouped, each
/// looked up once: the Public Suffix List lookup was a third of grouping a year's evidence, whose
/// rows name a few hundred domains many thousand times.
#[derive(Default)]
struct Orgs<'e>(HashMap<&'e str, String>);

/// Maps keyed by names the evidence holds, with foldhash's fast hasher: no caller chooses them.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

impl<'e> Orgs<'e> {
    fn of(&mut self, name: &'e str) -> &str {
        self.0.entry(name).or_insert_with(|| registrable(name))
    }
}

/// `own`: the registrable domain of the policy domain.
fn identify<'e>(
    e: &'e Evidence,
    own: &str,
    k: &Knowledge,
    names: &Names,
    orgs: &mut Orgs<'e>,
) -> (String, Origin) {
    let key = &e.key;
    let ip: Option<IpAddr> = key.source_ip.parse().ok();
    let dkim = (!key.dkim_domain.is_empty()).then(|| orgs.of(&key.dkim_domain).to_owned());
    let spf = (!key.spf_domain.is_empty()).then(|| orgs.of(&key.spf_domain).to_owned());
    let dkim_pass = dkim.clone().filter(|_| key.dkim_result == DkimResult::Pass);
    let spf_pass = spf.clone().filter(|_| key.spf_result == SpfResult::Pass);
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
        (Some(s), _) if s == own => (key.domain.to_string(), Origin::Own),
        (Some(s), _) => (s, Origin::Other),
        (None, Some(d)) if d == own => (key.domain.to_string(), Origin::Own),
        (None, Some(d)) => (d, Origin::Other),
        (None, None) => match names.get(key.source_ip.as_str()).cloned().flatten() {
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
                    (key.domain.to_string(), Origin::Own)
                } else {
                    (format!("{org} (reverse DNS)"), Origin::Other)
                }
            }
            None => ("unidentified".to_owned(), Origin::Unidentified),
        },
    }
}

/// What [`identify`] reads of a row's key: its source IP, DKIM domain and whether it passed, SPF
/// domain and whether it passed.
type Identity<'e> = (&'e str, &'e str, bool, &'e str, bool);

/// Whether a row's DKIM and SPF domains are names of the policy domain's organisation: what
/// [`Tally::add`] asks of every row, answered once per [`Identity`] (which holds both names).
#[derive(Debug, Clone, Copy)]
struct OwnNames {
    dkim: bool,
    spf: bool,
}

impl OwnNames {
    /// `own`: the registrable domain of the policy domain.
    fn of<'e>(e: &'e Evidence, own: &str, orgs: &mut Orgs<'e>) -> OwnNames {
        let mut is_own = |d: &'e str| !d.is_empty() && orgs.of(d) == own;
        OwnNames {
            dkim: is_own(&e.key.dkim_domain),
            spf: is_own(&e.key.spf_domain),
        }
    }
}

/// Messages per name as the rows spell it, hashed as borrowed (a year's group of 500 signers
/// searched an ordered map of lower-cased copies for every row: 7% of `senders`); made
/// case-blind and ordered once, at the end ([`lowered`]).
type Counts<'e> = HashMap<&'e str, u64>;

/// `map`'s counts by lower-cased name, in order.
fn lowered(map: &Counts) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (name, n) in map {
        *out.entry(name.to_ascii_lowercase()).or_default() += n;
    }
    out
}

/// One sender's mail, summed.
#[derive(Debug, Default)]
struct Tally<'e> {
    messages: u64,
    pass: u64,
    dkim_aligned: u64,
    spf_aligned: u64,
    forwarded_flag: u64,
    /// Passing DKIM or SPF, but for a domain other than the policy domain.
    dkim_other: Counts<'e>,
    spf_other: Counts<'e>,
    /// Passing DKIM or SPF for the policy's own organisational domain, yet reported unaligned by
    /// the receiver's `policy_evaluated`: the report contradicts itself (or alignment is strict).
    dkim_contradiction: Counts<'e>,
    spf_contradiction: Counts<'e>,
    spf_fail_own: u64,
    dkim_fail_own: u64,
    /// Messages quarantined or rejected by receivers.
    enforced: u64,
    /// How many distinct source IPs, counted from the rows at the end ([`Tally::source_ips`]).
    source_ips: u64,
    first: Option<i64>,
    last: Option<i64>,
    /// The reporters' names, each once (sorted at the end, [`ReporterUnion::names`]).
    reporters: ReporterUnion<'e>,
    /// Of these messages, those whose From is a subdomain of the policy domain.
    subdomain: u64,
    /// Indexes of the evidence rows summed.
    rows: Vec<usize>,
}

impl<'e> Tally<'e> {
    /// `own`: which of the row's names are the policy domain's organisation's.
    fn add(&mut self, e: &'e Evidence, own: OwnNames) {
        let k = &e.key;
        let n = e.messages;
        self.messages += n;
        if k.dmarc_pass() {
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
        if k.dkim_result == DkimResult::Pass && !k.dkim_aligned && !k.dkim_domain.is_empty() {
            let map = if own.dkim {
                &mut self.dkim_contradiction
            } else {
                &mut self.dkim_other
            };
            *map.entry(&k.dkim_domain).or_default() += n;
        }
        if k.spf_result == SpfResult::Pass && !k.spf_aligned && !k.spf_domain.is_empty() {
            let map = if own.spf {
                &mut self.spf_contradiction
            } else {
                &mut self.spf_other
            };
            *map.entry(&k.spf_domain).or_default() += n;
        }
        if k.spf_result != SpfResult::Pass && own.spf {
            self.spf_fail_own += n;
        }
        if k.dkim_result != DkimResult::Pass && own.dkim {
            self.dkim_fail_own += n;
        }
        if k.enforced() {
            self.enforced += n;
        }
        if k.header_from
            .strip_suffix(k.domain.as_str())
            .is_some_and(|sub| sub.ends_with('.'))
        {
            self.subdomain += n;
        }
        self.first = min_opt(self.first, e.first);
        self.last = self.last.max(e.last);
        self.reporters.add(&e.reporters);
    }
}

impl Tally<'_> {
    /// How many distinct source IPs, counted from its rows of `evidence` once they are all in:
    /// the IPv4 addresses from the rows' runs, sorted in lists `scratch` keeps from one sender to
    /// the next ([`distinct_v4`]); the rest as texts.
    fn source_ips(&mut self, evidence: &[Evidence], scratch: &mut V4Scratch) -> u64 {
        let mut runs: Vec<&[u32]> = Vec::new();
        let mut single = Vec::new();
        let mut other: BTreeSet<&str> = BTreeSet::new();
        for e in self.rows.iter().filter_map(|&i| evidence.get(i)) {
            match &e.ips {
                // One IP, told apart as an `IpSet` tells them (without building a set for it).
                None => match canonical_v4(&e.key.source_ip) {
                    Some(a) => single.push(a),
                    None => {
                        other.insert(&e.key.source_ip);
                    }
                },
                Some(ips) => {
                    runs.extend(ips.v4_runs());
                    other.extend(ips.other.iter().map(String::as_str));
                }
            }
        }
        runs.push(&single);
        self.source_ips = (distinct_v4(&runs, scratch) + other.len()) as u64;
        self.source_ips
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
    // Indirect mail: the domain's own DKIM signature arrives on most of it while SPF passes only
    // for the relay. Forwarders and lists change some messages on the way (footers, subject tags),
    // which breaks those signatures, so most rather than nearly all is the test.
    if *origin == Origin::Other
        && t.spf_aligned == 0
        && t.dkim_aligned > 0
        && t.dkim_aligned * 2 >= t.messages
    {
        return (
            SenderClass::Forwarded,
            if pass_pct >= th.aligned_pct {
                format!(
                    "indirect mail: {domain}'s DKIM survives, SPF passes only for {name} (a forwarder or list)"
                )
            } else {
                format!(
                    "indirect mail: {domain}'s DKIM survives on {pass_pct}% of it (the rest was changed on the way), SPF passes only for {name} (a forwarder or list)"
                )
            },
        );
    }
    if pass_pct >= th.aligned_pct {
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
    for (method, map) in [
        ("DKIM", &t.dkim_contradiction),
        ("SPF", &t.spf_contradiction),
    ] {
        let map = lowered(map);
        if let Some(d) = top(&map) {
            fixes.push(contradiction(method, d, domain, map.values().sum()));
        }
    }
    if let Some(d) = top(&lowered(&t.dkim_other)) {
        fixes.push(format!(
            "DKIM signs with {d}, not {domain}: have {name} sign with a key published under {domain}"
        ));
    }
    if let Some(s) = top(&lowered(&t.spf_other)) {
        fixes.push(format!(
            "SPF passes for {s}, not {domain}: use a return-path (bounce) domain under {domain}"
        ));
    }
    if t.spf_fail_own > 0 {
        fixes.push(format!(
            "SPF fails for {domain}: add {name}'s servers ({} IPs) to the SPF record",
            t.source_ips
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

/// The reason for mail whose report contradicts itself: `policy_evaluated` says `method` did not
/// align, while `auth_results` show it passing for `passed`, a name of the policy's own organisation.
fn contradiction(method: &str, passed: &str, domain: &str, messages: u64) -> String {
    let tag = if method == "DKIM" { "adkim" } else { "aspf" };
    let why = if passed.eq_ignore_ascii_case(domain) {
        "a reporter quirk, or the message was changed after the receiver's edge checked it (a \
         gateway or list that alters it before DMARC is evaluated)"
            .to_owned()
    } else {
        format!(
            "with {tag}=s only {domain} itself aligns ({passed} needs {tag}=r); otherwise a reporter \
             quirk, or the message was changed after the receiver's edge checked it"
        )
    };
    format!(
        "the reports contradict themselves for {messages} messages: {method} passed for {passed} in \
         auth_results, yet policy_evaluated says {method} did not align: {why}"
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
    /// Which rows of the evidence it was judged from (indexes into the slice given to
    /// [`senders`]): what a row's sender is, for those who draw or list rows.
    pub evidence: Vec<usize>,
}

/// Groups evidence into senders per domain and classifies them; most messages first.
pub fn senders(
    evidence: &[Evidence],
    k: &Knowledge,
    th: &Thresholds,
    names: &Names,
) -> Vec<Sender> {
    // Each (domain, name)'s place in `groups`; the order of `groups` is undone by the sort below.
    let mut places: HashMap<(&str, String), usize> = HashMap::default();
    let mut groups: Vec<(String, String, Origin, Tally)> = Vec::new();
    // Evidence comes sorted by policy domain: its registrable domain is looked up once per domain.
    let mut own = (String::new(), String::new());
    let mut orgs = Orgs::default();
    // What `identify` makes of a row depends on these of its key alone (and on the policy
    // domain): each combination is identified once per domain, and its group found once.
    let mut identified: HashMap<Identity, (usize, Origin, OwnNames)> = HashMap::default();
    let mut last: Option<(Identity, (usize, Origin, OwnNames))> = None;
    for (i, e) in evidence.iter().enumerate() {
        if own.0 != e.key.domain {
            own = (e.key.domain.to_string(), registrable(&e.key.domain));
            identified.clear();
            last = None;
        }
        let id = (
            e.key.source_ip.as_str(),
            e.key.dkim_domain.as_str(),
            e.key.dkim_result == DkimResult::Pass,
            e.key.spf_domain.as_str(),
            e.key.spf_result == SpfResult::Pass,
        );
        // Rows come in key order: a row mostly has the identity of the row before, whose
        // names are still at hand (the map's are another row's, far away in memory).
        let last_known = match &last {
            Some((lid, known)) if *lid == id => Some(known),
            _ => identified.get(&id),
        };
        let (at, origin, own_names) = match last_known {
            Some(known) => known.clone(),
            None => {
                let (name, origin) = identify(e, &own.1, k, names, &mut orgs);
                let key = (e.key.domain.as_str(), name);
                let at = match places.get(&key) {
                    Some(at) => *at,
                    None => {
                        let at = groups.len();
                        groups.push((
                            key.0.to_owned(),
                            key.1.clone(),
                            origin.clone(),
                            Tally::default(),
                        ));
                        places.insert(key, at);
                        at
                    }
                };
                let own_names = OwnNames::of(e, &own.1, &mut orgs);
                identified.insert(id, (at, origin.clone(), own_names));
                (at, origin, own_names)
            }
        };
        last = Some((id, (at, origin.clone(), own_names)));
        let entry = &mut groups[at];
        // Mixed evidence for one name: the surest origin wins.
        entry.2 = entry.2.clone().min(origin);
        entry.3.add(e, own_names);
        entry.3.rows.push(i);
    }
    let mut scratch = V4Scratch::default();
    let mut out: Vec<Sender> = groups
        .into_iter()
        .map(|(domain, name, origin, mut t)| {
            let source_ips = t.source_ips(evidence, &mut scratch);
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
                    source_ips,
                    first: t.first.map(Timestamp),
                    last: t.last.map(Timestamp),
                    reporters: t.reporters.names().join(", "),
                    reason,
                },
                enforced: t.enforced,
                subdomain: t.subdomain,
                evidence: t.rows,
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

/// The source IPs of mail that authenticates as no one (neither SPF nor DKIM passes): only their
/// reverse DNS names can tell who sent it (`--resolve`). Sorted, once each.
pub fn unauthenticated_sources(evidence: &[Evidence]) -> Vec<String> {
    let mut ips: Vec<String> = Vec::new();
    for e in evidence.iter().filter(|e| unauthenticated(e)) {
        match &e.ips {
            None => ips.push(e.key.source_ip.to_string()),
            Some(set) => ips.extend(set.iter()),
        }
    }
    ips.sort_unstable();
    ips.dedup();
    ips
}

/// Neither SPF nor DKIM passes: only a reverse DNS name can tell who sent it.
fn unauthenticated(e: &Evidence) -> bool {
    e.key.dkim_result != DkimResult::Pass && e.key.spf_result != SpfResult::Pass
}

/// Evidence summed over several source IPs ([`Evidence::ips`]) is judged as one row: that holds
/// when its IPs identify it alike (the same declared networks contain each, and, for mail that
/// authenticates as no one, the same reverse DNS name). `Ok(Some(ip))`: one of them, for the row to
/// be identified by ([`senders`] reads `key.source_ip`); `Ok(None)`: no IP plays a part;
/// `Err(Split)`: its IPs would part it between senders, so it must be read per IP.
pub fn stand_in(e: &Evidence, k: &Knowledge, names: &Names) -> Result<Option<String>, Split> {
    let Some(ips) = &e.ips else {
        return Ok(None);
    };
    let networks = k.declared.iter().any(|d| !d.networks.is_empty());
    // identify reads a name when neither SPF nor DKIM passes for a domain.
    let passes = |domain: &str, pass: bool| pass && !domain.is_empty();
    let named = !names.is_empty()
        && !passes(&e.key.dkim_domain, e.key.dkim_result == DkimResult::Pass)
        && !passes(&e.key.spf_domain, e.key.spf_result == SpfResult::Pass);
    if !networks && !named {
        return Ok(None);
    }
    // What identify reads of an IP: which declared senders' networks hold it, and its name.
    let class = |ip: &str| {
        let addr: Option<IpAddr> = ip.parse().ok();
        let held: Vec<bool> = k
            .declared
            .iter()
            .map(|d| addr.is_some_and(|a| d.networks.iter().any(|n| n.contains(&a))))
            .collect();
        let name = named.then(|| names.get(ip).cloned().flatten()).flatten();
        (held, name)
    };
    let mut all = ips.iter();
    let Some(first) = all.next() else {
        return Ok(None);
    };
    let want = class(&first);
    if all.any(|ip| class(&ip) != want) {
        return Err(Split);
    }
    Ok(Some(first))
}

/// A row of evidence summed over source IPs that its IPs would part between senders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split;

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(messages: u64, dkim_aligned: u64, spf_aligned: u64) -> Tally<'static> {
        Tally {
            messages,
            pass: dkim_aligned.max(spf_aligned),
            dkim_aligned,
            spf_aligned,
            ..Tally::default()
        }
    }

    fn class(t: &Tally) -> SenderClass {
        let th = Thresholds::default();
        classify("lists.example", &Origin::Other, t, "example.org", &th).0
    }

    /// A forwarder or list: the domain's DKIM arrives on most of its mail, a few messages changed
    /// on the way lost it, and SPF passes only for the relay. Indirect mail, not a spoofer.
    #[test]
    fn a_relay_keeping_most_signatures_is_forwarded() {
        assert_eq!(class(&tally(100, 100, 0)), SenderClass::Forwarded);
        assert_eq!(class(&tally(100, 94, 0)), SenderClass::Forwarded);
        let th = Thresholds::default();
        let (_, why) = classify(
            "lists.example",
            &Origin::Other,
            &tally(100, 94, 0),
            "example.org",
            &th,
        );
        assert!(why.contains("survives on 94%"), "{why}");
    }

    /// Unknown mail whose signatures mostly fail is not excused as forwarded.
    #[test]
    fn an_unknown_source_mostly_failing_stays_unauthorised() {
        assert_eq!(class(&tally(100, 30, 0)), SenderClass::Unauthorised);
        assert_eq!(class(&tally(100, 0, 0)), SenderClass::Unauthorised);
    }
}
