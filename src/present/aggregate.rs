//! The tables of the aggregate-report listings: `domains` (how much passes, over which period, under
//! which policy), `sources` (which IPs send as the domain, and how much of their mail aligns) and
//! `reports` (what arrived from whom, for which period).

use super::Tabular;
use super::format::{count, day, last_day, percent, period, share};
use super::table::{Column, Row};
use crate::analyse::Policy;
use crate::model::{DomainSummary, ReportSummary, SourceSummary};

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

    fn columns() -> Vec<Column> {
        vec![
            Column::text("DOMAIN"),
            Column::num("REPORTS"),
            Column::num("MESSAGES"),
            Column::num("DMARC PASS").wide(),
            Column::num("PASS"),
            Column::keep("FIRST"),
            Column::keep("LAST"),
            Column::keep("POLICY"),
        ]
    }

    fn row(&self) -> Row {
        let pass = if self.messages > 0 {
            share(self.dmarc_pass, self.messages)
        } else {
            percent(self.dmarc_pass_pct)
        };
        Row {
            cells: vec![
                self.domain.clone(),
                count(self.reports),
                count(self.messages),
                count(self.dmarc_pass),
                pass,
                day(self.first),
                last_day(self.last),
                Policy::reported(self.p.as_deref(), self.sp.as_deref(), self.pct)
                    .map_or(String::new(), |p| p.to_string()),
            ],
            detail: None,
        }
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
        "failure_reports",
    ];

    fn columns() -> Vec<Column> {
        vec![
            Column::text("DOMAIN").wide(),
            Column::text("FROM"),
            Column::keep("SOURCE IP"),
            Column::num("MESSAGES"),
            Column::num("PASS"),
            Column::num("DKIM"),
            Column::num("SPF"),
            Column::num("QUAR"),
            Column::num("REJ"),
            Column::num("REPORTS").wide(),
            Column::num("FAILURE REPORTS").wide(),
        ]
    }

    fn row(&self) -> Row {
        Row::of(|cell| self.each_cell(cell))
    }

    fn each_cell(&self, cell: &mut dyn FnMut(&str)) -> Option<String> {
        let m = self.messages;
        cell(&self.domain);
        cell(self.header_from.as_deref().unwrap_or(&self.domain));
        cell(&self.source_ip);
        cell(&count(m));
        cell(&share(self.dmarc_pass, m));
        cell(&share(self.dkim_aligned, m));
        cell(&share(self.spf_aligned, m));
        cell(&count(self.quarantined));
        cell(&count(self.rejected));
        cell(&count(self.reports));
        cell(&count(self.failure_reports));
        None
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

    fn columns() -> Vec<Column> {
        vec![
            Column::text("REPORTER"),
            Column::keep("REPORT ID").wide(),
            Column::text("DOMAIN"),
            Column::keep("PERIOD"),
            Column::num("RECORDS").wide(),
            Column::num("MESSAGES"),
            Column::num("PASS"),
            Column::keep("P"),
            Column::keep("ORIGIN").wide(),
        ]
    }

    fn row(&self) -> Row {
        Row::of(|cell| self.each_cell(cell))
    }

    fn each_cell(&self, cell: &mut dyn FnMut(&str)) -> Option<String> {
        cell(&self.org_name);
        cell(&self.report_id);
        cell(&self.domain);
        cell(&period(self.begin, self.end));
        cell(&count(self.records));
        cell(&count(self.messages));
        cell(&share(self.dmarc_pass, self.messages));
        cell(self.p.as_deref().unwrap_or_default());
        cell(&self.origin);
        None
    }
}
