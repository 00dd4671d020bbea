//! `dmarc-warden fetch`: drains IMAP folders through the same unpack → parse → store path as files.
//!
//! Per folder, in batches of UIDs: sizes first (`RFC822.SIZE`; an oversized message is recorded as a
//! reject and never downloaded), then the bodies (`BODY.PEEK[]<0.N>`, so nothing is marked `\Seen`;
//! bounded, so that one longer than listed is a reject too, without its bytes), parsed
//! on the rayon pool. One transaction then stores the batch's reports and rejects, the folder's new
//! highest UID, and the moves still to do. Only after that commit are messages flagged or moved, and a
//! move's record is deleted once the server confirmed it. So a run killed at any moment leaves either
//! an uncommitted batch (fetched again next time) or committed moves (finished first thing next time):
//! every report is stored exactly once, and no message is moved before its reports are safe.

use std::collections::{BTreeMap, HashSet};
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use rayon::iter::{IntoParallelIterator, ParallelIterator};

use super::{Event, IngestError, Options, Processed, Stats, Writer, process};
use crate::fetch::Input;
use crate::fetch::imap::{Account, Body, ImapError, Session};
use crate::store::{Store, StoreError};

/// One batch as the network thread hands it over: the listed `(uid, size)` pairs and the bodies
/// downloaded.
type Downloaded<'b> = (&'b [(u32, u64)], Vec<(u32, Body)>);

/// Settings of one `fetch` run beyond the account's own.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    pub work: Options,
    /// Ignore the remembered UIDs and read every message again (idempotent).
    pub full: bool,
    /// Stay connected and wait (IMAP IDLE) for new mail after draining the folders.
    pub watch: bool,
    /// Most messages fetched with one command.
    pub batch_messages: usize,
    /// Most bytes (by `RFC822.SIZE`) fetched with one command.
    pub batch_bytes: u64,
}

/// How often a lost connection is re-established before the run gives up, and the first wait.
const RETRIES: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// IDLE is re-issued at this interval: below the 29 minutes RFC 2177 allows servers to cut at.
const IDLE_INTERVAL: Duration = Duration::from_secs(25 * 60);

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Imap(#[from] ImapError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

/// What the caller hears about a mailbox run beyond [`Event`]s of single messages.
pub enum Notice<'a> {
    /// Per-input events, as for `ingest`.
    Input(Event<'a>),
    /// A folder was opened: `count` messages above UID `after` are about to be fetched.
    Found {
        folder: &'a str,
        uidvalidity: u32,
        after: u32,
        count: u64,
    },
    /// The connection was lost; the run goes on after `delay`.
    Retrying { reason: &'a str, delay: Duration },
    /// `--watch`: one round ended with these counts.
    Round(&'a Stats),
}

/// Fetches every configured folder of `account`; with `watch`, goes on until killed.
pub fn fetch_account(
    store: &Store,
    account: &Account,
    options: &FetchOptions,
    notify: &mut dyn FnMut(Notice<'_>),
) -> Result<Stats, FetchError> {
    let started = Instant::now();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.work.threads)
        .thread_name(|i| format!("dmarc-warden-parse-{i}"))
        .build()
        .map_err(|e| IngestError::Threads(e.to_string()))?;
    let mut total = Stats::default();
    let mut run = Run {
        store,
        account,
        options,
        pool: &pool,
        ensured: HashSet::new(),
        full: options.full,
    };
    let mut failures = 0;
    let mut connected = false;
    loop {
        let outcome = Session::connect(account)
            .map_err(FetchError::from)
            .and_then(|mut session| {
                connected = true;
                let result = run.session(&mut session, &mut total, notify);
                if result.is_ok() {
                    session.logout();
                }
                result
            });
        match outcome {
            Ok(()) => break,
            Err(FetchError::Imap(e))
                if failures < RETRIES
                    && (e.is_transient()
                        || connected && matches!(e, ImapError::Connect { .. })) =>
            {
                let delay = FIRST_BACKOFF * 2u32.pow(failures);
                failures += 1;
                notify(Notice::Retrying {
                    reason: &e.to_string(),
                    delay,
                });
                std::thread::sleep(delay);
            }
            Err(e) => return Err(e),
        }
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

struct Run<'a> {
    store: &'a Store,
    account: &'a Account,
    options: &'a FetchOptions,
    pool: &'a rayon::ThreadPool,
    /// Destination folders known to exist.
    ensured: HashSet<String>,
    /// Read every folder from UID 1 (`--full`); cleared after the first complete pass.
    full: bool,
}

impl Run<'_> {
    fn session(
        &mut self,
        session: &mut Session,
        total: &mut Stats,
        notify: &mut dyn FnMut(Notice<'_>),
    ) -> Result<(), FetchError> {
        loop {
            let round_started = Instant::now();
            let mut round = Stats::default();
            let drained = self
                .account
                .folders
                .iter()
                .try_for_each(|folder| self.folder(session, folder, &mut round, notify));
            round.elapsed = round_started.elapsed();
            // What was committed before a lost connection counts, whatever happens next.
            total.add(&round);
            // A round is a run: a later round's units of work settle its months.
            self.store.end_run()?;
            drained?;
            self.full = false;
            if !self.options.watch {
                return Ok(());
            }
            if round.inputs > 0 {
                notify(Notice::Round(&round));
            }
            // IDLE watches one folder: the first. The others are read again whenever it wakes.
            if let Some(first) = self.account.folders.first() {
                let status = session.select(first)?;
                // Mail that arrived while the folders were being read would not wake IDLE: read
                // again at once instead.
                let last = self
                    .store
                    .imap_folder(&self.account.key(), first)?
                    .filter(|(validity, _)| *validity == status.uidvalidity)
                    .map_or(0, |(_, uid)| uid);
                if status.exists > 0 && !session.sizes_after(last)?.is_empty() {
                    continue;
                }
            }
            session.idle(IDLE_INTERVAL)?;
        }
    }

    fn folder(
        &mut self,
        session: &mut Session,
        folder: &str,
        stats: &mut Stats,
        notify: &mut dyn FnMut(Notice<'_>),
    ) -> Result<(), FetchError> {
        let key = self.account.key();
        let status = session.select(folder)?;
        let uidvalidity = status.uidvalidity;
        let last_uid = match self.store.imap_folder(&key, folder)? {
            Some((v, uid)) if v == uidvalidity && !self.full => uid,
            // New folder, renumbered folder (UIDVALIDITY changed) or --full: everything.
            _ => 0,
        };
        // Moves a killed run committed but did not get to.
        let pending = self.store.write(|tx| {
            tx.drop_stale_moves(&key, folder, uidvalidity)?;
            tx.pending_moves(&key, folder, uidvalidity)
        })?;
        self.apply_moves(session, folder, uidvalidity, pending)?;
        let listed = if status.exists == 0 {
            Vec::new()
        } else {
            session.sizes_after(last_uid)?
        };
        notify(Notice::Found {
            folder,
            uidvalidity,
            after: last_uid,
            count: listed.len() as u64,
        });
        let limit = self.options.work.limits.max_message_size;
        let batches = batches(
            &listed,
            self.options.batch_messages,
            self.options.batch_bytes,
            limit,
        );
        // The network runs one batch ahead of parsing and storing: a thread of its own downloads
        // the next batch while this one is parsed and committed. Moves wait for the end of the
        // folder (they are recorded with each commit, so a run killed before then still makes them).
        let mut moves = Vec::new();
        let fetched = std::thread::scope(|scope| -> Result<(), FetchError> {
            let (tx, rx) = sync_channel::<Downloaded<'_>>(1);
            let (net_session, net_batches) = (&mut *session, &batches);
            let network = scope.spawn(move || -> Result<(), ImapError> {
                for batch in net_batches {
                    let wanted: Vec<(u32, u64)> = batch
                        .iter()
                        .filter(|(_, size)| *size <= limit)
                        .copied()
                        .collect();
                    let bodies = net_session.bodies(&wanted, limit)?;
                    if tx.send((batch, bodies)).is_err() {
                        break; // storing failed; its error is the one reported
                    }
                }
                Ok(())
            });
            for (batch, bodies) in rx {
                let inputs = self.inputs(batch, bodies, folder, uidvalidity);
                let work = &self.options.work;
                let encode = self.store.kind().encodes_blocks();
                let mut processed: Vec<(u32, Processed)> = self.pool.install(|| {
                    inputs
                        .into_par_iter()
                        .map(|(uid, input)| (uid, process(input, work, encode)))
                        .collect()
                });
                processed.sort_unstable_by_key(|(uid, _)| *uid);
                let batch_last = batch.last().map_or(last_uid, |(uid, _)| *uid);
                moves.extend(self.store_batch(
                    processed,
                    folder,
                    uidvalidity,
                    batch_last,
                    stats,
                    notify,
                )?);
            }
            network
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
            Ok(())
        });
        fetched?;
        if self.account.mark_seen {
            let uids: Vec<u32> = listed.iter().map(|(uid, _)| *uid).collect();
            session.mark_seen(&uids)?;
        }
        self.apply_moves(session, folder, uidvalidity, moves)
    }

    /// A batch's messages as inputs: those downloaded, and one that says why for each that was too
    /// large to download, or turned out longer than the limit while downloading it.
    fn inputs(
        &self,
        batch: &[(u32, u64)],
        bodies: Vec<(u32, Body)>,
        folder: &str,
        uidvalidity: u32,
    ) -> Vec<(u32, Input)> {
        let limit = self.options.work.limits.max_message_size;
        let mut inputs: Vec<(u32, Input)> = bodies
            .into_iter()
            .map(|(uid, body)| {
                let origin = self.account.message_url(folder, uidvalidity, uid);
                let input = match body {
                    Body::Whole(data) => Input::Bytes { origin, data },
                    Body::TooLarge { announced } => {
                        let listed = batch
                            .iter()
                            .find(|(listed, _)| *listed == uid)
                            .map_or(0, |(_, size)| *size);
                        let sent = match announced {
                            Some(n) => format!("the server announced {n} bytes"),
                            None => "the server sent more".to_owned(),
                        };
                        Input::Unreadable {
                            origin,
                            reason: format!(
                                "message exceeds the limit of {limit} bytes (listed as {listed} \
                                 bytes, {sent}), not kept (raise --max-message-size / \
                                 DMARC_WARDEN_MAX_MESSAGE_SIZE, then run `dmarc-warden fetch --full`)"
                            ),
                        }
                    }
                };
                (uid, input)
            })
            .collect();
        for (uid, size) in batch.iter().filter(|(_, size)| *size > limit) {
            inputs.push((
                *uid,
                Input::Unreadable {
                    origin: self.account.message_url(folder, uidvalidity, *uid),
                    reason: format!(
                        "message of {size} bytes exceeds the limit of {limit} bytes, not downloaded \
                         (raise --max-message-size / DMARC_WARDEN_MAX_MESSAGE_SIZE, then run \
                         `dmarc-warden fetch --full`)"
                    ),
                },
            ));
        }
        inputs
    }

    /// One transaction: the batch's outcomes, the folder's new last UID, and the moves to make.
    fn store_batch(
        &self,
        processed: Vec<(u32, Processed)>,
        folder: &str,
        uidvalidity: u32,
        last_uid: u32,
        stats: &mut Stats,
        notify: &mut dyn FnMut(Notice<'_>),
    ) -> Result<Vec<(u32, String)>, FetchError> {
        let key = self.account.key();
        let moves = self.store.write(|tx| -> Result<_, StoreError> {
            let mut moves = Vec::new();
            for (uid, p) in &processed {
                if self.full && p.extracted.failures.is_empty() {
                    // Read again in whole (`--full`, say after raising --max-message-size): a
                    // reject kept of this message without its bytes is void now.
                    tx.forget_reject(&Store::origin_key(&p.origin))?;
                }
                let destination = if p.extracted.failures.is_empty() {
                    &self.account.archive
                } else {
                    &self.account.invalid
                };
                if let Some(destination) = destination {
                    tx.add_pending_move(&key, folder, uidvalidity, *uid, destination)?;
                    moves.push((*uid, destination.clone()));
                }
            }
            // The batch's messages written at once (see `ingest`).
            let inputs: Vec<&Processed> = processed.iter().map(|(_, p)| p).collect();
            Writer::new(stats).write_all(tx, &inputs, &mut |e| notify(Notice::Input(e)))?;
            tx.set_imap_folder(&key, folder, uidvalidity, last_uid)?;
            Ok(moves)
        })?;
        Ok(moves)
    }

    /// Moves committed messages, then forgets the moves the server confirmed.
    fn apply_moves(
        &mut self,
        session: &mut Session,
        folder: &str,
        uidvalidity: u32,
        moves: Vec<(u32, String)>,
    ) -> Result<(), FetchError> {
        if moves.is_empty() {
            return Ok(());
        }
        let mut by_destination: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for (uid, destination) in moves {
            by_destination.entry(destination).or_default().push(uid);
        }
        let key = self.account.key();
        for (destination, uids) in by_destination {
            if self.ensured.insert(destination.clone()) {
                session.ensure_folder(&destination)?;
            }
            session.move_to(&uids, &destination)?;
            self.store
                .write(|tx| tx.clear_pending_moves(&key, folder, uidvalidity, &uids))?;
        }
        Ok(())
    }
}

/// Splits listed `(uid, size)` pairs into batches of at most `max_messages` messages and about
/// `max_bytes` bytes (a single larger message is a batch of its own; one above `too_large` costs
/// nothing, as it is not downloaded).
fn batches(
    listed: &[(u32, u64)],
    max_messages: usize,
    max_bytes: u64,
    too_large: u64,
) -> Vec<&[(u32, u64)]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0u64;
    for (i, (_, size)) in listed.iter().enumerate() {
        let size = if *size > too_large { 0 } else { *size };
        let count = i - start;
        if count > 0 && (count >= max_messages.max(1) || bytes.saturating_add(size) > max_bytes) {
            out.push(&listed[start..i]);
            start = i;
            bytes = 0;
        }
        bytes = bytes.saturating_add(size);
    }
    if start < listed.len() {
        out.push(&listed[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_count_and_bytes() {
        let listed: Vec<(u32, u64)> = (1..=10).map(|uid| (uid, 100)).collect();
        let sizes: Vec<usize> = batches(&listed, 4, 10_000, 1000)
            .iter()
            .map(|b| b.len())
            .collect();
        assert_eq!(sizes, [4, 4, 2]);
        let sizes: Vec<usize> = batches(&listed, 100, 250, 1000)
            .iter()
            .map(|b| b.len())
            .collect();
        assert_eq!(sizes, [2, 2, 2, 2, 2]);
        // An oversized message weighs nothing; a big one goes alone.
        let listed = [(1, 5000), (2, 400), (3, 400), (4, 900)];
        let sizes: Vec<usize> = batches(&listed, 100, 500, 1000)
            .iter()
            .map(|b| b.len())
            .collect();
        assert_eq!(sizes, [2, 1, 1]);
        assert!(batches(&[], 10, 10, 10).is_empty());
    }
}
