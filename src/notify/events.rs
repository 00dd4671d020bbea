//! Which events to notify: judgements over what `analyse` concluded (senders, advice) and over
//! stored report periods and TLS results, then the once-only rule against what was last notified.
//! Pure: no I/O. The senders and advice come from the same `analyse` functions `senders` and
//! `advise` print, so a notice never disagrees with those commands.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::analyse::check::{DomainCheck, Severity};
use crate::analyse::{Advice, Sender};
use crate::model::{Evidence, SenderClass, Timestamp, TlsSummary};
use crate::store::{Notified, ReportSpan};

/// Thresholds of the events; every one can be set in the config file's `[notify]` table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoticeThresholds {
    /// A new unauthorised source, or a failing legitimate sender, needs at least this many messages
    /// in the window.
    pub min_messages: u64,
    /// The legitimate pass rate falling by more than this many points against the previous window.
    pub pass_rate_drop_points: f64,
    /// A reporter that sent daily and has been quiet this many days (counted back from the domain's
    /// latest report).
    pub silent_days: u32,
    /// An MX's failed share of TLS sessions above this (%).
    pub tls_failure_pct: f64,
    /// ... out of at least this many sessions.
    pub tls_min_sessions: u64,
}

impl Default for NoticeThresholds {
    fn default() -> Self {
        NoticeThresholds {
            min_messages: 10,
            pass_rate_drop_points: 5.0,
            silent_days: 3,
            tls_failure_pct: 5.0,
            tls_min_sessions: 20,
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    NewUnauthorisedSource,
    SenderFailing,
    PassRateDrop,
    AdviceChanged,
    ReporterSilent,
    TlsFailures,
    DnsChanged,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::NewUnauthorisedSource => "new_unauthorised_source",
            Kind::SenderFailing => "sender_failing",
            Kind::PassRateDrop => "pass_rate_drop",
            Kind::AdviceChanged => "advice_changed",
            Kind::ReporterSilent => "reporter_silent",
            Kind::TlsFailures => "tls_failures",
            Kind::DnsChanged => "dns_changed",
        }
    }
}

/// One notice. `kind`, `domain`, `sender`, `messages`, `summary` and `detail` are the webhook's
/// JSON fields; `command` is what to run to see more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub kind: Kind,
    pub domain: String,
    /// The sender, reporter or MX hosts it is about; empty for the domain as a whole.
    pub sender: String,
    pub messages: u64,
    /// One line.
    pub summary: String,
    /// Why, and what to do.
    pub detail: String,
    pub command: String,
}

/// A condition that holds now: its event, and what makes it a change (`""` for conditions that are
/// simply on or off).
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub event: Event,
    pub fingerprint: String,
    /// The fingerprint is a set (comma-separated): the event is sent again only when the set gains
    /// a member, not when one leaves it.
    pub grows: bool,
}

fn on(event: Event) -> Condition {
    Condition {
        event,
        fingerprint: String::new(),
        grows: false,
    }
}

/// One domain as judged now.
#[derive(Debug)]
pub struct DomainState<'a> {
    pub domain: &'a str,
    /// Senders in the advice window (what `senders` lists).
    pub senders: &'a [Sender],
    /// What `advise` says.
    pub advice: &'a Advice,
    /// The advice over the window before, `None` when it had no mail.
    pub previous: Option<&'a Advice>,
    /// Per sender, its source IPs in the window that sent no mail for the domain before it, with
    /// their messages ([`new_sources`]).
    pub new_sources: &'a BTreeMap<String, Vec<(String, u64)>>,
}

/// Per sender (of `senders`, judged from `evidence`), its source IPs that are not in `known`, with
/// their messages, most first.
pub fn new_sources(
    evidence: &[Evidence],
    senders: &[Sender],
    known: &BTreeSet<String>,
) -> BTreeMap<String, Vec<(String, u64)>> {
    let mut by_sender: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for s in senders {
        let rows = s.evidence.iter().filter_map(|&i| evidence.get(i));
        for e in rows.filter(|e| !known.contains(e.key.source_ip.as_str())) {
            *by_sender
                .entry(s.summary.sender.clone())
                .or_default()
                .entry(e.key.source_ip.to_string())
                .or_default() += e.messages;
        }
    }
    by_sender
        .into_iter()
        .map(|(sender, ips)| {
            let mut ips: Vec<(String, u64)> = ips.into_iter().collect();
            ips.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            (sender, ips)
        })
        .collect()
}

/// The conditions of one domain: new unauthorised sources, failing legitimate senders, a drop of
/// the legitimate pass rate, and the advice.
pub fn domain_conditions(v: &DomainState<'_>, th: &NoticeThresholds) -> Vec<Condition> {
    let d = v.domain;
    let mut out = Vec::new();
    let senders_cmd = format!("dmarc-warden senders --domain {d}");
    for s in v.senders.iter().map(|s| &s.summary) {
        if s.messages < th.min_messages {
            continue;
        }
        match s.class {
            SenderClass::Unauthorised => {
                // A source is an IP address: new, and with at least `min_messages` messages.
                let ips: Vec<&(String, u64)> = v
                    .new_sources
                    .get(&s.sender)
                    .into_iter()
                    .flatten()
                    .filter(|(_, n)| *n >= th.min_messages)
                    .collect();
                if ips.is_empty() {
                    continue;
                }
                let messages: u64 = ips.iter().map(|(_, n)| n).sum();
                let shown: Vec<&str> = ips.iter().take(5).map(|(ip, _)| ip.as_str()).collect();
                let more = match ips.len().saturating_sub(shown.len()) {
                    0 => String::new(),
                    n => format!(" and {n} more"),
                };
                let mut members: Vec<&str> = ips.iter().map(|(ip, _)| ip.as_str()).collect();
                members.sort_unstable();
                out.push(Condition {
                    fingerprint: members.join(","),
                    grows: true,
                    event: Event {
                        kind: Kind::NewUnauthorisedSource,
                        domain: d.to_owned(),
                        sender: s.sender.clone(),
                        messages,
                        summary: format!(
                            "new source sending as {d}: {} from {} new IP address{} ({messages} \
                         messages, failing DMARC)",
                            s.sender,
                            ips.len(),
                            if ips.len() == 1 { "" } else { "es" }
                        ),
                        detail: format!(
                            "new: {}{more}; reported by {}; {}",
                            shown.join(", "),
                            s.reporters,
                            s.reason
                        ),
                        command: senders_cmd.clone(),
                    },
                });
            }
            SenderClass::NeedsFixing => {
                out.push(on(Event {
                    kind: Kind::SenderFailing,
                    domain: d.to_owned(),
                    sender: s.sender.clone(),
                    messages: s.messages,
                    summary: format!(
                        "{} fails DMARC for {d}: {}% of {} messages pass",
                        s.sender, s.dmarc_pass_pct, s.messages
                    ),
                    detail: s.reason.clone(),
                    command: senders_cmd.clone(),
                }));
            }
            _ => {}
        }
    }
    if let Some(prev) = v.previous {
        let (was, now) = (prev.legitimate_pass_pct, v.advice.legitimate_pass_pct);
        let drop = ((was - now) * 10.0).round() / 10.0;
        let enough = v.advice.evidence.messages >= th.min_messages
            && prev.evidence.messages >= th.min_messages;
        if drop > th.pass_rate_drop_points && enough {
            let failing: Vec<String> = v
                .senders
                .iter()
                .filter(|s| s.summary.class == SenderClass::NeedsFixing)
                .take(3)
                .map(|s| format!("{} ({} messages)", s.summary.sender, s.summary.messages))
                .collect();
            out.push(on(Event {
                kind: Kind::PassRateDrop,
                domain: d.to_owned(),
                sender: String::new(),
                messages: v.advice.evidence.messages,
                summary: format!(
                    "{d}: legitimate mail passing DMARC fell from {was}% to {now}% ({drop} points)"
                ),
                detail: if failing.is_empty() {
                    "no single sender stands out; compare `senders` over the two windows".to_owned()
                } else {
                    format!("failing senders: {}", failing.join(", "))
                },
                command: senders_cmd.clone(),
            }));
        }
    }
    let a = v.advice;
    out.push(Condition {
        fingerprint: format!("{}|{}", a.action, a.record),
        grows: false,
        event: Event {
            kind: Kind::AdviceChanged,
            domain: d.to_owned(),
            sender: String::new(),
            messages: a.evidence.messages,
            summary: format!(
                "{d}: advice is now \"{}\" ({} → {})",
                a.action, a.current.policy, a.recommended
            ),
            detail: {
                let mut parts: Vec<String> = a.notes.iter().take(2).cloned().collect();
                for b in a.blockers.iter().take(3) {
                    parts.push(format!("blocker {}: {}", b.sender, b.reason));
                }
                parts.push(format!("record: _dmarc.{d} TXT \"{}\"", a.record));
                parts.join("; ")
            },
            command: format!("dmarc-warden advise --domain {d}"),
        },
    });
    out
}

/// Days a reporter must have sent reports on, of the 8 days up to its last report, to count as a
/// daily reporter.
const DAILY_MIN_DAYS: usize = 5;

/// Reporters that sent daily and went quiet: per domain, a reporter whose reports began on at
/// least 5 (`DAILY_MIN_DAYS`) of the 8 days up to its last report, and whose last report ended at
/// least `silent_days` before the domain's latest report.
pub fn reporter_conditions(spans: &[ReportSpan], th: &NoticeThresholds) -> Vec<Condition> {
    // domain → (latest end, org → (last end, days reports began on)).
    type Orgs = BTreeMap<String, (i64, BTreeSet<i64>)>;
    let mut domains: BTreeMap<&str, (i64, Orgs)> = BTreeMap::new();
    for s in spans {
        let (latest, orgs) = domains.entry(&s.domain).or_insert((i64::MIN, Orgs::new()));
        *latest = (*latest).max(s.end);
        let (last, days) = orgs
            .entry(s.org_name.clone())
            .or_insert((i64::MIN, BTreeSet::new()));
        *last = (*last).max(s.end);
        days.insert(s.begin.div_euclid(86_400));
    }
    let mut out = Vec::new();
    let silent = i64::from(th.silent_days) * 86_400;
    for (domain, (latest, orgs)) in domains {
        for (org, (last, days)) in orgs {
            let last_day = last.div_euclid(86_400);
            let recent = days.range(last_day - 7..=last_day).count();
            if latest - last < silent || recent < DAILY_MIN_DAYS {
                continue;
            }
            let quiet = (latest - last) / 86_400;
            out.push(on(Event {
                kind: Kind::ReporterSilent,
                domain: domain.to_owned(),
                sender: org.clone(),
                messages: 0,
                summary: format!(
                    "{org} stopped sending reports for {domain}: none for {quiet} days"
                ),
                detail: format!(
                    "its last report ended {}; it had reports on {recent} of the 8 days before. \
                     Check that rua= still points at your mailbox and that the mailbox accepts its \
                     mail",
                    day(Some(Timestamp(last)))
                ),
                command: format!("dmarc-warden reports --domain {domain}"),
            }));
        }
    }
    out
}

/// MX hosts whose share of failed TLS sessions (RFC 8460 reports) is above the threshold.
pub fn tls_conditions(rows: &[TlsSummary], th: &NoticeThresholds) -> Vec<Condition> {
    rows.iter()
        .filter(|r| {
            r.successful_sessions.saturating_add(r.failed_sessions) >= th.tls_min_sessions
                && r.failure_pct > th.tls_failure_pct
        })
        .map(|r| {
            let mx = if r.mx_hosts.is_empty() {
                "(no policy)".to_owned()
            } else {
                r.mx_hosts.clone()
            };
            on(Event {
                kind: Kind::TlsFailures,
                domain: r.domain.clone(),
                sender: mx.clone(),
                messages: r.failed_sessions,
                summary: format!(
                    "{}: {}% of TLS sessions to {mx} failed ({} of {})",
                    r.domain,
                    r.failure_pct,
                    r.failed_sessions,
                    r.successful_sessions.saturating_add(r.failed_sessions)
                ),
                detail: format!(
                    "failures: {}; reported by {}",
                    if r.top_failures.is_empty() {
                        "no details"
                    } else {
                        &r.top_failures
                    },
                    r.reporters
                ),
                command: format!("dmarc-warden tls --domain {}", r.domain),
            })
        })
        .collect()
}

/// What each domain publishes, as the last `check` stored it: an event when the records change or
/// a kind of problem appears (errors and warnings by check), not when a message's wording does (an
/// expiry date counting down). The first check of a domain is notified as its baseline.
pub fn dns_conditions(checks: &[DomainCheck]) -> Vec<Condition> {
    checks
        .iter()
        .map(|c| {
            let p = &c.published;
            let mut records: Vec<String> = Vec::new();
            for (name, values) in [
                ("dmarc", &p.dmarc),
                ("spf", &p.spf),
                ("mx", &p.mx),
                ("mta-sts", &p.mta_sts),
                ("tls-rpt", &p.tls_rpt),
            ] {
                let mut values = values.clone();
                values.sort();
                records.push(format!("{name}={}", values.join("|")));
            }
            for (selector, values) in &p.dkim {
                records.push(format!("dkim {selector}={}", values.join("|")));
            }
            let problems: BTreeSet<String> = c
                .findings
                .iter()
                .filter(|f| matches!(f.severity, Severity::Error | Severity::Warning))
                .map(|f| format!("{}:{}", f.check.as_str(), f.severity.as_str()))
                .collect();
            let (errors, warnings) = (c.count(Severity::Error), c.count(Severity::Warning));
            let mut worst: Vec<&crate::analyse::check::Finding> = c
                .findings
                .iter()
                .filter(|f| matches!(f.severity, Severity::Error | Severity::Warning))
                .collect();
            worst.sort_by_key(|f| std::cmp::Reverse(f.severity));
            let mut detail: Vec<String> = worst
                .iter()
                .take(3)
                .map(|f| {
                    format!(
                        "{} {}: {}",
                        f.severity.as_str(),
                        f.check.as_str(),
                        f.message
                    )
                })
                .collect();
            if let Some(dmarc) = p.dmarc.first() {
                detail.push(format!("_dmarc.{} TXT \"{dmarc}\"", c.domain));
            }
            Condition {
                fingerprint: format!(
                    "{}#{}",
                    records.join(";"),
                    problems.into_iter().collect::<Vec<_>>().join(",")
                ),
                grows: false,
                event: Event {
                    kind: Kind::DnsChanged,
                    domain: c.domain.clone(),
                    sender: String::new(),
                    messages: 0,
                    summary: format!(
                        "{}: what DNS publishes, or its problems, changed: {errors} error(s), \
                         {warnings} warning(s) (checked {})",
                        c.domain,
                        day(Some(c.checked_at))
                    ),
                    detail: if detail.is_empty() {
                        "no problem found".to_owned()
                    } else {
                        detail.join("; ")
                    },
                    command: format!("dmarc-warden check --last {}", c.domain),
                },
            }
        })
        .collect()
}

/// The once-only rule: of the conditions holding now, those not notified before with the same
/// fingerprint are to be sent. The returned state is what holds now (conditions that no longer hold
/// are forgotten, so they are notified again when they come back).
pub fn select(
    conditions: Vec<Condition>,
    notified: &[Notified],
    now: i64,
) -> (Vec<Event>, Vec<Notified>) {
    let before: BTreeMap<(&str, &str, &str), &Notified> = notified
        .iter()
        .map(|n| ((n.kind.as_str(), n.domain.as_str(), n.subject.as_str()), n))
        .collect();
    let mut send = Vec::new();
    let mut state: BTreeMap<(String, String, String), Notified> = BTreeMap::new();
    for c in conditions {
        let e = &c.event;
        let key = (e.kind.as_str(), e.domain.as_str(), e.sender.as_str());
        let known = |n: &Notified| {
            if c.grows {
                let had: BTreeSet<&str> = n.fingerprint.split(',').collect();
                c.fingerprint.split(',').all(|m| had.contains(m))
            } else {
                n.fingerprint == c.fingerprint
            }
        };
        let notified_at = match before.get(&key) {
            Some(n) if known(n) => n.notified_at,
            _ => {
                send.push(c.event.clone());
                now
            }
        };
        state.insert(
            (key.0.to_owned(), key.1.to_owned(), key.2.to_owned()),
            Notified {
                kind: key.0.to_owned(),
                domain: key.1.to_owned(),
                subject: key.2.to_owned(),
                fingerprint: c.fingerprint.clone(),
                notified_at,
            },
        );
    }
    // A condition judged twice in one run (one sender listed twice) is sent once.
    let mut seen = BTreeSet::new();
    send.retain(|e| seen.insert((e.kind, e.domain.clone(), e.sender.clone())));
    (send, state.into_values().collect())
}

fn day(t: Option<Timestamp>) -> String {
    t.map_or("?".into(), |t| t.to_string().chars().take(10).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(kind: Kind, subject: &str, fingerprint: &str) -> Condition {
        Condition {
            event: Event {
                kind,
                domain: "example.org".into(),
                sender: subject.into(),
                messages: 1,
                summary: String::new(),
                detail: String::new(),
                command: String::new(),
            },
            fingerprint: fingerprint.into(),
            grows: kind == Kind::NewUnauthorisedSource,
        }
    }

    #[test]
    fn once_only_and_again_after_it_went_away() {
        let (sent, state) = select(vec![cond(Kind::SenderFailing, "esp", "")], &[], 1);
        assert_eq!(sent.len(), 1);
        let (sent, state) = select(vec![cond(Kind::SenderFailing, "esp", "")], &state, 2);
        assert!(sent.is_empty());
        assert_eq!(state[0].notified_at, 1);
        let (sent, state) = select(vec![], &state, 3);
        assert!(sent.is_empty() && state.is_empty());
        let (sent, _) = select(vec![cond(Kind::SenderFailing, "esp", "")], &state, 4);
        assert_eq!(sent.len(), 1);
    }

    #[test]
    fn a_changed_fingerprint_is_sent() {
        let (_, state) = select(vec![cond(Kind::AdviceChanged, "", "hold")], &[], 1);
        let (sent, _) = select(vec![cond(Kind::AdviceChanged, "", "hold")], &state, 2);
        assert!(sent.is_empty());
        let (sent, _) = select(vec![cond(Kind::AdviceChanged, "", "step up")], &state, 3);
        assert_eq!(sent.len(), 1);
    }

    #[test]
    fn a_set_is_sent_again_only_when_it_gains_a_member() {
        let k = Kind::NewUnauthorisedSource;
        let (_, state) = select(vec![cond(k, "unidentified", "a,b")], &[], 1);
        let (sent, state) = select(vec![cond(k, "unidentified", "b")], &state, 2);
        assert!(sent.is_empty());
        let (sent, _) = select(vec![cond(k, "unidentified", "b,c")], &state, 3);
        assert_eq!(sent.len(), 1);
    }

    #[test]
    fn a_daily_reporter_gone_quiet() {
        let span = |org: &str, day: i64| ReportSpan {
            domain: "example.org".into(),
            org_name: org.into(),
            begin: day * 86_400,
            end: day * 86_400 + 86_399,
        };
        let mut spans: Vec<ReportSpan> = (0..20).map(|d| span("big", d)).collect();
        spans.extend((0..10).map(|d| span("quiet", d)));
        spans.extend([span("weekly", 0), span("weekly", 7)]);
        let th = NoticeThresholds::default();
        let c = reporter_conditions(&spans, &th);
        let who: Vec<&str> = c.iter().map(|c| c.event.sender.as_str()).collect();
        assert_eq!(who, ["quiet"]);
        spans.retain(|s| s.end < 12 * 86_400);
        assert!(reporter_conditions(&spans, &th).is_empty());
    }
}
