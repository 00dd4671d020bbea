//! Notifications: `notify` (and `fetch --notify`) judges what changed since the last notice and sends
//! it; `digest` sends a period's summary. Owns the once-only bookkeeping (through `store`) and
//! delivery to the channels; the judgements are in [`events`] and [`mod@digest`] (pure), the channels'
//! settings in [`settings`], the message text in [`render`], the transports in [`email`] and
//! [`webhook`].
//!
//! One run: judge the conditions holding now → select those not yet notified → in one transaction,
//! remember them and queue a notice per channel (the outbox) → deliver each channel's queue, removing
//! a notice only once the channel took it. A channel that fails keeps its notices for the next run;
//! the other channels are still tried.

pub mod digest;
pub mod email;
pub mod events;
pub mod render;
pub mod settings;
pub mod webhook;

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::analyse::{window_before, window_start};
use crate::judge::{self, Scope};
use crate::model::Filter;
use crate::store::{Store, StoreLock};
use crate::{EXIT_OK, EXIT_REJECTED};
use events::{Condition, DomainState, Event};
use settings::{Channel, Settings, Target};

/// What `notify` and `digest` act on: the judgement's knowledge and thresholds, and `[notify]`.
#[derive(Debug, Clone)]
pub struct Config {
    /// Name sources by reverse DNS, as `senders --resolve`.
    pub resolve: bool,
    pub judgement: crate::judge::Judgement,
    pub settings: Settings,
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("email: {0}")]
    Email(String),
    #[error("webhook: {0}")]
    Webhook(String),
    #[error("cannot read the CA file {path} (ca_file): {reason}")]
    CaFile { path: PathBuf, reason: String },
}

/// Most events in one message: chat services cap a message's size, and a first run over a large
/// database may find many.
const MAX_EVENTS: usize = 50;

/// How far before the window a source counts as seen: one that sent nothing for this long and
/// comes back is new again.
const LOOKBACK_DAYS: i64 = 90;

/// The outbox channel of notices printed on stdout (no channel configured).
const STDOUT: &str = "stdout";

/// Holds `<db>.notify-lock` while notices are judged and delivered: two runs at once would send
/// the same queued notices twice, so the second stops with a clear message instead.
pub fn lock(store: &Store, db: &crate::store::Location) -> anyhow::Result<StoreLock> {
    crate::hold_lock(store, "notify", |lock| {
        format!(
            "another `dmarc-warden notify` (or `fetch --notify`) is sending notices for {db} (it \
             holds {lock}); this run sent nothing, what it would have sent goes next time",
        )
    })
}

/// `notify`: judge, queue what is new, deliver every queue. Exit 0, or 1 when a channel failed.
/// The caller holds [`lock`].
pub fn notify(store: &Store, config: &Config) -> anyhow::Result<u8> {
    let now = crate::time::now();
    let conditions = conditions(store, config)?;
    let channels = &config.settings.channels;
    // The notices are queued in the unit of work that records them as notified: a notice is never
    // marked as sent without being queued, and a run that fails queues nothing.
    store.write(|tx| -> anyhow::Result<_> {
        let (send, state) = events::select(conditions, &tx.notified()?, now);
        let mut queued = Vec::new();
        for e in &send {
            let json = serde_json::to_string(e)?;
            if channels.is_empty() {
                queued.push((STDOUT.to_owned(), json));
            } else {
                for c in channels.iter().filter(|c| c.wants(&e.domain)) {
                    queued.push((c.id.clone(), json.clone()));
                }
            }
        }
        tx.set_notified(&state)?;
        tx.queue_notices(&queued, now)?;
        Ok(())
    })?;
    deliver(store, channels)
}

/// Sends each channel's queued notices; a channel that fails is named on stderr and keeps them.
fn deliver(store: &Store, channels: &[Channel]) -> anyhow::Result<u8> {
    let mut failed = 0;
    let known: BTreeSet<&str> = channels.iter().map(|c| c.id.as_str()).collect();
    let ours =
        |channel: &str| known.contains(channel) || (channels.is_empty() && channel == STDOUT);
    // Notices queued for channels no longer configured (a webhook URL was rotated, an address
    // changed) go to the channels there are now that take their domain.
    let moves: Vec<(i64, Vec<String>)> = store
        .pending_notices(None)?
        .into_iter()
        .filter(|p| !ours(&p.channel))
        .map(|p| {
            let domain = serde_json::from_str::<Event>(&p.event)
                .map(|e| e.domain)
                .unwrap_or_default();
            let to = if channels.is_empty() {
                vec![STDOUT.to_owned()]
            } else {
                channels
                    .iter()
                    .filter(|c| c.wants(&domain))
                    .map(|c| c.id.clone())
                    .collect()
            };
            (p.id, to)
        })
        .collect();
    if !moves.is_empty() {
        store.write(|tx| tx.requeue_notices(&moves))?;
    }
    let pending = store.pending_notices(None)?;
    let orphans = pending.iter().filter(|p| !ours(&p.channel)).count();
    if orphans > 0 {
        eprintln!(
            "dmarc-warden: warning: {orphans} notices were queued for channels no longer \
             configured, and no channel configured now takes their domains; they stay in the \
             database"
        );
    }
    let queue_of = |id: &str| -> Vec<(i64, Event)> {
        pending
            .iter()
            .filter(|p| p.channel == id)
            .filter_map(|p| Some((p.id, serde_json::from_str::<Event>(&p.event).ok()?)))
            .collect()
    };
    if channels.is_empty() {
        let queue = queue_of(STDOUT);
        if !queue.is_empty() {
            let events: Vec<Event> = queue.iter().map(|(_, e)| e.clone()).collect();
            crate::present::text(&render::text(&events))?;
            let ids: Vec<i64> = queue.iter().map(|(id, _)| *id).collect();
            store.write(|tx| tx.notices_delivered(&ids))?;
        }
        return Ok(EXIT_OK);
    }
    for channel in channels {
        let queue = queue_of(&channel.id);
        // Messages of at most MAX_EVENTS events, oldest first; the first failure keeps the rest.
        for (n, chunk) in queue.chunks(MAX_EVENTS).enumerate() {
            let ids: Vec<i64> = chunk.iter().map(|(id, _)| *id).collect();
            let events: Vec<Event> = chunk.iter().map(|(_, e)| e.clone()).collect();
            match send(channel, &render::notices(&events)) {
                Ok(()) => store.write(|tx| tx.notices_delivered(&ids))?,
                Err(e) => {
                    let kept = queue.len() - n * MAX_EVENTS;
                    eprintln!(
                        "dmarc-warden: error: notify channel {}: {e}; its {kept} notices are kept \
                         and sent on the next run",
                        channel.label,
                    );
                    let rest: Vec<i64> =
                        queue[n * MAX_EVENTS..].iter().map(|(id, _)| *id).collect();
                    store.write(|tx| tx.notices_failed(&rest, &e.to_string()))?;
                    failed += 1;
                    break;
                }
            }
        }
    }
    Ok(if failed > 0 { EXIT_REJECTED } else { EXIT_OK })
}

fn send(channel: &Channel, m: &render::Message) -> Result<(), NotifyError> {
    match &channel.target {
        Target::Webhook(w) => webhook::post(w, m),
        Target::Email(e) => email::send(e, m),
    }
}

/// Every condition that holds now, over all domains.
fn conditions(store: &Store, config: &Config) -> anyhow::Result<Vec<Condition>> {
    let j = &config.judgement;
    let th = &config.settings.thresholds;
    let days = j.thresholds.window_days;
    let names = || judge::names_by(store, config.resolve, crate::present::unanswered_lookups);
    let mut before_names = names();
    let mut out = Vec::new();
    // Each domain over the window `advise` judges, against the window before it.
    judge::each_domain(
        store,
        // Per source IP: new sources are IPs with their messages.
        &Scope {
            per_ip: true,
            ..Scope::advice_window(j)
        },
        j,
        names(),
        |judged| -> anyhow::Result<()> {
            let domain = judged.policy.domain.as_str();
            let advice = judged.advice(j);
            let since = judged.window.0;
            let prev = match since {
                Some(s) => judge::judge_domain(
                    store,
                    domain,
                    (window_before(since, days), Some(s)),
                    j,
                    &mut before_names,
                )?,
                None => judge::Window::default(),
            };
            let previous = (!prev.evidence.is_empty()).then(|| {
                judge::advise_domain(
                    &judged.start,
                    &judged.policy,
                    &prev.evidence,
                    &prev.senders,
                    j,
                )
            });
            // Unauthorised mail from addresses that sent nothing for the domain in the
            // LOOKBACK_DAYS before the window (bounded, so a run costs the same however old the
            // database).
            let known = match since {
                Some(s) => store.source_ips_between(domain, s - LOOKBACK_DAYS * 86_400, s)?,
                None => BTreeSet::new(),
            };
            let new_sources = events::new_sources(&judged.evidence, &judged.senders, &known);
            out.extend(events::domain_conditions(
                &DomainState {
                    domain,
                    senders: &judged.senders,
                    advice: &advice,
                    previous: previous.as_ref(),
                    new_sources: &new_sources,
                },
                th,
            ));
            Ok(())
        },
    )?;
    let (latest, latest_tls) = store.latest_ends()?;
    if let Some(latest) = latest {
        // Enough history to tell a daily reporter: the quiet days and the week before them, and more.
        let back = i64::from(th.silent_days.max(30) + 30) * 86_400;
        out.extend(events::reporter_conditions(
            &store.report_spans(latest - back)?,
            th,
        ));
    }
    if latest_tls.is_some() {
        // TLS reports over the advice window, back from the latest TLS report.
        let filter = Filter {
            since: window_start(latest_tls, Some(days)),
            ..Filter::default()
        };
        out.extend(events::tls_conditions(&store.tls(&filter)?, th));
    }
    out.extend(events::dns_conditions(&store.last_checks(None)?));
    Ok(out)
}

/// `digest`: each domain's last `days` days against the `days` before, with the advice `advise`
/// gives (over its own window: `days` chooses only the period of the figures); sent to every
/// channel that takes the domain, or printed. Exit 0, or 1 when a channel failed.
pub fn digest(
    store: &Store,
    config: &Config,
    days: u32,
    domain: Option<&str>,
) -> anyhow::Result<u8> {
    let j = &config.judgement;
    let names = || judge::names_by(store, config.resolve, crate::present::unanswered_lookups);
    let mut period_names = names();
    let scope = Scope {
        domain: domain.map(str::to_owned),
        ..Scope::advice_window(j)
    };
    let mut digests = Vec::new();
    judge::each_domain(store, &scope, j, names(), |judged| -> anyhow::Result<()> {
        let advice = judged.advice(j);
        let d = judged.policy.domain.as_str();
        // Exactly `days` daily reports, against the `days` before.
        let since = window_start(judged.last, Some(days));
        let current = if judged.window == (since, None) {
            judged.senders.clone()
        } else {
            judge::judge_domain(store, d, (since, None), j, &mut period_names)?.senders
        };
        let previous = match since {
            Some(s) => {
                let before = (window_before(since, days), Some(s));
                judge::judge_domain(store, d, before, j, &mut period_names)?.senders
            }
            None => Vec::new(),
        };
        digests.push(digest::domain_digest(d, days, &current, &previous, &advice));
        Ok(())
    })?;
    let channels = &config.settings.channels;
    if channels.is_empty() {
        crate::present::text(&if digests.is_empty() {
            "(nothing stored matches)\n".to_owned()
        } else {
            render::digest_text(&digests)
        })?;
        return Ok(EXIT_OK);
    }
    let mut failed = 0;
    for channel in channels {
        let mine: Vec<_> = digests
            .iter()
            .filter(|d| channel.wants(&d.domain))
            .cloned()
            .collect();
        if mine.is_empty() {
            continue;
        }
        if let Err(e) = send(channel, &render::digest(&mine, days)) {
            eprintln!("dmarc-warden: error: notify channel {}: {e}", channel.label);
            failed += 1;
        }
    }
    Ok(if failed > 0 { EXIT_REJECTED } else { EXIT_OK })
}
