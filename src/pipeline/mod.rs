//! Joins the stages: inputs from [`fetch`](crate::fetch) are read, unpacked and parsed on a rayon pool,
//! and the results flow through a bounded channel to the one thread that writes the database, in
//! batches of about [`Store::batch_rows`] records, a few per unit of work ([`Store::unit_rows`]).
//!
//! The channel bound and the batch are what keep memory flat: when the writer falls behind, workers
//! wait, and the lazy input iterator is not advanced. Each input is handled on its own: a failure becomes a kept
//! reject and the run goes on.

pub mod check;
pub mod mailbox;

use std::borrow::Borrow;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use rayon::iter::{ParallelBridge, ParallelIterator};

use crate::fetch::Input;
use crate::lock;
use crate::model::{Extracted, Failure, Located};
use crate::parse::{FailureOptions, decode_xml, parse_aggregate, parse_failure, parse_tls};
use crate::store::{Block, Inserted, Kind, Location, Open, RejectedInput, Store, StoreError, Tx};
use crate::unpack::{Leaf, Limits, walk};

/// Unpacks and parses one input held in memory, with the default [`FailureOptions`]. Never fails as
/// a whole: what cannot be read is listed in [`Extracted::failures`] with its location.
pub fn extract(bytes: &[u8], limits: &Limits) -> Extracted {
    extract_with(bytes, limits, &FailureOptions::default())
}

/// [`extract`], keeping of failure reports what `failure` says.
pub fn extract_with(bytes: &[u8], limits: &Limits, failure: &FailureOptions) -> Extracted {
    let mut out = Extracted::default();
    walk(bytes, limits, &mut |location, leaf| {
        let failed = match leaf {
            Leaf::Xml(xml) => parse_aggregate(&decode_xml(xml))
                .map(|item| out.reports.push(located(location, item)))
                .map_err(|e| e.to_string()),
            Leaf::Json(json) => parse_tls(&String::from_utf8_lossy(json))
                .map(|item| out.tls_reports.push(located(location, item)))
                .map_err(|e| e.to_string()),
            Leaf::Arf(arf) => parse_failure(&arf, failure)
                .map(|item| out.failure_reports.push(located(location, item)))
                .map_err(|e| e.to_string()),
            Leaf::Failed(e) => Err(e.to_string()),
        };
        if let Err(reason) = failed {
            out.failures.push(located(location, Failure { reason }));
        }
    });
    out
}

fn located<T>(location: &str, item: T) -> Located<T> {
    Located {
        location: location.to_owned(),
        item,
    }
}

/// Settings for one ingest run.
#[derive(Debug, Clone)]
pub struct Options {
    pub limits: Limits,
    /// What is kept of the messages failure reports are about.
    pub failure: FailureOptions,
    /// Worker threads for reading, unpacking and parsing; 0 means as many as the store's writer
    /// leaves room for ([`Store::parse_threads`]: one per core on SQLite, one fewer on PostgreSQL).
    pub threads: usize,
}

/// Counts for the summary line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub inputs: u64,
    pub reports_new: u64,
    pub duplicates: u64,
    /// Of `duplicates`: more complete copies that took the stored copy's place.
    pub replaced: u64,
    /// Inputs with at least one part that failed.
    pub rejected: u64,
    pub records: u64,
    /// Of `reports_new`: failure (ARF) reports and SMTP TLS reports.
    pub failure_reports_new: u64,
    pub tls_reports_new: u64,
    /// `reprocess` only: kept inputs that now went through whole.
    pub recovered: u64,
    pub elapsed: Duration,
    /// Of `elapsed`, in `ingest` (zero in the other runs): until the last input was read and
    /// parsed; the rest is the writer storing the last of them and the end of the run (the floor
    /// bench shows it).
    pub parsed: Duration,
    /// Of `elapsed`, in `ingest`: until the database was open, beside the parsing threads
    /// ([`ingest_into`]; nearly nothing when it was open already).
    pub opened: Duration,
}

impl Stats {
    /// Adds another run's counts (and time) to these.
    pub fn add(&mut self, other: &Stats) {
        self.inputs += other.inputs;
        self.reports_new += other.reports_new;
        self.duplicates += other.duplicates;
        self.replaced += other.replaced;
        self.rejected += other.rejected;
        self.records += other.records;
        self.failure_reports_new += other.failure_reports_new;
        self.tls_reports_new += other.tls_reports_new;
        self.recovered += other.recovered;
        self.elapsed += other.elapsed;
        self.parsed += other.parsed;
        self.opened += other.opened;
    }
}

/// What the caller is told as the run goes, to show progress and name each failure.
pub enum Event<'a> {
    /// One more input is done.
    Done,
    /// A part of an input failed; it is kept for `reprocess`.
    Rejected {
        origin: &'a str,
        location: &'a str,
        reason: &'a str,
    },
}

/// One input after the workers are done with it.
struct Processed {
    origin: String,
    /// The bytes, kept only when something failed, to be stored with the reject.
    data: Option<Vec<u8>>,
    extracted: Extracted,
    /// Each aggregate report's records, encoded here for the store when it stores them so
    /// (`encode`: [`Store::encodes_blocks`]), on the parsing threads rather than the single
    /// writer's; else empty. The records themselves are then freed before the batch waits for
    /// the writer ([`Processed::free_records`]).
    blocks: Vec<Block>,
    /// What the input weighs in a batch ([`Processed::size`]), counted before its records are
    /// freed.
    rows: usize,
}

/// The inputs a parsing thread parsed at a time, and which of the pool's threads that was
/// (`rayon::current_thread_index`). Once written, a chunk goes back to that thread, which frees it
/// before it parses its next: a report's strings and vectors are freed by the thread that made
/// them, where the allocator frees them at once, rather than by another thread, whose frees of a
/// block go to a list that its own thread takes in later (as allocations of the batch's
/// thousands of small strings were: 2–3% of a run's CPU time on the parsing threads).
struct Chunk {
    parsed_by: Option<usize>,
    inputs: Vec<Processed>,
}

fn process(input: Input, options: &Options, encode: bool) -> Processed {
    let limits = &options.limits;
    let origin = input.origin();
    match input.read(limits.max_message_size) {
        Ok(data) => {
            let extracted = extract_with(&data, limits, &options.failure);
            let data = (!extracted.failures.is_empty()).then_some(data);
            let blocks = if encode {
                (extracted.reports.iter())
                    .map(|r| Block::of(&r.item))
                    .collect()
            } else {
                Vec::new()
            };
            let rows = size(&extracted);
            Processed {
                origin,
                data,
                extracted,
                blocks,
                rows,
            }
        }
        Err(reason) => {
            let extracted = Extracted {
                failures: vec![located("", Failure { reason })],
                ..Extracted::default()
            };
            Processed {
                origin,
                data: None,
                rows: size(&extracted),
                extracted,
                blocks: Vec::new(),
            }
        }
    }
}

/// Inputs handed to a worker at a time, and sent to the writer as one message: fewer hand-offs
/// between threads (each a possible wake-up), while a chunk of typical reports stays small.
const CHUNK_INPUTS: usize = 16;

/// Files walked are opened on the walk ([`Input::read`]) and held open until a worker reads them:
/// the chunks the workers hold keep at most this many open, whatever the number of threads, well
/// within the usual limit of 1,024 open files a process.
const OPEN_INPUTS: usize = 256;

/// Inputs a chunk for `threads` workers: [`CHUNK_INPUTS`], fewer when so many threads would hold
/// more than [`OPEN_INPUTS`] files open.
fn chunk_inputs(threads: usize) -> usize {
    (OPEN_INPUTS / threads.max(1)).clamp(1, CHUNK_INPUTS)
}

/// Groups `inputs` into the chunks a worker of a pool of `threads` takes at a time
/// ([`chunk_inputs`]), lazily: how `ingest` hands its inputs out (and the floor bench, which reads
/// as `ingest` does).
pub fn chunks<I: Iterator>(mut inputs: I, threads: usize) -> impl Iterator<Item = Vec<I::Item>> {
    let n = chunk_inputs(threads);
    std::iter::from_fn(move || {
        let chunk: Vec<_> = inputs.by_ref().take(n).collect();
        (!chunk.is_empty()).then_some(chunk)
    })
}

// Rows per transaction (records, and one for each report and input): [`Store::batch_rows`],
// large enough to amortise the commit, small enough that a killed run loses little work (and
// nothing that a re-run does not redo), and that what the writer holds stays small whatever the
// size of the reports. Counted in records rather than reports, since a report may hold one record
// or thousands. Measured (2 cores, issue 21; `cargo bench --bench floor`, peak RSS of the ingest
// stage, SQLite): a batch of 2,000 reports held 76-80 MB over reports of 20 records and 194-202 MB
// over reports of 300; 4,000 rows hold 31-35 MB and 53-66 MB, and the run takes no more CPU time
// (5-15% less: a batch that fits the caches). 2,000 since stop 50 ([`Kind::batch_rows`]).

/// What stops a whole run (as opposed to one input).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot start the worker threads (--threads / DMARC_WARDEN_THREADS): {0}")]
    Threads(String),
}

/// Reads, parses and stores every input. Returns an error only when the run cannot go on (the
/// database fails); input failures are counted in [`Stats::rejected`] and kept.
pub fn ingest<I>(
    store: &Store,
    inputs: I,
    options: &Options,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<Stats, IngestError>
where
    I: Iterator<Item = Input> + Send,
{
    run(store.kind(), || Ok(store), inputs, options, on_event).map(|(_, stats)| stats)
}

/// [`ingest`] into the database at `db`, opened ([`Open::Create`]: made and migrated when new)
/// on this thread while the parsing threads begin on the inputs, rather than before them, with
/// one core idle: the first batch takes longer to parse than a new database to make. Issue 21:
/// making one is 3–4 ms of CPU time, which beside two busy parsing threads on two cores gained
/// nothing beyond the noise; a PostgreSQL server's connection, a round trip or several, is
/// mostly waiting. `opened` is told of the store as soon as it is open. The store comes back with
/// the counts; when it cannot be opened, that is the run's error and nothing is written.
pub fn ingest_into<I>(
    db: &Location,
    inputs: I,
    options: &Options,
    opened: &mut dyn FnMut(&Store),
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<(Store, Stats), IngestError>
where
    I: Iterator<Item = Input> + Send,
{
    let open = || {
        let store = Store::open_at(db, Open::Create)?;
        opened(&store);
        Ok(store)
    };
    run(db.kind(), open, inputs, options, on_event)
}

/// [`ingest`] into the store `open` gives, of the backend `kind`: called once the parsing threads
/// have begun.
fn run<I, S>(
    kind: Kind,
    open: impl FnOnce() -> Result<S, StoreError>,
    inputs: I,
    options: &Options,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<(S, Stats), IngestError>
where
    I: Iterator<Item = Input> + Send,
    S: Borrow<Store>,
{
    let started = Instant::now();
    // How many depends on where the writing is done: [`Kind::parse_threads`].
    let threads = match options.threads {
        0 => kind.parse_threads(std::thread::available_parallelism().map_or(1, |n| n.get())),
        n => n,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("dmarc-warden-parse-{i}"))
        .build()
        .map_err(|e| IngestError::Threads(e.to_string()))?;
    let threads = pool.current_num_threads();
    let encode = kind.encodes_blocks();
    let mut stats = Stats::default();
    // Batches of about `batch_rows` records, until the inputs run out, written by units of work
    // of one or more (below). A batch is gathered before it is written, at once (PostgreSQL: one
    // upsert of its reports in key order, then COPY, so that concurrent writers lock reports in
    // one order) and holds the database only while writing.
    //
    // Each worker adds the chunk it parsed to the batch being gathered; the one whose chunk fills
    // it makes the batch's rollup sums ([`crate::store::presum`]) and hands it to the writer, and
    // goes on. While the writer writes one batch, the workers fill the next, and one more may
    // wait for the writer, so that a long commit does not stop them (issue 21: parsing and
    // writing, each about half of the CPU time, once ran one after the other: over 5,000 mixed
    // reports the writer waited 0.25-0.83 s for its batches). Held at most: the batch written,
    // one waiting, one a worker waits to hand over while the writer is behind (each worker
    // at most one), and the one gathered. The batches were gathered on a thread of their own,
    // woken by every chunk: 700 of the run's 1,300 context switches over 5,000 mixed reports;
    // without it, over 14 alternating runs of `cargo bench --bench floor`, ingest 0.246 →
    // 0.232 s (mixed) and 0.187 → 0.181 s (large).
    let batch_rows = kind.batch_rows();
    // When the workers were done with the last input (`Stats::parsed`).
    let parsed_at = std::sync::OnceLock::new();
    let parsed_at = &parsed_at;
    let keeps_rollups = kind.keeps_rollups();
    let (batches, gathered) = sync_channel::<(Vec<Chunk>, crate::store::Presum)>(1);
    let gathering = std::sync::Mutex::new((Vec::new(), 0));
    let gathering = &gathering;
    // The chunks written, each back with the parsing thread that parsed it, which frees it
    // before it parses its next: [`Chunk`].
    let written: Vec<std::sync::Mutex<Vec<Chunk>>> =
        (0..threads).map(|_| Default::default()).collect();
    let written = &written;
    // The records of batches handed over, encoded and summed already, each back with the
    // parsing thread that parsed them (as [`Chunk`]s are), to be freed before it parses its next.
    let freed: Vec<std::sync::Mutex<Vec<Vec<crate::model::Record>>>> =
        (0..threads).map(|_| Default::default()).collect();
    let freed = &freed;
    // Hands `batch` with its sums to the writer; fails when the writer stopped. Where its
    // records are encoded (`encode`), they are freed first: what waits for the writer is then
    // its blocks, reports and sums (issue 21: the parsed records of the batches in flight were
    // the live heap's largest part after SQLite's page cache, 3.3 MB at its peak over 100,000
    // and 1,000,000 reports).
    let hand_over = move |batches: &std::sync::mpsc::SyncSender<_>, mut batch: Vec<Chunk>| {
        let reports = batch.iter().flat_map(|c| &c.inputs);
        let reports = reports.flat_map(|p| p.extracted.reports.iter().map(|r| &r.item));
        let presum = crate::store::presum(keeps_rollups, reports);
        if encode {
            let me = rayon::current_thread_index();
            for chunk in &mut batch {
                let records = chunk.inputs.iter_mut().flat_map(Processed::free_records);
                // Another parsing thread's, unless the parsing is over (the last batch).
                let owner = (chunk.parsed_by)
                    .filter(|&by| me.is_some_and(|me| me != by))
                    .and_then(|by| freed.get(by));
                match owner {
                    Some(owner) => lock(owner).extend(records),
                    None => records.for_each(drop),
                }
            }
        }
        batches.send((batch, presum)).map_err(drop)
    };

    let store = std::thread::scope(|scope| {
        spawn_named(scope, "dmarc-warden-read", move || {
            let last = batches.clone();
            let _ = pool.install(|| {
                // A send fails only when the writer stopped on a database error: stop reading
                // inputs; the writer's error is what the run returns.
                chunks(inputs, threads)
                    .par_bridge()
                    .try_for_each_with(batches, |batches, chunk| {
                        let parsed_by = rayon::current_thread_index();
                        if let Some(i) = parsed_by {
                            if let Some(mine) = written.get(i) {
                                drop(std::mem::take(&mut *lock(mine)));
                            }
                            if let Some(mine) = freed.get(i) {
                                drop(std::mem::take(&mut *lock(mine)));
                            }
                        }
                        let chunk = Chunk {
                            parsed_by,
                            inputs: (chunk.into_iter())
                                .map(|i| process(i, options, encode))
                                .collect(),
                        };
                        let size = chunk.inputs.iter().map(Processed::size).sum::<usize>();
                        let full = {
                            let mut g = lock(gathering);
                            let (batch, rows) = &mut *g;
                            batch.push(chunk);
                            *rows += size;
                            (*rows >= batch_rows).then(|| {
                                *rows = 0;
                                std::mem::take(batch)
                            })
                        };
                        match full {
                            Some(batch) => hand_over(batches, batch),
                            None => Ok(()),
                        }
                    })
            });
            let _ = parsed_at.set(Instant::now());
            // The inputs ran out: what is gathered is the last batch.
            let (batch, _) = std::mem::take(&mut *lock(gathering));
            if !batch.is_empty() {
                let _ = hand_over(&last, batch);
            }
        })?;
        // What is written once the parsing threads are done with their inputs is freed on a
        // thread of its own: the writer is the pipeline's narrowest stage.
        let (done, written_chunks) = std::sync::mpsc::channel::<Vec<Chunk>>();
        spawn_named(scope, "dmarc-warden-free", move || {
            written_chunks.into_iter().for_each(drop);
        })?;
        // Owned here so that an early return drops it, which stops the workers before the scope
        // joins.
        let gathered = gathered;
        // Opened while the workers parse the first batch.
        let store = open()?;
        stats.opened = started.elapsed();
        let mut writer = Writer::new(&mut stats);
        // A unit of work writes batches as they come until it holds about `unit_rows` rows
        // (several batches on SQLite: fewer commits, each rewriting the pages of the indexes and
        // rollups its reports touch), each freed once written, so that memory stays that of two
        // batches. It waits for a further batch at most `UNIT_WAIT`: a batch still being parsed
        // is worth waiting for, but a slow mailbox must not keep other writers waiting on the
        // database while nothing is written.
        let unit_rows = kind.unit_rows();
        while let Ok(first) = gathered.recv() {
            store.borrow().write(|tx| {
                writer.start_batch();
                let (mut next, mut rows) = (Some(first), 0);
                while let Some((batch, presum)) = next.take() {
                    let inputs: Vec<&Processed> = batch.iter().flat_map(|c| &c.inputs).collect();
                    tx.use_presum(presum);
                    writer.write_all(tx, &inputs, on_event)?;
                    rows += inputs.iter().map(|p| p.size()).sum::<usize>();
                    drop(inputs);
                    for chunk in batch {
                        match chunk.parsed_by.and_then(|i| written.get(i)) {
                            Some(owner) if parsed_at.get().is_none() => lock(owner).push(chunk),
                            _ => drop(done.send(vec![chunk])),
                        }
                    }
                    if rows < unit_rows {
                        next = gathered.recv_timeout(UNIT_WAIT).ok();
                    }
                }
                Ok::<_, StoreError>(())
            })?;
        }
        // What the parsing threads did not free before they ran out of inputs.
        for owner in written {
            let _ = done.send(std::mem::take(&mut *lock(owner)));
        }
        Ok::<_, IngestError>(store)
    })?;
    // The months this run's last units of work left stale, settled now (PostgreSQL).
    store.borrow().end_run()?;
    stats.elapsed = started.elapsed();
    stats.parsed = parsed_at
        .get()
        .map_or(stats.elapsed, |at| at.duration_since(started));
    Ok((store, stats))
}

/// Starts `f` on a thread of the scope named `name` (as profilers and `top -H` show it).
fn spawn_named<'s, 'e>(
    scope: &'s std::thread::Scope<'s, 'e>,
    name: &str,
    f: impl FnOnce() + Send + 's,
) -> Result<(), IngestError> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn_scoped(scope, f)
        .map(drop)
        .map_err(|e| IngestError::Threads(e.to_string()))
}

/// How long a unit of work of several batches waits, holding the database, for its next batch
/// (taking whatever is ready within it: over 5,000 mixed reports, taking only a batch already
/// waiting cost the writer 20% more CPU, because more units of work were committed).
const UNIT_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// The single writer: what inputs' outcomes add to the database and to the counts, inside the
/// caller's unit of work, which [`ingest`] ends after about [`Store::batch_rows`] records.
struct Writer<'s> {
    stats: &'s mut Stats,
    now: i64,
}

impl Processed {
    /// What the input weighs in a batch: its reports' records, its reports, and one for the
    /// input itself (counted as it was parsed).
    fn size(&self) -> usize {
        self.rows
    }

    /// Frees its aggregate reports' records, each encoded in its block already: all the store
    /// reads of them then ([`Tx::insert_reports_encoded`]). Returns them to be freed where they
    /// were made.
    fn free_records(&mut self) -> Vec<Vec<crate::model::Record>> {
        if self.blocks.len() != self.extracted.reports.len() {
            return Vec::new();
        }
        (self.extracted.reports.iter_mut())
            .map(|r| std::mem::take(&mut r.item.records))
            .filter(|records| !records.is_empty())
            .collect()
    }
}

/// [`Processed::size`] of what was extracted from an input.
fn size(x: &Extracted) -> usize {
    let records: usize = x.reports.iter().map(|r| r.item.records.len()).sum();
    records + x.reports.len() + x.failure_reports.len() + x.tls_reports.len() + 1
}

impl<'s> Writer<'s> {
    fn new(stats: &'s mut Stats) -> Self {
        Writer {
            stats,
            now: crate::time::now(),
        }
    }

    /// A new unit of work begins: stamp its reports with the time now.
    fn start_batch(&mut self) {
        self.now = crate::time::now();
    }

    fn write(
        &mut self,
        tx: &mut Tx<'_>,
        p: &Processed,
        on_event: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), StoreError> {
        self.write_all(tx, &[p], on_event)
    }

    /// Writes the inputs' reports of each kind with one call (the store writes a batch at once),
    /// then keeps the inputs that failed, and tells `on_event` of each input in order.
    fn write_all(
        &mut self,
        tx: &mut Tx<'_>,
        inputs: &[&Processed],
        on_event: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), StoreError> {
        let stats = &mut *self.stats;
        // Counts one report's outcome; `kind` is the per-kind counter of new reports, if any.
        let mut tally = |inserted: Inserted, kind: Option<&mut u64>| match inserted {
            Inserted::New { .. } => {
                stats.reports_new += 1;
                if let Some(kind) = kind {
                    *kind += 1;
                }
            }
            Inserted::Replaced { .. } => {
                stats.duplicates += 1;
                stats.replaced += 1;
            }
            Inserted::Duplicate => stats.duplicates += 1,
        };
        fn each<'p, T>(
            inputs: &[&'p Processed],
            of: impl Fn(&'p Extracted) -> &'p [Located<T>],
        ) -> Vec<(&'p str, &'p Located<T>)> {
            inputs
                .iter()
                .flat_map(|p| of(&p.extracted).iter().map(|r| (p.origin.as_str(), r)))
                .collect()
        }
        let (mut failure_new, mut tls_new, mut records) = (0, 0, 0);
        let reports = each(inputs, |x| &x.reports);
        // The records encoded on the parsing threads, when every input has them.
        let blocks: Vec<&Block> = inputs.iter().flat_map(|p| &p.blocks).collect();
        let inserted = if blocks.len() == reports.len() && !blocks.is_empty() {
            tx.insert_reports_encoded(&reports, &blocks, self.now)?
        } else {
            tx.insert_reports(&reports, self.now)?
        };
        drop(reports);
        for inserted in inserted {
            if let Inserted::New { records: n } | Inserted::Replaced { records: n } = inserted {
                records += n as u64;
            }
            tally(inserted, None);
        }
        for inserted in tx.insert_failures(&each(inputs, |x| &x.failure_reports), self.now)? {
            tally(inserted, Some(&mut failure_new));
        }
        for inserted in tx.insert_tls_reports(&each(inputs, |x| &x.tls_reports), self.now)? {
            tally(inserted, Some(&mut tls_new));
        }
        let rejected: Vec<RejectedInput<'_>> = inputs
            .iter()
            .filter(|p| !p.extracted.failures.is_empty())
            .map(|p| RejectedInput {
                origin: &p.origin,
                data: p.data.as_deref(),
                failures: &p.extracted.failures,
            })
            .collect();
        if !rejected.is_empty() {
            tx.keep_rejects(&rejected, self.now)?;
        }
        self.stats.inputs += inputs.len() as u64;
        self.stats.records += records;
        self.stats.failure_reports_new += failure_new;
        self.stats.tls_reports_new += tls_new;
        self.stats.rejected += rejected.len() as u64;
        for p in inputs {
            for f in &p.extracted.failures {
                on_event(Event::Rejected {
                    origin: &p.origin,
                    location: &f.location,
                    reason: &f.item.reason,
                });
            }
            on_event(Event::Done);
        }
        Ok(())
    }
}

/// Tries every kept reject again with the current code and limits. An input that now goes through
/// whole is forgotten; one that still fails is kept with its new reasons.
pub fn reprocess(
    store: &Store,
    options: &Options,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<Stats, StoreError> {
    let started = Instant::now();
    let keys = store.kept_keys()?;
    let mut stats = Stats::default();
    for key in keys {
        let Some(kept) = store.kept_input(&key)? else {
            continue;
        };
        let had_bytes = kept.data.is_some();
        if !had_bytes && kept.origin.starts_with("imap://") {
            // A message not downloaded (too large at the time): only the mailbox has it.
            stats.inputs += 1;
            stats.rejected += 1;
            on_event(Event::Rejected {
                origin: &kept.origin,
                location: "",
                reason: "kept without its bytes; raise --max-message-size and run                          `dmarc-warden fetch --full` to read it again",
            });
            continue;
        }
        let input = match kept.data {
            Some(data) => Input::Bytes {
                origin: kept.origin.clone(),
                data,
            },
            // Not kept (too large or unreadable at the time): read the origin again if it is a file.
            None => Input::File(kept.origin.clone().into()),
        };
        let processed = process(input, options, store.kind().encodes_blocks());
        let recovered = processed.extracted.failures.is_empty();
        // Still failing with the same bytes: `keep_reject` updates the row in place (attempts + 1,
        // first_seen kept). Recovered, or readable now and so kept under its content key: the old row
        // goes.
        let rekeyed = !had_bytes && processed.data.is_some();
        store.write(|tx| {
            Writer::new(&mut stats).write(tx, &processed, on_event)?;
            if recovered || rekeyed {
                tx.forget_reject(&kept.key)?;
            }
            Ok::<_, StoreError>(())
        })?;
        if recovered {
            stats.recovered += 1;
        }
    }
    store.end_run()?;
    stats.elapsed = started.elapsed();
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chunks_in_hand_hold_a_bounded_number_of_files_open() {
        assert_eq!(chunk_inputs(2), CHUNK_INPUTS);
        for threads in [0, 1, 2, 16, 64, 256, 1024] {
            let n = chunk_inputs(threads);
            assert!((1..=CHUNK_INPUTS).contains(&n), "{threads}: {n}");
            assert!(n * threads <= OPEN_INPUTS.max(threads), "{threads}: {n}");
        }
        let lengths: Vec<usize> = chunks(0..40, 2).map(|c| c.len()).collect();
        assert_eq!(lengths, [16, 16, 8]);
        let chunks: Vec<Vec<u32>> = chunks(0..5, 200).collect();
        assert_eq!(chunks, [vec![0], vec![1], vec![2], vec![3], vec![4]]);
    }
}
