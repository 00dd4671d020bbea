//! `check`: joins the store (which domains, and the [`Hints`] their reports give over the evidence
//! window, read through [`crate::judge::each_reported`]), the probes of
//! [`crate::fetch::probe`] (run for several domains at once), the judge of [`crate::analyse::check::judge`],
//! and the store again (each result is kept with its time).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use crate::analyse::check::{DomainCheck, Hints, LegitimateSource, PublishedRecords};
use crate::fetch::probe::{ProbeError, Prober, Settings};
use crate::judge::{Reported, Scope};
use crate::model::Timestamp;
use crate::store::{Store, StoreError};

/// Domains probed at once.
const PARALLEL: usize = 8;

/// Validated `check` settings.
#[derive(Debug)]
pub struct CheckOptions {
    /// Domains named on the command line; empty: every domain known.
    pub domains: Vec<String>,
    pub settings: Settings,
    /// `[[domain]]` tables of the config: their names, and their DKIM selectors.
    pub configured: BTreeMap<String, Vec<String>>,
    /// Days of reports (back from the domain's latest) whose sources are tested against SPF.
    pub window_days: u32,
    /// Read the last stored checks instead of checking.
    pub last: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Probe(#[from] ProbeError),
}

/// Checks every domain asked for, keeps the results, and returns them by domain. With `last`, the
/// last stored check of each instead (no network).
pub fn run(store: &Store, options: &CheckOptions) -> Result<Vec<DomainCheck>, CheckError> {
    if options.last {
        let mut checks = store.last_checks(None)?;
        if !options.domains.is_empty() {
            checks.retain(|c| options.domains.contains(&c.domain));
        }
        return Ok(checks);
    }
    let now = crate::time::now();
    // What the reports say, domain by domain over the evidence window (as `advise` reads them):
    // every reported domain, or those asked for. Only the hints are kept, not the evidence.
    let mut reported: BTreeMap<String, Hints> = BTreeMap::new();
    let scopes: Vec<Scope> = if options.domains.is_empty() {
        vec![Scope::default()]
    } else {
        options
            .domains
            .iter()
            .map(|d| Scope {
                domain: Some(d.clone()),
                ..Scope::default()
            })
            .collect()
    };
    for scope in scopes {
        let scope = Scope {
            days: Some(options.window_days),
            ..scope
        };
        crate::judge::each_reported(store, &scope, |r| {
            let domain = r.policy.domain.clone();
            let hints = hints(store, &domain, Some(r), now)?;
            reported.insert(domain, hints);
            Ok::<_, StoreError>(())
        })?;
    }
    let domains: Vec<String> = if options.domains.is_empty() {
        let mut all: BTreeSet<String> = reported.keys().cloned().collect();
        all.extend(options.configured.keys().cloned());
        all.into_iter().collect()
    } else {
        options.domains.clone()
    };
    let mut work = Vec::new();
    for domain in &domains {
        let hints = match reported.remove(domain) {
            Some(hints) => hints,
            None => hints(store, domain, None, now)?,
        };
        let mut selectors: BTreeSet<String> =
            hints.selectors.iter().map(|s| s.selector.clone()).collect();
        if let Some(configured) = options.configured.get(domain) {
            selectors.extend(configured.iter().cloned());
        }
        work.push((
            domain.clone(),
            hints,
            selectors.into_iter().collect::<Vec<_>>(),
        ));
    }
    let prober = Prober::new(options.settings.clone())?;
    let queue = Mutex::new(work.into_iter().enumerate().collect::<Vec<_>>());
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL.min(domains.len()) {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.pop());
                    let Some((i, (domain, hints, selectors))) = next else {
                        break;
                    };
                    let facts = prober.gather(&domain, &selectors);
                    let findings = crate::analyse::check::judge::judge(&facts, &hints);
                    let check = DomainCheck {
                        domain,
                        checked_at: Timestamp(now),
                        published: PublishedRecords::from_facts(&facts),
                        findings,
                    };
                    if let Ok(mut r) = results.lock() {
                        r.push((i, check));
                    }
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(i, _)| *i);
    let checks: Vec<DomainCheck> = results.into_iter().map(|(_, c)| c).collect();
    store.write(|tx| checks.iter().try_for_each(|check| tx.save_check(check)))?;
    Ok(checks)
}

/// What the stored reports say about `domain`: `reported` is its policy and evidence over the
/// window, `None` when no report names it.
fn hints(
    store: &Store,
    domain: &str,
    reported: Option<Reported>,
    now: i64,
) -> Result<Hints, StoreError> {
    let (reported_policy, evidence) = match reported {
        Some(r) => (Some((r.policy, r.last)), r.evidence),
        None => (None, Vec::new()),
    };
    // A source whose mail passes DKIM aligned with the domain is one of the domain's own.
    let mut legitimate: BTreeMap<String, LegitimateSource> = BTreeMap::new();
    let mut messages = 0u64;
    for e in &evidence {
        messages = messages.saturating_add(e.messages);
        if e.key.dkim_aligned && !e.key.forwarded {
            let s = legitimate
                .entry(e.key.source_ip.to_string())
                .or_insert_with(|| LegitimateSource {
                    ip: e.key.source_ip.to_string(),
                    sender: format!("DKIM d={}", e.key.dkim_domain),
                    messages: 0,
                });
            s.messages = s.messages.saturating_add(e.messages);
        }
    }
    let mut legitimate: Vec<LegitimateSource> = legitimate.into_values().collect();
    legitimate.sort_by(|a, b| b.messages.cmp(&a.messages).then(a.ip.cmp(&b.ip)));
    let (tls_reports, tls_last) = store.tls_report_count(domain)?;
    Ok(Hints {
        reported_policy,
        selectors: store.dkim_selectors(domain)?,
        legitimate,
        messages,
        tls_reports,
        tls_last,
        now,
    })
}
