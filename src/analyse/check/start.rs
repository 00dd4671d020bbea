//! Where `advise` starts from: the DMARC record published in DNS when it could be read (keeping
//! every tag, so the recommended record changes only what it must), else the policy the latest
//! reports saw (`policy_published`), with a note saying which and why. Pure.

use super::DmarcLookup;
use crate::model::PolicyPublished;
use crate::parse::records::{DmarcRecord, TagList};

/// The current policy of a domain, and the record to rewrite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartingPoint {
    /// The published record (tags in order), or one rebuilt from the reports' `policy_published`.
    pub record: DmarcRecord,
    /// Whether `record` came from DNS.
    pub from_dns: bool,
    /// Lower-case `p=` (`none` when absent).
    pub p: String,
    pub sp: Option<String>,
    pub np: Option<String>,
    /// `t=` (`y` / `n`) when published.
    pub t: Option<String>,
    /// What `advise` should say about where the policy came from and any mismatch.
    pub notes: Vec<String>,
}

/// Chooses the starting point: `lookup` is `None` with `--offline`.
pub fn starting_point(lookup: Option<&DmarcLookup>, reported: &PolicyPublished) -> StartingPoint {
    let d = &reported.domain;
    let from_reports = |note: String| {
        let mut tags = vec![("v".to_owned(), "DMARC1".to_owned())];
        let mut push = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                tags.push((k.to_owned(), v.clone()));
            }
        };
        // Defaults (adkim=r, aspf=r, fo=0, t=n) are left out, as a record would.
        let unless = |v: &Option<String>, default: &str| {
            v.clone().filter(|v| !v.eq_ignore_ascii_case(default))
        };
        push("p", &reported.p);
        push("sp", &reported.sp);
        push("np", &reported.np);
        push("adkim", &unless(&reported.adkim, "r"));
        push("aspf", &unless(&reported.aspf, "r"));
        push("fo", &unless(&reported.fo, "0"));
        push("t", &unless(&reported.testing, "n"));
        let record = DmarcRecord {
            tags: TagList { tags },
        };
        finish(record, false, vec![note])
    };
    match lookup {
        None => from_reports(format!(
            "DNS not read (--offline): the current policy of {d} is the one the latest reports saw"
        )),
        Some(DmarcLookup::Failed(e)) => from_reports(format!(
            "DNS could not be read for _dmarc.{d} ({e}): the current policy is the one the latest reports saw"
        )),
        Some(DmarcLookup::Invalid(e)) => from_reports(format!(
            "the DMARC record at _dmarc.{d} is unusable ({e}), so receivers apply none; the reports' policy is shown"
        )),
        Some(DmarcLookup::Missing) => from_reports(format!(
            "no DMARC record applies to {d} in DNS now; the latest reports saw the one shown"
        )),
        Some(DmarcLookup::Own(record)) => {
            let mut start = finish(record.clone(), true, Vec::new());
            mismatch(&mut start, reported);
            start
        }
        Some(DmarcLookup::Inherited { at, record }) => {
            // The parent's record applies with its sp= (or p=) to this subdomain.
            let mut start = finish(
                record.clone(),
                true,
                vec![format!(
                    "{d} has no DMARC record of its own: {at} applies (by the RFC 9989 tree walk)"
                )],
            );
            if let Some(sp) = start.sp.clone() {
                start.p = sp;
            }
            mismatch(&mut start, reported);
            start
        }
    }
}

fn finish(record: DmarcRecord, from_dns: bool, notes: Vec<String>) -> StartingPoint {
    let lower = |t: &str| record.get(t).map(str::to_ascii_lowercase);
    StartingPoint {
        p: lower("p").unwrap_or_else(|| "none".into()),
        sp: lower("sp"),
        np: lower("np"),
        t: lower("t"),
        record,
        from_dns,
        notes,
    }
}

fn mismatch(start: &mut StartingPoint, reported: &PolicyPublished) {
    if let Some(seen) = reported.p.as_deref()
        && !seen.eq_ignore_ascii_case(&start.p)
    {
        start.notes.push(format!(
            "DNS publishes p={} but the latest reports saw p={seen}: the record changed since, or some receivers get another record",
            start.p
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_first_then_the_reports() {
        let reported = PolicyPublished {
            domain: "example.org".into(),
            p: Some("none".into()),
            pct: Some(100),
            ..PolicyPublished::default()
        };
        let record =
            DmarcRecord::parse("v=DMARC1; p=quarantine; rua=mailto:d@example.org; fo=1").unwrap();
        let s = starting_point(Some(&DmarcLookup::Own(record)), &reported);
        assert!(s.from_dns);
        assert_eq!(s.p, "quarantine");
        assert_eq!(s.record.get("rua"), Some("mailto:d@example.org"));
        assert!(
            s.notes[0].contains("DNS publishes p=quarantine but the latest reports saw p=none")
        );
        let s = starting_point(Some(&DmarcLookup::Failed("SERVFAIL".into())), &reported);
        assert!(!s.from_dns);
        assert_eq!(s.record.to_record(), "v=DMARC1; p=none");
        assert!(s.notes[0].contains("SERVFAIL"));
        let s = starting_point(None, &reported);
        assert!(s.notes[0].starts_with("DNS not read (--offline)"));
    }
}
