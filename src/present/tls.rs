//! The `tls` table: SMTP TLS sessions per policy domain and MX, with the most frequent failures on
//! the line under a row that has any.

use super::Tabular;
use super::format::{count, percent};
use super::table::{Column, Row};
use crate::model::TlsSummary;

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

    fn columns() -> Vec<Column> {
        vec![
            Column::text("DOMAIN"),
            Column::text("MX"),
            Column::text("POLICY"),
            Column::num("SUCCESSFUL").wide(),
            Column::num("SESSIONS"),
            Column::num("FAILED"),
            Column::num("FAILED %"),
            Column::text("REPORTERS").wide(),
            Column::num("REPORTS"),
        ]
    }

    fn row(&self) -> Row {
        Row {
            cells: vec![
                self.domain.clone(),
                self.mx_hosts.clone(),
                self.policy_types.clone(),
                count(self.successful_sessions),
                count(self.successful_sessions + self.failed_sessions),
                count(self.failed_sessions),
                percent(self.failure_pct),
                self.reporters.clone(),
                count(self.reports),
            ],
            detail: (!self.top_failures.is_empty())
                .then(|| format!("failures: {}", self.top_failures)),
        }
    }
}
