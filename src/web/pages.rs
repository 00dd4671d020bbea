//! The HTML pages (maud templates, escaped by construction): the overview of every domain, a
//! domain, a sender, errors, and the one-file report. Pages carry no script; the filter is a GET
//! form, so every view is a bookmarkable address.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::ServeConfig;
use super::charts::{self, thousands};
use super::data::{self, DomainView};
use super::routes::View;
use crate::analyse::Action;
use crate::analyse::check::{DomainCheck, Severity};
use crate::judge::Scope;
use crate::model::{Filter, SenderClass};
use crate::store::{Store, StoreError};

pub const STYLE: &str = include_str!("assets/style.css");
pub const ICON: &str = include_str!("assets/icon.svg");

/// `/domain/<d>` with its path segment escaped.
fn domain_href(d: &str, view: &View) -> String {
    format!("/domain/{}{}", esc(d), view.query())
}

fn sender_href(d: &str, sender: &str, view: &View) -> String {
    format!("/domain/{}/sender/{}{}", esc(d), esc(sender), view.query())
}

/// What a path segment must not hold as it is (RFC 3986 `pchar` less a few that confuse readers).
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

fn esc(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, SEGMENT).to_string()
}

fn page(title: &str, crumbs: Markup, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · dmarc-warden" }
                link rel="stylesheet" href="/static/style.css";
                link rel="icon" href="/static/icon.svg" type="image/svg+xml";
            }
            body {
                (charts::defs())
                header class="top" {
                    a class="brand" href="/" { "dmarc-warden" }
                    nav { (crumbs) }
                }
                main { (body) }
                footer { "Read-only view of the database · " a href="/api/" { "JSON API" } }
            }
        }
    }
    .into_string()
}

pub fn error(status: u16, message: &str) -> String {
    page(
        "Error",
        html! {},
        html! {
            h1 { "Error " (status) }
            p class="error" { (message) }
            p { a href="/" { "Back to the overview" } }
        },
    )
}

/// What the figures cover, in words.
fn scope_text(view: &View, scope: &Scope) -> String {
    match (&view.from, &view.to) {
        (Some(f), Some(t)) => format!("Reports from {f} to {t}"),
        (Some(f), None) => format!("Reports from {f} on"),
        (None, Some(t)) => format!("Reports up to {t}"),
        (None, None) => match scope.days {
            Some(d) => {
                format!("The {d} days before each domain's latest report, as advise judges them")
            }
            None => "All stored reports".to_owned(),
        },
    }
}

fn filter_form(action: &str, view: &View, scope: &Scope, with_domain: bool) -> Markup {
    let scope_days = scope.days.map_or("all".to_owned(), |d| d.to_string());
    html! {
        form class="filter" method="get" action=(action) {
            @if with_domain {
                label { "Domain " input type="text" name="domain" value=[view.domain.as_deref()] placeholder="all"; }
            }
            label { "From " input type="date" name="from" value=[view.from.as_deref()]; }
            label { "To " input type="date" name="to" value=[view.to.as_deref()]; }
            label { "Or last N days" input type="number" name="days" min="0" max="36500" value=[view.days] placeholder=(scope_days); }
            button type="submit" { "Apply" }
            @if *view != View::default() {
                a class="reset" href=(action) { "Reset" }
            }
        }
    }
}

fn policy_text(v: &DomainView) -> String {
    v.advice.current.policy.to_string()
}

fn next_text(v: &DomainView) -> String {
    v.advice.recommended.to_string()
}

fn action_badge(action: Action) -> Markup {
    let kind = match action {
        Action::StepUp | Action::AtTarget => "ok",
        Action::BackOff => "bad",
        Action::Hold => "warn",
        Action::KeepCollecting => "info",
    };
    html! { span class=(format!("badge {kind}")) { (action) } }
}

fn trend(v: &DomainView) -> Markup {
    html! {
        @match v.trend {
            Some(t) if t > 0.0 => span class="trend up" title="later half of the days against the earlier half" { "▲ +" (format!("{t:.1}")) " pts" },
            Some(t) if t < 0.0 => span class="trend down" title="later half of the days against the earlier half" { "▼ " (format!("{t:.1}")) " pts" },
            Some(_) => span class="trend" { "= steady" },
            None => span class="trend" { "–" },
        }
    }
}

/// A time as `2026-11-01 14:05 UTC`.
fn when(t: i64) -> String {
    crate::time::format_minute(t)
        .map(|t| format!("{t} UTC"))
        .unwrap_or_default()
}

fn date_of(t: Option<i64>) -> String {
    t.map(|t| charts::date(crate::time::day_of(t)))
        .unwrap_or_default()
}

pub fn overview(
    store: &Store,
    config: &ServeConfig,
    view: &View,
    scope: &Scope,
) -> Result<Option<String>, StoreError> {
    let views = data::domains(store, scope, &config.judgement)?;
    let checks: std::collections::HashMap<String, DomainCheck> = store
        .last_checks(scope.domain.as_deref())?
        .into_iter()
        .map(|c| (c.domain.clone(), c))
        .collect();
    Ok(Some(page(
        "Domains",
        html! {},
        html! {
            h1 { "Domains" }
            (filter_form("/", view, scope, true))
            p class="scope" { (scope_text(view, scope)) }
            @if views.is_empty() {
                p class="empty" { "Nothing stored matches. Reports arrive with " code { "dmarc-warden ingest" } " or " code { "dmarc-warden fetch" } "." }
            } @else {
                table class="cards" id="domains" {
                    thead { tr {
                        th { "Domain" } th class="num" { "Messages" } th class="num" { "DMARC pass" }
                        th { "Trend" } th { "Policy" } th { "Advice" } th { "Last report" } th { "DNS check" }
                    } }
                    tbody {
                        @for v in &views {
                            tr {
                                td data-label="Domain" { a class="domain" href=(domain_href(v.domain(), view)) { (v.domain()) } }
                                td class="num messages" data-label="Messages" { (thousands(v.messages)) }
                                td class="num" data-label="DMARC pass" { (format!("{:.1}", v.pass_pct())) "%" }
                                td data-label="Trend" { (charts::sparkline(&v.days)) " " (trend(v)) }
                                td data-label="Policy" { code { (policy_text(v)) } }
                                td data-label="Advice" { (action_badge(v.advice.action)) " → " code { (next_text(v)) } }
                                td data-label="Last report" { (date_of(v.judged.last)) }
                                td data-label="DNS check" class="check" { (worst_finding(checks.get(v.domain()), &domain_href(v.domain(), view))) }
                            }
                        }
                    }
                }
            }
        },
    )))
}

fn severity_badge(s: Severity) -> Markup {
    let kind = match s {
        Severity::Ok => "ok",
        Severity::Info => "info",
        Severity::Warning => "warn",
        Severity::Error => "bad",
    };
    html! { span class=(format!("badge {kind}")) { (s.as_str()) } }
}

/// The worst finding of a domain's last `check`, linking to the domain page's list.
fn worst_finding(check: Option<&DomainCheck>, href: &str) -> Markup {
    let Some(c) = check else {
        return html! { span class="small" { "not checked" } };
    };
    let worst = c.findings.iter().max_by_key(|f| f.severity);
    html! {
        @match worst {
            Some(f) if f.severity > Severity::Ok => {
                (severity_badge(f.severity)) " "
                a href=(format!("{href}#check")) { (f.check.as_str()) ": " (f.message) }
            }
            _ => { (severity_badge(Severity::Ok)) " " span class="small" { "all ok" } }
        }
    }
}

/// The findings of the domain's last `check`, worst first.
fn check_section(check: Option<&DomainCheck>) -> Markup {
    html! {
        section id="check" {
            h2 { "Last DNS check" }
            @match check {
                None => p class="empty" { "Not checked yet: " code { "dmarc-warden check" } " looks at what the domain publishes." },
                Some(c) => {
                    @let mut findings: Vec<_> = c.findings.iter().collect();
                    ({ findings.sort_by_key(|f| std::cmp::Reverse(f.severity)); "" })
                    p class="small" { "Checked " (when(c.checked_at.0)) "." }
                    table class="cards" {
                        thead { tr { th { "Severity" } th { "Check" } th { "Finding" } th { "Fix" } } }
                        tbody { @for f in findings { tr {
                            td data-label="Severity" { (severity_badge(f.severity)) }
                            td data-label="Check" { (f.check.as_str()) }
                            td data-label="Finding" { (f.message) }
                            td data-label="Fix" { (f.fix.as_deref().unwrap_or("")) }
                        } } }
                    }
                }
            }
        }
    }
}

fn cards(v: &DomainView) -> Markup {
    html! {
        div class="figures" {
            div { span class="figure" id="messages" { (thousands(v.messages)) } span { "messages" } }
            div { span class="figure" { (format!("{:.1}", v.pass_pct())) "%" } span { "pass DMARC" } }
            div { span class="figure" { (v.judged.senders.len()) } span { "senders" } }
            div { span class="figure" { (format!("{:.1}", v.legitimate_pass_pct)) "%" } span { "of legitimate mail passes or is forwarded" } }
        }
    }
}

/// The advice block: action, record to publish, blockers, notes.
fn advice(v: &DomainView) -> Markup {
    let a = &v.advice;
    html! {
        section class="advice" {
            h2 { "Advice: " (action_badge(a.action)) }
            p { "Published now: " code { (policy_text(v)) } ". Next: " strong { (next_text(v)) } "." }
            p { "Record to publish at " code { "_dmarc." (a.domain) } ":" }
            pre class="record" { (a.record) }
            p class="small" { "Evidence: " (a.evidence.days) " days, " (a.evidence.reporters) " reporters, " (thousands(a.evidence.messages)) " messages"
                @if let (Some(f), Some(t)) = (&a.evidence.from, &a.evidence.to) { " (" (f) " – " (t) ")" } "." }
            @if !a.blockers.is_empty() {
                h3 { "Blockers" }
                table class="cards" {
                    thead { tr { th { "Sender" } th class="num" { "Messages" } th { "Fix" } } }
                    tbody {
                        @for b in &a.blockers {
                            tr { td data-label="Sender" { (b.sender) } td class="num" data-label="Messages" { (thousands(b.messages)) } td data-label="Fix" { (b.reason) } }
                        }
                    }
                }
            }
            @if !a.notes.is_empty() {
                ul class="notes" { @for n in &a.notes { li { (n) } } }
            }
        }
    }
}

fn charts_block(v: &DomainView) -> Markup {
    html! {
        section class="charts" {
            h2 { "Daily messages by sender class" }
            (charts::legend())
            (charts::volume(&v.days, &format!("daily messages of {} by sender class", v.domain())))
            h2 { "DMARC pass rate" }
            (charts::pass_rate(&v.days, &format!("daily DMARC pass rate of {}", v.domain())))
        }
    }
}

fn senders(v: &DomainView, view: &View, links: bool) -> Markup {
    html! {
        section class="senders" {
            h2 { "Senders" }
            (charts::class_bar(&v.totals))
            (charts::legend())
            @for class in SenderClass::ALL {
                @let rows: Vec<_> = v.judged.senders.iter().filter(|s| s.summary.class == class).collect();
                @if !rows.is_empty() {
                    h3 { (charts::swatch(class.index())) " " (class.label()) " (" (rows.len()) ")" }
                    table class="cards senders" {
                        thead { tr { th { "Sender" } th class="num" { "Messages" } th class="num" { "Pass" } th class="num" { "IPs" } th { "Why, and what to fix" } } }
                        tbody {
                            @for s in rows {
                                @let s = &s.summary;
                                tr {
                                    td data-label="Sender" {
                                        @if links { a class="sender" href=(sender_href(&s.domain, &s.sender, view)) { (s.sender) } } @else { (s.sender) }
                                    }
                                    td class="num" data-label="Messages" { (thousands(s.messages)) }
                                    td class="num" data-label="Pass" { (format!("{:.1}", s.dmarc_pass_pct)) "%" }
                                    td class="num" data-label="IPs" { (s.source_ips) }
                                    td data-label="Why" { (s.reason) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub fn domain(
    store: &Store,
    config: &ServeConfig,
    view: &View,
    scope: &Scope,
) -> Result<Option<String>, StoreError> {
    let Some(v) = data::domains(store, scope, &config.judgement)?
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    let d = v.domain().to_owned();
    // Failure and TLS reports of the same window as the rest of the page.
    let listing = Filter {
        domain: Some(d.clone()),
        since: v.judged.window.0,
        until: v.judged.window.1,
        limit: Some(50),
    };
    let failures = store.failures(&listing, None)?;
    let check = store.last_checks(Some(&d))?.into_iter().next();
    let tls = store.tls(&Filter {
        limit: Some(100),
        ..listing
    })?;
    let path = format!("/domain/{}", esc(&d));
    Ok(Some(page(
        &d,
        html! { a href=(format!("/{}", view.query())) { "Domains" } " › " span { (d) } },
        html! {
            h1 { (d) }
            p class="sub" { "Published: " code { (policy_text(&v)) } " · latest report " (date_of(v.judged.last)) }
            (filter_form(&path, view, scope, false))
            p class="scope" { (scope_text(view, scope)) }
            (cards(&v))
            (charts_block(&v))
            (advice(&v))
            (senders(&v, view, true))
            (check_section(check.as_ref()))
            section {
                h2 { "Failure reports" }
                @if failures.is_empty() { p class="empty" { "None in this period." } } @else {
                    table class="cards" {
                        thead { tr { th { "Arrived" } th { "Type" } th { "Source IP" } th { "Failed" } th { "From" } th { "Subject" } th { "Reporter" } } }
                        tbody { @for f in &failures { tr {
                            td data-label="Arrived" class="when" { @if let Some(t) = f.arrival_date { (when(t.0)) } }
                            td data-label="Type" { (f.feedback_type) }
                            td data-label="Source IP" { (f.source_ip.as_deref().unwrap_or("")) }
                            td data-label="Failed" { (f.auth_failure.as_deref().unwrap_or("")) }
                            td data-label="From" { (f.original_from.as_deref().or(f.original_mail_from.as_deref()).unwrap_or("")) }
                            td data-label="Subject" { (f.original_subject.as_deref().unwrap_or("")) }
                            td data-label="Reporter" { (f.reporter.as_deref().unwrap_or("")) }
                        } } }
                    }
                    @if failures.len() == 50 { p class="small" { "The 50 most recent; " code { "dmarc-warden failures --domain " (d) } " lists all." } }
                }
            }
            section {
                h2 { "SMTP TLS reports" }
                @if tls.is_empty() { p class="empty" { "None in this period." } } @else {
                    table class="cards" {
                        thead { tr { th { "MX hosts" } th { "Policy" } th class="num" { "Sessions OK" } th class="num" { "Failed" } th class="num" { "Failed %" } th { "Top failures" } th { "Reporters" } } }
                        tbody { @for t in &tls { tr {
                            td data-label="MX hosts" { (t.mx_hosts) }
                            td data-label="Policy" { (t.policy_types) }
                            td class="num" data-label="Sessions OK" { (thousands(t.successful_sessions)) }
                            td class="num" data-label="Failed" { (thousands(t.failed_sessions)) }
                            td class="num" data-label="Failed %" { (format!("{:.1}", t.failure_pct)) "%" }
                            td data-label="Top failures" { (t.top_failures) }
                            td data-label="Reporters" { (t.reporters) }
                        } } }
                    }
                }
            }
        },
    )))
}

fn join(map: &std::collections::BTreeMap<String, u64>) -> Markup {
    html! {
        @for (i, (k, n)) in map.iter().enumerate() {
            @if i > 0 { br; }
            (k) " (" (thousands(*n)) ")"
        }
    }
}

pub fn sender(
    store: &Store,
    config: &ServeConfig,
    view: &View,
    scope: &Scope,
    name: &str,
) -> Result<Option<String>, StoreError> {
    // Judged as the domain's page judges it (from the rollups where they answer); the sender's
    // IPs with their messages are read from the records of its keys alone (`data::sources`).
    let Some(v) = data::domains(store, scope, &config.judgement)?
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    let Some(sender) = v.judged.senders.iter().find(|s| s.summary.sender == name) else {
        return Ok(None);
    };
    let s = &sender.summary;
    let (sources, all) = data::sources(store, &v, sender)?;
    let d = v.domain();
    let path = format!("/domain/{}/sender/{}", esc(d), esc(name));
    let c = s.class.index();
    Ok(Some(page(
        name,
        html! {
            a href=(format!("/{}", view.query())) { "Domains" } " › "
            a href=(domain_href(d, view)) { (d) } " › " span { (name) }
        },
        html! {
            h1 { (name) }
            p class="sub" { "Sending as " a href=(domain_href(d, view)) { (d) } " · " (charts::swatch(c)) " " strong class="class" { (s.class.label()) } }
            (filter_form(&path, view, scope, false))
            p class="scope" { (scope_text(view, scope)) }
            div class="figures" {
                div { span class="figure" id="messages" { (thousands(s.messages)) } span { "messages" } }
                div { span class="figure" { (format!("{:.1}", s.dmarc_pass_pct)) "%" } span { "pass DMARC" } }
                div { span class="figure" { (thousands(s.dkim_aligned)) } span { "aligned DKIM" } }
                div { span class="figure" { (thousands(s.spf_aligned)) } span { "aligned SPF" } }
            }
            section class="fix" {
                h2 { "Why, and the fix" }
                p { (s.reason) }
                p class="small" { "Reported by " (s.reporters) "." }
            }
            section {
                h2 { "Source IPs (" (all) ")" }
                table class="cards" id="sources" {
                    thead { tr { th { "IP" } th { "Reverse DNS" } th class="num" { "Messages" } th class="num" { "Pass" } th { "DKIM" } th { "SPF" } th { "Disposition" } th { "Reporters" } } }
                    tbody { @for x in &sources { tr {
                        td data-label="IP" { code { (x.ip) } }
                        td data-label="Reverse DNS" { (x.name.as_deref().unwrap_or("–")) }
                        td class="num" data-label="Messages" { (thousands(x.messages)) }
                        td class="num" data-label="Pass" { (format!("{:.1}", crate::analyse::percent(x.pass, x.messages))) "%" }
                        td data-label="DKIM" { (join(&x.dkim)) }
                        td data-label="SPF" { (join(&x.spf)) }
                        td data-label="Disposition" { (join(&x.dispositions)) }
                        td data-label="Reporters" { (x.reporters.iter().cloned().collect::<Vec<_>>().join(", ")) }
                    } } }
                }
                @if all > sources.len() { p class="small" { "The " (sources.len()) " most active of " (all) "." } }
                p class="small" { "Reverse DNS names come from the cache that " code { "dmarc-warden senders --resolve" } " fills; the dashboard looks nothing up." }
            }
        },
    )))
}

/// The one-file report: inline style, inline SVG, no script and nothing loaded from elsewhere.
pub fn report(views: &[DomainView], scope: &str, generated: &str) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "DMARC report · dmarc-warden" }
                style { (PreEscaped(STYLE)) }
            }
            body class="report" {
                (charts::defs())
                main {
                    h1 { "DMARC report" }
                    p class="scope" { (scope) " · generated " (generated) " by dmarc-warden" }
                    @if views.is_empty() { p class="empty" { "Nothing stored matches." } }
                    table class="cards" {
                        thead { tr { th { "Domain" } th class="num" { "Messages" } th class="num" { "DMARC pass" } th { "Policy" } th { "Advice" } } }
                        tbody { @for v in views { tr {
                            td data-label="Domain" { a href=(format!("#d-{}", esc(v.domain()))) { (v.domain()) } }
                            td class="num" data-label="Messages" { (thousands(v.messages)) }
                            td class="num" data-label="DMARC pass" { (format!("{:.1}", v.pass_pct())) "%" }
                            td data-label="Policy" { code { (policy_text(v)) } }
                            td data-label="Advice" { (action_badge(v.advice.action)) }
                        } } }
                    }
                    @for v in views {
                        article class="domain" id=(format!("d-{}", esc(v.domain()))) {
                            h2 class="domain-title" { (v.domain()) }
                            (cards(v))
                            (charts_block(v))
                            (advice(v))
                            (senders(v, &View::default(), false))
                        }
                    }
                }
            }
        }
    }
    .into_string()
}
