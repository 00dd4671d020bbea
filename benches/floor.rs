//! The floor, and how far `ingest` is above it (issue 21).
//!
//! The floor is what the crates we use need just to read every file, unpack it (MIME, gzip, zip)
//! and tokenise its XML with quick-xml, in parallel, building nothing and storing nothing: the
//! crates called directly (mailparse, flate2, zip, quick-xml), not through our `unpack`'s walk,
//! but inflating deflate the cheapest way we know, as `unpack` does (`unpack::gunzip_whole`,
//! `inflate_whole`, `unzip_whole`: into the buffer the container announces, no zero-filling), so
//! that the floor is no higher than what `ingest` itself pays to unpack. Beside
//! it, in the same run and alternating with it round by round (so that the load of a shared
//! machine falls on both alike):
//!
//! - `extract`: the same, parsed into the model (`pipeline::extract`), still storing nothing;
//! - `ingest`: `pipeline::ingest` end to end into a fresh SQLite database.
//!
//! Two generated corpora: mixed containers (XML, gzip, zip, email; 1 to 39 records a report, as
//! `examples/gen-corpus.rs` writes) and large gzip reports (250 to 349 records). Prints for each
//! the median and best wall time, the CPU time of the process and of the calling thread (in
//! `ingest`, the single writer's), and the ratios to the floor: on a machine shared with other
//! work, the CPU ratio is the steadier figure. `ingest`'s wall time is also split into the run and
//! the close (the last checkpoint, which the floor does not pay and nothing overlaps); of the run,
//! the time opening (creating and migrating) the database took, beside the parsing threads, and
//! the time after the last input was parsed (the writer storing the last of them, alone).
//!
//! `cargo bench --bench floor` runs everything; arguments narrow it:
//! `cargo bench --bench floor -- [mixed|large] [floor|extract|ingest] [rounds=N] [nowarm]`. Sizes:
//! `FLOOR_MIXED` (reports, default 5,000) and `FLOOR_LARGE` (default 400); `FLOOR_DIR` keeps the
//! generated corpora there between runs; `CORPUS_DATES=ordered` gives the reports dates in the
//! order of the files, as a mailbox delivers them, rather than a year every 365 reports. One
//! stage, `rounds=1 nowarm` (no untimed first read to fill the page cache) is what a profiler
//! should run: `valgrind --tool=callgrind` counts the instructions of exactly that stage.

#[allow(dead_code)] // the IMAP helpers are for the tests
#[path = "support/corpus.rs"]
mod corpus;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dmarc_warden::fetch::{Input, Inputs};
use dmarc_warden::pipeline::{Options, chunks, extract, ingest_into};
use dmarc_warden::store::Location;
use dmarc_warden::unpack::{Content, Limits, sniff};
use flate2::read::{GzDecoder, ZlibDecoder};
use rayon::iter::{ParallelBridge, ParallelIterator};
use std::io::Read;

/// The allocator the executable uses (`src/main.rs`), so that these figures are the tool's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stage {
    Floor,
    Extract,
    Ingest,
}

const STAGES: [Stage; 3] = [Stage::Floor, Stage::Extract, Stage::Ingest];

struct Corpus {
    name: &'static str,
    dir: PathBuf,
    reports: usize,
    records: usize,
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test` (CI) runs this once, small, as a smoke test.
    let benching = std::env::args().any(|a| a == "--bench");
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let has = |s: &str| args.iter().any(|a| a == s);
    let rounds: usize = args
        .iter()
        .find_map(|a| a.strip_prefix("rounds=")?.parse().ok())
        .unwrap_or(if benching { 5 } else { 1 });
    let corpora: Vec<&str> = ["mixed", "large"].into_iter().filter(|c| has(c)).collect();
    let corpora = if corpora.is_empty() {
        vec!["mixed", "large"]
    } else {
        corpora
    };
    let stages: Vec<Stage> = STAGES
        .into_iter()
        .filter(|s| has(&format!("{s:?}").to_lowercase()))
        .collect();
    let stages = if stages.is_empty() {
        STAGES.to_vec()
    } else {
        stages
    };

    let temp = tempfile::tempdir().expect("temp dir");
    let base = std::env::var_os("FLOOR_DIR").map_or_else(|| temp.path().to_owned(), PathBuf::from);
    let size = |var: &str, default: usize| {
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    for name in corpora {
        let corpus = match name {
            "mixed" => prepare(
                &base,
                "mixed",
                size("FLOOR_MIXED", if benching { 5_000 } else { 50 }),
                corpus::write_corpus,
            ),
            _ => prepare(
                &base,
                "large",
                size("FLOOR_LARGE", if benching { 400 } else { 4 }),
                corpus::write_large_corpus,
            ),
        };
        run(&corpus, &stages, rounds, !has("nowarm"), temp.path());
    }
}

/// Generates the corpus under `base/NAME-REPORTS` unless it is there already.
fn prepare(
    base: &Path,
    name: &'static str,
    reports: usize,
    write: fn(&Path, usize) -> std::io::Result<usize>,
) -> Corpus {
    let dates = if corpus::dates_in_order() {
        "-dated"
    } else {
        ""
    };
    let dir = base.join(format!("{name}-{reports}{dates}"));
    let stamp = dir.join("records");
    let records = match std::fs::read_to_string(&stamp)
        .ok()
        .and_then(|s| s.trim().parse().ok())
    {
        Some(n) => n,
        None => {
            let _ = std::fs::remove_dir_all(&dir);
            let files = dir.join("files");
            let n = write(&files, reports).expect("corpus written");
            std::fs::write(&stamp, n.to_string()).expect("stamp written");
            n
        }
    };
    Corpus {
        name,
        dir: dir.join("files"),
        reports,
        records,
    }
}

fn run(corpus: &Corpus, stages: &[Stage], rounds: usize, warm: bool, scratch: &Path) {
    let bytes: u64 = walkdir::WalkDir::new(&corpus.dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    println!(
        "\n{} corpus: {} reports, {} records, {:.1} MB on disk, {} rounds",
        corpus.name,
        corpus.reports,
        corpus.records,
        bytes as f64 / 1e6,
        rounds
    );
    // Once untimed, so that every stage finds the files in the page cache.
    if warm {
        floor(&corpus.dir);
    }
    let mut times: Vec<(Stage, Vec<Times>)> = stages.iter().map(|s| (*s, Vec::new())).collect();
    // `ingest`'s wall time: the run (opening and creating the database beside the parsing
    // threads), the close (which checkpoints what the WAL still holds).
    let mut phases: Vec<[Duration; 4]> = Vec::new();
    for round in 0..rounds {
        // Each round starts with another stage, so none is always first after a pause.
        for i in 0..times.len() {
            let k = (i + round) % times.len();
            let stage = times[k].0;
            let (cpu0, thread0, t0) = (cpu_time(), thread_time(), Instant::now());
            match stage {
                Stage::Floor => {
                    floor(&corpus.dir);
                }
                Stage::Extract => {
                    assert_eq!(extract_all(&corpus.dir), corpus.records);
                }
                Stage::Ingest => {
                    let db = scratch.join(format!("{}-{round}.db", corpus.name));
                    let options = options();
                    let inputs =
                        Inputs::new(vec![corpus.dir.clone()], options.limits.max_message_size);
                    // The database made while the parsing threads begin, as `ingest` does.
                    let (store, stats) = ingest_into(
                        &Location::Sqlite(db),
                        inputs,
                        &options,
                        &mut |_| {},
                        &mut |_| {},
                    )
                    .expect("ingest");
                    let ran = t0.elapsed();
                    drop(store);
                    let tail = stats.elapsed.saturating_sub(stats.parsed);
                    phases.push([stats.opened, ran, t0.elapsed() - ran, tail]);
                    assert_eq!(stats.records as usize, corpus.records);
                    assert_eq!(stats.rejected, 0);
                }
            }
            times[k].1.push(Times {
                wall: t0.elapsed(),
                cpu: cpu_time().saturating_sub(cpu0),
                this_thread: thread_time().saturating_sub(thread0),
            });
            if stage == Stage::Ingest {
                drop_database(&scratch.join(format!("{}-{round}.db", corpus.name)));
            }
        }
    }
    // (median, best) of one measure over the rounds.
    let stat = |v: &[Times], f: fn(&Times) -> Duration| {
        let mut v: Vec<Duration> = v.iter().map(f).collect();
        v.sort();
        (v[v.len() / 2], v[0])
    };
    let floor = times
        .iter()
        .find(|(s, _)| *s == Stage::Floor)
        .map(|(_, t)| (stat(t, |x| x.wall), stat(t, |x| x.cpu)));
    println!(
        "  stage      wall: median    best    CPU: all  this thread   records/s   x floor: wall (best)    CPU"
    );
    for (stage, t) in &times {
        let (wall, best) = stat(t, |x| x.wall);
        let (cpu, _) = stat(t, |x| x.cpu);
        let (thread, _) = stat(t, |x| x.this_thread);
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
        let versus = floor.map_or(String::new(), |((fw, fb), (fc, _))| {
            format!(
                "{:>5.2} ({:>4.2})  {:>5.2}",
                ratio(wall, fw),
                ratio(best, fb),
                ratio(cpu, fc)
            )
        });
        println!(
            "  {:<9} {:>8.3} s {:>7.3} s {:>8.3} s {:>9.3} s {:>11.0}   {versus}",
            format!("{stage:?}").to_lowercase(),
            wall.as_secs_f64(),
            best.as_secs_f64(),
            cpu.as_secs_f64(),
            thread.as_secs_f64(),
            corpus.records as f64 / wall.as_secs_f64(),
        );
    }
    // Each stage's time over the floor's in the same round (the stages of a round run one after
    // the other, so a slower moment of this shared machine weighs on both): the median of those.
    let of_stage = |s: Stage| times.iter().find(|(t, _)| *t == s).map(|(_, t)| t);
    if let Some(floor) = of_stage(Stage::Floor) {
        for (stage, t) in times.iter().filter(|(s, _)| *s != Stage::Floor) {
            let mut ratios: Vec<f64> = (t.iter().zip(floor))
                .map(|(a, f)| a.wall.as_secs_f64() / f.wall.as_secs_f64())
                .collect();
            ratios.sort_by(f64::total_cmp);
            println!(
                "  {} x floor, round by round: median {:.2} (from {:.2} to {:.2})",
                format!("{stage:?}").to_lowercase(),
                ratios[ratios.len() / 2],
                ratios[0],
                ratios[ratios.len() - 1]
            );
        }
    }
    if !phases.is_empty() {
        let median = |k: usize| {
            let mut v: Vec<Duration> = phases.iter().map(|p| p[k]).collect();
            v.sort();
            v[v.len() / 2].as_secs_f64()
        };
        println!(
            "  ingest's wall time (medians): run {:.3} s (of which opening the database, beside \
             the parsing, {:.3} s; after the last input was parsed {:.3} s), close {:.3} s",
            median(1),
            median(0),
            median(3),
            median(2)
        );
    }
}

/// One stage's run: wall time, CPU time of the process, and CPU time of the calling thread (in
/// `ingest`, the writer's).
struct Times {
    wall: Duration,
    cpu: Duration,
    this_thread: Duration,
}

fn options() -> Options {
    Options {
        failure: Default::default(),
        limits: Limits::default(),
        threads: 0,
    }
}

/// Reads and parses (with `parse`) every input on a rayon pool of one thread per core, fed by the
/// same lazy input iterator and in the same chunks as `ingest`; sums what `parse` says. A file is
/// read as `ingest` reads it, on from the bytes the walk read to tell an mbox (`Input::read`:
/// into a buffer of the file's size, bounded).
fn parallel(dir: &Path, parse: impl Fn(&[u8]) -> usize + Sync) -> usize {
    let limit = Limits::default().max_message_size;
    parallel_inputs(dir, |input| parse(&input.read(limit).expect("read")))
}

/// Hands every input of `dir` to `each` on a rayon pool of one thread per core, fed by the same
/// lazy input iterator and in the same chunks as `ingest`; sums what `each` says.
fn parallel_inputs(dir: &Path, each: impl Fn(Input) -> usize + Sync) -> usize {
    let limits = Limits::default();
    let pool = rayon::ThreadPoolBuilder::new()
        .build()
        .expect("thread pool");
    let inputs = Inputs::new(vec![dir.to_owned()], limits.max_message_size);
    pool.install(|| {
        chunks(inputs, pool.current_num_threads())
            .par_bridge()
            .map(|chunk| chunk.into_iter().map(&each).sum::<usize>())
            .sum()
    })
}

/// The floor: read, unpack, tokenise. Returns the number of XML events seen.
///
/// Written here with the crates alone rather than with `unpack::walk`, so that it costs what they
/// need and no more: what `ingest` spends beyond it is ours to remove, in `unpack` as elsewhere.
fn floor(dir: &Path) -> usize {
    parallel(dir, |data| {
        let mut events = 0;
        unpack(data, 0, &mut |xml| events += tokenise(xml));
        events
    })
}

/// Every XML document inside `data`: gzip, zlib and zip decompressed into buffers of the size
/// they announce (bounded), MIME parts decoded by mailparse, to the depth `unpack` allows.
fn unpack(data: &[u8], depth: usize, xml: &mut dyn FnMut(&[u8])) {
    let limit = Limits::default().max_payload_size;
    if depth > dmarc_warden::unpack::MAX_NESTING {
        return;
    }
    let inflate = |reader: &mut dyn Read, hint: u64| {
        let mut out = Vec::with_capacity(hint.min(limit) as usize);
        reader
            .take(limit + 1)
            .read_to_end(&mut out)
            .ok()
            .map(|_| out)
    };
    match sniff(data) {
        Content::Gzip => {
            // ISIZE, the last four bytes: the size of the uncompressed data (modulo 2^32).
            let hint = data.last_chunk::<4>().map_or(0, |b| u32::from_le_bytes(*b));
            let inner = dmarc_warden::unpack::gunzip_whole(data, hint.into(), limit)
                .or_else(|| inflate(&mut GzDecoder::new(data), hint.into()));
            if let Some(inner) = inner {
                unpack(&inner, depth + 1, xml);
            }
        }
        Content::Zlib => {
            let inner = dmarc_warden::unpack::inflate_whole(data, true, 0, limit)
                .map(|(out, _)| out)
                .or_else(|| inflate(&mut ZlibDecoder::new(data), 0));
            if let Some(inner) = inner {
                unpack(&inner, depth + 1, xml);
            }
        }
        Content::Zip => {
            let Ok(mut archive) = zip::ZipArchive::new(std::io::Cursor::new(data)) else {
                return;
            };
            for i in 0..archive.len() {
                let Ok(mut entry) = archive.by_index(i) else {
                    continue;
                };
                let size = entry.size();
                let inner = dmarc_warden::unpack::unzip_whole(data, &entry, size, limit)
                    .or_else(|| inflate(&mut entry, size));
                if let Some(inner) = inner {
                    unpack(&inner, depth + 1, xml);
                }
            }
        }
        Content::Email => {
            if let Ok(mail) = mailparse::parse_mail(data) {
                parts(&mail, depth, xml);
            }
        }
        Content::Xml => xml(data),
        Content::Json | Content::Unknown => {}
    }
}

fn parts(part: &mailparse::ParsedMail<'_>, depth: usize, xml: &mut dyn FnMut(&[u8])) {
    if part.subparts.is_empty()
        && let Ok(body) = part.get_body_raw()
    {
        unpack(&body, depth + 1, xml);
    }
    for p in &part.subparts {
        parts(p, depth, xml);
    }
}

/// Every event of one XML document, as quick-xml reads it from the bytes (no UTF-8 check).
fn tokenise(xml: &[u8]) -> usize {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut events = 0;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) | Err(_) => return events,
            Ok(e) => {
                events += 1;
                std::hint::black_box(e);
            }
        }
    }
}

/// Read, unpack and parse into the model: the parsing side of `ingest`. Returns the records.
fn extract_all(dir: &Path) -> usize {
    parallel(dir, |data| {
        let extracted = extract(data, &Limits::default());
        assert!(extracted.failures.is_empty(), "{:?}", extracted.failures);
        extracted.reports.iter().map(|r| r.item.records.len()).sum()
    })
}

fn drop_database(db: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}

/// CPU time of the calling thread so far, to the nanosecond (Linux: `/proc/thread-self/schedstat`).
fn thread_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = stat.split_whitespace().next().and_then(|n| n.parse().ok());
    Duration::from_nanos(ns.unwrap_or(0))
}

/// User and system CPU time of this process so far, all threads (Linux: `/proc/self/stat`).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    // Clock ticks of 10 ms (USER_HZ is 100 on Linux).
    Duration::from_millis(fields.iter().sum::<u64>() * 10)
}
