//! SPF over gathered DNS answers (RFC 7208): the walk that counts DNS-querying terms through
//! `include` and `redirect` (the limit of 10) and void lookups (the limit of 2), and `check_host`
//! for one IP, so that sources seen in reports can be tested against the published record.
//!
//! Both run over [`SpfDns`]: the probe walks with a live resolver that records every answer
//! ([`crate::fetch::probe`]), and the judge walks again over those recorded answers, without I/O.
//! `ptr`, `exists` and macros need the receiver's view of a message; an IP whose answer depends on
//! them is [`CheckHostResult::Unknown`].

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::rc::Rc;

use super::Answer;
use crate::parse::records::{Mechanism, SpfTerm, has_macro, is_spf, parse_spf};

/// Where the walk gets DNS answers: `TXT name`, `A name` (A and AAAA) or `MX name` (host names).
pub trait SpfDns {
    fn get(&mut self, key: &str) -> Answer<String>;
}

impl<T: SpfDns + ?Sized> SpfDns for &mut T {
    fn get(&mut self, key: &str) -> Answer<String> {
        (**self).get(key)
    }
}

/// Recorded answers; a question not recorded fails ("not looked up").
impl SpfDns for &BTreeMap<String, Answer<String>> {
    fn get(&mut self, key: &str) -> Answer<String> {
        BTreeMap::get(self, key)
            .cloned()
            .unwrap_or_else(|| Answer::Failed("not looked up".into()))
    }
}

/// What walking a domain's SPF found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Walk {
    /// Terms that cause DNS queries (`include`, `a`, `mx`, `ptr`, `exists`, `redirect`), counted
    /// through every `include` and `redirect`.
    pub lookups: usize,
    /// Of those, the ones answered with no records.
    pub void: usize,
    /// Problems along the way, each naming where (`include:x.example: two SPF records`).
    pub problems: Vec<String>,
    /// DNS failures met (`TXT x.example: SERVFAIL`).
    pub failures: Vec<String>,
}

/// Past this many DNS-querying terms the walk stops: the record fails long before.
const WALK_LIMIT: usize = 40;

/// Walks `domain`'s SPF record and everything it includes or redirects to.
pub fn walk(dns: &mut impl SpfDns, domain: &str) -> Walk {
    let mut w = Walk::default();
    let mut seen = Vec::new();
    walk_domain(dns, domain, &mut w, &mut seen, true);
    w
}

/// The SPF records among a name's TXT records.
fn spf_records(answer: &Answer<String>) -> Vec<&String> {
    answer.records().iter().filter(|r| is_spf(r)).collect()
}

fn walk_domain(
    dns: &mut impl SpfDns,
    domain: &str,
    w: &mut Walk,
    seen: &mut Vec<String>,
    top: bool,
) {
    if seen.iter().any(|d| d == domain) {
        w.problems
            .push(format!("{domain} is included again (a loop)"));
        return;
    }
    seen.push(domain.to_owned());
    let answer = dns.get(&format!("TXT {domain}"));
    if let Some(e) = answer.failure() {
        w.failures.push(format!("TXT {domain}: {e}"));
        return;
    }
    let records = spf_records(&answer);
    let record = match records.as_slice() {
        [one] => *one,
        [] => {
            if !top {
                w.void += 1;
                w.problems.push(format!("{domain} has no SPF record"));
            }
            return;
        }
        _ => {
            w.problems
                .push(format!("{domain} has {} SPF records", records.len()));
            return;
        }
    };
    let terms = match parse_spf(record) {
        Ok(t) => t,
        Err(e) => {
            w.problems.push(format!("{domain}: {e}"));
            return;
        }
    };
    let mut redirect = None;
    for term in terms {
        if w.lookups > WALK_LIMIT {
            return;
        }
        match term {
            SpfTerm::Directive(_, m) => match m {
                Mechanism::Include(target) => {
                    w.lookups += 1;
                    if !has_macro(&target) {
                        walk_domain(dns, &target, w, seen, false);
                    }
                }
                Mechanism::A { domain: d, .. } => {
                    w.lookups += 1;
                    let name = d.unwrap_or_else(|| domain.to_owned());
                    if !has_macro(&name) {
                        count(dns, &format!("A {name}"), w);
                    }
                }
                Mechanism::Mx { domain: d, .. } => {
                    w.lookups += 1;
                    let name = d.unwrap_or_else(|| domain.to_owned());
                    if !has_macro(&name) {
                        let hosts = count(dns, &format!("MX {name}"), w);
                        if hosts.len() > 10 {
                            w.problems.push(format!(
                                "mx:{name} has {} MX hosts (at most 10)",
                                hosts.len()
                            ));
                        }
                        for host in hosts.iter().take(10) {
                            dns.get(&format!("A {host}"));
                        }
                    }
                }
                Mechanism::Ptr(_) | Mechanism::Exists(_) => w.lookups += 1,
                Mechanism::All | Mechanism::Ip4(..) | Mechanism::Ip6(..) => {}
            },
            SpfTerm::Modifier(name, value) if name == "redirect" => redirect = Some(value),
            SpfTerm::Modifier(..) => {}
        }
    }
    if let Some(target) = redirect {
        w.lookups += 1;
        if !has_macro(&target) {
            walk_domain(dns, &target.to_ascii_lowercase(), w, seen, false);
        }
    }
}

/// Looks `key` up, counting a void answer and noting a failure; returns the records.
fn count(dns: &mut impl SpfDns, key: &str, w: &mut Walk) -> Vec<String> {
    let answer = dns.get(key);
    match &answer {
        Answer::Failed(e) => w.failures.push(format!("{key}: {e}")),
        Answer::Records(r) if r.is_empty() => w.void += 1,
        Answer::Records(_) => {}
    }
    answer.records().to_vec()
}

/// The result of `check_host` for one IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckHostResult {
    Pass,
    Fail,
    SoftFail,
    Neutral,
    None,
    PermError,
    TempError,
    /// Depends on `ptr`, `exists` or a macro: only a receiver can tell.
    Unknown,
}

impl CheckHostResult {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckHostResult::Pass => "pass",
            CheckHostResult::Fail => "fail",
            CheckHostResult::SoftFail => "softfail",
            CheckHostResult::Neutral => "neutral",
            CheckHostResult::None => "none",
            CheckHostResult::PermError => "permerror",
            CheckHostResult::TempError => "temperror",
            CheckHostResult::Unknown => "unknown",
        }
    }
}

/// `check_host(ip, domain)` over the answers in `dns`.
pub fn check_host(dns: &mut impl SpfDns, ip: IpAddr, domain: &str) -> CheckHostResult {
    Evaluator::new(dns).check_host(ip, domain)
}

/// A domain's SPF record as evaluation needs it: its terms, or the result it stands for.
type Terms = Rc<Result<Vec<SpfTerm>, CheckHostResult>>;

/// `check_host` for many IPs against one set of answers: each record is parsed, and each name's
/// addresses read, once.
pub struct Evaluator<D> {
    dns: D,
    terms: HashMap<String, Terms>,
    addrs: HashMap<String, Rc<Result<Vec<IpAddr>, ()>>>,
}

impl<D: SpfDns> Evaluator<D> {
    pub fn new(dns: D) -> Evaluator<D> {
        Evaluator {
            dns,
            terms: HashMap::new(),
            addrs: HashMap::new(),
        }
    }

    pub fn check_host(&mut self, ip: IpAddr, domain: &str) -> CheckHostResult {
        self.check(ip, domain, 0)
    }

    fn terms(&mut self, domain: &str) -> Terms {
        if let Some(t) = self.terms.get(domain) {
            return t.clone();
        }
        let answer = self.dns.get(&format!("TXT {domain}"));
        let terms = if answer.failure().is_some() {
            Err(CheckHostResult::TempError)
        } else {
            match spf_records(&answer).as_slice() {
                [one] => parse_spf(one).map_err(|_| CheckHostResult::PermError),
                [] => Err(CheckHostResult::None),
                _ => Err(CheckHostResult::PermError),
            }
        };
        let terms = Rc::new(terms);
        self.terms.insert(domain.to_owned(), terms.clone());
        terms
    }

    /// Addresses recorded under `key` (`A name`); `Err` for a failed lookup.
    fn addrs(&mut self, key: String) -> Rc<Result<Vec<IpAddr>, ()>> {
        if let Some(a) = self.addrs.get(&key) {
            return a.clone();
        }
        let a = Rc::new(match self.dns.get(&key) {
            Answer::Failed(_) => Err(()),
            Answer::Records(r) => Ok(r.iter().filter_map(|a| a.parse().ok()).collect()),
        });
        self.addrs.insert(key, a.clone());
        a
    }

    fn check(&mut self, ip: IpAddr, domain: &str, depth: usize) -> CheckHostResult {
        if depth > 10 {
            return CheckHostResult::PermError;
        }
        let terms = self.terms(domain);
        let terms = match terms.as_ref() {
            Ok(t) => t,
            Err(result) => return *result,
        };
        let mut redirect = None;
        for term in terms {
            let (qualifier, mechanism) = match term {
                SpfTerm::Directive(q, m) => (*q, m),
                SpfTerm::Modifier(name, value) => {
                    if name == "redirect" {
                        redirect = Some(value.clone());
                    }
                    continue;
                }
            };
            let matched = match mechanism {
                Mechanism::All => Some(true),
                Mechanism::Ip4(net, len) => {
                    Some(ipnet::Ipv4Net::new(*net, *len).is_ok_and(|n| match ip {
                        IpAddr::V4(v4) => n.contains(&v4),
                        IpAddr::V6(_) => false,
                    }))
                }
                Mechanism::Ip6(net, len) => {
                    Some(ipnet::Ipv6Net::new(*net, *len).is_ok_and(|n| match ip {
                        IpAddr::V6(v6) => n.contains(&v6),
                        IpAddr::V4(_) => false,
                    }))
                }
                Mechanism::A { domain: d, v4, v6 } => {
                    let name = d.as_deref().unwrap_or(domain);
                    if has_macro(name) {
                        None
                    } else {
                        match self.addrs(format!("A {name}")).as_ref() {
                            Err(()) => return CheckHostResult::TempError,
                            Ok(addrs) => Some(any_in(addrs, ip, *v4, *v6)),
                        }
                    }
                }
                Mechanism::Mx { domain: d, v4, v6 } => {
                    let name = d.as_deref().unwrap_or(domain);
                    if has_macro(name) {
                        None
                    } else {
                        match self.dns.get(&format!("MX {name}")) {
                            Answer::Failed(_) => return CheckHostResult::TempError,
                            Answer::Records(hosts) => {
                                let mut found = false;
                                for host in hosts.iter().take(10) {
                                    if let Ok(addrs) = self.addrs(format!("A {host}")).as_ref()
                                        && any_in(addrs, ip, *v4, *v6)
                                    {
                                        found = true;
                                    }
                                }
                                Some(found)
                            }
                        }
                    }
                }
                Mechanism::Include(target) => {
                    if has_macro(target) {
                        None
                    } else {
                        match self.check(ip, target, depth + 1) {
                            CheckHostResult::Pass => Some(true),
                            CheckHostResult::Fail
                            | CheckHostResult::SoftFail
                            | CheckHostResult::Neutral => Some(false),
                            CheckHostResult::None | CheckHostResult::PermError => {
                                return CheckHostResult::PermError;
                            }
                            CheckHostResult::TempError => return CheckHostResult::TempError,
                            CheckHostResult::Unknown => None,
                        }
                    }
                }
                Mechanism::Ptr(_) | Mechanism::Exists(_) => None,
            };
            match matched {
                Some(true) => {
                    return match qualifier {
                        '-' => CheckHostResult::Fail,
                        '~' => CheckHostResult::SoftFail,
                        '?' => CheckHostResult::Neutral,
                        _ => CheckHostResult::Pass,
                    };
                }
                Some(false) => {}
                None => return CheckHostResult::Unknown,
            }
        }
        match redirect {
            Some(target) if !has_macro(&target) => {
                match self.check(ip, &target.to_ascii_lowercase(), depth + 1) {
                    CheckHostResult::None => CheckHostResult::PermError,
                    other => other,
                }
            }
            Some(_) => CheckHostResult::Unknown,
            None => CheckHostResult::Neutral,
        }
    }
}

fn any_in(addrs: &[IpAddr], ip: IpAddr, v4: u8, v6: u8) -> bool {
    addrs.iter().any(|a| match (*a, ip) {
        (IpAddr::V4(a), IpAddr::V4(ip)) => {
            ipnet::Ipv4Net::new(a, v4).is_ok_and(|n| n.trunc().contains(&ip))
        }
        (IpAddr::V6(a), IpAddr::V6(ip)) => {
            ipnet::Ipv6Net::new(a, v6).is_ok_and(|n| n.trunc().contains(&ip))
        }
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Answer<String>> {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    (*k).to_owned(),
                    Answer::Records(v.iter().map(|s| (*s).to_owned()).collect()),
                )
            })
            .collect()
    }

    #[test]
    fn counts_lookups_through_includes_and_evaluates_ips() {
        let d = dns(&[
            (
                "TXT example.org",
                &["v=spf1 a mx include:a.example.net -all"],
            ),
            ("A example.org", &["192.0.2.1"]),
            ("MX example.org", &["mx.example.org"]),
            ("A mx.example.org", &["192.0.2.2"]),
            (
                "TXT a.example.net",
                &["v=spf1 ip4:198.51.100.0/24 include:b.example.net ~all"],
            ),
            ("TXT b.example.net", &["v=spf1 a:void.example.net ?all"]),
            ("A void.example.net", &[]),
        ]);
        let w = walk(&mut &d, "example.org");
        assert_eq!((w.lookups, w.void), (5, 1), "{w:?}");
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            check_host(&mut &d, ip("192.0.2.2"), "example.org"),
            CheckHostResult::Pass
        );
        assert_eq!(
            check_host(&mut &d, ip("198.51.100.7"), "example.org"),
            CheckHostResult::Pass
        );
        assert_eq!(
            check_host(&mut &d, ip("203.0.113.1"), "example.org"),
            CheckHostResult::Fail
        );
    }
}
