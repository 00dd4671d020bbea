//! A record's lists — its DKIM signatures, SPF checks and policy overrides — as both backends store
//! them: one JSON text in the record's `auth` column, written once per record instead of a row per
//! item in three more tables (`record_dkim`, `record_spf`, `record_reasons` before the migrations
//! `schemas/0010_record_lists.sql` and `schemas/postgres/0004_record_lists.sql`), so that a record costs the writer one row.
//!
//! The text is three arrays, in the report's order, each item an array of its fields:
//!
//! ```text
//! [[[dkim domain, selector, result, human_result], …],
//!  [[spf domain, scope, result], …],
//!  [[override type, comment], …]]
//! ```
//!
//! with `null` for a field the report left out, e.g. `[[["example.org","s1","pass",null]],
//! [["example.org","mfrom","pass"]],[]]`. SQL reads it with the JSON functions both backends have
//! (`check`'s DKIM selectors: `src/store/*/checks.rs`); the migrations that pack the old tables
//! write the same text for the same values. A NUL in a value is stored as U+FFFD, as PostgreSQL's text cannot hold it, so that both
//! backends store the same text.

use crate::model::{AggregateReport, Record};

/// The lists of every record of a report, packed ahead of its unit of work ([`Packed::of`], on
/// the parsing threads, so that the single writer does not pack them: about 1,200 instructions a
/// record, a tenth of what the writer spends on one).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Packed {
    /// Every record's text, one after another.
    text: String,
    /// Where each record's text ends in `text`.
    ends: Vec<usize>,
}

impl Packed {
    /// `report`'s records' lists, in order.
    pub fn of(report: &AggregateReport) -> Packed {
        let mut p = Packed {
            text: String::new(),
            ends: Vec::with_capacity(report.records.len()),
        };
        for rec in &report.records {
            pack(rec, &mut p.text);
            p.ends.push(p.text.len());
        }
        p
    }

    /// The text of the `i`th record, if the report had that many.
    pub fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)?;
        let start = i.checked_sub(1).map_or(0, |j| self.ends[j]);
        self.text.get(start..end)
    }

    /// How many records' lists it holds.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

/// Appends `rec`'s lists to `out`, as the module describes.
pub fn pack(rec: &Record, out: &mut String) {
    out.push('[');
    list(out, &rec.dkim_results, |out, d| {
        string(out, &d.domain);
        out.push(',');
        optional(out, d.selector.as_deref());
        out.push(',');
        string(out, d.result.as_str());
        out.push(',');
        optional(out, d.human_result.as_deref());
    });
    out.push(',');
    list(out, &rec.spf_results, |out, s| {
        string(out, &s.domain);
        out.push(',');
        optional(out, s.scope.as_deref());
        out.push(',');
        string(out, s.result.as_str());
    });
    out.push(',');
    list(out, &rec.reasons, |out, r| {
        string(out, &r.kind);
        out.push(',');
        optional(out, r.comment.as_deref());
    });
    out.push(']');
}

/// `[item, …]`, each item an array written by `fields`.
fn list<T>(out: &mut String, items: &[T], fields: impl Fn(&mut String, &T)) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        fields(out, item);
        out.push(']');
    }
    out.push(']');
}

fn optional(out: &mut String, value: Option<&str>) {
    match value {
        Some(v) => string(out, v),
        None => out.push_str("null"),
    }
}

/// A JSON string (RFC 8259) as SQLite's and PostgreSQL's JSON functions write one: `"` and `\`
/// escaped, `\b \f \n \r \t` by name, other control characters as `\u00XX`.
fn string(out: &mut String, value: &str) {
    out.reserve(value.len() + 2);
    out.push('"');
    // Nearly every value needs no escape: copied whole after one pass that only looks.
    if !value.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(value);
        out.push('"');
        return;
    }
    let mut plain = 0;
    for (i, b) in value.bytes().enumerate() {
        if b >= 0x20 && b != b'"' && b != b'\\' {
            continue;
        }
        out.push_str(&value[plain..i]);
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            8 => out.push_str("\\b"),
            12 => out.push_str("\\f"),
            0 => out.push('\u{FFFD}'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
        plain = i + 1;
    }
    out.push_str(&value[plain..]);
    out.push('"');
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

    #[test]
    fn lists_pack_as_json_that_reads_back_the_same() {
        let rec = Record {
            dkim_results: vec![
                DkimAuthResult {
                    domain: "example.org".into(),
                    selector: Some("s\"1\\".into()),
                    result: DkimResult::Pass,
                    human_result: None,
                },
                DkimAuthResult {
                    domain: "ex\u{1}ämple\0.net".into(),
                    selector: None,
                    result: DkimResult::parse("Weird"),
                    human_result: Some("line\nbreak\ttab".into()),
                },
            ],
            spf_results: vec![SpfAuthResult {
                domain: "example.org".into(),
                scope: Some("mfrom".into()),
                result: SpfResult::SoftFail,
            }],
            reasons: vec![PolicyOverride {
                kind: "forwarded".into(),
                comment: None,
            }],
            ..Record::default()
        };
        let text = packed(&rec);
        assert_eq!(
            text,
            r#"[[["example.org","s\"1\\","pass",null],["ex\u0001ämple�.net",null,"weird","line\nbreak\ttab"]],[["example.org","mfrom","softfail"]],[["forwarded",null]]]"#
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back[0][0][1], "s\"1\\");
        assert_eq!(back[0][1][0], "ex\u{1}ämple\u{FFFD}.net");
        assert_eq!(back[0][1][3], "line\nbreak\ttab");
        assert_eq!(back[1][0][2], "softfail");
        assert_eq!(packed(&Record::default()), "[[],[],[]]");
    }

    #[test]
    fn a_report_packed_ahead_holds_each_record_s_text() {
        let mut rec = Record::default();
        let mut report = AggregateReport::default();
        report.records.push(rec.clone());
        rec.reasons.push(PolicyOverride {
            kind: "local_policy".into(),
            comment: Some("a \"list\"".into()),
        });
        report.records.push(rec.clone());
        report.records.push(Record::default());
        let p = Packed::of(&report);
        assert_eq!(p.len(), 3);
        for (i, rec) in report.records.iter().enumerate() {
            assert_eq!(p.get(i), Some(packed(rec).as_str()));
        }
        assert_eq!(p.get(3), None);
        assert!(Packed::of(&AggregateReport::default()).is_empty());
    }
}
