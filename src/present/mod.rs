//! Output: tables for people, JSON and CSV for programs. The only module that writes to stdout.
//!
//! Keys of JSON objects and CSV headers are the serde field names of the model types; they are part of
//! the interface and listed in the README. `--format json` prints one JSON array. Tables show the
//! columns that answer the command's question and fit the width (`table`); each listing's columns
//! are in the file of its group (`aggregate`, `senders`, `failure`, `tls`, `rejects`, `prune`); how cells are
//! written, in `format`.

mod aggregate;
mod check;
mod failure;
pub(crate) mod format;
mod prune;
mod rejects;
mod senders;
pub mod table;
mod tls;

use std::io::{self, Write};

use serde::Serialize;

pub use check::check;
pub use prune::{PruneKind, PruneRow, prune_rows, pruned, pruned_line};
pub use table::{Column, Row};

use crate::analyse::Advice;
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

/// How a listing is written: its format, and for a table whether every column is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Output {
    pub format: Format,
    /// `--wide`: every column, nothing cut.
    pub wide: bool,
}

impl From<Format> for Output {
    fn from(format: Format) -> Output {
        Output {
            format,
            wide: false,
        }
    }
}

/// A row type of a listing. Its serde fields are the JSON keys and the CSV columns; `HEADERS` names
/// them for the CSV header line of an empty listing (a test keeps the two in step). The table shows
/// `columns()` (by default every field, as text) with `row()`'s cells.
pub trait Tabular: Serialize {
    const HEADERS: &'static [&'static str];

    /// The table's columns, those for `--wide` only included.
    fn columns() -> Vec<Column> {
        Self::HEADERS.iter().map(|h| Column::text(h)).collect()
    }

    /// This row's cells, one per column of `columns()`, and its free text for the line under it.
    fn row(&self) -> Row {
        Row {
            cells: cells(self),
            detail: None,
        }
    }

    /// This row's cells handed to `cell` one at a time, in `columns()`' order, and its free text:
    /// what a table keeps of it. By default `row()`'s; a listing of very many rows writes its
    /// cells here without a copy of each (and its `row()` with [`Row::of`]).
    fn each_cell(&self, cell: &mut dyn FnMut(&str)) -> Option<String> {
        let row = self.row();
        for c in &row.cells {
            cell(c);
        }
        row.detail
    }
}

/// A row's values as table cells, in field order: absent values empty, strings unquoted.
fn cells<T: Serialize + ?Sized>(row: &T) -> Vec<String> {
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

/// Writes `rows` to stdout in `output`'s format; a table fits [`table::output_width`].
pub fn list<T: Tabular>(rows: &[T], output: impl Into<Output>) -> io::Result<()> {
    list_each(output, |push| {
        for row in rows {
            if !push(row) {
                break;
            }
        }
    })
}

/// Writes a listing to stdout in `output`'s format as `fill` hands over its rows, one at a time
/// (the store reads them and calls `push` with each, so JSON and CSV never hold the listing; a
/// table holds only its cells, for its columns' widths). `push` answers false once writing failed
/// (a closed pipe): `fill` should stop there; the error is returned.
pub fn list_each<T: Tabular>(
    output: impl Into<Output>,
    fill: impl FnOnce(&mut dyn FnMut(&T) -> bool),
) -> io::Result<()> {
    let stdout = io::stdout();
    let mut sink = Sink::new(
        io::BufWriter::new(stdout.lock()),
        output.into(),
        table::output_width(),
    );
    fill(&mut |row| sink.push(row));
    sink.finish()?.flush()
}

/// Writes `rows` in `output`'s format; a table as when piped ([`table::PIPED_WIDTH`] columns), for
/// a file or a mail.
pub fn write_rows<T: Tabular>(
    out: &mut impl Write,
    rows: &[T],
    output: impl Into<Output>,
) -> io::Result<()> {
    write_rows_within(out, rows, output.into(), table::PIPED_WIDTH)
}

/// Writes `rows` in `output`'s format; a table in at most `width` columns (unless wide).
pub fn write_rows_within<T: Tabular>(
    out: &mut impl Write,
    rows: &[T],
    output: Output,
    width: usize,
) -> io::Result<()> {
    let mut sink = Sink::new(out, output, width);
    for row in rows {
        if !sink.push(row) {
            break;
        }
    }
    sink.finish().map(drop)
}

/// A listing being written, a row at a time: the one place each format is written.
struct Sink<T, W: Write> {
    form: Form<W>,
    /// The first error writing met; later rows are not written.
    failed: Option<io::Error>,
    _rows: std::marker::PhantomData<fn(&T)>,
}

enum Form<W: Write> {
    /// One pretty-printed JSON array, as `serde_json::to_writer_pretty` writes a slice.
    Json {
        out: W,
        first: bool,
        /// One element, pretty-printed, before it is indented into the array.
        element: Vec<u8>,
    },
    Csv(Box<csv::Writer<W>>),
    /// The shown cells, kept until the widths are known.
    Table {
        out: W,
        table: table::Table,
        width: usize,
    },
}

impl<T: Tabular, W: Write> Sink<T, W> {
    fn new(out: W, output: Output, width: usize) -> Sink<T, W> {
        let form = match output.format {
            Format::Json => Form::Json {
                out,
                first: true,
                element: Vec::new(),
            },
            Format::Csv => {
                let w = csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(out);
                Form::Csv(Box::new(w))
            }
            Format::Table => Form::Table {
                out,
                table: table::Table::new(T::columns(), output.wide),
                width,
            },
        };
        let mut sink = Sink {
            form,
            failed: None,
            _rows: std::marker::PhantomData,
        };
        if let Form::Csv(w) = &mut sink.form
            && let Err(e) = w.write_record(T::HEADERS)
        {
            sink.failed = Some(csv_io(e));
        }
        sink
    }

    /// Writes (or keeps) one row; false once writing has failed.
    fn push(&mut self, row: &T) -> bool {
        if self.failed.is_some() {
            return false;
        }
        let written = match &mut self.form {
            Form::Json {
                out,
                first,
                element,
            } => json_element(out, std::mem::take(first), element, row),
            Form::Csv(w) => w.serialize(row).map_err(csv_io),
            Form::Table { table, .. } => {
                let detail = row.each_cell(&mut |c| table.cell(c));
                table.end_row(detail.as_deref());
                Ok(())
            }
        };
        match written {
            Ok(()) => true,
            Err(e) => {
                self.failed = Some(e);
                false
            }
        }
    }

    /// Ends the listing; the writer back, or the first error met.
    fn finish(self) -> io::Result<W> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        match self.form {
            Form::Json { mut out, first, .. } => {
                out.write_all(if first { b"[]\n" } else { b"\n]\n" })?;
                Ok(out)
            }
            Form::Csv(mut w) => {
                w.flush()?;
                w.into_inner().map_err(|e| e.into_error())
            }
            Form::Table {
                mut out,
                table,
                width,
            } => {
                if table.is_empty() {
                    writeln!(out, "(nothing stored matches)")?;
                } else {
                    table.write(&mut out, width)?;
                }
                Ok(out)
            }
        }
    }
}

/// Writes `row` as the next element of a pretty-printed JSON array: pretty-printed on its own,
/// then indented one level (JSON text has no raw line breaks inside strings, so every `\n` starts
/// a line of the element).
fn json_element<T: Serialize>(
    out: &mut impl Write,
    first: bool,
    element: &mut Vec<u8>,
    row: &T,
) -> io::Result<()> {
    element.clear();
    serde_json::to_writer_pretty(&mut *element, row)?;
    out.write_all(if first { b"[\n  " } else { b",\n  " })?;
    for (i, line) in element.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            out.write_all(b"\n  ")?;
        }
        out.write_all(line)?;
    }
    Ok(())
}

/// The one line `ingest` and `reprocess` end with (unless `--quiet`).
/// `migrate --to`: each table's rows, as counted in both databases, and a summary line.
pub fn copied(
    from: &impl std::fmt::Display,
    to: &impl std::fmt::Display,
    counts: &[(&str, u64)],
    took: std::time::Duration,
) -> io::Result<()> {
    let mut out = io::stdout().lock();
    let width = counts
        .iter()
        .map(|(t, _)| t.len())
        .max()
        .unwrap_or(5)
        .max(5);
    writeln!(out, "{:width$}  {:>12}", "TABLE", "ROWS")?;
    for (table, n) in counts {
        writeln!(out, "{table:width$}  {:>12}", format::count(*n))?;
    }
    let rows: u64 = counts.iter().map(|(_, n)| n).sum();
    writeln!(
        out,
        "migrate: {} rows copied from {from} to {to}, each table's count the same in both, in {:.2}s",
        format::count(rows),
        took.as_secs_f64()
    )
}

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
                    a.action.to_string(),
                    a.ready.to_string(),
                    a.current.policy.p.clone(),
                    a.current.policy.pct.to_string(),
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
            let mut out = table::Wrapping::new(&mut out, table::output_width());
            for a in advice {
                writeln!(
                    out,
                    "{}: {} ({} → {})",
                    a.domain, a.action, a.current.policy, a.recommended
                )?;
                let e = &a.evidence;
                let day = |t: Option<crate::model::Timestamp>| {
                    t.map_or("?".into(), |t| {
                        t.to_string().chars().take(10).collect::<String>()
                    })
                };
                let legitimate = if a.legitimate_messages == 0 {
                    "no legitimate mail seen".to_owned()
                } else {
                    format!(
                        "{}% of legitimate mail passes DMARC or is forwarded",
                        a.legitimate_pass_pct
                    )
                };
                writeln!(
                    out,
                    "  evidence: {} days with reports ({} to {}), {} reporters, {} messages; \
                     {legitimate}",
                    e.days,
                    day(e.from),
                    day(e.to),
                    e.reporters,
                    e.messages,
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
                // The record on a line of its own, never wrapped: it is to be copied whole.
                writeln!(out, "  publish: _dmarc.{} TXT", a.domain)?;
                writeln!(out, "    \"{}\"", a.record)?;
                writeln!(out)?;
            }
            out.flush()?;
        }
    }
    out.flush()
}

/// On stderr: reverse DNS lookups (`--resolve`) that went unanswered; they are tried again next
/// time.
pub fn unanswered_lookups(u: &crate::judge::Unanswered) {
    eprintln!(
        "dmarc-warden: reverse DNS: {} of {} lookups unanswered after {} s; they are tried again next time",
        u.unanswered,
        u.asked,
        u.deadline.as_secs()
    );
}

/// Text made elsewhere, as it is: `completions`' script.
pub fn bytes(text: &[u8]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text)?;
    out.flush()
}

/// Text another output rendered, as it is: `notify` and `digest` without channels (their text is
/// `notify::render`'s, shared with the email they send).
pub fn text(text: &str) -> io::Result<()> {
    bytes(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Timestamp;
    use crate::model::{
        DomainSummary, FailureSummary, RejectSummary, ReportSummary, SourceSummary, TlsSummary,
    };

    /// The CSV header is the JSON keys, in the same order; the table has a cell for each column.
    fn headers_match<T: Tabular>(row: T) {
        let keys: Vec<String> = match serde_json::to_value(&row).unwrap() {
            serde_json::Value::Object(map) => map.keys().cloned().collect(),
            other => panic!("not an object: {other}"),
        };
        assert_eq!(keys, T::HEADERS);
        assert_eq!(cells(&row).len(), T::HEADERS.len());
        assert_eq!(row.row().cells.len(), T::columns().len());
    }

    /// A listing written a row at a time is what serde_json and the csv crate write for the whole
    /// slice: escapes, line breaks in values, and no rows at all.
    #[test]
    fn rows_written_one_at_a_time_are_the_whole_listing() {
        let rows: Vec<TlsSummary> = (0..3u64)
            .map(|i| TlsSummary {
                domain: format!("d{i}.example"),
                mx_hosts: format!("mx\"{i}\nx"),
                policy_types: "sts,tlsa".into(),
                successful_sessions: i * 10,
                failed_sessions: i,
                failure_pct: i as f64 / 3.0,
                top_failures: String::new(),
                reporters: "r\u{e9}".into(),
                reports: i,
            })
            .collect();
        for n in [0, 1, 3] {
            let rows = &rows[..n];
            let mut json = Vec::new();
            write_rows(&mut json, rows, Format::Json).unwrap();
            let mut want = serde_json::to_vec_pretty(rows).unwrap();
            want.push(b'\n');
            assert_eq!(
                String::from_utf8(json).unwrap(),
                String::from_utf8(want).unwrap()
            );
            let mut csv = Vec::new();
            write_rows(&mut csv, rows, Format::Csv).unwrap();
            let mut w = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(Vec::new());
            w.write_record(TlsSummary::HEADERS).unwrap();
            for r in rows {
                w.serialize(r).unwrap();
            }
            assert_eq!(csv, w.into_inner().unwrap());
        }
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
        headers_match(crate::model::SenderSummary {
            domain: "d".into(),
            sender: "s".into(),
            class: crate::model::SenderClass::NeedsFixing,
            messages: 2,
            dmarc_pass: 1,
            dmarc_pass_pct: 50.0,
            dkim_aligned: 1,
            spf_aligned: 0,
            source_ips: 1,
            first: t,
            last: t,
            reporters: "r".into(),
            reason: "why".into(),
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
