//! Judging each policy domain over a window of its stored reports: its latest published policy,
//! its evidence (read through `store`, with per-day counts for the charts), its senders
//! (`analyse::senders`, with reverse DNS names from the cache or `fetch::rdns`), where its policy
//! starts (the record in DNS, the last stored `check`, or the reports) and the advice. The one
//! place that joins `store` and `analyse`, and the one loop over domains: `senders`, `advise`,
//! `notify`, `digest`, `check`'s hints and the web outputs all go through it, so every output
//! shows the same judgement.

use crate::analyse::check::StartingPoint;
use crate::analyse::{self, Advice, Names, Sender, window_start};
use crate::model::{self, DayCount, Evidence, PolicyPublished};
use crate::store::{Detail, Store, StoreError};
use crate::{fetch, parse};

/// What `senders` and `advise` know beyond the reports, from the config file
/// ([`crate::config::judgement`]).
#[derive(Debug, Clone, Default)]
pub struct Judgement {
    pub knowledge: analyse::Knowledge,
    pub thresholds: analyse::Thresholds,
    /// Per domain: rua / ruf as published.
    pub published: std::collections::BTreeMap<String, analyse::Published>,
    /// Per `[[domain]]`: its DKIM selectors (possibly none), for `check`.
    pub selectors: std::collections::BTreeMap<String, Vec<String>>,
}

/// Which reports a judgement looks at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope {
    /// Only this policy domain.
    pub domain: Option<String>,
    /// Days back from each domain's latest report ([`window_start`]); `None` for all. Ignored when
    /// `since` is set.
    pub days: Option<u32>,
    /// Reports ending at or after this time.
    pub since: Option<i64>,
    /// Reports ending before this time.
    pub until: Option<i64>,
    /// What the evidence carries besides its sums: each row's days of begin (the advice's
    /// evidence window; the default), also its messages per day ([`Judged::daily`]: the web's
    /// charts), or neither (`senders`, which gives no advice).
    pub detail: Detail,
    /// Evidence per source IP (from the records), for those who need each IP's own messages;
    /// otherwise rows may be summed over IPs (`Evidence::ips`, from the rollups).
    pub per_ip: bool,
    /// Only the domains a dashboard user may see; the default sees all.
    pub visible: crate::access::Visible,
}

impl Scope {
    /// The domains this scope covers, with the policy and end of each one's latest report: those
    /// reported, less any a dashboard user may not see.
    fn domains(&self, store: &Store) -> Result<Vec<(PolicyPublished, Option<i64>)>, StoreError> {
        let mut all = store.latest_policies(self.domain.as_deref())?;
        all.retain(|(p, _)| self.visible.allows(&p.domain));
        Ok(all)
    }

    /// What `advise` judges without `--days`: each domain's advice window (`[advice]
    /// window_days` back from its latest report).
    pub fn advice_window(judgement: &Judgement) -> Scope {
        Scope {
            days: Some(judgement.thresholds.window_days),
            ..Scope::default()
        }
    }

    /// The reports this scope covers for a domain whose latest report ended at `last`:
    /// `(since, until)`, `until` excluded.
    pub fn window(&self, last: Option<i64>) -> (Option<i64>, Option<i64>) {
        (
            self.since.or_else(|| window_start(last, self.days)),
            self.until,
        )
    }
}

/// One domain's reports in a window: what [`each_reported`] hands on.
#[derive(Debug)]
pub struct Reported {
    /// The policy of its latest report.
    pub policy: PolicyPublished,
    /// The end of its latest report.
    pub last: Option<i64>,
    /// The reports covered: `(since, until)`, `until` excluded.
    pub window: (Option<i64>, Option<i64>),
    pub evidence: Vec<Evidence>,
    /// Per day, messages of each evidence row (only with [`Detail::Daily`]).
    pub daily: Vec<DayCount>,
    /// What the evidence was read with.
    detail: Detail,
}

/// One domain, judged.
#[derive(Debug)]
pub struct Judged {
    /// The policy of its latest report.
    pub policy: PolicyPublished,
    /// The end of its latest report.
    pub last: Option<i64>,
    /// The reports judged: `(since, until)`, `until` excluded.
    pub window: (Option<i64>, Option<i64>),
    pub evidence: Vec<Evidence>,
    /// Per day, messages of each evidence row (only with [`Detail::Daily`]).
    pub daily: Vec<DayCount>,
    /// The reverse DNS names the senders were identified by.
    pub names: Names,
    pub senders: Vec<Sender>,
    /// Where its policy starts, as `advise --offline` takes it: the record the last `check`
    /// stored, else the reports' policy.
    pub start: StartingPoint,
}

impl Judged {
    /// The advice over this judgement's window, as `advise --offline` gives it for that window.
    pub fn advice(&self, judgement: &Judgement) -> Advice {
        advise_domain(
            &self.start,
            &self.policy,
            &self.evidence,
            &self.senders,
            judgement,
        )
    }

    /// Whether this judgement covers the advice window (what `advise` judges by default).
    pub fn covers_advice_window(&self, judgement: &Judgement) -> bool {
        self.window == Scope::advice_window(judgement).window(self.last)
    }
}

/// Domain by domain (so memory holds one domain's evidence at a time): calls `visit` with each
/// domain's latest policy and evidence in `scope`, per source IP, stopping at its first error.
/// `check` takes only this (its hints need no senders, but IPs).
pub fn each_reported<E: From<StoreError>>(
    store: &Store,
    scope: &Scope,
    visit: impl FnMut(Reported) -> Result<(), E>,
) -> Result<(), E> {
    // Per source IP: `check`'s hints list the IPs.
    let scope = &Scope {
        per_ip: true,
        ..scope.clone()
    };
    each_read(store, scope, visit)
}

/// [`each_reported`] as `scope` asks, rows summed over source IPs unless [`Scope::per_ip`]: the
/// loop under [`each_domain`].
fn each_read<E: From<StoreError>>(
    store: &Store,
    scope: &Scope,
    mut visit: impl FnMut(Reported) -> Result<(), E>,
) -> Result<(), E> {
    for (policy, last) in scope.domains(store)? {
        visit(reported(store, policy, last, scope)?)?;
    }
    Ok(())
}

fn reported(
    store: &Store,
    policy: PolicyPublished,
    last: Option<i64>,
    scope: &Scope,
) -> Result<Reported, StoreError> {
    let window = scope.window(last);
    let read = if scope.per_ip {
        Store::evidence_per_ip
    } else {
        Store::evidence_in
    };
    let (evidence, daily) = read(
        store,
        Some(&policy.domain),
        window.0,
        window.1,
        scope.detail,
    )?;
    Ok(Reported {
        policy,
        last,
        window,
        evidence,
        daily,
        detail: scope.detail,
    })
}

/// Gives each row of `evidence` summed over source IPs (the rollups') the IP it is identified by
/// ([`analyse::stand_in`]); `false`, changing nothing, when some row's IPs would part it between
/// senders (its evidence is then to be read per IP).
fn stand_ins(evidence: &mut [Evidence], knowledge: &analyse::Knowledge, names: &Names) -> bool {
    let mut found = Vec::with_capacity(evidence.len());
    for e in evidence.iter() {
        match analyse::stand_in(e, knowledge, names) {
            Ok(ip) => found.push(ip),
            Err(analyse::Split) => return false,
        }
    }
    for (e, ip) in evidence.iter_mut().zip(found) {
        if let Some(ip) = ip {
            e.key.source_ip = ip.into();
        }
    }
    true
}

/// Domain by domain: calls `visit` with the domain judged, stopping at its first error. `names`
/// gives the reverse DNS names to identify senders by (see [`analyse::Names`] and [`names_by`]).
pub fn each_domain<E: From<StoreError>>(
    store: &Store,
    scope: &Scope,
    judgement: &Judgement,
    mut names: impl FnMut(&[Evidence]) -> Result<Names, StoreError>,
    mut visit: impl FnMut(Judged) -> Result<(), E>,
) -> Result<(), E> {
    each_read(store, scope, |r| {
        visit(judge(store, r, judgement, &mut names)?)
    })
}

fn judge(
    store: &Store,
    mut r: Reported,
    judgement: &Judgement,
    names: &mut impl FnMut(&[Evidence]) -> Result<Names, StoreError>,
) -> Result<Judged, StoreError> {
    let names = names(&r.evidence)?;
    if !stand_ins(&mut r.evidence, &judgement.knowledge, &names) {
        (r.evidence, r.daily) =
            store.evidence_per_ip(Some(&r.policy.domain), r.window.0, r.window.1, r.detail)?;
    }
    let senders = analyse::senders(
        &r.evidence,
        &judgement.knowledge,
        &judgement.thresholds,
        &names,
    );
    let start = starting_point(store, &r.policy, None)?;
    Ok(Judged {
        policy: r.policy,
        last: r.last,
        window: r.window,
        evidence: r.evidence,
        daily: r.daily,
        names,
        senders,
        start,
    })
}

/// [`each_domain`] without reverse DNS names, on a few threads, each with its own read-only
/// connection (domains do not depend on each other): `each` maps a domain judged (and the
/// connection its thread reads) to what the caller keeps. The results come by domain.
pub fn each_domain_in_parallel<T: Send>(
    store: &Store,
    scope: &Scope,
    judgement: &Judgement,
    each: impl Fn(&Store, Judged) -> Result<Option<T>, StoreError> + Sync,
) -> Result<Vec<T>, StoreError> {
    let domains = scope.domains(store)?;
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, 8)
        .min(domains.len().max(1));
    // Connections are not shared between threads: the others get their own.
    let extra: Vec<Store> = (1..threads)
        .map(|_| store.reopen_read_only())
        .collect::<Result<_, _>>()?;
    // Each thread takes the next domain when it is done with one: domains differ in size by
    // orders of magnitude, and dealt in turns a thread could be left with the large ones.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = |store: &Store| -> Result<Vec<(usize, T)>, StoreError> {
        let mut out = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some((policy, last)) = domains.get(i) else {
                break;
            };
            let r = reported(store, policy.clone(), *last, scope)?;
            let judged = judge(store, r, judgement, &mut |_| Ok(Names::new()))?;
            out.extend(each(store, judged)?.map(|v| (i, v)));
        }
        Ok(out)
    };
    let results: Vec<Result<Vec<(usize, T)>, StoreError>> = std::thread::scope(|s| {
        let workers: Vec<_> = extra
            .into_iter()
            .map(|own| {
                let work = &work;
                s.spawn(move || work(&own))
            })
            .collect();
        let mut results = vec![work(store)];
        results.extend(
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p))),
        );
        results
    });
    let mut out = Vec::new();
    for r in results {
        out.extend(r?);
    }
    out.sort_by_key(|(i, _)| *i);
    Ok(out.into_iter().map(|(_, v)| v).collect())
}

/// Every domain in `scope` judged, each mapped by `each` to what the caller keeps, by domain: with
/// `resolve` (`--resolve`: reverse DNS names looked up and cached, a write) one domain after
/// another through [`each_domain`] and [`names_by`], shortfalls handed to `tell`; without, on a
/// few threads through [`each_domain_in_parallel`] (a year of a large estate is mostly decoding
/// rollups and grouping senders, which the domains do not share).
pub fn each_domain_collected<T: Send, E: From<StoreError> + Send>(
    store: &Store,
    scope: &Scope,
    judgement: &Judgement,
    resolve: bool,
    tell: impl FnMut(&Unanswered),
    each: impl Fn(&Store, Judged) -> Result<T, E> + Sync,
) -> Result<Vec<T>, E> {
    if !resolve {
        // The parallel loop's errors are the store's: a caller's own error is carried out beside.
        let failed = std::sync::Mutex::new(None);
        let out = each_domain_in_parallel(store, scope, judgement, |store, judged| {
            match each(store, judged) {
                Ok(v) => Ok(Some(v)),
                Err(e) => {
                    if let Ok(mut f) = failed.lock() {
                        f.get_or_insert(e);
                    }
                    Ok(None)
                }
            }
        });
        if let Some(e) = failed.into_inner().ok().flatten() {
            return Err(e);
        }
        return Ok(out?);
    }
    let mut out = Vec::new();
    each_domain(
        store,
        scope,
        judgement,
        names_by(store, true, tell),
        |judged| {
            out.push(each(store, judged)?);
            Ok::<_, E>(())
        },
    )?;
    Ok(out)
}

/// One domain's mail in a window, judged.
#[derive(Debug, Default)]
pub struct Window {
    pub evidence: Vec<Evidence>,
    /// The reverse DNS names the senders were identified by.
    pub names: Names,
    pub senders: Vec<Sender>,
}

/// One domain's evidence from the reports ending within `(since, until)` (`until` excluded; `None`:
/// unbounded) and its senders, judged as `senders` and `advise` judge them. For `notify` and
/// `digest`, which look at other windows beside the advice window.
pub fn judge_domain(
    store: &Store,
    domain: &str,
    (since, until): (Option<i64>, Option<i64>),
    j: &Judgement,
    names: &mut impl FnMut(&[Evidence]) -> Result<Names, StoreError>,
) -> Result<Window, StoreError> {
    let mut evidence = store.evidence_between(Some(domain), since, until)?;
    let names = names(&evidence)?;
    if !stand_ins(&mut evidence, &j.knowledge, &names) {
        evidence = store
            .evidence_per_ip(Some(domain), since, until, Detail::Days)?
            .0;
    }
    let senders = analyse::senders(&evidence, &j.knowledge, &j.thresholds, &names);
    Ok(Window {
        evidence,
        names,
        senders,
    })
}

/// The advice `advise --offline` (without `--resolve`) gives for `judged`'s domain with the same
/// settings: over the advice window, whatever window `judged` covers. For the web, whose pages may
/// show another period.
pub fn offline_advice(store: &Store, judged: &Judged, j: &Judgement) -> Result<Advice, StoreError> {
    if judged.covers_advice_window(j) && judged.names.is_empty() {
        return Ok(judged.advice(j));
    }
    let window = Scope::advice_window(j).window(judged.last);
    let w = judge_domain(store, &judged.policy.domain, window, j, &mut |_| {
        Ok(Names::new())
    })?;
    Ok(advise_domain(
        &judged.start,
        &judged.policy,
        &w.evidence,
        &w.senders,
        j,
    ))
}

/// The advice `advise` gives for one domain, from where its policy starts, its latest reported
/// policy, evidence and senders.
pub fn advise_domain(
    start: &analyse::check::StartingPoint,
    policy: &model::PolicyPublished,
    evidence: &[model::Evidence],
    senders: &[analyse::Sender],
    j: &Judgement,
) -> analyse::Advice {
    let published = j.published.get(&policy.domain).cloned().unwrap_or_default();
    analyse::advise(start, policy, senders, evidence, &published, &j.thresholds)
}

/// Where `advise` starts for one domain: the DMARC record DNS publishes now (when `dns` is given
/// and answers), else the one the last `check` stored, else the policy the latest reports saw.
pub fn starting_point(
    store: &Store,
    policy: &model::PolicyPublished,
    dns: Option<&fetch::probe::dns::Dns>,
) -> Result<StartingPoint, StoreError> {
    use analyse::check::{DmarcLookup, starting_point};
    let live = dns.map(|dns| fetch::probe::lookup_dmarc(dns, &policy.domain));
    if let Some(lookup) = &live
        && !matches!(lookup, DmarcLookup::Failed(_))
    {
        return Ok(starting_point(Some(lookup), policy));
    }
    let stored = store.last_checks(Some(&policy.domain))?.into_iter().next();
    let record = stored
        .as_ref()
        .and_then(|c| match c.published.dmarc.as_slice() {
            [one] => parse::records::DmarcRecord::parse(one).ok(),
            _ => None,
        });
    match (record, stored) {
        (Some(record), Some(check)) => {
            let mut start = starting_point(Some(&DmarcLookup::Own(record)), policy);
            let why = match &live {
                Some(DmarcLookup::Failed(e)) => format!("DNS could not be read now ({e}); "),
                _ => String::new(),
            };
            start.notes.insert(
                0,
                format!(
                    "{why}the current policy is the record `check` read on {}",
                    check.checked_at
                ),
            );
            Ok(start)
        }
        _ => Ok(starting_point(live.as_ref(), policy)),
    }
}

/// Reverse DNS lookups that were not answered in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unanswered {
    pub unanswered: usize,
    pub asked: usize,
    /// How long they were given.
    pub deadline: std::time::Duration,
}

/// The reverse DNS names of the sources of `evidence` that authenticate as no one
/// ([`analyse::unauthenticated_sources`]): from the cache where fresh (30 days), else looked up
/// (20 s in all) and written to the cache. Lookups left unanswered are tried again next time; how
/// many, is returned beside the names for the caller to tell.
pub fn resolve_names(
    store: &Store,
    evidence: &[model::Evidence],
) -> Result<(Names, Option<Unanswered>), StoreError> {
    const FRESH: i64 = 30 * 86_400;
    const DEADLINE: std::time::Duration = std::time::Duration::from_secs(20);
    let ips = analyse::unauthenticated_sources(evidence);
    let now = crate::time::now();
    let mut names = store.rdns(&ips, now - FRESH)?;
    let missing: Vec<String> = ips
        .into_iter()
        .filter(|ip| !names.contains_key(ip))
        .collect();
    let mut unanswered = None;
    if !missing.is_empty() {
        let answers = fetch::rdns::resolve(&missing, DEADLINE);
        if answers.len() < missing.len() {
            unanswered = Some(Unanswered {
                unanswered: missing.len() - answers.len(),
                asked: missing.len(),
                deadline: DEADLINE,
            });
        }
        store.write(|tx| tx.set_rdns(&answers, now))?;
        names.extend(answers);
    }
    Ok((names, unanswered))
}

/// The `names` argument of [`each_domain`] and [`judge_domain`]: with `resolve` (`--resolve`),
/// [`resolve_names`], each shortfall handed to `tell`; without, no names.
pub fn names_by<'a>(
    store: &'a Store,
    resolve: bool,
    mut tell: impl FnMut(&Unanswered) + 'a,
) -> impl FnMut(&[Evidence]) -> Result<Names, StoreError> + 'a {
    move |evidence| {
        if !resolve {
            return Ok(Names::new());
        }
        let (names, unanswered) = resolve_names(store, evidence)?;
        if let Some(u) = &unanswered {
            tell(u);
        }
        Ok(names)
    }
}
