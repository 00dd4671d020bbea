//! What the pages show, gathered through `store` and judged through [`crate::judge`] (the same
//! functions as the CLI's `senders` and `advise`): per domain its advice, senders and daily volume
//! by class; per sender its source IPs.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::analyse::{self, Advice, Names};
use crate::config::Judgement;
use crate::judge::{self, Judged, Scope};
use crate::model::{Evidence, SenderClass};
use crate::store::{Store, StoreError};

/// The classes in chart order, and their names as shown.
pub const CLASSES: [SenderClass; 4] = [
    SenderClass::Aligned,
    SenderClass::NeedsFixing,
    SenderClass::Forwarded,
    SenderClass::Unauthorised,
];
pub const CLASS_NAMES: [&str; 4] = ["aligned", "needs fixing", "forwarded", "unauthorised"];

pub fn class_index(c: SenderClass) -> usize {
    CLASSES.iter().position(|x| *x == c).unwrap_or(3)
}

/// Most days a chart draws one bar each for; longer spans are drawn in buckets of several days.
const MAX_BARS: i64 = 120;

/// One day's (or bucket's) mail of a domain.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Day {
    /// Days since the epoch (the first day of the bucket).
    pub day: i64,
    /// Messages by class, in [`CLASSES`] order.
    pub by_class: [u64; 4],
    /// Messages passing DMARC.
    pub pass: u64,
}

impl Day {
    pub fn messages(&self) -> u64 {
        self.by_class.iter().sum()
    }

    pub fn pass_pct(&self) -> Option<f64> {
        let m = self.messages();
        (m > 0).then(|| analyse::percent(self.pass, m))
    }
}

/// One domain judged, with what its pages draw.
#[derive(Debug)]
pub struct DomainView {
    pub judged: Judged,
    pub advice: Advice,
    pub days: Vec<Day>,
    /// Messages by class over the scope.
    pub totals: [u64; 4],
    pub messages: u64,
    pub pass: u64,
}

impl DomainView {
    pub fn domain(&self) -> &str {
        &self.judged.policy.domain
    }

    pub fn pass_pct(&self) -> f64 {
        analyse::percent(self.pass, self.messages)
    }

    /// Pass rate of the later half of the days with mail minus that of the earlier half, in
    /// percentage points; `None` with fewer than two such days.
    pub fn trend(&self) -> Option<f64> {
        let with_mail: Vec<&Day> = self.days.iter().filter(|d| d.messages() > 0).collect();
        if with_mail.len() < 2 {
            return None;
        }
        let (a, b) = with_mail.split_at(with_mail.len() / 2);
        let rate = |half: &[&Day]| {
            let m: u64 = half.iter().map(|d| d.messages()).sum();
            let p: u64 = half.iter().map(|d| d.pass).sum();
            analyse::percent(p, m)
        };
        Some(((rate(b) - rate(a)) * 10.0).round() / 10.0)
    }
}

/// Every domain in `scope`, judged as the CLI judges it (no reverse DNS lookups: the web reads
/// only).
pub fn domains(
    store: &Store,
    scope: &Scope,
    judgement: &Judgement,
) -> Result<Vec<DomainView>, StoreError> {
    let scope = Scope {
        by_day: true,
        ..scope.clone()
    };
    if scope.domain.is_none() {
        return in_parallel(store, &scope, judgement);
    }
    let mut out = Vec::new();
    judge::each_domain(
        store,
        &scope,
        judgement,
        |_| Ok::<_, StoreError>(Names::new()),
        |judged| {
            // A domain without reports in an asked-for range is not part of the view.
            let ranged = scope.since.is_some() || scope.until.is_some();
            if !(ranged && judged.evidence.is_empty()) {
                out.push(view(judged, judgement));
            }
            Ok(())
        },
    )?;
    Ok(out)
}

/// Every domain, judged on a few threads (each with its own read-only connection): the
/// overview judges them all, and domains do not depend on each other.
fn in_parallel(
    store: &Store,
    scope: &Scope,
    judgement: &Judgement,
) -> Result<Vec<DomainView>, StoreError> {
    let names: Vec<String> = store
        .latest_policies(None)?
        .into_iter()
        .map(|(p, _)| p.domain)
        .filter(|d| scope.visible.allows(d))
        .collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, 8)
        .min(names.len().max(1));
    // Connections are not shared between threads: the others get their own.
    let extra: Vec<Store> = (1..threads)
        .map(|_| store.reopen_read_only())
        .collect::<Result<_, _>>()?;
    let work = |store: &Store, t: usize| -> Result<Vec<DomainView>, StoreError> {
        let mut out = Vec::new();
        // Domains dealt round-robin, so that the big ones spread.
        for name in names.iter().skip(t).step_by(threads) {
            let one = Scope {
                domain: Some(name.clone()),
                ..scope.clone()
            };
            out.extend(domains(store, &one, judgement)?);
        }
        Ok(out)
    };
    let results: Vec<Result<Vec<DomainView>, StoreError>> = std::thread::scope(|s| {
        let workers: Vec<_> = extra
            .into_iter()
            .enumerate()
            .map(|(i, own)| {
                let work = &work;
                s.spawn(move || work(&own, i + 1))
            })
            .collect();
        let mut results = vec![work(store, 0)];
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
    out.sort_by(|a, b| a.domain().cmp(b.domain()));
    Ok(out)
}

fn view(judged: Judged, judgement: &Judgement) -> DomainView {
    let advice = judged.advice(judgement);
    let class_of: HashMap<&str, usize> = judged
        .senders
        .iter()
        .map(|s| (s.summary.sender.as_str(), class_index(s.summary.class)))
        .collect();
    let names = Names::new();
    let classes: Vec<usize> = judged
        .evidence
        .iter()
        .map(|e| {
            let name = analyse::sender_name(e, &judgement.knowledge, &names);
            class_of.get(name.as_str()).copied().unwrap_or(3)
        })
        .collect();
    let mut totals = [0u64; 4];
    let mut pass = 0u64;
    let mut by_day: BTreeMap<i64, Day> = BTreeMap::new();
    for d in &judged.daily {
        let (Some(e), Some(&c)) = (judged.evidence.get(d.evidence), classes.get(d.evidence)) else {
            continue;
        };
        let day = by_day.entry(d.day).or_insert(Day {
            day: d.day,
            ..Day::default()
        });
        day.by_class[c] += d.messages;
        if e.key.dkim_aligned || e.key.spf_aligned {
            day.pass += d.messages;
        }
    }
    for (e, &c) in judged.evidence.iter().zip(&classes) {
        totals[c] += e.messages;
        if e.key.dkim_aligned || e.key.spf_aligned {
            pass += e.messages;
        }
    }
    let days = fill(&by_day);
    DomainView {
        judged,
        advice,
        days,
        messages: totals.iter().sum(),
        totals,
        pass,
    }
}

/// Every day from the first to the last (days without reports empty), in buckets of several
/// days when there are more than [`MAX_BARS`].
fn fill(by_day: &BTreeMap<i64, Day>) -> Vec<Day> {
    let (Some((&first, _)), Some((&last, _))) = (by_day.first_key_value(), by_day.last_key_value())
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
    for d in by_day.values() {
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
    sender: &str,
    judgement: &Judgement,
) -> Result<(Vec<Source>, usize), StoreError> {
    let names = Names::new();
    let mut by_ip: BTreeMap<&str, Source> = BTreeMap::new();
    let mine = view
        .judged
        .evidence
        .iter()
        .filter(|e| analyse::sender_name(e, &judgement.knowledge, &names) == sender);
    for e in mine {
        add(&mut by_ip, e);
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

fn add<'a>(by_ip: &mut BTreeMap<&'a str, Source>, e: &'a Evidence) {
    let k = &e.key;
    let s = by_ip.entry(k.source_ip.as_str()).or_insert_with(|| Source {
        ip: k.source_ip.clone(),
        ..Source::default()
    });
    s.messages += e.messages;
    if k.dkim_aligned || k.spf_aligned {
        s.pass += e.messages;
    }
    let result = |domain: &str, result: &str| match (domain.is_empty(), result.is_empty()) {
        (true, true) => "none".to_owned(),
        (true, false) => result.to_owned(),
        (false, true) => format!("{domain}: none"),
        (false, false) => format!("{domain}: {result}"),
    };
    *s.dkim
        .entry(result(&k.dkim_domain, &k.dkim_result))
        .or_default() += e.messages;
    *s.spf
        .entry(result(&k.spf_domain, &k.spf_result))
        .or_default() += e.messages;
    *s.dispositions.entry(k.disposition.clone()).or_default() += e.messages;
    s.reporters.extend(e.reporters.iter().cloned());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_spans_are_bucketed() {
        let mut by_day = BTreeMap::new();
        for day in [100, 101, 400] {
            by_day.insert(
                day,
                Day {
                    day,
                    by_class: [1, 0, 0, 1],
                    pass: 1,
                },
            );
        }
        let days = fill(&by_day);
        assert!(days.len() <= MAX_BARS as usize);
        assert_eq!(days.iter().map(Day::messages).sum::<u64>(), 6);
        assert_eq!(days[0].day, 100);
        let short: BTreeMap<i64, Day> = by_day.into_iter().filter(|(d, _)| *d < 200).collect();
        assert_eq!(fill(&short).len(), 2);
    }
}
