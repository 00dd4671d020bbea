//! dmarc-warden: DMARC report processing, from mailbox to policy advice.
//!
//! Data flows one way through one module per stage: [`fetch`] (where inputs come from) → [`unpack`]
//! (MIME, gzip, zip; size limits) → [`parse`] (report XML) → [`store`] (SQLite or PostgreSQL) →
//! [`analyse`] (judgements) → [`present`] (stdout) and [`notify`] (webhooks, email). [`pipeline`] joins the
//! stages with a rayon pool and one database writer; [`cli`] turns arguments into a validated
//! [`cli::Config`]; [`model`] holds the plain data types, and the leaves [`domain`], [`secret`] and
//! [`time`] the normal form of a domain name, secrets and their reading, and dates. No top-level
//! module imports one that imports it back (`tests/tidy.rs`). See ARCHITECTURE.md for the invariants.

pub mod access;
pub mod analyse;
pub mod cli;
pub mod config;
pub mod domain;
pub mod fetch;
pub mod judge;
pub mod manual;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod parse;
pub mod pipeline;
pub mod present;
pub mod secret;
pub mod store;
pub mod time;
pub mod unpack;
pub mod web;

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use cli::{Action, Cli, Config};
use pipeline::mailbox::Notice;
use pipeline::{Event, Stats};
use store::Store;

/// Exit status: every input stored (or nothing to do).
pub const EXIT_OK: u8 = 0;
/// Exit status: the run finished, but some inputs were rejected (and kept).
pub const EXIT_REJECTED: u8 = 1;
/// Exit status: fatal error — bad arguments, unusable database.
pub const EXIT_FATAL: u8 = 2;

/// Most reject lines printed by one run; the rest are counted and left to `dmarc-warden rejects`.
const MAX_REJECT_LINES: u64 = 20;

/// Runs the command line given to the process.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_FATAL } else { EXIT_OK });
        }
    };
    match Config::from_cli(cli).and_then(execute) {
        Ok(code) => ExitCode::from(code),
        Err(e) if is_broken_pipe(&e) => ExitCode::from(EXIT_OK),
        Err(e) => {
            eprintln!("dmarc-warden: error: {e:#}");
            ExitCode::from(EXIT_FATAL)
        }
    }
}

/// Output piped into `head` and closed early is not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn execute(config: Config) -> anyhow::Result<u8> {
    let output = (config.quiet, config.verbose);
    let action = match config.action {
        Action::Login(login, options) => return oauth2_login(&login, &options),
        // Opens the database itself, beside its parsing threads.
        Action::Ingest {
            paths,
            options,
            retention,
        } => return ingest(&config.db, paths, &options, &retention, output),
        // The web outputs open the database read-only: they run beside a `fetch`.
        Action::Serve(serve) => return web_serve(&config.db, serve),
        Action::Report(report) => return web_report(&config.db, &report),
        // Documentation, from the clap definitions: no database.
        Action::Completions(shell) => {
            present::bytes(&manual::completions(shell))
                .context("cannot write to standard output")?;
            return Ok(EXIT_OK);
        }
        Action::ManPages(dir) => {
            let pages = manual::man_pages(&dir)
                .with_context(|| format!("cannot write the man pages into {}", dir.display()))?;
            if !config.quiet {
                eprintln!(
                    "dmarc-warden: {} man pages written to {}",
                    pages.len(),
                    dir.display()
                );
            }
            return Ok(EXIT_OK);
        }
        other => other,
    };
    // Listings and the judgements read a database that exists; writers create one.
    let how = match &action {
        Action::Reprocess { .. }
        | Action::Fetch { .. }
        | Action::Notify(_)
        | Action::Digest { .. }
        | Action::Check(..) => store::Open::Create,
        _ => store::Open::Existing,
    };
    let store = Store::open_at(&config.db, how)?;
    warn(store.warnings());
    match action {
        Action::Reprocess { options } => {
            let stats = with_progress(output, |notify| {
                pipeline::reprocess(&store, &options, &mut |e| notify(Notice::Input(e)))
                    .map_err(Into::into)
            })?;
            finish("reprocess", &stats, config.quiet)
        }
        Action::Fetch {
            accounts,
            options,
            notify,
            metrics_file,
            retention,
        } => {
            for warning in &accounts.warnings {
                eprintln!("dmarc-warden: {warning}");
            }
            let keys: Vec<String> = accounts.accounts.iter().map(|a| a.key()).collect();
            let _lock = lock_fetch(&store, &keys, &config.db)?;
            // --watch does not end: its retention is applied when it starts.
            if options.watch {
                apply_retention(&store, &retention, &config.db, config.quiet)?;
            }
            // Written when the accounts are done, or on the way out of a run that stopped early.
            let names = accounts.accounts.iter().map(|a| a.name.clone()).collect();
            let mut run = metrics::FetchRun::start(metrics_file, names);
            let mut total = Stats::default();
            let mut failed = 0;
            for account in &accounts.accounts {
                let stats = with_progress(output, |notify| {
                    pipeline::mailbox::fetch_account(&store, account, &options, notify)
                        .map_err(Into::into)
                });
                run.account(&account.name, stats.as_ref().ok());
                match stats {
                    Ok(stats) => total.add(&stats),
                    // One account failing does not keep the others from being read.
                    Err(e) if accounts.accounts.len() > 1 => {
                        eprintln!("dmarc-warden: error: account {}: {e:#}", account.name);
                        failed += 1;
                    }
                    Err(e) => return Err(e),
                }
            }
            run.finish();
            let code = finish("fetch", &total, config.quiet)?;
            let code = if failed > 0 { EXIT_FATAL } else { code };
            let code = match notify {
                Some(n) => {
                    let _lock = notify::lock(&store, &config.db)?;
                    code.max(notify::notify(&store, &n)?)
                }
                None => code,
            };
            // After the notices, which judge what is stored now.
            if !options.watch {
                apply_retention(&store, &retention, &config.db, config.quiet)?;
            }
            Ok(code)
        }
        Action::Notify(n) => {
            let _lock = notify::lock(&store, &config.db)?;
            notify::notify(&store, &n)
        }
        Action::Digest {
            config,
            days,
            domain,
        } => notify::digest(&store, &config, days, domain.as_deref()),
        Action::Domains(filter, format) => list(&store.domains(&filter)?, format),
        Action::Sources(filter, format) => list(&store.sources(&filter)?, format),
        Action::Reports(filter, format) => {
            let mut read = Ok(());
            present::list_each(format, |push| {
                read = store.reports_each(&filter, &mut |r| push(&r));
            })
            .context("cannot write to standard output")?;
            read?;
            Ok(EXIT_OK)
        }
        Action::Failures(filter, source_ip, format) => {
            list(&store.failures(&filter, source_ip.as_deref())?, format)
        }
        Action::Tls(filter, format) => list(&store.tls(&filter)?, format),
        Action::Senders(judge) => {
            let rows: Vec<_> = judge::each_domain_collected(
                &store,
                // Senders only: no advice, so no row's days of begin.
                &judge::Scope {
                    detail: store::Detail::Sums,
                    ..cli_scope(&judge)
                },
                &judge.judgement,
                judge.resolve,
                present::unanswered_lookups,
                |_, judged| {
                    Ok::<_, store::StoreError>(
                        judged
                            .senders
                            .into_iter()
                            .map(|s| s.summary)
                            .collect::<Vec<_>>(),
                    )
                },
            )?
            .into_iter()
            .flatten()
            .collect();
            list(
                &rows,
                present::Output {
                    format: judge.format,
                    wide: judge.wide,
                },
            )
        }
        Action::Advise(judge, dns) => {
            let dns = dns
                .map(|d| fetch::probe::dns::Dns::new(d.resolver, d.timeout))
                .transpose()?;
            let advice = judge::each_domain_collected(
                &store,
                &cli_scope(&judge),
                &judge.judgement,
                judge.resolve,
                present::unanswered_lookups,
                |store, judged| {
                    // Without DNS, the starting point `each_domain` took (the stored check or the
                    // reports) is the one.
                    let live = match &dns {
                        Some(dns) => Some(judge::starting_point(store, &judged.policy, Some(dns))?),
                        None => None,
                    };
                    Ok::<_, anyhow::Error>(judge::advise_domain(
                        live.as_ref().unwrap_or(&judged.start),
                        &judged.policy,
                        &judged.evidence,
                        &judged.senders,
                        &judge.judgement,
                    ))
                },
            )?;
            present::advice(&advice, judge.format).context("cannot write to standard output")?;
            Ok(EXIT_OK)
        }
        Action::Check(options, format) => {
            let checks = pipeline::check::run(&store, &options)?;
            present::check(&checks, format).context("cannot write to standard output")?;
            let errors = checks
                .iter()
                .any(|c| c.worst() == analyse::check::Severity::Error);
            Ok(if errors { EXIT_REJECTED } else { EXIT_OK })
        }
        Action::Rejects(format) => list(&store.rejects()?, format),
        Action::Prune {
            retention,
            dry_run,
            format,
        } => {
            let _lock = lock_prune(&store, &config.db)?;
            let cutoffs = retention.cutoffs(time::now());
            let pruned = store.prune(cutoffs, dry_run)?;
            present::pruned(&pruned, &cutoffs, dry_run, format)
                .context("cannot write to standard output")?;
            Ok(EXIT_OK)
        }
        Action::Migrate(to) => {
            let started = std::time::Instant::now();
            let target = Store::open_at(&to, store::Open::Create)?;
            warn(target.warnings());
            let counts = store.copy_to(&target)?;
            present::copied(&config.db, &to, &counts, started.elapsed())
                .context("cannot write to standard output")?;
            Ok(EXIT_OK)
        }
        // Carried out above, before (or without) this store.
        Action::Ingest { .. }
        | Action::Login(..)
        | Action::Serve(_)
        | Action::Report(_)
        | Action::Completions(_)
        | Action::ManPages(_) => Ok(EXIT_OK),
    }
}

/// `serve`: until stopped.
fn web_serve(db: &store::Location, serve: web::ServeConfig) -> anyhow::Result<u8> {
    web::serve(db, serve)?;
    Ok(EXIT_OK)
}

/// `report --html`.
fn web_report(db: &store::Location, report: &web::ReportConfig) -> anyhow::Result<u8> {
    let store = Store::open_at(db, store::Open::ReadOnly)?;
    warn(store.warnings());
    web::report::write(&store, report)?;
    Ok(EXIT_OK)
}

/// Warnings about the database's settings (a password file others can read), on stderr.
pub(crate) fn warn(warnings: &[String]) {
    for w in warnings {
        eprintln!("dmarc-warden: {w}");
    }
}

/// `m` locked, whether or not a thread panicked holding it.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `ingest`: the inputs at `paths` into the database at `db`, opened (made when new) while the
/// parsing threads begin ([`pipeline::ingest_into`]); then the retention, if any.
fn ingest(
    db: &store::Location,
    paths: Vec<std::path::PathBuf>,
    options: &pipeline::Options,
    retention: &store::Retention,
    output: (bool, bool),
) -> anyhow::Result<u8> {
    let inputs = fetch::Inputs::new(paths, options.limits.max_message_size);
    let mut store = None;
    let stats = with_progress(output, |notify| {
        let (opened, stats) = pipeline::ingest_into(
            db,
            inputs,
            options,
            &mut |store| warn(store.warnings()),
            &mut |e| notify(Notice::Input(e)),
        )?;
        store = Some(opened);
        Ok(stats)
    })?;
    let code = finish("ingest", &stats, output.0)?;
    if let Some(store) = &store {
        apply_retention(store, retention, db, output.0)?;
    }
    Ok(code)
}

/// `login`: what to do on stderr, the refresh token into its file.
fn oauth2_login(
    login: &config::Login,
    options: &fetch::oauth2::login::Options,
) -> anyhow::Result<u8> {
    for warning in &login.warnings {
        eprintln!("dmarc-warden: {warning}");
    }
    fetch::oauth2::login::login(
        &login.settings,
        &login.refresh_token_file,
        options,
        &mut |line| eprintln!("{line}"),
    )
    .with_context(|| format!("account {}", login.account))?;
    eprintln!(
        "dmarc-warden: refresh token stored in {}; `dmarc-warden fetch` can now run unattended",
        login.refresh_token_file.display()
    );
    Ok(EXIT_OK)
}

fn list<T: present::Tabular>(rows: &[T], output: impl Into<present::Output>) -> anyhow::Result<u8> {
    present::list(rows, output).context("cannot write to standard output")?;
    Ok(EXIT_OK)
}

fn finish(command: &str, stats: &Stats, quiet: bool) -> anyhow::Result<u8> {
    if !quiet {
        present::summary(command, stats).context("cannot write to standard output")?;
    }
    Ok(if stats.rejected > 0 {
        EXIT_REJECTED
    } else {
        EXIT_OK
    })
}

/// What `senders` and `advise` judge: each domain over the window before its own latest report.
fn cli_scope(judge: &cli::Judge) -> judge::Scope {
    judge::Scope {
        domain: judge.domain.clone().map(String::from),
        days: judge.days,
        ..judge::Scope::default()
    }
}

/// Holds the store's lock on the mailboxes `accounts` for the run ([`Store::lock_mailboxes`]: the
/// SQLite database's `<db>.fetch-lock`, PostgreSQL's lease per mailbox): two fetches of one
/// mailbox would fetch and move the same messages, so the second stops with a clear message.
fn lock_fetch(
    store: &Store,
    accounts: &[String],
    db: &store::Location,
) -> anyhow::Result<store::StoreLock> {
    busy(store.lock_mailboxes(accounts), |lock| {
        format!(
            "another `dmarc-warden fetch` is running on {db} (it holds {lock}); this run did nothing"
        )
    })
}

/// Holds the store's lock `prune` while prune runs: two at once would only get in each other's way.
fn lock_prune(store: &Store, db: &store::Location) -> anyhow::Result<store::StoreLock> {
    hold_lock(store, "prune", |lock| {
        format!(
            "another `dmarc-warden prune` is running on {db} (it holds {lock}); this run did nothing"
        )
    })
}

/// The nightly run's retention (the config's `[retention]`), when set: prune, and one line on
/// stdout (unless `--quiet`). Another prune running meanwhile does the work; this one says so.
fn apply_retention(
    store: &Store,
    retention: &store::Retention,
    db: &store::Location,
    quiet: bool,
) -> anyhow::Result<()> {
    if !retention.is_set() {
        return Ok(());
    }
    let _lock = match lock_prune(store, db) {
        Ok(lock) => lock,
        Err(e) => {
            eprintln!("dmarc-warden: retention not applied: {e:#}");
            return Ok(());
        }
    };
    let cutoffs = retention.cutoffs(time::now());
    let pruned = store.prune(cutoffs, false)?;
    if !quiet {
        present::pruned_line(&pruned, &cutoffs).context("cannot write to standard output")?;
    }
    Ok(())
}

/// Takes the store's lock `name` ([`Store::try_lock`]) for as long as the returned guard lives;
/// `busy` says what to tell the user when another process holds it (given what it holds).
pub(crate) fn hold_lock(
    store: &Store,
    name: &str,
    busy_text: impl FnOnce(&str) -> String,
) -> anyhow::Result<store::StoreLock> {
    busy(store.try_lock(name), busy_text)
}

fn busy(
    taken: Result<store::StoreLock, store::StoreError>,
    busy: impl FnOnce(&str) -> String,
) -> anyhow::Result<store::StoreLock> {
    match taken {
        Ok(lock) => Ok(lock),
        Err(store::StoreError::Busy { lock }) => Err(anyhow::anyhow!(busy(&lock))),
        Err(e) => Err(e.into()),
    }
}

/// Runs `work` with a progress spinner (a bar once the number of inputs is known) on stderr when it
/// is a terminal, and names each reject on stderr (the first [`MAX_REJECT_LINES`]; the rest are
/// counted).
fn with_progress(
    (quiet, verbose): (bool, bool),
    work: impl FnOnce(&mut dyn FnMut(Notice<'_>)) -> anyhow::Result<Stats>,
) -> anyhow::Result<Stats> {
    let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {pos} inputs read ({per_sec}) {elapsed}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    });
    let say = |line: String| match &bar {
        Some(bar) => bar.println(line),
        None => eprintln!("{line}"),
    };
    let mut rejects = 0u64;
    let mut notify = |notice: Notice<'_>| match notice {
        Notice::Input(Event::Done) => {
            if let Some(bar) = &bar {
                bar.inc(1);
            }
        }
        Notice::Input(Event::Rejected {
            origin,
            location,
            reason,
        }) => {
            rejects += 1;
            if rejects > MAX_REJECT_LINES {
                return;
            }
            let place = if location.is_empty() {
                origin.to_owned()
            } else {
                format!("{origin} > {location}")
            };
            say(format!("dmarc-warden: rejected {place}: {reason}"));
        }
        Notice::Found {
            folder,
            uidvalidity,
            after,
            count,
        } => {
            if verbose {
                say(format!(
                    "dmarc-warden: {folder} (UIDVALIDITY {uidvalidity}): {count} messages after UID {after}"
                ));
            }
            if let Some(bar) = &bar {
                if bar.length().is_none() {
                    bar.set_length(0);
                    bar.set_style(
                        indicatif::ProgressStyle::with_template(
                            "{bar:40} {pos}/{len} messages ({per_sec}) {elapsed}",
                        )
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                    );
                }
                bar.inc_length(count);
            }
        }
        Notice::Retrying { reason, delay } => say(format!(
            "dmarc-warden: {reason}; reconnecting in {} s",
            delay.as_secs()
        )),
        Notice::Round(stats) => {
            if !quiet {
                let _ = present::summary("fetch", stats);
            }
        }
    };
    let stats = work(&mut notify);
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    if verbose && let Some(peak) = peak_memory() {
        eprintln!("dmarc-warden: peak memory (VmHWM) {peak}");
    }
    if rejects > MAX_REJECT_LINES {
        eprintln!(
            "dmarc-warden: … and {} more rejected parts; `dmarc-warden rejects` lists them all",
            rejects - MAX_REJECT_LINES
        );
    }
    stats
}

/// The process's peak resident set size, where the system tells it (Linux).
fn peak_memory() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line["VmHWM:".len()..].trim().to_owned())
}
