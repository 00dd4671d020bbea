//! `check`: per domain, its findings. JSON is the structure itself (one array of domains); CSV is
//! one line per finding; the table is a heading line per domain, then a line per finding (severity,
//! check, message) with its fix indented under it, wrapped to the output width.

use std::io::{self, Write};

use super::{Format, csv_io, table};
use crate::analyse::check::{DomainCheck, Severity};

/// Writes `checks` to stdout in `format`.
pub fn check(checks: &[DomainCheck], format: Format) -> io::Result<()> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, checks)?;
            writeln!(out)?;
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(&mut out);
            w.write_record([
                "domain",
                "checked_at",
                "check",
                "severity",
                "message",
                "fix",
            ])
            .map_err(csv_io)?;
            for c in checks {
                for f in &c.findings {
                    w.write_record([
                        c.domain.as_str(),
                        &c.checked_at.to_string(),
                        f.check.as_str(),
                        f.severity.as_str(),
                        &f.message,
                        f.fix.as_deref().unwrap_or_default(),
                    ])
                    .map_err(csv_io)?;
                }
            }
            w.flush()?;
        }
        Format::Table => text(&mut out, checks, table::output_width())?,
    }
    out.flush()
}

fn text(out: &mut impl Write, checks: &[DomainCheck], width: usize) -> io::Result<()> {
    if checks.is_empty() {
        return writeln!(
            out,
            "(no domain to check: name one, or store reports or list [[domain]] tables first)"
        );
    }
    let plural = |n: usize, word: &str| match n {
        1 => format!("1 {word}"),
        n => format!("{n} {word}s"),
    };
    // Severity and check names are ours; messages may quote DNS records, which anyone publishes.
    let indent = " ".repeat(2 + 9 + 13);
    for c in checks {
        writeln!(
            out,
            "{} (checked {}): {}, {}",
            table::clean(&c.domain),
            c.checked_at,
            plural(c.count(Severity::Error), "error"),
            plural(c.count(Severity::Warning), "warning")
        )?;
        for f in &c.findings {
            let first = format!("  {:<9}{:<13}", f.severity.as_str(), f.check.as_str());
            for line in table::wrap(&table::clean(&f.message), width, &first, &indent) {
                writeln!(out, "{line}")?;
            }
            if let Some(fix) = &f.fix {
                let first = format!("{indent}fix: ");
                let rest = format!("{indent}     ");
                for line in table::wrap(&table::clean(fix), width, &first, &rest) {
                    writeln!(out, "{line}")?;
                }
            }
        }
        writeln!(out)?;
    }
    Ok(())
}
