//! Notices and digests as the channels carry them: a subject, a plain text, an HTML page, the chat
//! paragraph and the webhook's JSON. Text only; no I/O.

use html_escape::encode_text as esc;
use serde::Serialize;

use super::digest::DomainDigest;
use super::events::{Event, Kind};
use crate::present::format::count;

/// One message, in every form a channel may want.
#[derive(Debug, Clone)]
pub struct Message {
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The webhook body.
    pub json: serde_json::Value,
}

/// The webhook's view of an event: exactly its documented fields.
#[derive(Serialize)]
struct Wire<'a> {
    kind: Kind,
    domain: &'a str,
    sender: &'a str,
    messages: u64,
    summary: &'a str,
    detail: &'a str,
}

fn domains_of<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let mut d: Vec<&str> = names.collect();
    d.sort_unstable();
    d.dedup();
    match d.len() {
        0 => String::new(),
        1..=3 => d.join(", "),
        n => format!("{} and {} more", d[..2].join(", "), n - 2),
    }
}

/// The notices of one delivery.
pub fn notices(events: &[Event]) -> Message {
    let n = events.len();
    let plural = if n == 1 { "notice" } else { "notices" };
    let domains = domains_of(events.iter().map(|e| e.domain.as_str()));
    let subject = format!("dmarc-warden: {n} {plural} for {domains}");
    let chat = format!(
        "dmarc-warden: {n} {plural}. {}",
        events
            .iter()
            .map(|e| e.summary.clone())
            .collect::<Vec<_>>()
            .join(". ")
    );
    let mut html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head><body>\n\
         <h1>{}</h1>\n<ul>\n",
        esc(&subject),
        esc(&subject)
    );
    for e in events {
        html.push_str(&format!(
            "<li><p><strong>{}</strong> <em>({})</em></p><p>{}</p><p>See more: <code>{}</code></p></li>\n",
            esc(&e.summary),
            e.kind.as_str(),
            esc(&e.detail),
            esc(&e.command)
        ));
    }
    html.push_str("</ul>\n</body></html>\n");
    let wire: Vec<Wire<'_>> = events
        .iter()
        .map(|e| Wire {
            kind: e.kind,
            domain: &e.domain,
            sender: &e.sender,
            messages: e.messages,
            summary: &e.summary,
            detail: &e.detail,
        })
        .collect();
    Message {
        subject,
        text: text(events),
        html,
        json: serde_json::json!({ "text": chat, "events": wire }),
    }
}

/// The plain text of notices: a block per event, with the command to see more.
pub fn text(events: &[Event]) -> String {
    let mut out = String::new();
    for e in events {
        out.push_str(&format!(
            "[{}] {}\n  {}\n  see more: {}\n\n",
            e.kind.as_str(),
            e.summary,
            e.detail,
            e.command
        ));
    }
    out
}

/// The plain text of a digest: a block per domain.
pub fn digest_text(digests: &[DomainDigest]) -> String {
    let mut out = String::new();
    for d in digests {
        out.push_str(&format!("{}: {}\n", d.domain, digest_line(d)));
        if !d.classes.is_empty() {
            let classes: Vec<String> = d
                .classes
                .iter()
                .map(|c| {
                    format!(
                        "{} {} ({} messages)",
                        count(c.senders),
                        c.class.label(),
                        count(c.messages)
                    )
                })
                .collect();
            out.push_str(&format!("  senders: {}\n", classes.join(", ")));
        }
        for f in &d.needs_fixing {
            out.push_str(&format!("  needs fixing: {f}\n"));
        }
        out.push_str(&format!(
            "  advice: {}; record: _dmarc.{} TXT \"{}\"\n  see more: dmarc-warden advise --domain {}\n\n",
            d.action, d.domain, d.record, d.domain
        ));
    }
    out
}

fn digest_line(d: &DomainDigest) -> String {
    let change = match d.previous_pass_pct {
        Some(p) => {
            let delta = ((d.pass_pct - p) * 10.0).round() / 10.0;
            format!(
                " ({}{delta} points against the {} days before)",
                if delta >= 0.0 { "+" } else { "" },
                d.days
            )
        }
        None => String::new(),
    };
    format!(
        "{} messages in {} days (before: {}), {}% pass DMARC{change}",
        count(d.messages),
        d.days,
        count(d.previous_messages),
        d.pass_pct
    )
}

/// A digest as one message.
pub fn digest(digests: &[DomainDigest], days: u32) -> Message {
    let domains = domains_of(digests.iter().map(|d| d.domain.as_str()));
    let subject = format!("dmarc-warden: digest of the last {days} days for {domains}");
    let mut html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head><body>\n<h1>{}</h1>\n",
        esc(&subject),
        esc(&subject)
    );
    for d in digests {
        html.push_str(&format!(
            "<h2>{}</h2>\n<p>{}</p>\n<ul>\n",
            esc(&d.domain),
            esc(&digest_line(d))
        ));
        for c in &d.classes {
            html.push_str(&format!(
                "<li>{} {} ({} messages)</li>\n",
                count(c.senders),
                c.class.label(),
                count(c.messages)
            ));
        }
        html.push_str("</ul>\n");
        for f in &d.needs_fixing {
            html.push_str(&format!("<p>Needs fixing: {}</p>\n", esc(f)));
        }
        html.push_str(&format!(
            "<p>Advice: <strong>{}</strong>; record <code>{}</code></p>\n\
             <p>See more: <code>dmarc-warden advise --domain {}</code></p>\n",
            d.action,
            esc(&d.record),
            esc(&d.domain)
        ));
    }
    html.push_str("</body></html>\n");
    let chat = format!(
        "dmarc-warden digest, last {days} days. {}",
        digests
            .iter()
            .map(|d| format!("{}: {}; advice: {}", d.domain, digest_line(d), d.action))
            .collect::<Vec<_>>()
            .join(". ")
    );
    Message {
        subject,
        text: digest_text(digests),
        html,
        json: serde_json::json!({ "text": chat, "events": [], "digest": digests }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_what_reports_carry() {
        let e = Event {
            kind: Kind::NewUnauthorisedSource,
            domain: "example.org".into(),
            sender: "<script>x</script>".into(),
            messages: 12,
            summary: "new source sending as example.org: <script>x</script>".into(),
            detail: "a & b".into(),
            command: "dmarc-warden senders --domain example.org".into(),
        };
        let m = notices(std::slice::from_ref(&e));
        assert!(!m.html.contains("<script>"), "{}", m.html);
        assert!(
            m.html.contains("&lt;script&gt;x&lt;/script&gt;"),
            "{}",
            m.html
        );
        assert!(m.html.contains("a &amp; b"), "{}", m.html);
        assert_eq!(m.subject, "dmarc-warden: 1 notice for example.org");
        assert_eq!(m.json["events"][0]["sender"], "<script>x</script>");
        assert_eq!(m.json["events"][0]["messages"], 12);
    }
}
