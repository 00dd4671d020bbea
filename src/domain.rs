//! Domain names as people and HTTP requests give them: `--domain`, `check DOMAIN…`, the web's
//! `?domain=` and `/domain/…`, and the config's `[[domain]]`, `[[sender]]`, `[[service]]` and
//! `[[notify.channel]] domains`. Every such edge turns the text into a [`Domain`], the one
//! normal form the database holds and compares: spaces around and one final dot (the DNS root)
//! dropped, IDNA (UTS 46, the `idna` crate) mapping upper case to lower case and Unicode labels to
//! their ASCII `xn--` form, at most 253 characters in labels of 1 to 63. So `Example.ORG.`,
//! `example.org` and ` example.org ` are one domain, and `bücher.example` is
//! `xn--bcher-kva.example`. Anything else is refused, with the text in the error. A policy domain
//! ([`Domain::parse_policy`]: `--domain`, `check`, the web, `[[domain]]`, channel `domains`) also has
//! two labels or more, so that `check example` is refused as the typo it is; the domains of senders
//! and services are any DNS name (a reverse DNS name may be `localhost`).
//!
//! Letters, digits, `-`, `_` (DNS names for DKIM and DMARC records carry it) and `.` are the only
//! ASCII allowed. Names in stored reports are written by reporters and kept as they wrote them.

use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};

/// A domain name in its normal form: lower-case ASCII (IDNA `xn--` labels), no final dot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Domain(String);

/// The ASCII no domain name holds: space, controls and every punctuation but `-`, `.` and `_`.
const DENY: AsciiDenyList = AsciiDenyList::new(true, "!\"#$%&'()*+,/:;<=>?@[\\]^`{|}~");

/// Longest text looked at: a name is at most 253 characters once in ASCII, and IDNA's work grows
/// with its input, which may come from an HTTP request.
const MAX_TEXT: usize = 1024;

impl Domain {
    /// The normal form of a policy domain: as [`Domain::parse`], with two labels or more.
    pub fn parse_policy(text: &str) -> Result<Domain, DomainError> {
        let domain = Domain::parse(text)?;
        if !domain.0.contains('.') {
            return Err(DomainError {
                text: text.chars().take(80).collect(),
                why: ": it has one label, and a policy domain has two or more (example.org)",
            });
        }
        Ok(domain)
    }

    /// The normal form of `text`, any DNS name, or why it is not a domain name.
    pub fn parse(text: &str) -> Result<Domain, DomainError> {
        let refused = |why: &'static str| DomainError {
            text: text.chars().take(80).collect(),
            why,
        };
        let trimmed = text.trim();
        let name = trimmed.strip_suffix('.').unwrap_or(trimmed);
        if name.is_empty() {
            return Err(refused(": it is empty"));
        }
        if name.len() > MAX_TEXT {
            return Err(refused(": it is too long"));
        }
        let ascii = Uts46::new()
            .to_ascii(name.as_bytes(), DENY, Hyphens::Allow, DnsLength::Verify)
            .map_err(|_| refused(""))?;
        Ok(Domain(ascii.into_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Domain {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Domain, DomainError> {
        Domain::parse(s)
    }
}

impl std::ops::Deref for Domain {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Domain {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Domain {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Domain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Domain> for String {
    fn from(d: Domain) -> String {
        d.0
    }
}

/// Text that is not a domain name: the text (at most 80 characters) and why. The caller names the
/// option or setting before it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a domain name{why}")]
pub struct DomainError {
    text: String,
    why: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> String {
        Domain::parse_policy(text)
            .unwrap_or_else(|e| panic!("{text:?}: {e}"))
            .into()
    }

    fn ok_any(text: &str) -> String {
        Domain::parse(text)
            .unwrap_or_else(|e| panic!("{text:?}: {e}"))
            .into()
    }

    #[test]
    fn one_normal_form() {
        for text in [
            "example.org",
            "Example.ORG",
            "example.org.",
            " EXAMPLE.org. ",
            "ＥＸＡＭＰＬＥ．ｏｒｇ",
        ] {
            assert_eq!(ok(text), "example.org", "{text:?}");
        }
        assert_eq!(ok("Bücher.example"), "xn--bcher-kva.example");
        assert_eq!(ok("xn--bcher-kva.example"), "xn--bcher-kva.example");
        assert_eq!(ok("_dmarc.example.org"), "_dmarc.example.org");
        assert_eq!(ok("mail-1.example.org"), "mail-1.example.org");
    }

    #[test]
    fn everything_else_is_refused_naming_the_text() {
        for text in [
            "",
            ".",
            "example..org",
            "example.org..",
            ".example.org",
            "exa mple.org",
            "example.org/x",
            "a@example.org",
            "<script>.org",
            "example.org:80",
            "*.example.org",
            "xn--zz.example",
        ] {
            assert!(Domain::parse(text).is_err(), "{text:?} was taken");
        }
        let long = format!("{}.org", "a".repeat(64));
        assert!(Domain::parse(&long).is_err());
        let longest = format!("{}org", "abcdefghi.".repeat(25));
        assert_eq!(ok(&longest).len(), 253);
        assert!(Domain::parse(&format!("a{longest}")).is_err());
        assert!(Domain::parse(&"a.".repeat(5000)).is_err());
        assert_eq!(
            Domain::parse("exa mple.org").unwrap_err().to_string(),
            "\"exa mple.org\" is not a domain name"
        );
        assert_eq!(ok_any("LocalHost."), "localhost");
        assert_eq!(
            Domain::parse_policy("localhost").unwrap_err().to_string(),
            "\"localhost\" is not a domain name: it has one label, and a policy domain has two or \
             more (example.org)"
        );
        let err = Domain::parse(&"x".repeat(500)).unwrap_err().to_string();
        assert!(err.len() < 200, "{err}");
    }
}
