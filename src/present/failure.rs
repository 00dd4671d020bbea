//! The `failures` table: failure (ARF) reports, newest first; the reported message's sender and
//! subject, and who reported it, on the line under each.

use super::Tabular;
use super::format::moment;
use super::table::{Column, Row};
use crate::model::FailureSummary;

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

    fn columns() -> Vec<Column> {
        vec![
            Column::keep("ARRIVED"),
            Column::keep("TYPE"),
            Column::text("DOMAIN"),
            Column::keep("SOURCE IP"),
            Column::keep("FAILED"),
            Column::keep("DELIVERY"),
        ]
    }

    fn row(&self) -> Row {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        // Who the message claimed to be from, its envelope sender, what it was about, who reported it.
        let mut detail = Vec::new();
        if let Some(from) = &self.original_from {
            detail.push(format!("from {from}"));
        }
        if let Some(mail_from) = &self.original_mail_from {
            detail.push(format!("mail from {mail_from}"));
        }
        if let Some(subject) = &self.original_subject {
            detail.push(format!("subject {subject:?}"));
        }
        if let Some(reporter) = self.reporter.as_ref() {
            detail.push(format!("reported by {reporter}"));
        }
        Row {
            cells: vec![
                moment(self.arrival_date),
                self.feedback_type.clone(),
                text(&self.reported_domain),
                text(&self.source_ip),
                text(&self.auth_failure),
                text(&self.delivery_result),
            ],
            detail: Some(detail.join("; ")),
        }
    }
}
