//! SMTP TLS reports (RFC 8460 JSON) → [`TlsReport`]. No I/O.
//!
//! Read through `serde_json::Value` rather than derived structs, because real reporters bend the
//! schema and a report should not be lost over it. Tolerated quirks (fixture
//! `sample-reports/tls/quirks-lenient.json`):
//! - counts written as strings (`"42"`), or missing (0);
//! - `policy-string` and `mx-host` as one string instead of an array;
//! - `policy-type` and `policy-domain` in upper case, a domain with a trailing dot, no domain at all;
//! - fields of the RFC's errata or of later drafts, and unknown fields, ignored.
//!
//! Strict where data would be wrong: a negative or non-numeric count, or a document without
//! `organization-name`, `report-id` or `policies`, is an error.

use serde_json::{Map, Value};

use crate::model::{TlsFailure, TlsPolicy, TlsReport};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("JSON is not well-formed: {0}")]
    Json(String),
    #[error("JSON that is not an SMTP TLS report (RFC 8460): no {0:?}")]
    Missing(&'static str),
    #[error("SMTP TLS report: {field}: {value} is not a session count")]
    Count { field: &'static str, value: String },
}

/// Parses one RFC 8460 report.
pub fn parse_tls(text: &str) -> Result<TlsReport, TlsError> {
    let doc: Value = serde_json::from_str(text).map_err(|e| TlsError::Json(e.to_string()))?;
    let doc = doc
        .as_object()
        .ok_or(TlsError::Missing("organization-name"))?;
    let org_name =
        string(doc, "organization-name").ok_or(TlsError::Missing("organization-name"))?;
    let report_id = string(doc, "report-id").ok_or(TlsError::Missing("report-id"))?;
    let policies = doc
        .get("policies")
        .and_then(Value::as_array)
        .ok_or(TlsError::Missing("policies"))?;
    let range = doc.get("date-range").and_then(Value::as_object);
    let time = |key| {
        range
            .and_then(|r| string(r, key))
            .and_then(|t| crate::time::parse_rfc3339(&t))
    };
    Ok(TlsReport {
        org_name,
        report_id,
        contact_info: string(doc, "contact-info"),
        begin: time("start-datetime"),
        end: time("end-datetime"),
        policies: policies
            .iter()
            .filter_map(Value::as_object)
            .map(policy)
            .collect::<Result<_, _>>()?,
    })
}

fn policy(p: &Map<String, Value>) -> Result<TlsPolicy, TlsError> {
    let empty = Map::new();
    let policy = p.get("policy").and_then(Value::as_object).unwrap_or(&empty);
    let summary = p
        .get("summary")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let failures = p
        .get("failure-details")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    Ok(TlsPolicy {
        policy_type: string(policy, "policy-type")
            .unwrap_or_default()
            .to_ascii_lowercase(),
        policy_domain: string(policy, "policy-domain")
            .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
            .unwrap_or_default(),
        policy_strings: strings(policy, "policy-string"),
        mx_hosts: strings(policy, "mx-host"),
        successful_sessions: count(summary, "total-successful-session-count")?,
        failed_sessions: count(summary, "total-failure-session-count")?,
        failures: failures
            .iter()
            .filter_map(Value::as_object)
            .map(failure)
            .collect::<Result<_, _>>()?,
    })
}

fn failure(f: &Map<String, Value>) -> Result<TlsFailure, TlsError> {
    Ok(TlsFailure {
        result_type: string(f, "result-type")
            .unwrap_or_default()
            .to_ascii_lowercase(),
        sending_mta_ip: string(f, "sending-mta-ip"),
        receiving_mx_hostname: string(f, "receiving-mx-hostname")
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase()),
        receiving_mx_helo: string(f, "receiving-mx-helo"),
        receiving_ip: string(f, "receiving-ip"),
        failed_sessions: count(f, "failed-session-count")?,
        additional_information: string(f, "additional-information"),
        failure_reason_code: string(f, "failure-reason-code"),
    })
}

/// A string field (a number is taken as its text); `None` when absent, null or blank.
fn string(map: &Map<String, Value>, key: &str) -> Option<String> {
    match map.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An array of strings, or one string.
fn strings(map: &Map<String, Value>, key: &str) -> Vec<String> {
    match map.get(key) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
        Some(Value::String(s)) if !s.trim().is_empty() => vec![s.trim().to_owned()],
        _ => Vec::new(),
    }
}

/// A session count: a non-negative integer, or a string holding one; 0 when absent.
fn count(map: &Map<String, Value>, key: &'static str) -> Result<u64, TlsError> {
    let bad = |value: &Value| TlsError::Count {
        field: key,
        value: value.to_string(),
    };
    match map.get(key) {
        None | Some(Value::Null) => Ok(0),
        Some(v @ Value::Number(n)) => n.as_u64().ok_or_else(|| bad(v)),
        Some(v @ Value::String(s)) => s.trim().parse().map_err(|_| bad(v)),
        Some(v) => Err(bad(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_must_be_counts() {
        let doc = |count: &str| {
            format!(
                r#"{{"organization-name":"o","report-id":"r","policies":[{{"policy":{{"policy-type":"sts"}},
                "summary":{{"total-successful-session-count":{count}}}}}]}}"#
            )
        };
        assert_eq!(
            parse_tls(&doc("\"42\"")).unwrap().policies[0].successful_sessions,
            42
        );
        assert!(parse_tls(&doc("-1")).is_err());
        assert!(parse_tls(&doc("\"lots\"")).is_err());
        assert!(matches!(
            parse_tls(r#"{"hello": 1}"#),
            Err(TlsError::Missing("organization-name"))
        ));
    }
}
