//! Output: tables for people, JSON and CSV for programs. The only module that writes to stdout.
//!
//! Keys of JSON objects and CSV headers are the serde field names of the model types; they are part of
//! the interface and listed in the README. `--format json` prints one JSON array.

use std::io::{self, Write};

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

use crate::model::{DomainSummary, RejectSummary, ReportSummary, SourceSummary};
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

/// A row type that can also be shown as a table.
pub trait Tabular: Serialize {
    const HEADERS: &'static [&'static str];
    fn cells(&self) -> Vec<String>;
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
            w.write_record(T::HEADERS).map_err(io::Error::other)?;
            for row in rows {
                w.serialize(row).map_err(io::Error::other)?;
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
                table.add_row(row.cells());
            }
            writeln!(out, "{table}")
        }
    }
}

/// The one line `ingest` and `reprocess` end with (unless `--quiet`).
pub fn summary(command: &str, stats: &Stats) -> io::Result<()> {
    let secs = stats.elapsed.as_secs_f64();
    let mut line = format!(
        "{command}: {} inputs, {} reports new, {} duplicates, {} rejected, {} records",
        stats.inputs, stats.reports_new, stats.duplicates, stats.rejected, stats.records
    );
    if command == "reprocess" {
        line.push_str(&format!(", {} recovered", stats.recovered));
    }
    line.push_str(&format!(" in {secs:.2}s"));
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")
}

/// The date part of a timestamp, for narrow table columns.
fn day(t: crate::model::Timestamp) -> String {
    let mut s = t.to_string();
    s.truncate(s.find('T').unwrap_or(s.len()));
    s
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(String::new, T::to_string)
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
    fn cells(&self) -> Vec<String> {
        vec![
            self.domain.clone(),
            self.reports.to_string(),
            self.messages.to_string(),
            self.dmarc_pass.to_string(),
            format!("{:.1}%", self.dmarc_pass_pct),
            self.first.map_or_else(String::new, day),
            self.last.map_or_else(String::new, day),
            opt(&self.p),
            opt(&self.sp),
            opt(&self.pct),
        ]
    }
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
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.domain.clone(),
            self.source_ip.clone(),
            opt(&self.header_from),
            self.messages.to_string(),
            self.dmarc_pass.to_string(),
            self.dkim_aligned.to_string(),
            self.spf_aligned.to_string(),
            self.quarantined.to_string(),
            self.rejected.to_string(),
            self.reports.to_string(),
        ]
    }
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
    fn cells(&self) -> Vec<String> {
        vec![
            self.org_name.clone(),
            self.report_id.clone(),
            self.domain.clone(),
            opt(&self.begin),
            opt(&self.end),
            self.records.to_string(),
            self.messages.to_string(),
            self.dmarc_pass.to_string(),
            opt(&self.p),
            self.origin.clone(),
        ]
    }
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
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.origin.clone(),
            self.location.clone(),
            self.reason.clone(),
            opt(&self.size),
            self.first_seen.to_string(),
            self.last_seen.to_string(),
            self.attempts.to_string(),
        ]
    }
}
