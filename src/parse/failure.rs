//! ARF reports (RFC 5965) → [`FailureReport`]: DMARC failure reports (RFC 6591, RFC 9991) and the other
//! feedback types (abuse, fraud, opt-out…), each stored under its `Feedback-Type`. No I/O: the parts
//! come already separated and transfer-decoded from [`crate::unpack`].
//!
//! Tolerated quirks of real reporters (each with a fixture in `sample-reports/failure/`):
//! - feedback fields written as header fields of the `message/feedback-report` MIME part rather than
//!   in its body (`fields-as-part-headers.eml`; joined by `unpack`);
//! - the report sent as `multipart/mixed` instead of `multipart/report` (`nested-in-mixed.eml`);
//! - no third part at all (`no-original.eml`), or only `text/rfc822-headers` (`headers-only.eml`);
//! - `Source-IP` followed by the host name in parentheses, or in brackets;
//! - `Received-Date` (RFC 5965's deprecated name) for `Arrival-Date`;
//! - no `Feedback-Type` but an `Auth-Failure`: an `auth-failure` report;
//! - header values in RFC 2047 encoded words, decoded.

use mailparse::MailHeaderMap;
use sha2::Digest;

use crate::model::{FailureReport, OriginalMessage};
use crate::unpack::Arf;

use super::aggregate::normalise_ip;

/// What is kept of reported messages, which are personal data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailureOptions {
    /// Keep the reported message's body (by default only its headers are kept).
    pub keep_bodies: bool,
    /// Replace the local part of every address of the reported message by a hash.
    pub redact: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum FailureError {
    #[error("feedback report: {0}")]
    Headers(String),
    #[error(
        "feedback report without Feedback-Type (RFC 5965 requires it) and without Auth-Failure"
    )]
    NoFeedbackType,
}

/// Parses one ARF report.
pub fn parse_failure(arf: &Arf, options: &FailureOptions) -> Result<FailureReport, FailureError> {
    let (fields, _) = mailparse::parse_headers(&arf.feedback)
        .map_err(|e| FailureError::Headers(e.to_string()))?;
    let mut r = FailureReport {
        reporter: header(&arf.report_headers, "from"),
        report_id: header(&arf.report_headers, "message-id"),
        ..FailureReport::default()
    };
    let mut feedback_type = None;
    for field in &fields {
        let name = field.get_key_ref().to_ascii_lowercase();
        let value = field.get_value().trim().to_owned();
        if value.is_empty() {
            continue;
        }
        match name.as_str() {
            "feedback-type" => feedback_type = Some(value.to_ascii_lowercase()),
            "user-agent" => r.user_agent = Some(value),
            "version" => r.version = Some(value),
            "auth-failure" => r.auth_failure = Some(value.to_ascii_lowercase()),
            "arrival-date" | "received-date" => {
                if r.arrival_date_text.is_none() || name == "arrival-date" {
                    r.arrival_date = mailparse::dateparse(&value).ok();
                    r.arrival_date_text = Some(value);
                }
            }
            "source-ip" => r.source_ip = Some(source_ip(&value)),
            "reported-domain" => r
                .reported_domains
                .push(value.trim_end_matches('.').to_ascii_lowercase()),
            "reported-uri" => r.reported_uris.push(value),
            "original-mail-from" => r.original_mail_from = Some(value),
            "original-rcpt-to" => r.original_rcpt_to.push(value),
            "authentication-results" => r.authentication_results.push(value),
            "dkim-domain" => r.dkim_domain = Some(value.to_ascii_lowercase()),
            "dkim-identity" => r.dkim_identity = Some(value),
            "dkim-selector" => r.dkim_selector = Some(value),
            "spf-dns" => r.spf_dns = Some(value),
            "delivery-result" => r.delivery_result = Some(value.to_ascii_lowercase()),
            "identity-alignment" => r.identity_alignment = Some(value.to_ascii_lowercase()),
            "incidents" => r.incidents = value.parse().ok(),
            _ => r
                .other_fields
                .push((field.get_key_ref().into_owned(), value)),
        }
    }
    r.feedback_type = match feedback_type {
        Some(t) => t,
        None if r.auth_failure.is_some() => "auth-failure".to_owned(),
        None => return Err(FailureError::NoFeedbackType),
    };
    r.original = arf.original.as_deref().map(|o| original(o, options));
    if options.redact {
        r.original_mail_from = r.original_mail_from.map(|a| redact(&a));
        r.original_rcpt_to = r.original_rcpt_to.iter().map(|a| redact(a)).collect();
    }
    r.key = key(arf, &fields);
    Ok(r)
}

/// The reported message's headers worth keeping, and its body when asked for.
fn original(bytes: &[u8], options: &FailureOptions) -> OriginalMessage {
    let Ok((headers, body_at)) = mailparse::parse_headers(bytes) else {
        return OriginalMessage::default();
    };
    let get = |name: &str| headers.get_first_value(name).map(|v| v.trim().to_owned());
    let mut o = OriginalMessage {
        from: get("From"),
        to: get("To"),
        subject: get("Subject"),
        date: get("Date"),
        message_id: get("Message-ID"),
        ..OriginalMessage::default()
    };
    for h in &headers {
        let name = h.get_key_ref();
        let lower = name.to_ascii_lowercase();
        if matches!(
            lower.as_str(),
            "authentication-results" | "dkim-signature" | "received-spf"
        ) || lower.starts_with("arc-")
        {
            o.auth_headers
                .push(format!("{name}: {}", h.get_value().trim()));
        }
    }
    if options.keep_bodies {
        let body = bytes.get(body_at..).unwrap_or_default();
        if !body.is_empty() {
            o.body = Some(String::from_utf8_lossy(body).into_owned());
        }
    }
    if options.redact {
        o.from = o.from.map(|a| redact(&a));
        o.to = o.to.map(|a| redact(&a));
    }
    o
}

fn header(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// `192.0.2.1`, `[192.0.2.1]` or `192.0.2.1 (mail.example.net)` → `192.0.2.1`.
fn source_ip(value: &str) -> String {
    let first = value.split_whitespace().next().unwrap_or(value);
    normalise_ip(first.trim_start_matches('[').trim_end_matches(']')).into()
}

/// Every `local@domain` in `text` becomes `h-<12 hex digits of SHA-256(local)>@domain`: the same
/// address always gives the same hash, so reports can still be grouped by sender.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        let (before, after) = rest.split_at(at);
        let start = before
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_whitespace() || "<>,;:\"()[]".contains(*c))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let local = &before[start..];
        out.push_str(&before[..start]);
        if local.is_empty() {
            out.push('@');
        } else {
            let digest = sha2::Sha256::digest(local.to_lowercase().as_bytes());
            let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
            out.push_str(&format!("h-{hex}@"));
        }
        rest = &after[1..];
    }
    out.push_str(rest);
    out
}

/// SHA-256 over the report's identity: the report message's `Message-ID`, its feedback fields and the
/// reported message's header fields, each as `name: value` with names lower-cased and values
/// trimmed. The same report ingested twice, even with other line endings or folding, or under other
/// `FailureOptions`, gets the same key.
fn key(arf: &Arf, fields: &[mailparse::MailHeader<'_>]) -> String {
    let mut hash = sha2::Sha256::new();
    let mut field = |name: &str, value: &str| {
        hash.update(name.to_ascii_lowercase().as_bytes());
        hash.update(b":");
        hash.update(
            value
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .as_bytes(),
        );
        hash.update(b"\n");
    };
    field(
        "message-id",
        &header(&arf.report_headers, "message-id").unwrap_or_default(),
    );
    for f in fields {
        field(&f.get_key_ref(), &f.get_value());
    }
    if let Some(original) = &arf.original
        && let Ok((headers, _)) = mailparse::parse_headers(original)
    {
        for h in &headers {
            field(&h.get_key_ref(), &h.get_value());
        }
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_keeps_domains_and_is_stable() {
        let a = redact("Jane <jane.doe@example.com>, bob@example.org");
        assert!(a.starts_with("Jane <h-"), "{a}");
        assert!(
            a.contains("@example.com>, h-") && a.ends_with("@example.org"),
            "{a}"
        );
        assert_eq!(redact("JANE.DOE@x"), redact("jane.doe@x"));
        assert_eq!(redact("no address"), "no address");
    }

    #[test]
    fn bodies_only_when_asked() {
        let arf = Arf {
            feedback: b"Feedback-Type: auth-failure\r\n".to_vec(),
            original: Some(b"From: a@example.org\r\nSubject: s\r\n\r\nthe body\r\n".to_vec()),
            ..Arf::default()
        };
        let kept = FailureOptions {
            keep_bodies: true,
            redact: false,
        };
        let with = parse_failure(&arf, &kept).unwrap();
        let without = parse_failure(&arf, &FailureOptions::default()).unwrap();
        assert_eq!(with.original.unwrap().body.as_deref(), Some("the body\r\n"));
        assert_eq!(without.original.unwrap().body, None);
        // The options do not change what the report is.
        assert_eq!(with.key, without.key);
    }

    #[test]
    fn source_ip_forms() {
        assert_eq!(source_ip("192.0.2.1 (mail.example.net)"), "192.0.2.1");
        assert_eq!(source_ip("[2001:db8::1]"), "2001:db8::1");
    }

    #[test]
    fn auth_failure_without_feedback_type_is_an_auth_failure_report() {
        let arf = Arf {
            feedback: b"Auth-Failure: dmarc\r\nSource-IP: 192.0.2.9\r\n".to_vec(),
            ..Arf::default()
        };
        let r = parse_failure(&arf, &FailureOptions::default()).unwrap();
        assert_eq!(r.feedback_type, "auth-failure");
        let arf = Arf {
            feedback: b"Source-IP: 192.0.2.9\r\n".to_vec(),
            ..Arf::default()
        };
        assert!(parse_failure(&arf, &FailureOptions::default()).is_err());
    }
}
