//! `GET /metrics`: the database's figures for Prometheus, as the user asking may see them. Every
//! figure is one the CLI or the judge already computes: the stored counts of `domains`, each
//! domain judged over the advice window as the overview judges it (`data::domains`, through
//! `judge`: pass rates, messages, senders and source IPs by class, the advice), the last `check`'s
//! findings, and the store's own counts ([`crate::store::Kept`]). The process's figures are added
//! to each answer by `routes.rs` ([`crate::metrics::process`]), fresh, while this part is cached
//! until the database changes.

use std::collections::BTreeMap;

use crate::access::Visible;
use crate::judge::Scope;
use crate::metrics::{Exposition, Kind};
use crate::model::Filter;
use crate::store::{Store, StoreError};

use super::ServeConfig;
use super::data;
use crate::model::SenderClass;

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The figures `visible` allows: per domain those of its domains; the store's own counts only for
/// a user who sees every domain (they add up every domain's reports).
pub fn render(
    store: &Store,
    config: &ServeConfig,
    visible: &Visible,
) -> Result<String, StoreError> {
    let mut m = Exposition::default();
    per_domain(store, config, visible, &mut m)?;
    if *visible == Visible::All {
        kept(store, &mut m)?;
    }
    Ok(m.render())
}

fn per_domain(
    store: &Store,
    config: &ServeConfig,
    visible: &Visible,
    m: &mut Exposition,
) -> Result<(), StoreError> {
    // As `domains` counts them: every stored report.
    for d in store.domains(&Filter::default())? {
        if !visible.allows(&d.domain) {
            continue;
        }
        let l = [("domain", d.domain.as_str())];
        m.family(
            "dmarc_warden_aggregate_reports_total",
            Kind::Counter,
            "Aggregate reports stored for the policy domain.",
        )
        .sample(&l, d.reports as f64);
        m.family(
            "dmarc_warden_messages_total",
            Kind::Counter,
            "Messages the stored aggregate reports count for the policy domain (as `dmarc-warden domains`).",
        )
        .sample(&l, d.messages as f64);
        m.family(
            "dmarc_warden_dmarc_pass_messages_total",
            Kind::Counter,
            "Of those messages, the ones passing DMARC (aligned DKIM or SPF).",
        )
        .sample(&l, d.dmarc_pass as f64);
    }
    // Judged over the advice window, as the overview and `advise --offline` judge.
    let window = config.judgement.thresholds.window_days;
    let scope = Scope {
        days: (window > 0).then_some(window),
        visible: visible.clone(),
        ..Scope::default()
    };
    for v in data::domains(store, &scope, &config.judgement)? {
        let domain = v.domain();
        let l = [("domain", domain)];
        m.family(
            "dmarc_warden_window_reported_dates",
            Kind::Gauge,
            "Dates with reports in the window judged (the advice window, back from the latest report).",
        )
        .sample(&l, v.advice.evidence.days as f64);
        if v.messages > 0 {
            m.family(
                "dmarc_warden_window_dmarc_pass_ratio",
                Kind::Gauge,
                "Share of the window's messages passing DMARC, from 0 to 1.",
            )
            .sample(&l, v.pass as f64 / v.messages as f64);
        }
        if v.advice.legitimate_messages > 0 {
            m.family(
                "dmarc_warden_window_legitimate_pass_ratio",
                Kind::Gauge,
                "Share of the window's legitimate mail passing DMARC or forwarded, from 0 to 1 (as `advise`).",
            )
            .sample(&l, v.advice.legitimate_pass_pct / 100.0);
        }
        let mut senders = [0u64; 4];
        let mut ips = [0u64; 4];
        for s in &v.judged.senders {
            let c = s.summary.class.index();
            senders[c] += 1;
            ips[c] += s.summary.source_ips;
        }
        for (c, class) in SenderClass::ALL.iter().enumerate() {
            let class = label(class);
            let l = [("domain", domain), ("class", class.as_str())];
            m.family(
                "dmarc_warden_window_messages",
                Kind::Gauge,
                "The window's messages by sender class (as `senders`).",
            )
            .sample(&l, v.totals[c] as f64);
            m.family(
                "dmarc_warden_window_senders",
                Kind::Gauge,
                "The window's senders by class (as `senders`).",
            )
            .sample(&l, senders[c] as f64);
            m.family(
                "dmarc_warden_window_source_ips",
                Kind::Gauge,
                "Source IP addresses of the window's senders, by the sender's class.",
            )
            .sample(&l, ips[c] as f64);
        }
        let action = label(&v.advice.action);
        m.family(
            "dmarc_warden_advice",
            Kind::Gauge,
            "1 for the advice on the domain's policy (as `advise --offline`): the action, the policy published and the one to publish next.",
        )
        .sample(
            &[
                ("domain", domain),
                ("action", &action),
                ("current", &v.advice.current.policy.p),
                ("next", &v.advice.recommended.p),
            ],
            1.0,
        );
        m.family(
            "dmarc_warden_advice_ready",
            Kind::Gauge,
            "1 when the window's evidence is enough to change the policy (as `advise`'s `ready`).",
        )
        .sample(&l, if v.advice.ready { 1.0 } else { 0.0 });
        if let Some(last) = v.judged.last {
            m.family(
                "dmarc_warden_last_report_end_timestamp_seconds",
                Kind::Gauge,
                "End of the domain's latest aggregate report period, in seconds since the epoch.",
            )
            .sample(&l, last as f64);
        }
    }
    for r in store.latest_reports()? {
        if !visible.allows(&r.domain) {
            continue;
        }
        m.family(
            "dmarc_warden_reporter_last_report_end_timestamp_seconds",
            Kind::Gauge,
            "End of the latest aggregate report period each reporter sent for the domain, in seconds since the epoch.",
        )
        .sample(
            &[("domain", r.domain.as_str()), ("reporter", r.org_name.as_str())],
            r.end as f64,
        );
    }
    for (domain, n) in store.failure_counts()? {
        if visible.allows(&domain) {
            m.family(
                "dmarc_warden_failure_reports_total",
                Kind::Counter,
                "Failure (ARF) reports stored about the domain.",
            )
            .sample(&[("domain", domain.as_str())], n as f64);
        }
    }
    for t in store.tls_counts()? {
        if !visible.allows(&t.domain) {
            continue;
        }
        let l = [("domain", t.domain.as_str())];
        m.family(
            "dmarc_warden_tls_reports_total",
            Kind::Counter,
            "SMTP TLS reports stored for the policy domain.",
        )
        .sample(&l, t.reports as f64);
        for (result, n) in [("successful", t.successful), ("failed", t.failed)] {
            m.family(
                "dmarc_warden_tls_sessions_total",
                Kind::Counter,
                "TLS sessions the stored SMTP TLS reports count, by result.",
            )
            .sample(
                &[("domain", t.domain.as_str()), ("result", result)],
                n as f64,
            );
        }
    }
    for c in store.last_checks(None)? {
        if !visible.allows(&c.domain) {
            continue;
        }
        use crate::analyse::check::Severity;
        let mut by: BTreeMap<&str, u64> = [
            Severity::Ok,
            Severity::Info,
            Severity::Warning,
            Severity::Error,
        ]
        .iter()
        .map(|s| (s.as_str(), 0))
        .collect();
        for f in &c.findings {
            *by.entry(f.severity.as_str()).or_default() += 1;
        }
        for (severity, n) in &by {
            m.family(
                "dmarc_warden_check_findings",
                Kind::Gauge,
                "Findings of the domain's last `check`, by severity.",
            )
            .sample(
                &[("domain", c.domain.as_str()), ("severity", severity)],
                *n as f64,
            );
        }
        m.family(
            "dmarc_warden_check_timestamp_seconds",
            Kind::Gauge,
            "When the domain's last `check` ran, in seconds since the epoch.",
        )
        .sample(&[("domain", c.domain.as_str())], c.checked_at.0 as f64);
    }
    Ok(())
}

fn kept(store: &Store, m: &mut Exposition) -> Result<(), StoreError> {
    let k = store.kept()?;
    for (kind, n) in [
        ("aggregate", k.aggregate_reports),
        ("failure", k.failure_reports),
        ("tls", k.tls_reports),
    ] {
        m.family(
            "dmarc_warden_store_reports",
            Kind::Gauge,
            "Reports kept in the database, by kind.",
        )
        .sample(&[("kind", kind)], n as f64);
    }
    m.family(
        "dmarc_warden_store_records",
        Kind::Gauge,
        "Aggregate report records kept in the database.",
    )
    .sample(&[], k.records as f64);
    m.family(
        "dmarc_warden_store_reject_inputs",
        Kind::Gauge,
        "Inputs kept because a part of them was rejected (`dmarc-warden rejects`).",
    )
    .sample(&[], k.reject_inputs as f64);
    m.family(
        "dmarc_warden_store_rejects",
        Kind::Gauge,
        "Rejected parts kept with their reason (`dmarc-warden rejects`).",
    )
    .sample(&[], k.rejects as f64);
    m.family(
        "dmarc_warden_notify_outbox_notices",
        Kind::Gauge,
        "Notices judged but not yet delivered to their channel.",
    )
    .sample(&[], k.outbox as f64);
    if let Some(t) = k.outbox_oldest {
        m.family(
            "dmarc_warden_notify_outbox_oldest_timestamp_seconds",
            Kind::Gauge,
            "When the oldest notice still waiting was queued, in seconds since the epoch.",
        )
        .sample(&[], t as f64);
    }
    Ok(())
}

/// A value as its JSON output writes it (`"needs_fixing"`, `"keep collecting"`, `"warning"`).
fn label<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}
