//! Which policy domains a dashboard user may see: domain patterns (`example.org`, `*.example.org`,
//! `*`) and the set of them given to one user, [`Visible`]. Pure: `serve` (pages, the JSON API,
//! charts, `/metrics`) and `report --user` hand a [`Visible`] to [`crate::judge::Scope`] and to the
//! listings, and whatever it does not allow is treated as if it were not stored.

/// One pattern of a `[web.scopes]` list.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum DomainPattern {
    /// `*`: every domain.
    Any,
    /// `example.org`: that domain only.
    Exact(String),
    /// `*.example.org`: the subdomains of `example.org` at any depth, not `example.org` itself.
    Subdomains(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("domain pattern {0:?}: expected a domain (example.org), *.domain or *")]
    Invalid(String),
}

/// A domain as stored: lower case, without a final dot.
fn normal(domain: &str) -> String {
    domain.trim().trim_end_matches('.').to_ascii_lowercase()
}

fn is_domain(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && !d.starts_with('.')
        && !d.contains("..")
        && d.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

impl DomainPattern {
    pub fn parse(text: &str) -> Result<DomainPattern, PatternError> {
        let t = normal(text);
        let invalid = || PatternError::Invalid(text.chars().take(80).collect());
        if text.trim() == "*" {
            return Ok(DomainPattern::Any);
        }
        match t.strip_prefix("*.") {
            Some(parent) if is_domain(parent) => Ok(DomainPattern::Subdomains(parent.to_owned())),
            Some(_) => Err(invalid()),
            None if is_domain(&t) => Ok(DomainPattern::Exact(t)),
            None => Err(invalid()),
        }
    }

    /// Whether `domain` (as stored: lower case) matches.
    pub fn matches(&self, domain: &str) -> bool {
        let d = normal(domain);
        match self {
            DomainPattern::Any => true,
            DomainPattern::Exact(e) => d == *e,
            DomainPattern::Subdomains(parent) => d
                .strip_suffix(parent.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        }
    }
}

impl std::fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DomainPattern::Any => f.write_str("*"),
            DomainPattern::Exact(d) => f.write_str(d),
            DomainPattern::Subdomains(d) => write!(f, "*.{d}"),
        }
    }
}

/// The domains one user sees.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Visible {
    /// Every domain: no users (a loopback dashboard, or the one `--password-file`), or a user whose
    /// scope holds `*`.
    #[default]
    All,
    /// Only domains matching one of these patterns; none: nothing at all.
    Only(Vec<DomainPattern>),
}

impl Visible {
    /// The scope of a user with these patterns (sorted, without repeats; `*` among them: all).
    pub fn of(mut patterns: Vec<DomainPattern>) -> Visible {
        if patterns.contains(&DomainPattern::Any) {
            return Visible::All;
        }
        patterns.sort();
        patterns.dedup();
        Visible::Only(patterns)
    }

    /// Whether this scope shows `domain`.
    pub fn allows(&self, domain: &str) -> bool {
        match self {
            Visible::All => true,
            Visible::Only(patterns) => patterns.iter().any(|p| p.matches(domain)),
        }
    }

    /// Whether this scope shows nothing at all.
    pub fn is_nothing(&self) -> bool {
        matches!(self, Visible::Only(p) if p.is_empty())
    }

    /// The same for every user with the same scope, different otherwise: what cached pages are
    /// filed under.
    pub fn key(&self) -> String {
        match self {
            Visible::All => "*".to_owned(),
            Visible::Only(patterns) => {
                let list: Vec<String> = patterns.iter().map(ToString::to_string).collect();
                format!("[{}]", list.join(","))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(patterns: &[&str]) -> Visible {
        Visible::of(
            patterns
                .iter()
                .map(|p| DomainPattern::parse(p).unwrap())
                .collect(),
        )
    }

    #[test]
    fn patterns_match_the_domain_or_its_subdomains() {
        let alice = scope(&["Example.org.", "*.example.org"]);
        for yes in [
            "example.org",
            "mail.example.org",
            "a.b.example.org",
            "EXAMPLE.ORG",
        ] {
            assert!(alice.allows(yes), "{yes}");
        }
        for no in [
            "example.com",
            "badexample.org",
            "org",
            "example.org.evil",
            "",
        ] {
            assert!(!alice.allows(no), "{no}");
        }
        let subs = scope(&["*.example.org"]);
        assert!(!subs.allows("example.org"));
        assert!(subs.allows("x.example.org"));
        assert_eq!(scope(&["example.org", "*"]), Visible::All);
        assert!(scope(&[]).is_nothing());
        assert!(!scope(&[]).allows("example.org"));
        assert_eq!(alice.key(), "[example.org,*.example.org]");
        assert_eq!(
            alice,
            scope(&["*.example.org", "example.org", "example.org"])
        );
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in [
            "",
            "*.",
            "a*.example.org",
            "example.*",
            "exa mple.org",
            "*.*.org",
            "../x",
            ".org",
        ] {
            assert!(DomainPattern::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(DomainPattern::parse(" * ").unwrap(), DomainPattern::Any);
    }
}
