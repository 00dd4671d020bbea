//! A record's lists — its DKIM signatures, SPF checks and policy overrides — as both backends store
//! them: one text in the record's `auth` column, written once per record instead of a row per
//! item in three more tables (`record_dkim`, `record_spf`, `record_reasons` before the migrations
//! `schemas/0010_record_lists.sql` and `schemas/postgres/0004_record_lists.sql`), so that a record
//! costs the writer one row.
//!
//! The text ([`pack`]) is the three lists after a `~`, in the report's order, each item's fields
//! in order:
//!
//! ```text
//! ~dkim domain;selector;result[;human result],…|spf domain;scope;result,…|override type;comment,…
//! ```
//!
//! e.g. `~example.org;s1;pass|=;mfrom;pass|`. A field the report left out is `!` (a DKIM
//! signature's human result, last, is left out with it); a domain equal to the first domain of the
//! text is `=`; `\` escapes the next character (`\`, `|`, `,`, `;`, and a value that is exactly `!`
//! or `=`). A NUL in a value is stored as U+FFFD, as PostgreSQL's text cannot hold it, so that
//! both backends store the same text. This is about half of what the same lists took as JSON
//! (`[[["example.org","s1","pass",null]],[["example.org","mfrom","pass"]],[]]`), which
//! `auth` held before `schemas/0021_record_lists_compact.sql` (PostgreSQL: `0012`) and which the
//! migrations that pack the old tables still write: [`Lists::read`] reads both, and nothing reads
//! `auth` but through it (issue 21: the JSON was about 80 of a generated record's 190 bytes, and
//! with `auth` left empty `ingest` took 15–24% less time; the single writer's work follows the
//! bytes it writes).

use std::collections::BTreeMap;

use crate::analyse::check::SelectorSeen;
use crate::model::Record;

/// Appends `rec`'s lists to `out`, as the module describes.
pub fn pack(rec: &Record, out: &mut String) {
    out.push('~');
    let first = (rec.dkim_results.iter().map(|d| d.domain.as_str()))
        .chain(rec.spf_results.iter().map(|s| s.domain.as_str()))
        .next();
    let mut domains = 0;
    let mut domain = |out: &mut String, d: &str| {
        domains += 1;
        if domains > 1 && Some(d) == first {
            out.push('=');
        } else {
            field(out, d);
        }
    };
    for (i, d) in rec.dkim_results.iter().enumerate() {
        item(out, i);
        domain(out, &d.domain);
        out.push(';');
        optional(out, d.selector.as_deref());
        out.push(';');
        field(out, d.result.as_str());
        if let Some(human) = &d.human_result {
            out.push(';');
            field(out, human);
        }
    }
    out.push('|');
    for (i, s) in rec.spf_results.iter().enumerate() {
        item(out, i);
        domain(out, &s.domain);
        out.push(';');
        optional(out, s.scope.as_deref());
        out.push(';');
        field(out, s.result.as_str());
    }
    out.push('|');
    for (i, r) in rec.reasons.iter().enumerate() {
        item(out, i);
        field(out, &r.kind);
        out.push(';');
        optional(out, r.comment.as_deref());
    }
}

/// The separator before the `i`th item of a list.
fn item(out: &mut String, i: usize) {
    if i > 0 {
        out.push(',');
    }
}

fn optional(out: &mut String, value: Option<&str>) {
    match value {
        Some(v) => field(out, v),
        None => out.push('!'),
    }
}

/// The characters that separate the text's lists, items and fields, and its escape.
fn special(c: char) -> bool {
    matches!(c, '\\' | '|' | ',' | ';')
}

/// A value, escaped as the module describes.
fn field(out: &mut String, value: &str) {
    if value == "!" || value == "=" {
        out.push('\\');
        out.push_str(value);
        return;
    }
    // Nearly every value needs no escape: copied whole after one pass that only looks, at its
    // bytes (each special character and NUL is ASCII, never a byte of a longer character).
    if !value
        .bytes()
        .any(|b| matches!(b, b'\\' | b'|' | b',' | b';' | 0))
    {
        out.push_str(value);
        return;
    }
    out.reserve(value.len() + 2);
    for c in value.chars() {
        match c {
            '\0' => out.push('\u{FFFD}'),
            c if special(c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
}

/// A record's lists read back from `auth`: each item's fields in the order the module gives,
/// `None` for a field the report left out (a DKIM signature's human result included).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Lists {
    /// DKIM signatures: domain, selector, result, human result.
    pub dkim: Vec<[Option<String>; 4]>,
    /// SPF checks: domain, scope, result.
    pub spf: Vec<[Option<String>; 3]>,
    /// Policy overrides: type, comment.
    pub reasons: Vec<[Option<String>; 2]>,
}

impl Lists {
    /// Reads `auth` as [`pack`] writes it, or as JSON (`[[[domain, selector, result,
    /// human_result], …], [[domain, scope, result], …], [[type, comment], …]]`, what `auth` held
    /// before and what the migrations that pack the old tables write). `None` when it is neither
    /// (a database written by something else).
    pub fn read(auth: &str) -> Option<Lists> {
        if let Some(text) = auth.strip_prefix('~') {
            return compact(text);
        }
        let (dkim, spf, reasons): (Items, Items, Items) = serde_json::from_str(auth).ok()?;
        Lists::of([dkim, spf, reasons])
    }

    /// The three lists' items as read, each of exactly its list's fields (the missing last ones
    /// `None`).
    fn of([dkim, spf, reasons]: [Items; 3]) -> Option<Lists> {
        Some(Lists {
            dkim: dkim.into_iter().map(fields).collect::<Option<_>>()?,
            spf: spf.into_iter().map(fields).collect::<Option<_>>()?,
            reasons: reasons.into_iter().map(fields).collect::<Option<_>>()?,
        })
    }
}

/// A list's items as read, each its fields.
type Items = Vec<Vec<Option<String>>>;

/// The DKIM selectors that records show signing with one domain itself (`d=` equal to it, in
/// lower case), each with the first and last report periods it appears in: what both backends'
/// [`crate::store::Store::dkim_selectors`] gather from each record's `auth` and its report's period.
pub struct Selectors<'d> {
    domain: &'d str,
    seen: BTreeMap<String, (Option<i64>, Option<i64>)>,
}

impl<'d> Selectors<'d> {
    pub fn new(domain: &'d str) -> Self {
        Selectors {
            domain,
            seen: BTreeMap::new(),
        }
    }

    /// One record's lists, of a report of the period `begin` to `end` (periods unknown count
    /// for neither end; lists that cannot be read, for nothing).
    pub fn add(&mut self, auth: &str, begin: Option<i64>, end: Option<i64>) {
        let Some(lists) = Lists::read(auth) else {
            return;
        };
        for [domain, selector, ..] in lists.dkim {
            let (Some(domain), Some(selector)) = (domain, selector) else {
                continue;
            };
            if selector.is_empty() || domain.to_ascii_lowercase() != self.domain {
                continue;
            }
            let (first, last) = self.seen.entry(selector.to_ascii_lowercase()).or_default();
            *first = match (*first, begin) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            *last = (*last).max(end);
        }
    }

    /// The selectors, in order.
    pub fn into_seen(self) -> Vec<SelectorSeen> {
        (self.seen.into_iter())
            .map(|(selector, (first, last))| SelectorSeen {
                selector,
                first,
                last,
            })
            .collect()
    }
}

/// An item of exactly `N` fields, the missing last ones `None`.
fn fields<const N: usize>(mut item: Vec<Option<String>>) -> Option<[Option<String>; N]> {
    if item.is_empty() || item.len() > N {
        return None;
    }
    item.resize(N, None);
    item.try_into().ok()
}

/// The compact text after its `~`, read in one pass: each field's markers are resolved as it ends
/// (`!` none; a domain `=` the first domain, which is always written whole before it).
fn compact(text: &str) -> Option<Lists> {
    let mut lists: [Items; 3] = Default::default();
    let (mut list, mut item, mut first) = (0, Vec::new(), None::<String>);
    // The field being read, whether any of it was escaped, and whether its item has begun.
    let (mut value, mut escaped, mut in_item) = (String::new(), false, false);
    let mut chars = text.chars();
    loop {
        let c = chars.next();
        match c {
            Some('\\') => {
                value.push(chars.next()?);
                (escaped, in_item) = (true, true);
                continue;
            }
            Some(';' | ',' | '|') | None => {}
            Some(c) => {
                value.push(c);
                in_item = true;
                continue;
            }
        }
        // A field ends: at `;`, or where its item ends once the item has begun.
        if c == Some(';') || in_item {
            let domain = list < 2 && item.is_empty();
            let v = std::mem::take(&mut value);
            item.push(match (v.as_str(), escaped) {
                ("!", false) => None,
                ("=", false) if domain => Some(first.clone()?),
                _ => {
                    if domain && first.is_none() {
                        first = Some(v.clone());
                    }
                    Some(v)
                }
            });
            (escaped, in_item) = (false, true);
            if c == Some(';') {
                continue;
            }
        } else if c == Some(',') {
            return None; // an empty item
        }
        // An item ends (if one began), and at `|` or the end its list.
        if in_item {
            lists.get_mut(list)?.push(std::mem::take(&mut item));
        }
        in_item = false;
        if c != Some(',') {
            list += 1;
            if c.is_none() {
                break;
            }
        }
    }
    if list != 3 {
        return None;
    }
    Lists::of(lists)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DkimAuthResult, DkimResult, PolicyOverride, SpfAuthResult, SpfResult};

    fn packed(rec: &Record) -> String {
        let mut out = String::new();
        pack(rec, &mut out);
        out
    }

    /// The lists of `rec` as [`Lists::read`] should give them back.
    fn expected(rec: &Record) -> Lists {
        let s = |v: &str| Some(v.replace('\0', "\u{FFFD}"));
        let o = |v: &Option<String>| v.as_deref().and_then(s);
        Lists {
            dkim: (rec.dkim_results.iter())
                .map(|d| {
                    let sel = d.selector.as_ref().map(|v| v.to_string());
                    [
                        s(&d.domain),
                        o(&sel),
                        s(d.result.as_str()),
                        o(&d.human_result),
                    ]
                })
                .collect(),
            spf: (rec.spf_results.iter())
                .map(|x| {
                    let scope = x.scope.as_ref().map(|v| v.to_string());
                    [s(&x.domain), o(&scope), s(x.result.as_str())]
                })
                .collect(),
            reasons: (rec.reasons.iter())
                .map(|r| [s(&r.kind), o(&r.comment)])
                .collect(),
        }
    }

    fn dkim(
        domain: &str,
        selector: Option<&str>,
        result: &str,
        human: Option<&str>,
    ) -> DkimAuthResult {
        DkimAuthResult {
            domain: domain.into(),
            selector: selector.map(Into::into),
            result: DkimResult::parse(result),
            human_result: human.map(Into::into),
        }
    }

    fn spf(domain: &str, scope: Option<&str>, result: SpfResult) -> SpfAuthResult {
        SpfAuthResult {
            domain: domain.into(),
            scope: scope.map(Into::into),
            result,
        }
    }

    #[test]
    fn lists_pack_compactly_and_read_back_the_same() {
        let rec = Record {
            dkim_results: smallvec::smallvec![
                dkim("example.org", Some("s\"1\\"), "pass", None),
                dkim(
                    "ex\u{1}ämple\0.net",
                    None,
                    "Weird",
                    Some("line\nbreak;,|\ttab"),
                ),
                dkim("example.org", Some("!"), "fail", Some("=")),
            ],
            spf_results: smallvec::smallvec![spf(
                "example.org",
                Some("mfrom"),
                SpfResult::SoftFail
            )],
            reasons: vec![PolicyOverride {
                kind: "forwarded".into(),
                comment: None,
            }],
            ..Record::default()
        };
        let text = packed(&rec);
        assert_eq!(
            text,
            "~example.org;s\"1\\\\;pass,ex\u{1}ämple\u{FFFD}.net;!;weird;line\nbreak\\;\\,\\|\ttab,\
             =;\\!;fail;\\=|=;mfrom;softfail|forwarded;!"
        );
        assert_eq!(Lists::read(&text), Some(expected(&rec)));
        // The typical record: about half of its JSON.
        let typical = Record {
            dkim_results: smallvec::smallvec![dkim("example.org", Some("s1"), "pass", None)],
            spf_results: smallvec::smallvec![spf("example.org", Some("mfrom"), SpfResult::Pass)],
            ..Record::default()
        };
        assert_eq!(packed(&typical), "~example.org;s1;pass|=;mfrom;pass|");
        assert_eq!(Lists::read(&packed(&typical)), Some(expected(&typical)));
        assert_eq!(packed(&Record::default()), "~||");
        assert_eq!(Lists::read("~||"), Some(Lists::default()));
    }

    #[test]
    fn odd_values_read_back_as_they_were() {
        let values = [
            "", "!", "=", "\\", "|", ",", ";", "~", "\\!", "a=b", "!x", "é\u{1}",
        ];
        for a in values {
            for b in values {
                let rec = Record {
                    dkim_results: smallvec::smallvec![
                        dkim(a, Some(b), "pass", Some(a)),
                        dkim(b, None, b, None)
                    ],
                    spf_results: smallvec::smallvec![
                        spf(a, None, SpfResult::Fail),
                        spf(b, Some(a), SpfResult::None),
                    ],
                    reasons: vec![PolicyOverride {
                        kind: b.into(),
                        comment: Some(a.into()),
                    }],
                    ..Record::default()
                };
                let text = packed(&rec);
                assert_eq!(
                    Lists::read(&text),
                    Some(expected(&rec)),
                    "{a:?} {b:?}: {text:?}"
                );
            }
        }
        // A record with SPF alone: its first domain is the first SPF check's.
        let rec = Record {
            spf_results: smallvec::smallvec![
                spf("a", None, SpfResult::Pass),
                spf("a", None, SpfResult::Pass),
            ],
            ..Record::default()
        };
        assert_eq!(packed(&rec), "~|a;!;pass,=;!;pass|");
        assert_eq!(Lists::read(&packed(&rec)), Some(expected(&rec)));
    }

    #[test]
    fn lists_written_as_json_read_as_they_were_and_other_text_is_refused() {
        let json = r#"[[["example.org","s1","pass",null],["b.example",null,"fail","x"]],[["example.org","mfrom","pass"]],[["forwarded",null]]]"#;
        let some = |v: &str| Some(v.to_owned());
        assert_eq!(
            Lists::read(json),
            Some(Lists {
                dkim: vec![
                    [some("example.org"), some("s1"), some("pass"), None],
                    [some("b.example"), None, some("fail"), some("x")],
                ],
                spf: vec![[some("example.org"), some("mfrom"), some("pass")]],
                reasons: vec![[some("forwarded"), None]],
            })
        );
        assert_eq!(Lists::read("[[],[],[]]"), Some(Lists::default()));
        for bad in [
            "",
            "~",
            "~|",
            "~|||",
            "~a;b|c|d|e",
            "~,|x|",
            "~a\\",
            "[[]]",
            "{}",
            "~=;s;pass||",
        ] {
            assert_eq!(Lists::read(bad), None, "{bad:?}");
        }
    }
}
