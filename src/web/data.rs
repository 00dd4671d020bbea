//! What the pages show, gathered through `store` and judged through [`crate::judge`] (the same
//! functions as the CLI's `senders` and `advise`): per domain its advice (`advise --offline`'s),
//! senders and daily volume by class (`analyse`'s); per sender its source IPs. Nothing here judges:
//! it arranges what `judge` and `analyse` decided for the pages to draw.

use std::collections::{BTreeMap, BTreeSet};

use crate::analyse::{self, Advice};
use crate::judge::Judgement;
use crate::judge::{self, Judged, Scope};
use crate::model::{Evidence, EvidenceKey};
use crate::store::{Detail, Store, StoreError};

/// One day's (or bucket's) mail of a domain, by sender class ([`crate::model::SenderClass::ALL`]
/// order).
pub type Day = analyse::DayVolume;

/// Most days a chart draws one bar each for; longer spans are drawn in buckets of several days.
const MAX_BARS: i64 = 120;

/// One domain judged, with what its pages draw.
#[derive(Debug)]
pub struct DomainView {
    pub judged: Judged,
    /// What `advise --offline` says for the domain: over the advice window, whatever period the
    /// page shows.
    pub advice: Advice,
    /// The days of the period, in buckets of several days beyond [`MAX_BARS`].
    pub days: Vec<Day>,
    /// The pass rate's trend over the days ([`analyse::trend`]).
    pub trend: Option<f64>,
    /// Messages by class over the scope, in [`crate::model::SenderClass::ALL`] order.
    pub totals: [u64; 4],
    pub messages: u64,
    pub pass: u64,
    /// Share of legitimate mail passing DMARC or forwarded over the scope (%).
    pub legitimate_pass_pct: f64,
}

impl DomainView {
    pub fn domain(&self) -> &str {
        &self.judged.policy.domain
    }

    pub fn pass_pct(&self) -> f64 {
        analyse::percent(self.pass, self.messages)
    }
}

/// Every domain in `scope`, judged as the CLI judges it (no reverse DNS lookups: the web reads
/// only), on a few threads.
pub fn domains(
    store: &Store,
    scope: &Scope,
    judgement: &Judgement,
) -> Result<Vec<DomainView>, StoreError> {
    let scope = Scope {
        detail: Detail::Daily,
        ..scope.clone()
    };
    // A domain without reports in an asked-for range is not part of the view.
    let ranged = scope.since.is_some() || scope.until.is_some();
    judge::each_domain_in_parallel(store, &scope, judgement, |store, judged| {
        if ranged && judged.evidence.is_empty() {
            return Ok(None);
        }
        view(store, judged, judgement).map(Some)
    })
}

fn view(store: &Store, judged: Judged, judgement: &Judgement) -> Result<DomainView, StoreError> {
    let advice = judge::offline_advice(store, &judged, judgement)?;
    let mut totals = [0u64; 4];
    let mut pass = 0u64;
    for s in &judged.senders {
        totals[s.summary.class.index()] += s.summary.messages;
        pass += s.summary.dmarc_pass;
    }
    let daily = analyse::daily_volume(&judged.evidence, &judged.daily, &judged.senders);
    let trend = analyse::trend(&daily);
    let (_, legitimate_pass_pct) = analyse::legitimate_mail(&judged.senders);
    Ok(DomainView {
        days: fill(&daily),
        trend,
        judged,
        advice,
        messages: totals.iter().sum(),
        totals,
        pass,
        legitimate_pass_pct,
    })
}

/// Every day from the first to the last (days without reports empty), in buckets of several
/// days when there are more than [`MAX_BARS`].
fn fill(by_day: &[Day]) -> Vec<Day> {
    let (Some(first), Some(last)) = (by_day.first().map(|d| d.day), by_day.last().map(|d| d.day))
    else {
        return Vec::new();
    };
    let span = last - first + 1;
    let size = ((span + MAX_BARS - 1) / MAX_BARS).max(1);
    let mut out: Vec<Day> = (0..(span + size - 1) / size)
        .map(|i| Day {
            day: first + i * size,
            ..Day::default()
        })
        .collect();
    for d in by_day {
        if let Some(slot) = out.get_mut(((d.day - first) / size) as usize) {
            for c in 0..4 {
                slot.by_class[c] += d.by_class[c];
            }
            slot.pass += d.pass;
        }
    }
    out
}

/// One source IP of a sender.
#[derive(Debug, Default)]
pub struct Source {
    pub ip: String,
    /// Reverse DNS name, where cached by a `--resolve` run.
    pub name: Option<String>,
    pub messages: u64,
    pub pass: u64,
    /// `domain: result` of the deciding DKIM signature and SPF check, with messages.
    pub dkim: BTreeMap<String, u64>,
    pub spf: BTreeMap<String, u64>,
    pub dispositions: BTreeMap<String, u64>,
    pub reporters: BTreeSet<String>,
}

/// Most source IPs a sender page lists (the most active).
pub const MAX_SOURCES: usize = 500;

/// A sender's mail grouped by source IP, most messages first, at most [`MAX_SOURCES`]; and how
/// many there were in all.
pub fn sources(
    store: &Store,
    view: &DomainView,
    sender: &analyse::Sender,
) -> Result<(Vec<Source>, usize), StoreError> {
    let mut by_ip: BTreeMap<&str, Source> = BTreeMap::new();
    let rows: Vec<&Evidence> = sender
        .evidence
        .iter()
        .filter_map(|&i| view.judged.evidence.get(i))
        .collect();
    // Rows summed over source IPs (the rollups'): the same keys' sums per IP, from the rollups
    // (the records of a window shorter than a day).
    let (keys, per_ip);
    if rows.iter().any(|e| e.ips.is_some()) {
        let mut without_ip: Vec<EvidenceKey> = rows
            .iter()
            .map(|e| EvidenceKey {
                source_ip: Default::default(),
                ..e.key.clone()
            })
            .collect();
        without_ip.sort();
        without_ip.dedup();
        keys = without_ip;
        let (since, until) = view.judged.window;
        per_ip = store.evidence_of_keys(view.domain(), since, until, &keys)?;
        for e in &per_ip {
            if let Some(key) = keys.get(e.key) {
                let reporters = e.reporters.iter().map(String::as_str);
                add(&mut by_ip, &e.ip, key, e.messages, reporters);
            }
        }
    } else {
        for e in rows {
            add(
                &mut by_ip,
                &e.key.source_ip,
                &e.key,
                e.messages,
                e.reporters.iter(),
            );
        }
    }
    let mut out: Vec<Source> = by_ip.into_values().collect();
    out.sort_by(|a, b| b.messages.cmp(&a.messages).then_with(|| a.ip.cmp(&b.ip)));
    let all = out.len();
    out.truncate(MAX_SOURCES);
    let ips: Vec<String> = out.iter().map(|s| s.ip.clone()).collect();
    let cached = store.rdns(&ips, i64::MIN)?;
    for s in &mut out {
        s.name = cached.get(&s.ip).cloned().flatten();
    }
    Ok((out, all))
}

/// Adds `messages` from `ip` under `k` (reported by `reporters`) to the IP's row.
fn add<'a>(
    by_ip: &mut BTreeMap<&'a str, Source>,
    ip: &'a str,
    k: &EvidenceKey,
    messages: u64,
    reporters: impl Iterator<Item = &'a str>,
) {
    let s = by_ip.entry(ip).or_insert_with(|| Source {
        ip: ip.to_owned(),
        ..Source::default()
    });
    s.messages += messages;
    if k.dmarc_pass() {
        s.pass += messages;
    }
    let result = |domain: &str, result: &str| match (domain.is_empty(), result.is_empty()) {
        (true, true) => "none".to_owned(),
        (true, false) => result.to_owned(),
        (false, true) => format!("{domain}: none"),
        (false, false) => format!("{domain}: {result}"),
    };
    *s.dkim
        .entry(result(&k.dkim_domain, k.dkim_result.as_str()))
        .or_default() += messages;
    *s.spf
        .entry(result(&k.spf_domain, k.spf_result.as_str()))
        .or_default() += messages;
    *s.dispositions
        .entry(k.disposition.as_str().to_owned())
        .or_default() += messages;
    s.reporters.extend(reporters.map(str::to_owned));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_spans_are_bucketed() {
        let by_day: Vec<Day> = [100, 101, 400]
            .into_iter()
            .map(|day| Day {
                day,
                by_class: [1, 0, 0, 1],
                pass: 1,
            })
            .collect();
        let days = fill(&by_day);
        assert!(days.len() <= MAX_BARS as usize);
        assert_eq!(days.iter().map(Day::messages).sum::<u64>(), 6);
        assert_eq!(days[0].day, 100);
        let short: Vec<Day> = by_day.into_iter().filter(|d| d.day < 200).collect();
        assert_eq!(fill(&short).len(), 2);
    }
}
