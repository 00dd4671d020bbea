//! Judging each policy domain over a window of its stored reports: its latest published policy,
//! its evidence (read through `store`, with per-day counts for the charts), its senders
//! (`analyse::senders`, with reverse DNS names from the cache or `fetch::rdns`), where its policy
//! starts (the record in DNS, the last stored `check`, or the reports) and the advice. The one
//! place that joins `store` and `analyse`, shared by `senders`, `advise`, `notify`, `digest` and
//! the web outputs, so every output shows the same judgement.

use crate::analyse::check::StartingPoint;
use crate::analyse::{self, Advice, Names, Sender};
use crate::config::{self, Judgement};
use crate::model::{self, DayCount, Evidence, PolicyPublished};
use crate::store::{Store, StoreError};
use crate::{fetch, parse, pipeline};

/// Which reports a judgement looks at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope {
    /// Only this policy domain.
    pub domain: Option<String>,
    /// Days back from each domain's latest report; `None` for all. Ignored when `since` is set.
    pub days: Option<u32>,
    /// Reports ending at or after this time.
    pub since: Option<i64>,
    /// Reports beginning before this time.
    pub until: Option<i64>,
    /// Also count each evidence row's messages per day ([`Judged::daily`]).
    pub by_day: bool,
    /// Only the domains a dashboard user may see; the default sees all.
    pub visible: crate::access::Visible,
}

/// One domain, judged.
#[derive(Debug)]
pub struct Judged {
    /// The policy of its latest report.
    pub policy: PolicyPublished,
    /// The end of its latest report.
    pub last: Option<i64>,
    pub evidence: Vec<Evidence>,
    /// Per day, messages of each evidence row (only with [`Scope::by_day`]).
    pub daily: Vec<DayCount>,
    pub senders: Vec<Sender>,
    /// Where its policy starts, as `advise --offline` takes it: the record the last `check`
    /// stored, else the reports' policy.
    pub start: StartingPoint,
}

impl Judged {
    /// The advice for this domain, as `advise --offline` gives it.
    pub fn advice(&self, judgement: &Judgement) -> Advice {
        advise_domain(
            &self.start,
            &self.policy,
            &self.evidence,
            &self.senders,
            judgement,
        )
    }
}

/// Domain by domain (so memory holds one domain's evidence at a time): calls `visit` with the
/// domain judged, stopping at its first error. `names` gives the reverse DNS names to identify
/// senders by (see [`analyse::Names`] and [`names`]).
/// Used by `senders`, `advise` and the web outputs.
pub fn each_domain<E: From<StoreError>>(
    store: &Store,
    scope: &Scope,
    judgement: &Judgement,
    mut names: impl FnMut(&[Evidence]) -> Result<Names, E>,
    mut visit: impl FnMut(Judged) -> Result<(), E>,
) -> Result<(), E> {
    for (policy, last) in store.latest_policies(scope.domain.as_deref())? {
        if !scope.visible.allows(&policy.domain) {
            continue;
        }
        let since = scope.since.or_else(|| window_start(last, scope.days));
        let (evidence, daily) =
            store.evidence_in(Some(&policy.domain), since, scope.until, scope.by_day)?;
        let names = names(&evidence)?;
        let senders = analyse::senders(
            &evidence,
            &judgement.knowledge,
            &judgement.thresholds,
            &names,
        );
        let start = starting_point(store, &policy, None)?;
        visit(Judged {
            policy,
            last,
            evidence,
            daily,
            senders,
            start,
        })?;
    }
    Ok(())
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
/// `digest`, which compare a window with the one before.
pub fn judge_domain(
    store: &Store,
    domain: &str,
    (since, until): (Option<i64>, Option<i64>),
    j: &config::Judgement,
    resolve: bool,
) -> anyhow::Result<Window> {
    let evidence = store.evidence_between(Some(domain), since, until)?;
    let names = names(store, &evidence, resolve)?;
    let senders = analyse::senders(&evidence, &j.knowledge, &j.thresholds, &names);
    Ok(Window {
        evidence,
        names,
        senders,
    })
}

/// The advice `advise` gives for one domain, from where its policy starts, its latest reported
/// policy, evidence and senders.
pub fn advise_domain(
    start: &analyse::check::StartingPoint,
    policy: &model::PolicyPublished,
    evidence: &[model::Evidence],
    senders: &[analyse::Sender],
    j: &config::Judgement,
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

/// With `--resolve`: reverse DNS names of the evidence's sources that pass neither SPF nor DKIM,
/// from the cache where fresh, looked up (and cached) otherwise.
pub fn names(
    store: &Store,
    evidence: &[model::Evidence],
    resolve: bool,
) -> anyhow::Result<analyse::Names> {
    const FRESH: i64 = 30 * 86_400;
    const DEADLINE: std::time::Duration = std::time::Duration::from_secs(20);
    if !resolve {
        return Ok(analyse::Names::new());
    }
    let mut ips: Vec<String> = evidence
        .iter()
        .filter(|e| e.key.dkim_result != "pass" && e.key.spf_result != "pass")
        .map(|e| e.key.source_ip.clone())
        .collect();
    ips.sort_unstable();
    ips.dedup();
    let now = pipeline::unix_now();
    let mut names = store.rdns(&ips, now - FRESH)?;
    let missing: Vec<String> = ips
        .into_iter()
        .filter(|ip| !names.contains_key(ip))
        .collect();
    if !missing.is_empty() {
        let answers = fetch::rdns::resolve(&missing, DEADLINE);
        if answers.len() < missing.len() {
            eprintln!(
                "dmarc-warden: reverse DNS: {} of {} lookups unanswered after {} s; they are tried again next time",
                missing.len() - answers.len(),
                missing.len(),
                DEADLINE.as_secs()
            );
        }
        store.set_rdns(&answers, now)?;
        names.extend(answers);
    }
    Ok(names)
}

/// The start of a window of `days` days ending at `last` (the latest report's end), for reports
/// ending at or after it: exactly `days` daily reports, not the one that ended `days` days before
/// `last`. `None` for all.
pub fn window_start(last: Option<i64>, days: Option<u32>) -> Option<i64> {
    Some(last? - i64::from(days?) * 86_400 + 1)
}
