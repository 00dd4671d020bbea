//! The `digest`: a period's summary per domain, from what `senders` and `advise` conclude. Pure.

use serde::Serialize;

use crate::analyse::{Action, Advice, Sender, percent};
use crate::model::SenderClass;
use crate::present::format::count;

/// Senders of one class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassCount {
    pub class: SenderClass,
    pub senders: u64,
    pub messages: u64,
}

/// One domain over the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DomainDigest {
    pub domain: String,
    pub days: u32,
    pub messages: u64,
    pub previous_messages: u64,
    /// Share of all mail passing DMARC (%).
    pub pass_pct: f64,
    /// The same over the period before; `None` without mail then.
    pub previous_pass_pct: Option<f64>,
    pub classes: Vec<ClassCount>,
    /// The largest senders needing a fix, with their reason.
    pub needs_fixing: Vec<String>,
    /// What `advise` says, over its own window.
    pub action: Action,
    pub record: String,
}

/// Summarises one domain from its senders over the period and the period before, and the advice.
pub fn domain_digest(
    domain: &str,
    days: u32,
    senders: &[Sender],
    previous: &[Sender],
    advice: &Advice,
) -> DomainDigest {
    let total = |s: &[Sender]| -> (u64, u64) {
        s.iter().fold((0, 0), |(m, p), s| {
            (m + s.summary.messages, p + s.summary.dmarc_pass)
        })
    };
    let (messages, pass) = total(senders);
    let (previous_messages, previous_pass) = total(previous);
    let mut classes: Vec<ClassCount> = Vec::new();
    for class in SenderClass::ALL {
        let of: Vec<&Sender> = senders
            .iter()
            .filter(|s| s.summary.class == class)
            .collect();
        if !of.is_empty() {
            classes.push(ClassCount {
                class,
                senders: of.len() as u64,
                messages: of.iter().map(|s| s.summary.messages).sum(),
            });
        }
    }
    DomainDigest {
        domain: domain.to_owned(),
        days,
        messages,
        previous_messages,
        pass_pct: percent(pass, messages),
        previous_pass_pct: (previous_messages > 0)
            .then(|| percent(previous_pass, previous_messages)),
        classes,
        needs_fixing: senders
            .iter()
            .filter(|s| s.summary.class == SenderClass::NeedsFixing)
            .take(3)
            .map(|s| {
                format!(
                    "{} ({} messages): {}",
                    s.summary.sender,
                    count(s.summary.messages),
                    s.summary.reason
                )
            })
            .collect(),
        action: advice.action,
        record: advice.record.clone(),
    }
}
