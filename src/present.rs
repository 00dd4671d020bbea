//! Output: tables for people, JSON and CSV for programs. The only module that writes to stdout.
//!
//! Keys of JSON objects and CSV headers are the serde field names of the model types; they are part of
//! the interface and listed in the README. `--format json` prints one JSON array.

use std::io::{self, Write};

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

use crate::analyse::Advice;
use crate::model::{
    DomainSummary, FailureSummary, RejectSummary, ReportSummary, SenderSummary, SourceSummary,
    TlsSummary,
};
use crate::pipeline::Stats;

/// How a listing is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Aligned table for a terminal.
    #[default]
    Table,
    /// One JSON array of objects.
    Json,
    /// CSV with a header line.
    Csv,
}

/// A row type of a listing. Its serde fields are the JSON keys, the CSV columns and the table columns;
/// `HEADERS` names them for the CSV header line of an empty listing (a test keeps the two in step).
pub trait Tabular: Serialize {
    const HEADERS: &'static [&'static str];
}

/// A row's values as table cells, in field order: absent values empty, strings unquoted.
fn cells<T: Serialize>(row: &T) -> Vec<String> {
    match serde_json::to_value(row) {
        Ok(serde_json::Value::Object(map)) => map
            .into_iter()
            .map(|(_, v)| match v {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A CSV error as the I/O error it wraps, so that a closed pipe is still recognised as one.
fn csv_io(e: csv::Error) -> io::Error {
    let message = e.to_string();
    match e.into_kind() {
        csv::ErrorKind::Io(io) => io,
        _ => io::Error::other(message),
    }
}

/// Writes `rows` to stdout in `format`.
pub fn list<T: Tabular>(rows: &[T], format: Format) -> io::Result<()> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    write_rows(&mut out, rows, format)?;
    out.flush()
}

pub fn write_rows<T: Tabular>(out: &mut impl Write, rows: &[T], format: Format) -> io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, rows)?;
            writeln!(out)
        }
        Format::Csv => {
            let mut w = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(&mut *out);
            w.write_record(T::HEADERS).map_err(csv_io)?;
            for row in rows {
                w.serialize(row).map_err(csv_io)?;
            }
            w.flush()
        }
        Format::Table => {
            if rows.is_empty() {
                return writeln!(out, "(nothing stored matches)");
            }
            let mut table = Table::new();
            table
                .load_style(UTF8_FULL_CONDENSED)
                .set_content_arrangement(ContentArrangement::Dynamic)
                .set_header(T::HEADERS.iter().copied());
            for row in rows {
                table.add_row(cells(row));
            }
            writeln!(out, "{table}")
        }
    }
}

/// The one line `ingest` and `reprocess` end with (unless `--quiet`).
pub fn summary(command: &str, stats: &Stats) -> io::Result<()> {
    let secs = stats.elapsed.as_secs_f64();
    // Copies of a stored report with more records replace it (see `Store::insert_report`).
    let replaced = match stats.replaced {
        0 => String::new(),
        n => format!(" ({n} more complete than the stored copy, kept instead)"),
    };
    let mut line = format!(
        "{command}: {} inputs, {} reports new, {} duplicates{replaced}, {} rejected, {} records",
        stats.inputs, stats.reports_new, stats.duplicates, stats.rejected, stats.records
    );
    if stats.failure_reports_new + stats.tls_reports_new > 0 {
        line.push_str(&format!(
            " (new: {} failure, {} TLS reports)",
            stats.failure_reports_new, stats.tls_reports_new
        ));
    }
    if command == "reprocess" {
        line.push_str(&format!(", {} recovered", stats.recovered));
    }
    line.push_str(&format!(" in {secs:.2}s"));
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")
}

impl Tabular for DomainSummary {
    const HEADERS: &'static [&'static str] = &[
        "domain",
        "reports",
        "messages",
        "dmarc_pass",
        "dmarc_pass_pct",
        "first",
        "last",
        "p",
        "sp",
        "pct",
    ];
}

impl Tabular for SourceSummary {
    const HEADERS: &'static [&'static str] = &[
        "domain",
        "source_ip",
        "header_from",
        "messages",
        "dmarc_pass",
        "dkim_aligned",
        "spf_aligned",
        "quarantined",
        "rejected",
        "reports",
        "failure_reports",
    ];
}

impl Tabular for SenderSummary {
    const HEADERS: &'static [&'static str] = &[
        "domain",
        "sender",
        "class",
        "messages",
        "dmarc_pass",
        "dmarc_pass_pct",
        "dkim_aligned",
        "spf_aligned",
        "source_ips",
        "first",
        "last",
        "reporters",
        "reason",
    ];
}

/// `advise`: JSON as the structure; CSV one line per domain; otherwise a block per domain to read.
pub fn advice(advice: &[Advice], format: Format) -> io::Result<()> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, advice)?;
            writeln!(out)?;
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(&mut out);
            w.write_record([
                "domain",
                "action",
                "ready",
                "current_p",
                "current_pct",
                "recommended_p",
                "recommended_pct",
                "recommended_sp",
                "blockers",
                "record",
            ])
            .map_err(csv_io)?;
            for a in advice {
                w.write_record([
                    a.domain.clone(),
                    a.action.clone(),
                    a.ready.to_string(),
                    a.current.p.clone(),
                    a.current.pct.to_string(),
                    a.recommended.p.clone(),
                    a.recommended.pct.to_string(),
                    a.recommended.sp.clone().unwrap_or_default(),
                    a.blockers.len().to_string(),
                    a.record.clone(),
                ])
                .map_err(csv_io)?;
            }
            w.flush()?;
        }
        Format::Table => {
            for a in advice {
                let step = |p: &str, pct: u32, sp: &Option<String>| {
                    let mut s = format!("p={p}");
                    if pct < 100 {
                        s.push_str(&format!(" pct={pct}"));
                    }
                    if let Some(sp) = sp {
                        s.push_str(&format!(" sp={sp}"));
                    }
                    s
                };
                let (c, r) = (&a.current, &a.recommended);
                writeln!(
                    out,
                    "{}: {} ({} → {})",
                    a.domain,
                    a.action,
                    step(&c.p, c.pct, &c.sp),
                    step(&r.p, r.pct, &r.sp)
                )?;
                let e = &a.evidence;
                let day = |t: Option<crate::model::Timestamp>| {
                    t.map_or("?".into(), |t| {
                        t.to_string().chars().take(10).collect::<String>()
                    })
                };
                writeln!(
                    out,
                    "  evidence: {} days with reports ({} to {}), {} reporters, {} messages; \
                     {}% of legitimate mail passes DMARC or is forwarded",
                    e.days,
                    day(e.from),
                    day(e.to),
                    e.reporters,
                    e.messages,
                    a.legitimate_pass_pct
                )?;
                for b in &a.blockers {
                    writeln!(
                        out,
                        "  blocker: {} ({} messages): {}",
                        b.sender, b.messages, b.reason
                    )?;
                }
                for n in &a.notes {
                    writeln!(out, "  note: {n}")?;
                }
                writeln!(out, "  publish: _dmarc.{} TXT \"{}\"", a.domain, a.record)?;
                writeln!(out)?;
            }
        }
    }
    out.flush()
}

impl Tabular for FailureSummary {
    const HEADERS: &'static [&'static str] = &[
        "arrival_date",
        "feedback_type",
        "reported_domain",
        "source_ip",
        "auth_failure",
        "delivery_result",
        "original_mail_from",
        "original_from",
        "original_subject",
        "reporter",
    ];
}

impl Tabular for TlsSummary {
    const HEADERS: &'static [&'static str] = &[
        "domain",
        "mx_hosts",
        "policy_types",
        "successful_sessions",
        "failed_sessions",
        "failure_pct",
        "top_failures",
        "reporters",
        "reports",
    ];
}

impl Tabular for ReportSummary {
    const HEADERS: &'static [&'static str] = &[
        "org_name",
        "report_id",
        "domain",
        "begin",
        "end",
        "records",
        "messages",
        "dmarc_pass",
        "p",
        "origin",
    ];
}

impl Tabular for RejectSummary {
    const HEADERS: &'static [&'static str] = &[
        "id",
        "origin",
        "location",
        "reason",
        "size",
        "first_seen",
        "last_seen",
        "attempts",
    ];
}

/// `notify` without channels: the notices, as plain text. Nothing is printed when there are none,
/// so cron mails only news.
pub fn notices(events: &[crate::notify::events::Event]) -> io::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut out = io::stdout().lock();
    write!(out, "{}", crate::notify::render::text(events))?;
    out.flush()
}

/// `digest` without channels: a block per domain.
pub fn digest(digests: &[crate::notify::digest::DomainDigest]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    if digests.is_empty() {
        writeln!(out, "(nothing stored matches)")?;
    } else {
        write!(out, "{}", crate::notify::render::digest_text(digests))?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Timestamp;

    /// The CSV header and table columns are the JSON keys, in the same order.
    fn headers_match<T: Tabular>(row: T) {
        let keys: Vec<String> = match serde_json::to_value(&row).unwrap() {
            serde_json::Value::Object(map) => map.keys().cloned().collect(),
            other => panic!("not an object: {other}"),
        };
        assert_eq!(keys, T::HEADERS);
        assert_eq!(cells(&row).len(), T::HEADERS.len());
    }

    #[test]
    fn headers_are_the_json_keys() {
        let t = Some(Timestamp(0));
        headers_match(DomainSummary {
            domain: "d".into(),
            reports: 1,
            messages: 2,
            dmarc_pass: 1,
            dmarc_pass_pct: 50.0,
            first: t,
            last: t,
            p: None,
            sp: None,
            pct: None,
        });
        headers_match(SourceSummary {
            domain: "d".into(),
            source_ip: "192.0.2.1".into(),
            header_from: None,
            messages: 1,
            dmarc_pass: 1,
            dkim_aligned: 1,
            spf_aligned: 1,
            quarantined: 0,
            rejected: 0,
            reports: 1,
            failure_reports: 0,
        });
        headers_match(FailureSummary {
            arrival_date: t,
            feedback_type: "auth-failure".into(),
            reported_domain: None,
            source_ip: None,
            auth_failure: None,
            delivery_result: None,
            original_mail_from: None,
            original_from: None,
            original_subject: None,
            reporter: None,
        });
        headers_match(TlsSummary {
            domain: "d".into(),
            mx_hosts: String::new(),
            policy_types: "sts".into(),
            successful_sessions: 1,
            failed_sessions: 0,
            failure_pct: 0.0,
            top_failures: String::new(),
            reporters: "o".into(),
            reports: 1,
        });
        headers_match(ReportSummary {
            org_name: "o".into(),
            report_id: "r".into(),
            domain: "d".into(),
            begin: t,
            end: t,
            records: 1,
            messages: 1,
            dmarc_pass: 1,
            p: None,
            origin: "-".into(),
        });
        headers_match(RejectSummary {
            id: 1,
            origin: "-".into(),
            location: String::new(),
            reason: "r".into(),
            size: None,
            first_seen: Timestamp(0),
            last_seen: Timestamp(0),
            attempts: 1,
        });
    }
}
