//! The `rejects` table: inputs that could not be stored; the reason (and where in the input) on the
//! line under each.

use super::Tabular;
use super::format::{count, moment};
use super::table::{Column, Row};
use crate::model::RejectSummary;

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

    fn columns() -> Vec<Column> {
        vec![
            Column::num("ID"),
            Column::path("ORIGIN"),
            Column::num("SIZE").wide(),
            Column::keep("FIRST SEEN").wide(),
            Column::keep("LAST SEEN"),
            Column::num("ATTEMPTS"),
        ]
    }

    fn row(&self) -> Row {
        let detail = if self.location.is_empty() {
            self.reason.clone()
        } else {
            format!("{}: {}", self.location, self.reason)
        };
        Row {
            cells: vec![
                self.id.to_string(),
                self.origin.clone(),
                self.size.map(count).unwrap_or_default(),
                moment(Some(self.first_seen)),
                moment(Some(self.last_seen)),
                count(self.attempts),
            ],
            detail: Some(detail),
        }
    }
}
