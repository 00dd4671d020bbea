//! What `prune` removed (or, with `--dry-run`, would remove): a row per kind, with how many and
//! the day before which they ended; and the one line the nightly `fetch` / `ingest` print after
//! applying the config's retention.

use std::io::{self, Write};

use serde::Serialize;

use super::format::count;
use super::table::{Column, Row};
use super::{Format, Output, Tabular};
use crate::store::{Cutoffs, Pruned};

/// What a row counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PruneKind {
    AggregateReports,
    /// The aggregate reports' records (their DKIM, SPF and reason rows with them).
    Records,
    Rollups,
    FailureReports,
    TlsReports,
    /// Kept rejected inputs.
    RejectInputs,
    /// PostgreSQL: month partitions dropped whole.
    Partitions,
}

impl PruneKind {
    fn label(self) -> &'static str {
        match self {
            PruneKind::AggregateReports => "aggregate reports",
            PruneKind::Records => "records",
            PruneKind::Rollups => "rollup rows",
            PruneKind::FailureReports => "failure reports",
            PruneKind::TlsReports => "TLS reports",
            PruneKind::RejectInputs => "kept rejects",
            PruneKind::Partitions => "partitions dropped",
        }
    }
}

/// One row of `prune`'s output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PruneRow {
    pub kind: PruneKind,
    /// How many went (or would go).
    pub removed: u64,
    /// What ended (a reject: was first kept) before this UTC midnight went; `None` when that
    /// kind has no limit.
    pub before: Option<String>,
    pub dry_run: bool,
}

impl Tabular for PruneRow {
    const HEADERS: &'static [&'static str] = &["kind", "removed", "before", "dry_run"];

    fn columns() -> Vec<Column> {
        vec![
            Column::keep("KIND"),
            Column::num("REMOVED"),
            Column::keep("ENDED BEFORE"),
        ]
    }

    fn row(&self) -> Row {
        Row {
            cells: vec![
                self.kind.label().to_owned(),
                count(self.removed),
                self.before
                    .clone()
                    .unwrap_or_else(|| "(no limit)".to_owned()),
            ],
            detail: None,
        }
    }
}

/// The day a cutoff is, `None` for no limit.
fn day(cutoff: i64) -> Option<String> {
    (cutoff != Cutoffs::NONE)
        .then(|| crate::time::format_day(cutoff))
        .flatten()
}

/// `pruned` as rows, a kind each (partitions on PostgreSQL only).
pub fn prune_rows(pruned: &Pruned, cutoffs: &Cutoffs, dry_run: bool) -> Vec<PruneRow> {
    let row = |kind, removed, cutoff| PruneRow {
        kind,
        removed,
        before: day(cutoff),
        dry_run,
    };
    let mut rows = vec![
        row(
            PruneKind::AggregateReports,
            pruned.aggregate_reports,
            cutoffs.reports,
        ),
        row(PruneKind::Records, pruned.records, cutoffs.reports),
        row(PruneKind::Rollups, pruned.rollups, cutoffs.reports),
        row(
            PruneKind::FailureReports,
            pruned.failure_reports,
            cutoffs.failures,
        ),
        row(PruneKind::TlsReports, pruned.tls_reports, cutoffs.reports),
        row(
            PruneKind::RejectInputs,
            pruned.reject_inputs,
            cutoffs.rejects(),
        ),
    ];
    if let Some(n) = pruned.partitions {
        rows.push(row(PruneKind::Partitions, n, cutoffs.reports));
    }
    rows
}

/// `prune`: the rows in `format`; a table says, under it, when nothing was removed (`--dry-run`).
pub fn pruned(pruned: &Pruned, cutoffs: &Cutoffs, dry_run: bool, format: Format) -> io::Result<()> {
    let rows = prune_rows(pruned, cutoffs, dry_run);
    super::list(
        &rows,
        Output {
            format,
            wide: false,
        },
    )?;
    if dry_run && format == Format::Table {
        writeln!(io::stdout().lock(), "prune --dry-run: nothing was removed")?;
    }
    Ok(())
}

/// The line a nightly `fetch` or `ingest` prints after applying the config's retention.
pub fn pruned_line(pruned: &Pruned, cutoffs: &Cutoffs) -> io::Result<()> {
    let mut line = format!(
        "prune: {} aggregate reports ({} records), {} failure reports, {} TLS reports, {} kept \
         rejects removed",
        count(pruned.aggregate_reports),
        count(pruned.records),
        count(pruned.failure_reports),
        count(pruned.tls_reports),
        count(pruned.reject_inputs),
    );
    if let Some(n) = pruned.partitions.filter(|&n| n > 0) {
        line.push_str(&format!(" ({n} partitions dropped)"));
    }
    if let Some(d) = day(cutoffs.reports) {
        line.push_str(&format!("; reports ending before {d}"));
    }
    if let Some(d) = day(cutoffs.failures) {
        line.push_str(&format!(", failure reports before {d}"));
    }
    writeln!(io::stdout().lock(), "{line}")
}
