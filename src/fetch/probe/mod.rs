//! Probes for `check`: what a domain publishes, gathered from DNS ([`dns`]), its MX hosts over SMTP
//! ([`smtp`]) and its MTA-STS policy over HTTPS ([`https`]) into [`Facts`]. Gathers only: whether
//! what it found is right is for [`crate::analyse::check::judge`]. Every question has a timeout, and a failed
//! one is recorded in the facts, never an error.

pub mod dns;
pub mod https;
pub mod smtp;
pub mod tls;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::analyse::check::spf::{self, SpfDns};
use crate::analyse::check::{Answer, DmarcLookup, Facts};
use crate::parse::records::{DmarcRecord, is_dmarc, mailto_domain};

/// How to probe.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The DNS server every question goes to; `None`: the system's.
    pub resolver: Option<SocketAddr>,
    /// Extra trust anchors (PEM) for the TLS checks.
    pub ca_file: Option<PathBuf>,
    /// Timeout of one DNS question.
    pub dns_timeout: Duration,
    /// Timeout of one SMTP or HTTPS operation.
    pub timeout: Duration,
    /// Most MX hosts connected to per domain.
    pub max_mx: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Dns(#[from] dns::DnsSetupError),
    #[error(transparent)]
    CaFile(#[from] tls::CaFileError),
}

/// A resolver and trust anchors, shared by the threads that probe domains.
pub struct Prober {
    pub dns: dns::Dns,
    trust: tls::Trust,
    settings: Settings,
}

/// Answers for the SPF walk, asked live and recorded for the judge.
struct Recording<'a> {
    dns: &'a dns::Dns,
    seen: BTreeMap<String, Answer<String>>,
}

impl SpfDns for Recording<'_> {
    fn get(&mut self, key: &str) -> Answer<String> {
        if let Some(a) = self.seen.get(key) {
            return a.clone();
        }
        let (kind, name) = key.split_once(' ').unwrap_or(("TXT", key));
        let answer = match kind {
            "A" => map(self.dns.addrs(name), |ip| ip.to_string()),
            "MX" => map(self.dns.mx(name), |mx| mx.host),
            _ => self.dns.txt(name),
        };
        self.seen.insert(key.to_owned(), answer.clone());
        answer
    }
}

fn map<T, U>(a: Answer<T>, f: impl Fn(T) -> U) -> Answer<U> {
    match a {
        Answer::Records(r) => Answer::Records(r.into_iter().map(f).collect()),
        Answer::Failed(e) => Answer::Failed(e),
    }
}

impl Prober {
    pub fn new(settings: Settings) -> Result<Prober, ProbeError> {
        Ok(Prober {
            dns: dns::Dns::new(settings.resolver, settings.dns_timeout)?,
            trust: tls::Trust::load(settings.ca_file.as_deref())?,
            settings,
        })
    }

    /// Everything `check` looks at for `domain`, with the DKIM keys of `selectors`.
    pub fn gather(&self, domain: &str, selectors: &[String]) -> Facts {
        let dns = &self.dns;
        let mut facts = Facts {
            domain: domain.to_owned(),
            dmarc: dns.txt(&format!("_dmarc.{domain}")),
            ..Facts::default()
        };
        let own: Vec<&String> = facts
            .dmarc
            .records()
            .iter()
            .filter(|r| is_dmarc(r))
            .collect();
        if own.is_empty() && facts.dmarc.failure().is_none() {
            facts.inherited = tree_walk(dns, domain);
        }
        // Report destinations of the record that applies, authorised for the domain it is
        // published for.
        let record = match (own.first(), &facts.inherited) {
            (Some(r), _) => Some((domain.to_owned(), (*r).clone())),
            (None, Some((at, r))) => Some((at.trim_start_matches("_dmarc.").to_owned(), r.clone())),
            (None, None) => None,
        };
        if let Some((policy_domain, Ok(record))) = record.map(|(d, r)| (d, DmarcRecord::parse(&r)))
        {
            let org = crate::analyse::registrable(&policy_domain);
            for uri in record.rua().iter().chain(record.ruf().iter()) {
                if let Some(dest) = mailto_domain(uri)
                    && crate::analyse::registrable(&dest) != org
                {
                    let name = format!("{policy_domain}._report._dmarc.{dest}");
                    if let std::collections::btree_map::Entry::Vacant(slot) =
                        facts.report_auth.entry(name)
                    {
                        let answer = dns.txt(slot.key());
                        slot.insert(answer);
                    }
                }
            }
        }
        let mut recording = Recording {
            dns,
            seen: BTreeMap::new(),
        };
        spf::walk(&mut recording, domain);
        facts.spf_dns = recording.seen;
        facts.mx = dns.mx(domain);
        for mx in facts.mx.records().iter().take(self.settings.max_mx) {
            if mx.host.is_empty() {
                continue; // a null MX (RFC 7505): no mail accepted
            }
            let addr = dns.addrs(&mx.host);
            facts.mx_tls.push(match addr.records().first() {
                Some(ip) => smtp::probe(
                    &mx.host,
                    SocketAddr::new(*ip, 25),
                    &self.trust,
                    self.settings.timeout,
                ),
                None => crate::analyse::check::MxTls {
                    host: mx.host.clone(),
                    error: Some(match addr.failure() {
                        Some(e) => format!("could not resolve {}: {e}", mx.host),
                        None => format!("{} has no address", mx.host),
                    }),
                    ..crate::analyse::check::MxTls::default()
                },
            });
        }
        facts.mta_sts = dns.txt(&format!("_mta-sts.{domain}"));
        if facts
            .mta_sts
            .records()
            .iter()
            .any(|r| r.trim_start().starts_with("v=STSv1"))
        {
            let host = format!("mta-sts.{domain}");
            facts.mta_sts_policy = Some(match dns.addrs(&host) {
                Answer::Records(ips) if !ips.is_empty() => https::policy(
                    domain,
                    ips.iter()
                        .map(|ip: &IpAddr| SocketAddr::new(*ip, 443))
                        .collect(),
                    &self.trust,
                    self.settings.timeout,
                ),
                Answer::Records(_) => {
                    crate::analyse::check::PolicyFetch::Failed(format!("{host} has no address"))
                }
                Answer::Failed(e) => crate::analyse::check::PolicyFetch::Failed(format!(
                    "could not resolve {host}: {e}"
                )),
            });
        }
        facts.tls_rpt = dns.txt(&format!("_smtp._tls.{domain}"));
        for selector in selectors {
            facts.dkim.insert(
                selector.clone(),
                dns.txt(&format!("{selector}._domainkey.{domain}")),
            );
        }
        facts
    }
}

/// RFC 9989 §4.10.1: from the parent of `domain` towards the root (at most 8 labels, the TLD left
/// out), the first DMARC record found, with the name it is at.
fn tree_walk(dns: &dns::Dns, domain: &str) -> Option<(String, String)> {
    let labels: Vec<&str> = domain.split('.').collect();
    let start = labels.len().saturating_sub(8).max(1);
    for i in start..labels.len().saturating_sub(1) {
        let parent = labels[i..].join(".");
        let name = format!("_dmarc.{parent}");
        let answer = dns.txt(&name);
        let mut found = answer.records().iter().filter(|r| is_dmarc(r));
        if let (Some(record), None) = (found.next(), found.next()) {
            return Some((name, record.clone()));
        }
    }
    None
}

/// Looks up the DMARC record that applies to `domain` (its own, or by the tree walk).
pub fn lookup_dmarc(dns: &dns::Dns, domain: &str) -> DmarcLookup {
    let answer = dns.txt(&format!("_dmarc.{domain}"));
    if let Some(e) = answer.failure() {
        return DmarcLookup::Failed(e.to_owned());
    }
    let own: Vec<&String> = answer.records().iter().filter(|r| is_dmarc(r)).collect();
    match own.as_slice() {
        [one] => match DmarcRecord::parse(one) {
            Ok(r) => DmarcLookup::Own(r),
            Err(e) => DmarcLookup::Invalid(e),
        },
        [] => match tree_walk(dns, domain) {
            Some((at, record)) => match DmarcRecord::parse(&record) {
                Ok(record) => DmarcLookup::Inherited { at, record },
                Err(e) => DmarcLookup::Invalid(format!("{at}: {e}")),
            },
            None => DmarcLookup::Missing,
        },
        many => DmarcLookup::Invalid(format!("{} DMARC records", many.len())),
    }
}
