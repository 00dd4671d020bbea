//! `check`: joins the store (which domains, and the [`Hints`] their reports give), the probes of
//! [`crate::fetch::probe`] (run for several domains at once), the judge of [`crate::analyse::check::judge`],
//! and the store again (each result is kept with its time).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use crate::analyse::check::{DomainCheck, Hints, LegitimateSource, Published};
use crate::fetch::probe::{ProbeError, Prober, Settings};
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
    let now = super::unix_now();
    let policies = store.latest_policies(None)?;
    let domains: Vec<String> = if options.domains.is_empty() {
        let mut all: BTreeSet<String> = policies.iter().map(|(p, _)| p.domain.clone()).collect();
        all.extend(options.configured.keys().cloned());
        all.into_iter().collect()
    } else {
        options.domains.clone()
    };
    let mut work = Vec::new();
    for domain in &domains {
        let hints = hints(store, domain, &policies, options.window_days, now)?;
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
                        published: Published::from_facts(&facts),
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

/// What the stored reports say about `domain`.
fn hints(
    store: &Store,
    domain: &str,
    policies: &[(crate::model::PolicyPublished, Option<i64>)],
    window_days: u32,
    now: i64,
) -> Result<Hints, StoreError> {
    let reported = policies.iter().find(|(p, _)| p.domain == domain).cloned();
    let since = reported
        .as_ref()
        .and_then(|(_, end)| *end)
        .map(|end| end - i64::from(window_days) * 86_400);
    let evidence = if reported.is_some() {
        store.evidence(Some(domain), since)?
    } else {
        Vec::new()
    };
    // A source whose mail passes DKIM aligned with the domain is one of the domain's own.
    let mut legitimate: BTreeMap<String, LegitimateSource> = BTreeMap::new();
    let mut messages = 0u64;
    for e in &evidence {
        messages = messages.saturating_add(e.messages);
        if e.key.dkim_aligned && !e.key.forwarded {
            let s = legitimate
                .entry(e.key.source_ip.clone())
                .or_insert_with(|| LegitimateSource {
                    ip: e.key.source_ip.clone(),
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
        reported_policy: reported,
        selectors: store.dkim_selectors(domain)?,
        legitimate,
        messages,
        tls_reports,
        tls_last,
        now,
    })
}
