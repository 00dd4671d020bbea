//! The `senders` table: who sends as each domain, whether their mail aligns, and (on the line
//! under each) why, with what to fix.

use super::Tabular;
use super::format::{count, day, last_day, share};
use super::table::{Column, Row};
use crate::model::SenderSummary;

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

    fn columns() -> Vec<Column> {
        vec![
            Column::text("DOMAIN"),
            Column::text("SENDER"),
            Column::keep("CLASS"),
            Column::num("MESSAGES"),
            Column::num("DMARC PASS").wide(),
            Column::num("PASS"),
            Column::num("DKIM"),
            Column::num("SPF"),
            Column::num("IPS").wide(),
            Column::keep("FIRST").wide(),
            Column::keep("LAST").wide(),
            Column::text("REPORTERS").wide(),
        ]
    }

    fn row(&self) -> Row {
        let m = self.messages;
        Row {
            cells: vec![
                self.domain.clone(),
                self.sender.clone(),
                self.class.label().into(),
                count(m),
                count(self.dmarc_pass),
                share(self.dmarc_pass, m),
                share(self.dkim_aligned, m),
                share(self.spf_aligned, m),
                count(self.source_ips),
                day(self.first),
                last_day(self.last),
                self.reporters.clone(),
            ],
            detail: Some(self.reason.clone()),
        }
    }
}
