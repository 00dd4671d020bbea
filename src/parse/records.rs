//! DNS TXT records and the MTA-STS policy → structures: DMARC (RFC 9989), SPF (RFC 7208), DKIM key
//! records (RFC 6376), `_mta-sts` and its policy (RFC 8461), TLS-RPT (RFC 8460). No I/O, no panics on
//! any input. Tag lists keep every tag in the order published, so a record can be rewritten with its
//! tags intact (what `advise` needs).
//!
//! Hand-written rather than taken from `mail-auth`: its releases need a newer compiler than this
//! project's (through `mail-parser` 1.0), and its DMARC parser drops unknown and removed tags, which
//! are exactly what `check` reports on.

use std::net::{Ipv4Addr, Ipv6Addr};

use base64::Engine;

/// A `tag=value; …` list (DMARC, DKIM, MTA-STS TXT, TLS-RPT), tags lower-cased, values trimmed, in
/// published order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagList {
    pub tags: Vec<(String, String)>,
}

impl TagList {
    /// Splits on `;`; empty parts (a trailing `;`) are fine, a part without `=` is an error.
    pub fn parse(text: &str) -> Result<TagList, String> {
        let mut tags = Vec::new();
        for part in text.split(';') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let Some((k, v)) = part.split_once('=') else {
                return Err(format!("{part:?} is not tag=value"));
            };
            tags.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
        Ok(TagList { tags })
    }

    /// The first value of `tag`.
    pub fn get(&self, tag: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == tag)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the first tag is `v=<version>` (case-insensitive on the value).
    pub fn version_is(&self, version: &str) -> bool {
        self.tags
            .first()
            .is_some_and(|(k, v)| k == "v" && v.eq_ignore_ascii_case(version))
    }

    /// The list written back, `tag=value` joined by `; `.
    pub fn to_record(&self) -> String {
        self.tags
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Whether a TXT record is a DMARC record (starts `v=DMARC1`).
pub fn is_dmarc(txt: &str) -> bool {
    let t = txt.trim_start();
    t.get(..8)
        .is_some_and(|v| v.eq_ignore_ascii_case("v=DMARC1"))
        && t[8..].trim_start().is_empty_or_starts_with(';')
}

trait EmptyOr {
    fn is_empty_or_starts_with(&self, c: char) -> bool;
}

impl EmptyOr for str {
    fn is_empty_or_starts_with(&self, c: char) -> bool {
        self.is_empty() || self.starts_with(c)
    }
}

/// A DMARC policy record: its tags in order, with accessors for the ones `check` and `advise` use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DmarcRecord {
    pub tags: TagList,
}

/// Tags RFC 9989 defines.
pub const DMARC_TAGS: &[&str] = &[
    "v", "p", "sp", "np", "adkim", "aspf", "fo", "rua", "ruf", "t", "psd",
];
/// Tags of RFC 7489 that RFC 9989 removed.
pub const DMARC_REMOVED_TAGS: &[&str] = &["pct", "rf", "ri"];

impl DmarcRecord {
    /// Parses a TXT record that [`is_dmarc`].
    pub fn parse(txt: &str) -> Result<DmarcRecord, String> {
        let tags = TagList::parse(txt)?;
        if !tags.version_is("DMARC1") {
            return Err("the record does not start with v=DMARC1".into());
        }
        Ok(DmarcRecord { tags })
    }

    pub fn get(&self, tag: &str) -> Option<&str> {
        self.tags.get(tag)
    }

    /// `p=`, lower-cased.
    pub fn p(&self) -> Option<String> {
        self.get("p").map(str::to_ascii_lowercase)
    }

    /// `rua=` URIs.
    pub fn rua(&self) -> Vec<String> {
        uris(self.get("rua"))
    }

    /// `ruf=` URIs.
    pub fn ruf(&self) -> Vec<String> {
        uris(self.get("ruf"))
    }

    /// The record as published, normalised to `tag=value; …`.
    pub fn to_record(&self) -> String {
        self.tags.to_record()
    }

    /// Sets `tag` to `value` where it stands, or adds it at the end: the way to rewrite a
    /// published record (`advise`) while keeping every other tag in its place.
    pub fn set(&mut self, tag: &str, value: &str) {
        match self.tags.tags.iter_mut().find(|(k, _)| k == tag) {
            Some((_, v)) => *v = value.to_owned(),
            None => self.tags.tags.push((tag.to_owned(), value.to_owned())),
        }
    }

    /// Removes `tag` (every occurrence).
    pub fn remove(&mut self, tag: &str) {
        self.tags.tags.retain(|(k, _)| k != tag);
    }
}

fn uris(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The domain of a `mailto:` report URI (`mailto:dmarc@example.net!10m` → `example.net`).
pub fn mailto_domain(uri: &str) -> Option<String> {
    let rest = uri
        .get(..7)
        .filter(|s| s.eq_ignore_ascii_case("mailto:"))
        .map(|_| &uri[7..])?;
    let address = rest.split('!').next().unwrap_or_default();
    let (_, domain) = address.rsplit_once('@')?;
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    (!domain.is_empty()).then_some(domain)
}

/// Whether a TXT record is an SPF record (`v=spf1` followed by a space or nothing).
pub fn is_spf(txt: &str) -> bool {
    let t = txt.trim();
    t.get(..6).is_some_and(|v| v.eq_ignore_ascii_case("v=spf1"))
        && t[6..].is_empty_or_starts_with(' ')
}

/// An SPF mechanism; a domain of `None` means the domain being checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    All,
    Include(String),
    A {
        domain: Option<String>,
        v4: u8,
        v6: u8,
    },
    Mx {
        domain: Option<String>,
        v4: u8,
        v6: u8,
    },
    Ptr(Option<String>),
    Ip4(Ipv4Addr, u8),
    Ip6(Ipv6Addr, u8),
    Exists(String),
}

/// One term of an SPF record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpfTerm {
    /// `+`, `-`, `~` or `?` and a mechanism.
    Directive(char, Mechanism),
    /// `name=value` (`redirect`, `exp`, or unknown ones, which RFC 7208 says to ignore).
    Modifier(String, String),
}

/// Parses an SPF record into its terms; any term that is not valid SPF is an error (a permerror
/// for receivers).
pub fn parse_spf(txt: &str) -> Result<Vec<SpfTerm>, String> {
    if !is_spf(txt) {
        return Err("the record does not start with v=spf1".into());
    }
    let mut terms = Vec::new();
    for term in txt.trim()[6..].split_ascii_whitespace() {
        terms.push(spf_term(term).ok_or_else(|| format!("{term:?} is not a valid SPF term"))?);
    }
    Ok(terms)
}

fn spf_term(term: &str) -> Option<SpfTerm> {
    let (qualifier, rest) = match term.chars().next()? {
        q @ ('+' | '-' | '~' | '?') => (q, &term[1..]),
        _ => ('+', term),
    };
    let lower = rest.to_ascii_lowercase();
    let (name, arg) = match lower.find([':', '/', '=']) {
        Some(i) => (&lower[..i], Some((&lower[i..i + 1], &rest[i + 1..]))),
        None => (lower.as_str(), None),
    };
    let domain_spec = |arg: Option<(&str, &str)>| -> Option<String> {
        match arg {
            Some((":", d)) if valid_domain_spec(d) => Some(d.to_ascii_lowercase()),
            _ => None,
        }
    };
    let mechanism = match (name, arg) {
        ("all", None) => Mechanism::All,
        ("include", a) => Mechanism::Include(domain_spec(a)?),
        ("exists", a) => Mechanism::Exists(domain_spec(a)?),
        ("ptr", None) => Mechanism::Ptr(None),
        ("ptr", a) => Mechanism::Ptr(Some(domain_spec(a)?)),
        ("a" | "mx", a) => {
            let (domain, v4, v6) = match a {
                None => (None, 32, 128),
                Some((sep, tail)) => {
                    let full = format!("{sep}{tail}");
                    let (spec, cidr) = match full.find('/') {
                        Some(i) => (&full[..i], &full[i..]),
                        None => (full.as_str(), ""),
                    };
                    let domain = match spec {
                        "" => None,
                        s => Some(domain_spec(Some((":", s.strip_prefix(':')?)))?),
                    };
                    let (v4, v6) = dual_cidr(cidr)?;
                    (domain, v4, v6)
                }
            };
            if name == "a" {
                Mechanism::A { domain, v4, v6 }
            } else {
                Mechanism::Mx { domain, v4, v6 }
            }
        }
        ("ip4", Some((":", net))) => {
            let (addr, len) = net.split_once('/').unwrap_or((net, "32"));
            let len: u8 = len.parse().ok().filter(|l| *l <= 32)?;
            Mechanism::Ip4(addr.parse().ok()?, len)
        }
        ("ip6", Some((":", net))) => {
            let (addr, len) = net.split_once('/').unwrap_or((net, "128"));
            let len: u8 = len.parse().ok().filter(|l| *l <= 128)?;
            Mechanism::Ip6(addr.parse().ok()?, len)
        }
        (name, Some(("=", value)))
            if qualifier == '+'
                && !term.starts_with('+')
                && !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
        {
            return Some(SpfTerm::Modifier(name.to_owned(), value.to_owned()));
        }
        _ => return None,
    };
    Some(SpfTerm::Directive(qualifier, mechanism))
}

/// `/24`, `//64`, `/24//64` or nothing.
fn dual_cidr(s: &str) -> Option<(u8, u8)> {
    if s.is_empty() {
        return Some((32, 128));
    }
    let (v4, v6) = match s.strip_prefix("//") {
        Some(v6) => (None, Some(v6)),
        None => {
            let s = s.strip_prefix('/')?;
            match s.split_once("//") {
                Some((a, b)) => (Some(a), Some(b)),
                None => (Some(s), None),
            }
        }
    };
    let v4 = match v4 {
        Some(v) => v.parse().ok().filter(|l| *l <= 32)?,
        None => 32,
    };
    let v6 = match v6 {
        Some(v) => v.parse().ok().filter(|l| *l <= 128)?,
        None => 128,
    };
    Some((v4, v6))
}

fn valid_domain_spec(d: &str) -> bool {
    !d.is_empty()
        && d.chars()
            .all(|c| c.is_ascii_graphic() && c != '/' || c == '%')
}

/// Whether an SPF domain-spec holds a macro (`%{i}`…), which only a receiver can expand.
pub fn has_macro(spec: &str) -> bool {
    spec.contains('%')
}

/// A DKIM key record (`v=DKIM1; k=rsa; p=…`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DkimKey {
    pub tags: TagList,
}

/// What a DKIM key record's `p=` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyBits {
    /// `p=` empty: the key is revoked.
    Revoked,
    /// An RSA key of this many bits.
    Rsa(usize),
    /// An Ed25519 key (`k=ed25519`).
    Ed25519,
    /// The key could not be read.
    Invalid(String),
}

impl DkimKey {
    pub fn parse(txt: &str) -> Result<DkimKey, String> {
        let tags = TagList::parse(txt)?;
        if let Some(v) = tags.get("v")
            && (!tags.version_is("DKIM1") || v != "DKIM1")
        {
            return Err("v= is not DKIM1 (or not the first tag)".into());
        }
        if tags.get("p").is_none() {
            return Err("no p= tag".into());
        }
        Ok(DkimKey { tags })
    }

    /// `t=` flags include `y` (testing).
    pub fn testing(&self) -> bool {
        self.tags
            .get("t")
            .is_some_and(|t| t.split(':').any(|f| f.trim().eq_ignore_ascii_case("y")))
    }

    pub fn key(&self) -> KeyBits {
        let p: String = self
            .tags
            .get("p")
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        if p.is_empty() {
            return KeyBits::Revoked;
        }
        let der = match base64::engine::general_purpose::STANDARD.decode(&p) {
            Ok(der) => der,
            Err(e) => return KeyBits::Invalid(format!("p= is not base64: {e}")),
        };
        let k = self.tags.get("k").unwrap_or("rsa").to_ascii_lowercase();
        if k == "ed25519" {
            return if der.len() == 32 {
                KeyBits::Ed25519
            } else {
                KeyBits::Invalid(format!("an Ed25519 key of {} bytes", der.len()))
            };
        }
        if k != "rsa" {
            return KeyBits::Invalid(format!("unknown key type k={k}"));
        }
        rsa_bits(&der)
    }
}

/// The size of an RSA public key given as SubjectPublicKeyInfo (what DKIM publishes) or, as some
/// do, a bare PKCS#1 RSAPublicKey.
fn rsa_bits(der: &[u8]) -> KeyBits {
    use x509_parser::prelude::FromDer;
    use x509_parser::public_key::{PublicKey, RSAPublicKey};
    use x509_parser::x509::SubjectPublicKeyInfo;
    match SubjectPublicKeyInfo::from_der(der) {
        Ok((_, spki)) => match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => KeyBits::Rsa(rsa.key_size()),
            Ok(_) => KeyBits::Invalid("not an RSA key".into()),
            Err(e) => KeyBits::Invalid(format!("unreadable key: {e}")),
        },
        Err(_) => match RSAPublicKey::from_der(der) {
            Ok((_, rsa)) => KeyBits::Rsa(rsa.key_size()),
            Err(e) => KeyBits::Invalid(format!("unreadable key: {e}")),
        },
    }
}

/// An MTA-STS policy (RFC 8461 §3.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StsPolicy {
    pub version: Option<String>,
    pub mode: Option<String>,
    pub mx: Vec<String>,
    pub max_age: Option<u64>,
    /// Lines that are not `key: value`, and values that are not valid.
    pub problems: Vec<String>,
}

impl StsPolicy {
    pub fn parse(text: &str) -> StsPolicy {
        let mut p = StsPolicy::default();
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() {
                continue;
            }
            let Some((k, v)) = line.split_once(':') else {
                p.problems.push(format!("{line:?} is not key: value"));
                continue;
            };
            let v = v.trim();
            match k.trim() {
                "version" => p.version = Some(v.to_owned()),
                "mode" => p.mode = Some(v.to_owned()),
                "mx" => p.mx.push(v.to_ascii_lowercase()),
                "max_age" => match v.parse::<u64>() {
                    Ok(n) if v.len() <= 10 => p.max_age = Some(n),
                    _ => p
                        .problems
                        .push(format!("max_age {v:?} is not a number of seconds")),
                },
                _ => {}
            }
        }
        p
    }

    /// Whether an `mx:` pattern covers `host` (`*.example.org` matches one label).
    pub fn covers(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.mx
            .iter()
            .any(|pattern| match pattern.strip_prefix("*.") {
                Some(suffix) => host.split_once('.').is_some_and(|(_, rest)| rest == suffix),
                None => *pattern == host,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dmarc_tags_keep_their_order() {
        let r =
            DmarcRecord::parse("v=DMARC1; p=none; rua=mailto:a@x.org, mailto:b@y.net!10m; fo=1;")
                .unwrap();
        assert_eq!(r.p().as_deref(), Some("none"));
        assert_eq!(r.rua(), ["mailto:a@x.org", "mailto:b@y.net!10m"]);
        assert_eq!(
            r.to_record(),
            "v=DMARC1; p=none; rua=mailto:a@x.org, mailto:b@y.net!10m; fo=1"
        );
        assert_eq!(
            mailto_domain("mailto:b@Y.net!10m").as_deref(),
            Some("y.net")
        );
        assert!(is_dmarc("v=DMARC1;p=none") && is_dmarc("v=DMARC1") && !is_dmarc("v=DMARC10"));
        assert!(DmarcRecord::parse("v=DMARC1; p").is_err());
        let mut r = r;
        r.set("p", "quarantine");
        r.set("t", "y");
        r.remove("fo");
        assert_eq!(
            r.to_record(),
            "v=DMARC1; p=quarantine; rua=mailto:a@x.org, mailto:b@y.net!10m; t=y"
        );
    }

    #[test]
    fn spf_terms() {
        let t = parse_spf("v=spf1 ip4:192.0.2.0/24 -ip6:2001:db8::/32 a mx:m.example.org/24//64 include:_spf.x.org ~all redirect=y.org").unwrap();
        assert_eq!(
            t[0],
            SpfTerm::Directive('+', Mechanism::Ip4([192, 0, 2, 0].into(), 24))
        );
        assert!(matches!(
            t[1],
            SpfTerm::Directive('-', Mechanism::Ip6(_, 32))
        ));
        assert_eq!(
            t[2],
            SpfTerm::Directive(
                '+',
                Mechanism::A {
                    domain: None,
                    v4: 32,
                    v6: 128
                }
            )
        );
        assert_eq!(
            t[3],
            SpfTerm::Directive(
                '+',
                Mechanism::Mx {
                    domain: Some("m.example.org".into()),
                    v4: 24,
                    v6: 64
                }
            )
        );
        assert_eq!(t[6], SpfTerm::Modifier("redirect".into(), "y.org".into()));
        assert!(parse_spf("v=spf1 ip4:300.1.1.1 -all").is_err());
        assert!(parse_spf("v=spf1 foo -all").is_err());
        assert!(!is_spf("v=spf10 -all"));
    }

    /// Records come from anyone's DNS: no input may panic.
    #[test]
    fn odd_records_do_not_panic() {
        for text in [
            "",
            "v",
            "v=",
            "é",
            "v=DMARC1é",
            "v=spf1é",
            "v=spf1 é:x",
            "v=spf1 ip4:",
            "v=spf1 a/",
            "v=spf1 a//",
            "v=spf1 mx:/99",
            "v=spf1 ip6:::/129",
            "v=spf1 -",
            "v=spf1 =x",
            "mailto:",
            "mailto:@",
            "v=DKIM1; p=é",
            ";;;",
            "v=DMARC1;;p==;",
        ] {
            let _ = parse_spf(text);
            let _ = DmarcRecord::parse(text).map(|r| (r.rua(), r.ruf(), r.p()));
            let _ = mailto_domain(text);
            let _ = DkimKey::parse(text).map(|k| k.key());
            let _ = StsPolicy::parse(text).covers(text);
        }
    }

    #[test]
    fn dkim_keys_and_sts_policies() {
        assert_eq!(
            DkimKey::parse("v=DKIM1; p=").unwrap().key(),
            KeyBits::Revoked
        );
        assert!(matches!(
            DkimKey::parse("v=DKIM1; p=!!").unwrap().key(),
            KeyBits::Invalid(_)
        ));
        let p = StsPolicy::parse(
            "version: STSv1\r\nmode: enforce\r\nmx: *.example.org\r\nmax_age: 86400\r\n",
        );
        assert_eq!(p.mode.as_deref(), Some("enforce"));
        assert!(p.covers("mx1.example.org") && !p.covers("a.b.example.org"));
        assert_eq!(p.max_age, Some(86400));
    }
}
