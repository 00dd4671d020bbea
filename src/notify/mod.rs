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

use crate::model::Filter;
use crate::store::{Store, StoreLock};
use crate::{EXIT_OK, EXIT_REJECTED};
use events::{Condition, DomainView, Event};
use settings::{Channel, Settings, Target};

/// What `notify` and `digest` act on: the judgement's knowledge and thresholds, and `[notify]`.
#[derive(Debug, Clone)]
pub struct Config {
    /// Name sources by reverse DNS, as `senders --resolve`.
    pub resolve: bool,
    pub judgement: crate::config::Judgement,
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
pub fn lock(store: &Store, db: &std::path::Path) -> anyhow::Result<StoreLock> {
    crate::hold_lock(store, "notify", |lock| {
        format!(
            "another `dmarc-warden notify` (or `fetch --notify`) is sending notices for {} (it \
             holds {lock}); this run sent nothing, what it would have sent goes next time",
            db.display(),
        )
    })
}

/// `notify`: judge, queue what is new, deliver every queue. Exit 0, or 1 when a channel failed.
/// The caller holds [`lock`].
pub fn notify(store: &Store, config: &Config) -> anyhow::Result<u8> {
    let now = crate::pipeline::unix_now();
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
            crate::present::notices(&events)?;
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
    let window = Some(j.thresholds.window_days);
    let mut out = Vec::new();
    for (policy, last) in store.latest_policies(None)? {
        let domain = policy.domain.clone();
        // The window `advise` judges, the one before it, and everything before it.
        let since = crate::judge::window_start(last, window);
        let crate::judge::Window {
            evidence,
            names,
            senders,
        } = crate::judge::judge_domain(store, &domain, (since, None), j, config.resolve)?;
        // As `advise --offline`: the record the last `check` stored, else the reports' policy.
        let start = crate::judge::starting_point(store, &policy, None)?;
        let advice = crate::judge::advise_domain(&start, &policy, &evidence, &senders, j);
        let before = since.map(|s| s - i64::from(j.thresholds.window_days) * 86_400);
        let prev = match since {
            Some(s) => {
                crate::judge::judge_domain(store, &domain, (before, Some(s)), j, config.resolve)?
            }
            None => crate::judge::Window::default(),
        };
        let previous = (!prev.evidence.is_empty()).then(|| {
            crate::judge::advise_domain(&start, &policy, &prev.evidence, &prev.senders, j)
        });
        // Unauthorised mail from addresses that sent nothing for the domain in the LOOKBACK_DAYS
        // before the window (bounded, so a run costs the same however old the database).
        let known = match since {
            Some(s) => store.source_ips_between(&domain, s - LOOKBACK_DAYS * 86_400, s)?,
            None => BTreeSet::new(),
        };
        let new_sources = events::new_sources(&evidence, &known, |e| {
            crate::analyse::sender_name(e, &j.knowledge, &names)
        });
        out.extend(events::domain_conditions(
            &DomainView {
                domain: &domain,
                senders: &senders,
                advice: &advice,
                previous: previous.as_ref(),
                new_sources: &new_sources,
            },
            th,
        ));
    }
    let (latest, latest_tls) = store.latest_ends()?;
    if let Some(latest) = latest {
        // Enough history to tell a daily reporter: the quiet days and the week before them, and more.
        let back = i64::from(th.silent_days.max(30) + 30) * 86_400;
        out.extend(events::reporter_conditions(
            &store.report_spans(latest - back)?,
            th,
        ));
    }
    if let Some(latest) = latest_tls {
        let filter = Filter {
            since: Some(latest - i64::from(j.thresholds.window_days) * 86_400),
            ..Filter::default()
        };
        out.extend(events::tls_conditions(&store.tls(&filter)?, th));
    }
    out.extend(events::dns_conditions(&store.last_checks(None)?));
    Ok(out)
}

/// `digest`: each domain's last `days` days against the `days` before, sent to every channel that
/// takes the domain, or printed. Exit 0, or 1 when a channel failed.
pub fn digest(
    store: &Store,
    config: &Config,
    days: u32,
    domain: Option<&str>,
) -> anyhow::Result<u8> {
    let j = &config.judgement;
    let mut digests = Vec::new();
    for (policy, last) in store.latest_policies(domain)? {
        // Exactly `days` daily reports: those ending after `last - days`, as the `days` before.
        let since = crate::judge::window_start(last, Some(days));
        let crate::judge::Window {
            evidence, senders, ..
        } = crate::judge::judge_domain(store, &policy.domain, (since, None), j, config.resolve)?;
        let start = crate::judge::starting_point(store, &policy, None)?;
        let advice = crate::judge::advise_domain(&start, &policy, &evidence, &senders, j);
        let before = since.map(|s| s - i64::from(days) * 86_400);
        let previous = match since {
            Some(s) => {
                crate::judge::judge_domain(
                    store,
                    &policy.domain,
                    (before, Some(s)),
                    j,
                    config.resolve,
                )?
                .senders
            }
            None => Vec::new(),
        };
        digests.push(digest::domain_digest(
            &policy.domain,
            days,
            &senders,
            &previous,
            &advice,
        ));
    }
    let channels = &config.settings.channels;
    if channels.is_empty() {
        crate::present::digest(&digests)?;
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
