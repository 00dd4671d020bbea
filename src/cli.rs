//! The command line: clap definitions (their `///` docs are the `--help` text), then validation into a
//! [`Config`] that the rest of the program trusts. Nothing here touches the database or inputs.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::domain::Domain;
use crate::model::Filter;
use crate::present::{Format, Output};
use crate::secret::Secret;
use crate::unpack::Limits;

/// Collect DMARC reports (aggregate, failure, SMTP TLS) into SQLite (or a shared PostgreSQL), find who
/// sends as you, and learn when it is safe to tighten your DMARC policy.
///
/// Typical use: `dmarc-warden fetch` every night from the dmarc@ mailbox over IMAP, or
/// `dmarc-warden ingest ~/reports/` (files, directories, Maildir, mbox, or `-` for standard input;
/// gzip, zip and mail attachments are unpacked); then `dmarc-warden senders` to see who sends as each
/// domain and `dmarc-warden advise` for the next policy step and the record to publish.
///
/// Exit status: 0 all inputs stored; 1 some inputs rejected (kept, see `rejects`); 2 fatal error
/// (bad arguments, database unusable; for `fetch` also connection, TLS or login failures).
#[derive(Debug, Parser)]
#[command(name = "dmarc-warden", version, max_term_width = 100)]
pub struct Cli {
    /// SQLite database file [default: $XDG_DATA_HOME/dmarc-warden/dmarc-warden.db], or a
    /// PostgreSQL database: postgres://USER@HOST[:PORT]/DB[?sslmode=verify-full&sslrootcert=CA].
    /// Its password is never in the URL: DMARC_WARDEN_DB_PASSWORD_FILE names a file holding
    /// it, else ~/.pgpass (or PGPASSFILE) is read.
    #[arg(long, global = true, env = "DMARC_WARDEN_DB", value_name = "PATH|URL")]
    pub db: Option<PathBuf>,

    /// No summary line and no progress bar; failures are still reported on stderr.
    #[arg(long, short, global = true, env = "DMARC_WARDEN_QUIET")]
    pub quiet: bool,

    /// More detail on stderr: each folder's state and what is fetched, and peak memory at the end.
    #[arg(
        long,
        short,
        global = true,
        env = "DMARC_WARDEN_VERBOSE",
        conflicts_with = "quiet"
    )]
    pub verbose: bool,

    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per run: the size of the fetch variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read report files, directories, Maildirs, mbox files or stdin (`-`) into the database.
    ///
    /// Content is recognised by its bytes: XML, gzip, zlib, zip, and emails carrying any of these, nested
    /// in any order. A report already stored (same reporter, report id and domain) is counted as a
    /// duplicate and not stored again, so re-running over the same files is safe. Inputs that fail are
    /// kept in the database with the reason; see `rejects` and `reprocess`.
    Ingest {
        /// Files or directories to read; `-` reads standard input.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        work: WorkArgs,
        /// Config file whose [retention] table, when it has one, is applied after ingesting, as
        /// `prune` does [default: $XDG_CONFIG_HOME/dmarc-warden/config.toml, if present].
        #[arg(long, env = "DMARC_WARDEN_CONFIG", value_name = "PATH")]
        config: Option<PathBuf>,
    },
    /// Read the DMARC mailbox over IMAP (TLS) and store what its messages carry.
    ///
    /// Run it from cron or a systemd timer: it remembers, per account and folder, the UIDVALIDITY and
    /// the highest UID stored, and next time fetches only newer messages, so it is safe to run at any
    /// time. Messages are read with BODY.PEEK[] (not marked \Seen unless --mark-seen), and moved to
    /// --archive / --invalid only after their reports are committed. Lost connections are retried.
    ///
    /// Settings come from the config file (TOML, one [[account]] table per mailbox; see the README),
    /// then the environment, then flags. The password is never taken as a flag: set
    /// DMARC_WARDEN_IMAP_PASSWORD or DMARC_WARDEN_IMAP_PASSWORD_FILE, or password_file /
    /// password_command in the config file.
    ///
    /// Microsoft 365 and Gmail: --auth oauth2 logs in with SASL XOAUTH2 / OAUTHBEARER and an OAuth2
    /// access token from client credentials (Microsoft 365 app-only), a refresh token file written
    /// by `dmarc-warden login`, or a token command; see the --oauth2-* settings and the README.
    ///
    /// Exit status as for `ingest`: 0 all stored, 1 some messages rejected (kept; see `rejects`),
    /// 2 fatal (connection, TLS, login, database, or another fetch running).
    Fetch(FetchArgs),
    /// Sign in to an OAuth2 provider once, in a browser, and store the refresh token `fetch` uses.
    ///
    /// For Gmail and delegated Microsoft 365 access (`auth = "oauth2"` with a refresh token file).
    /// Prints an address to open in a browser; after you sign in, the provider sends the browser
    /// back to http://127.0.0.1:PORT/ (http://localhost:PORT/ for Microsoft), where this command
    /// waits (authorisation code with PKCE). With --device, prints an address and a code to enter on
    /// any device instead. The refresh token is written to oauth2_refresh_token_file /
    /// DMARC_WARDEN_OAUTH2_REFRESH_TOKEN_FILE (mode 0600). Run it again when the provider has
    /// revoked the token. Exit status: 0 stored, 2 failed.
    Login(LoginArgs),
    /// Try every kept reject again (after upgrading dmarc-warden, or with higher limits).
    Reprocess {
        #[command(flatten)]
        work: WorkArgs,
    },
    /// Per policy domain: reports, messages, DMARC pass rate, period covered, policy published.
    Domains {
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Per sending IP: messages and how many passed DMARC, aligned DKIM and aligned SPF.
    ///
    /// One row per policy domain, source IP and header From (in lower case: `Example.COM` and
    /// `example.com` are one From), most messages first; REPORTS counts each report once.
    Sources {
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Failure (forensic, ARF) reports, newest first: which message failed, from where, and how.
    ///
    /// Abuse, fraud and opt-out ARF complaints are listed too, told apart by feedback_type.
    /// --since / --until compare with the Arrival-Date.
    Failures {
        /// Only reports about mail from this source IP.
        #[arg(long, value_name = "IP")]
        source_ip: Option<String>,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// SMTP TLS reports (RFC 8460) per policy domain and MX: sessions, failures and their types.
    ///
    /// Sessions that succeeded and failed, the failure rate, the most frequent failure result types,
    /// and the reporting organisations.
    Tls {
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Who sends as each domain, classified aligned / needs_fixing / forwarded / unauthorised.
    ///
    /// Sources are grouped into senders (your own servers, known services, forwarders, the rest),
    /// each with a one-line reason that names what to fix. Senders are named from the SPF and DKIM domains in the reports (reduced to the registrable
    /// domain), the built-in map of sending services and your [[sender]] tables in the config file,
    /// which override the guess.
    Senders(JudgeArgs),
    /// When it is safe to tighten each domain's policy, and the DMARC record to publish.
    ///
    /// The next step on none → quarantine; t=y; pct=0 → quarantine → reject; t=y; pct=0 → reject →
    /// sp=/np= (each means the same at RFC 9989 and RFC 7489 receivers), with the evidence (days,
    /// reporters, messages), the blocking senders and their fix. A tightening that hurts legitimate
    /// mail is reported first, with who it hurts. The current policy is the DMARC record published
    /// in DNS now (its tags are kept in the record to publish); with --offline, or when DNS cannot
    /// answer, the one the last `check` stored, else the one the latest reports saw. Thresholds and
    /// the ladder: the config file's [advice] table.
    Advise(AdviseArgs),
    /// The stored reports, oldest first.
    Reports {
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Send what changed since the last notice: new unauthorised sources, failing senders, a drop in
    /// the pass rate, changed advice, silent reporters, TLS failures, and what `check` found in DNS.
    ///
    /// Events are judged from the stored reports with the rules of `senders` and `advise` and the
    /// thresholds of the config file's [notify] table; each is sent once, and again only after the
    /// problem went away and came back. Channels are the config's [[notify.channel]] tables (webhook,
    /// email over SMTP); with none, the notices are printed (nothing when nothing changed, so cron
    /// mails only news). A notice a channel could not take is kept and sent on the next run.
    ///
    /// Exit status: 0 all delivered (or nothing to send); 1 a channel failed (after the others were
    /// tried; its notices are kept); 2 fatal error.
    Notify(NotifyArgs),
    /// A summary of the last N days per domain: volume, pass rate and its change, senders by class,
    /// and the advice; sent to the [[notify.channel]]s, or printed when there are none.
    ///
    /// Exit status as for `notify`.
    Digest(DigestArgs),
    /// What each domain publishes (DMARC, SPF, DKIM, MX TLS, MTA-STS, TLS-RPT), checked.
    ///
    /// Also the external report authorisation records of rua/ruf destinations. Per domain, findings
    /// with a severity (ok, info, warning, error), a message and the fix. DNS answers are joined
    /// with the stored reports: the policy the latest reports saw, the DKIM selectors they show
    /// signing, the sources passing DKIM that SPF does not authorise, whether TLS reports arrive. Each MX host is tried over SMTP on port 25 (STARTTLS, TLS 1.2+, the
    /// certificate). A DNS failure is a finding, not an error. Results are kept in the database.
    ///
    /// Exit status: 0 no error finding; 1 some error finding; 2 fatal (bad arguments, database,
    /// CA file).
    Check(CheckArgs),
    /// A web dashboard over the database, read-only (runs beside a nightly `fetch`).
    ///
    /// Pages: an overview of every domain, a page per domain (daily chart, senders, advice, failure
    /// and TLS reports) and per sender (source IPs, results, the fix); `?from=`/`?to=` dates and
    /// `?domain=` stay in the URL. `/api/…` serves the same JSON as the listing commands'
    /// `--format json`; `/metrics` the figures for Prometheus. Nothing is loaded from the network.
    /// Listening on an address other than loopback needs a password (DMARC_WARDEN_WEB_PASSWORD_FILE;
    /// HTTP Basic, any user name) or users (DMARC_WARDEN_WEB_HTPASSWD, each seeing the domains of
    /// their [web.scopes]).
    Serve(ServeArgs),
    /// Write a report to read or print: one self-contained HTML file (inline CSS and SVG charts).
    ///
    /// Per domain: the DMARC pass rate and daily volume by sender class, the senders, the blockers
    /// and the DMARC record to publish next, over the advice window.
    Report(ReportArgs),
    /// Print the completion script for a shell (bash, zsh, fish, elvish, powershell).
    ///
    /// E.g. `dmarc-warden completions bash > ~/.local/share/bash-completion/completions/dmarc-warden`;
    /// the Debian package installs them for bash, zsh and fish.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages (dmarc-warden.1 and one per subcommand) into DIR; for packaging.
    #[command(hide = true)]
    ManPages {
        /// Directory to write them into (made if missing).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Inputs that could not be stored, with the reason; `reprocess` retries them.
    Rejects {
        /// Output format.
        #[arg(long, value_enum, default_value_t, env = "DMARC_WARDEN_FORMAT")]
        format: Format,
        /// Every column, nothing cut (the table is then wider than the terminal).
        #[arg(long)]
        wide: bool,
    },
    /// Remove reports older than a number of days, with their records, rollups and kept rejects.
    ///
    /// Aggregate and SMTP TLS reports whose period ended before the first UTC midnight at or after
    /// DAYS days ago go (so only reports ending in the last DAYS days remain), with their records
    /// and rollups; failure reports (personal data: addresses, subjects, headers) by their arrival
    /// date under --failures-older-than; kept rejects by when they were first kept, under the
    /// shorter of the two. Prints what went, per kind, and the day it ended before. The config's
    /// [retention] table gives the limits when the flags do not, and the nightly `fetch` and
    /// `ingest` apply it. SQLite deletes in small batches, so `serve` and `fetch` go on beside it;
    /// PostgreSQL drops whole month partitions of records. Exit status: 0 done; 2 failed.
    Prune(PruneArgs),
    /// Copy the whole database (--db) into another, of either kind: SQLite to PostgreSQL and back.
    ///
    /// The target must be empty (it is created, and its schema made, when missing). Everything is
    /// copied in one transaction; each table's rows are then counted in both databases, and any
    /// difference undoes the copy. Prints each table's count. Exit status: 0 copied; 2 nothing
    /// copied (the target is not empty, or a database failed).
    Migrate {
        /// The target: a file path or a postgres:// URL, as --db.
        #[arg(long, value_name = "PATH|URL")]
        to: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove aggregate and TLS reports that ended more than DAYS days ago [default: the config's
    /// retention.older_than_days; none: no limit].
    #[arg(long, value_name = "DAYS")]
    pub older_than: Option<u32>,
    /// Remove failure reports that arrived more than DAYS days ago [default: the config's
    /// retention.failures_older_than_days, else --older-than].
    #[arg(long, value_name = "DAYS")]
    pub failures_older_than: Option<u32>,
    /// Count what would go, and remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Config file with a [retention] table [default: $XDG_CONFIG_HOME/dmarc-warden/config.toml,
    /// if present].
    #[arg(long, env = "DMARC_WARDEN_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t, env = "DMARC_WARDEN_FORMAT")]
    pub format: Format,
}

impl PruneArgs {
    fn action(self) -> anyhow::Result<Action> {
        for (flag, days) in [
            ("--older-than", self.older_than),
            ("--failures-older-than", self.failures_older_than),
        ] {
            if days == Some(0) {
                bail!("{flag} must be at least 1 day");
            }
        }
        let config = crate::config::retention(self.config.as_deref())?;
        let retention = crate::store::Retention {
            older_than: self.older_than.or(config.older_than),
            failures_older_than: self.failures_older_than.or(config.failures_older_than),
        };
        if !retention.is_set() {
            bail!(
                "prune needs a limit: --older-than DAYS or --failures-older-than DAYS, or \
                 older_than_days in the config's [retention] table"
            );
        }
        Ok(Action::Prune {
            retention,
            dry_run: self.dry_run,
            format: self.format,
        })
    }
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Config file [default: $XDG_CONFIG_HOME/dmarc-warden/config.toml, if present].
    #[arg(long, env = "DMARC_WARDEN_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Only this account of the config file (by its `name`, or `#N` for the N-th).
    #[arg(long, env = "DMARC_WARDEN_IMAP_ACCOUNT", value_name = "NAME")]
    pub account: Option<String>,
    /// IMAP server host name or address.
    #[arg(long, env = "DMARC_WARDEN_IMAP_HOST", value_name = "HOST")]
    pub host: Option<String>,
    /// IMAP server port [default: 993, or 143 with --tls starttls].
    #[arg(long, env = "DMARC_WARDEN_IMAP_PORT", value_name = "PORT")]
    pub port: Option<u16>,
    /// User name to log in as.
    #[arg(long, env = "DMARC_WARDEN_IMAP_USER", value_name = "USER")]
    pub user: Option<String>,
    /// How the connection is secured [default: implicit].
    #[arg(long, value_enum, env = "DMARC_WARDEN_IMAP_TLS")]
    pub tls: Option<crate::fetch::imap::Tls>,
    /// An extra trusted CA certificate (PEM), for a server with a private certificate.
    #[arg(long, env = "DMARC_WARDEN_IMAP_CA_FILE", value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
    /// Folders to read, comma-separated [default: INBOX].
    #[arg(
        long,
        env = "DMARC_WARDEN_IMAP_FOLDERS",
        value_delimiter = ',',
        value_name = "FOLDERS"
    )]
    pub folders: Option<Vec<String>>,
    /// Move processed messages to this folder (created if missing) [default: leave them].
    #[arg(long, env = "DMARC_WARDEN_IMAP_ARCHIVE", value_name = "FOLDER")]
    pub archive: Option<String>,
    /// Move rejected messages to this folder (created if missing) [default: leave them].
    #[arg(long, env = "DMARC_WARDEN_IMAP_INVALID", value_name = "FOLDER")]
    pub invalid: Option<String>,
    /// Set \Seen on messages once stored.
    #[arg(long, env = "DMARC_WARDEN_IMAP_MARK_SEEN")]
    pub mark_seen: bool,
    /// DANGEROUS: do not verify the server's TLS certificate. Anyone on the path can then read the
    /// password; use --ca-file for a private CA instead.
    #[arg(long, env = "DMARC_WARDEN_IMAP_DANGER_ACCEPT_INVALID_CERTS")]
    pub danger_accept_invalid_certs: bool,
    /// Seconds each network operation may take before the connection is given up [default: 60].
    #[arg(long, env = "DMARC_WARDEN_IMAP_TIMEOUT", value_name = "SECS")]
    pub timeout: Option<u64>,
    /// How to log in [default: password].
    #[arg(long, value_enum, env = "DMARC_WARDEN_IMAP_AUTH")]
    pub auth: Option<crate::config::Auth>,
    #[command(flatten)]
    pub oauth2: OAuth2Args,
    /// Most messages fetched with one command (memory holds about three such batches).
    #[arg(
        long,
        default_value_t = 200,
        env = "DMARC_WARDEN_IMAP_BATCH",
        value_name = "N"
    )]
    pub batch: usize,
    /// Stay connected and ingest new mail as it arrives (IMAP IDLE on the first folder).
    #[arg(long)]
    pub watch: bool,
    /// Read every message again, not only those newer than last time (stored reports count as
    /// duplicates): after raising a limit, or to rebuild a database.
    #[arg(long)]
    pub full: bool,
    /// After fetching, send what changed since the last notice, as `dmarc-warden notify` does (not
    /// with --watch, which does not end: run `notify` from a timer instead).
    #[arg(long, env = "DMARC_WARDEN_NOTIFY", conflicts_with = "watch")]
    pub notify: bool,
    /// Write the run's figures here when it ends (last success per account, messages fetched,
    /// reports stored, rejects, duration), in the Prometheus text format for node_exporter's
    /// textfile collector; written to a temporary file and renamed, so never half written.
    #[arg(
        long,
        env = "DMARC_WARDEN_METRICS_FILE",
        value_name = "PATH",
        conflicts_with = "watch"
    )]
    pub metrics_file: Option<PathBuf>,
    #[command(flatten)]
    pub work: WorkArgs,
}

/// An account's OAuth2 settings (`--auth oauth2`). The client secret is never a flag: set
/// DMARC_WARDEN_OAUTH2_CLIENT_SECRET_FILE (or DMARC_WARDEN_OAUTH2_CLIENT_SECRET).
#[derive(Debug, Args)]
pub struct OAuth2Args {
    /// Who issues the tokens: microsoft (needs the tenant), google, or generic (needs the token URL).
    #[arg(long, value_enum, env = "DMARC_WARDEN_OAUTH2_PROVIDER")]
    pub oauth2_provider: Option<crate::fetch::oauth2::Provider>,
    /// Microsoft Entra tenant: its id or one of its domains.
    #[arg(long, env = "DMARC_WARDEN_OAUTH2_TENANT", value_name = "TENANT")]
    pub oauth2_tenant: Option<String>,
    /// The app's client id.
    #[arg(long, env = "DMARC_WARDEN_OAUTH2_CLIENT_ID", value_name = "ID")]
    pub oauth2_client_id: Option<String>,
    /// File holding the client secret (client-credentials grant; Google's login needs it too).
    #[arg(
        long,
        env = "DMARC_WARDEN_OAUTH2_CLIENT_SECRET_FILE",
        value_name = "PATH"
    )]
    pub oauth2_client_secret_file: Option<PathBuf>,
    /// Scopes, space-separated [default: the provider's IMAP scope].
    #[arg(long, env = "DMARC_WARDEN_OAUTH2_SCOPE", value_name = "SCOPES")]
    pub oauth2_scope: Option<String>,
    /// File holding the refresh token (written by `login`, rewritten when the provider rotates it).
    #[arg(
        long,
        env = "DMARC_WARDEN_OAUTH2_REFRESH_TOKEN_FILE",
        value_name = "PATH"
    )]
    pub oauth2_refresh_token_file: Option<PathBuf>,
    /// A command (run with sh -c) that prints an access token, instead of asking a token endpoint.
    #[arg(
        long,
        env = "DMARC_WARDEN_OAUTH2_TOKEN_COMMAND",
        value_name = "COMMAND",
        hide_env_values = true
    )]
    pub oauth2_token_command: Option<String>,
    /// Token endpoint; overrides the provider's.
    #[arg(long, env = "DMARC_WARDEN_OAUTH2_TOKEN_URL", value_name = "URL")]
    pub oauth2_token_url: Option<String>,
    /// Authorisation endpoint for `login`; overrides the provider's.
    #[arg(long, env = "DMARC_WARDEN_OAUTH2_AUTH_URL", value_name = "URL")]
    pub oauth2_auth_url: Option<String>,
    /// Device authorisation endpoint for `login --device`; overrides the provider's.
    #[arg(long, env = "DMARC_WARDEN_OAUTH2_DEVICE_URL", value_name = "URL")]
    pub oauth2_device_url: Option<String>,
    /// SASL mechanism [default: OAUTHBEARER if the server offers it, else XOAUTH2].
    #[arg(long, value_enum, env = "DMARC_WARDEN_OAUTH2_MECHANISM")]
    pub oauth2_mechanism: Option<crate::fetch::oauth2::Mechanism>,
}

impl OAuth2Args {
    /// Sets these (and the client secret from the environment, never a flag) on `entry`.
    fn apply(self, entry: &mut crate::config::AccountEntry) -> anyhow::Result<()> {
        entry.oauth2_provider = self.oauth2_provider;
        entry.oauth2_tenant = self.oauth2_tenant;
        entry.oauth2_client_id = self.oauth2_client_id;
        entry.oauth2_client_secret = Secret::from_env("DMARC_WARDEN_OAUTH2_CLIENT_SECRET")?;
        entry.oauth2_client_secret_file = self.oauth2_client_secret_file;
        entry.oauth2_scope = self.oauth2_scope;
        entry.oauth2_refresh_token_file = self.oauth2_refresh_token_file;
        entry.oauth2_token_command = self.oauth2_token_command;
        entry.oauth2_token_url = self.oauth2_token_url;
        entry.oauth2_auth_url = self.oauth2_auth_url;
        entry.oauth2_device_url = self.oauth2_device_url;
        entry.oauth2_mechanism = self.oauth2_mechanism;
        Ok(())
    }
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Config file [default: $XDG_CONFIG_HOME/dmarc-warden/config.toml, if present].
    #[arg(long, env = "DMARC_WARDEN_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// The account of the config file to sign in for (by its `name`, or `#N` for the N-th).
    #[arg(long, env = "DMARC_WARDEN_IMAP_ACCOUNT", value_name = "NAME")]
    pub account: Option<String>,
    /// The mailbox user to sign in as (a hint for the sign-in page).
    #[arg(long, env = "DMARC_WARDEN_IMAP_USER", value_name = "USER")]
    pub user: Option<String>,
    /// Port on 127.0.0.1 for the browser's redirect [default: any free port].
    #[arg(long, default_value_t = 0, value_name = "PORT")]
    pub redirect_port: u16,
    /// Seconds to wait for the sign-in.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub wait: u64,
    /// Sign in on any device instead (RFC 8628 device flow): print an address and a code to enter
    /// there, and wait. For a server without a browser; Microsoft allows it, Google not for mail.
    #[arg(long, conflicts_with = "redirect_port")]
    pub device: bool,
    #[command(flatten)]
    pub oauth2: OAuth2Args,
}

#[derive(Debug, Args)]
pub struct NotifyArgs {
    /// Config file with [notify] and [[notify.channel]] tables, and the [[sender]], [[service]],
    /// [[domain]] and [advice] tables the judgement uses
    /// [default: $XDG_CONFIG_HOME/dmarc-warden/config.toml, if present].
    #[arg(long, env = "DMARC_WARDEN_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Name sources that pass neither SPF nor DKIM by their reverse DNS, as `senders --resolve`
    /// does (cached in the database for 30 days). Off by default: nothing needs the network.
    #[arg(long, env = "DMARC_WARDEN_RESOLVE")]
    pub resolve: bool,
}

#[derive(Debug, Args)]
pub struct DigestArgs {
    /// Days the summary covers, back from each domain's latest report; compared with the N days
    /// before.
    #[arg(long, default_value_t = 7, value_name = "N")]
    pub days: u32,
    /// Only this policy domain.
    #[arg(long, short)]
    pub domain: Option<String>,
    #[command(flatten)]
    pub notify: NotifyArgs,
}

#[derive(Debug, Args)]
pub struct JudgeArgs {
    /// Only this policy domain.
    #[arg(long, short)]
    pub domain: Option<String>,
    /// Days of reports to judge, back from the latest report [default: the config's
    /// advice.window_days, 14]; 0 for all.
    #[arg(long, value_name = "N")]
    pub days: Option<u32>,
    /// Name sources that pass neither SPF nor DKIM by their reverse DNS (cached in the database for
    /// 30 days; lookups that take longer than 20 s in all are given up). Off by default: nothing
    /// needs the network.
    #[arg(long, env = "DMARC_WARDEN_RESOLVE")]
    pub resolve: bool,
    /// Config file with [[sender]], [[service]], [[domain]] and [advice] tables
    /// [default: $XDG_CONFIG_HOME/dmarc-warden/config.toml, if present].
    #[arg(long, env = "DMARC_WARDEN_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t, env = "DMARC_WARDEN_FORMAT")]
    pub format: Format,
    /// `senders`: every column, nothing cut (the table is then wider than the terminal).
    #[arg(long)]
    pub wide: bool,
}

#[derive(Debug, Args)]
pub struct AdviseArgs {
    #[command(flatten)]
    pub judge: JudgeArgs,
    /// Do not ask DNS for the published record: start from the one the last `check` stored, else
    /// from the policy the latest reports saw.
    #[arg(long, env = "DMARC_WARDEN_OFFLINE")]
    pub offline: bool,
    /// The DNS server to ask, IP or IP:PORT [default: the system's resolvers].
    #[arg(long, env = "DMARC_WARDEN_RESOLVER", value_name = "IP[:PORT]")]
    pub resolver: Option<String>,
    /// Seconds one DNS question may take.
    #[arg(
        long,
        default_value_t = 5,
        env = "DMARC_WARDEN_DNS_TIMEOUT",
        value_name = "SECS"
    )]
    pub dns_timeout: u64,
}

/// Where `advise` reads the published DMARC record.
#[derive(Debug, Clone, Copy)]
pub struct DnsSettings {
    /// `None`: the system's resolvers.
    pub resolver: Option<std::net::SocketAddr>,
    pub timeout: std::time::Duration,
}

/// `--resolver` / `DMARC_WARDEN_RESOLVER`: an IP (port 53), IP:PORT or [IPv6]:PORT; empty for the
/// system's resolvers.
fn parse_resolver(r: Option<&str>) -> anyhow::Result<Option<std::net::SocketAddr>> {
    match r.map(str::trim) {
        None | Some("") => Ok(None),
        Some(r) => r
            .parse::<std::net::SocketAddr>()
            .or_else(|_| {
                r.parse::<std::net::IpAddr>()
                    .map(|ip| std::net::SocketAddr::new(ip, 53))
            })
            .map(Some)
            .map_err(|_| {
                anyhow::anyhow!(
                    "--resolver / DMARC_WARDEN_RESOLVER {r:?}: expected an IP address, IP:PORT or \
                     [IPv6]:PORT"
                )
            }),
    }
}

/// A timeout of `secs` seconds, at least one.
fn seconds(secs: u64, flag: &str) -> anyhow::Result<std::time::Duration> {
    if secs == 0 {
        bail!("{flag} must be at least 1 second");
    }
    Ok(std::time::Duration::from_secs(secs))
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Domains to check [default: every domain in the database and the config's [[domain]] tables].
    #[arg(value_name = "DOMAIN")]
    pub domains: Vec<String>,
    /// The DNS server to ask, IP or IP:PORT [default: the system's resolvers].
    #[arg(long, env = "DMARC_WARDEN_RESOLVER", value_name = "IP[:PORT]")]
    pub resolver: Option<String>,
    /// An extra trusted CA certificate (PEM) for the MX and MTA-STS certificate checks.
    #[arg(long, env = "DMARC_WARDEN_CA_FILE", value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
    /// Seconds one DNS question may take.
    #[arg(
        long,
        default_value_t = 5,
        env = "DMARC_WARDEN_DNS_TIMEOUT",
        value_name = "SECS"
    )]
    pub dns_timeout: u64,
    /// Seconds each SMTP or HTTPS operation may take.
    #[arg(
        long,
        default_value_t = 10,
        env = "DMARC_WARDEN_CHECK_TIMEOUT",
        value_name = "SECS"
    )]
    pub timeout: u64,
    /// Show the last stored check of each domain (or of those named) instead of checking again:
    /// no network.
    #[arg(long)]
    pub last: bool,
    /// Config file with [[domain]] tables (name, selectors) [default:
    /// $XDG_CONFIG_HOME/dmarc-warden/config.toml, if present].
    #[arg(long, env = "DMARC_WARDEN_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Output format: a table per domain, one JSON array, or CSV (one line per finding).
    #[arg(long, value_enum, default_value_t, env = "DMARC_WARDEN_FORMAT")]
    pub format: Format,
}

impl CheckArgs {
    fn action(self) -> anyhow::Result<Action> {
        let resolver = parse_resolver(self.resolver.as_deref())?;
        let dns_timeout = seconds(self.dns_timeout, "--dns-timeout")?;
        let timeout = seconds(self.timeout, "--timeout")?;
        let judgement = crate::config::judgement(self.config.as_deref())?;
        let mut domains = Vec::new();
        for d in &self.domains {
            let d = String::from(domain("DOMAIN", d)?);
            if !domains.contains(&d) {
                domains.push(d);
            }
        }
        Ok(Action::Check(
            crate::pipeline::check::CheckOptions {
                domains,
                settings: crate::fetch::probe::Settings {
                    resolver,
                    ca_file: self.ca_file,
                    dns_timeout,
                    timeout,
                    max_mx: 10,
                },
                configured: judgement.selectors,
                window_days: judgement.thresholds.window_days,
                last: self.last,
            },
            self.format,
        ))
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on (port 0: any free port, printed on stderr).
    #[arg(
        long,
        default_value = "127.0.0.1:8080",
        env = "DMARC_WARDEN_LISTEN",
        value_name = "ADDR"
    )]
    pub listen: String,
    /// File holding the password for HTTP Basic authentication (any user name); required to
    /// listen on an address other than loopback.
    #[arg(long, env = "DMARC_WARDEN_WEB_PASSWORD_FILE", value_name = "PATH")]
    pub password_file: Option<PathBuf>,
    /// Users instead of one password: an htpasswd file of bcrypt entries (`htpasswd -B`), read
    /// again when it changes. Each user sees the domains the config's [web.scopes] table gives
    /// them (`alice = ["example.org", "*.example.org"]`, `"*"` for all); a user without one sees
    /// nothing.
    #[arg(
        long,
        env = "DMARC_WARDEN_WEB_HTPASSWD",
        value_name = "FILE",
        conflicts_with = "password_file"
    )]
    pub htpasswd: Option<PathBuf>,
    /// DANGEROUS: listen on a non-loopback address without a password. Anyone who can reach the
    /// address can read every report; put an authenticating proxy in front instead.
    #[arg(long, env = "DMARC_WARDEN_WEB_DANGER_NO_AUTH")]
    pub danger_no_auth_on_public_address: bool,
    /// Days of reports judged by default, back from each domain's latest report [default: the
    /// config's advice.window_days, 14]; 0 for all.
    #[arg(long, value_name = "N")]
    pub days: Option<u32>,
    /// Requests handled at once (each with its own read-only database connection).
    #[arg(
        long,
        default_value_t = 4,
        env = "DMARC_WARDEN_WEB_THREADS",
        value_name = "N"
    )]
    pub threads: usize,
    /// Config file with [[sender]], [[service]], [[domain]], [advice] and [web.scopes] tables
    /// [default: $XDG_CONFIG_HOME/dmarc-warden/config.toml, if present].
    #[arg(long, env = "DMARC_WARDEN_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Write the report as one HTML file here.
    #[arg(long, required = true, value_name = "FILE")]
    pub html: PathBuf,
    /// Only this policy domain.
    #[arg(long, short)]
    pub domain: Option<String>,
    /// Days of reports, back from each domain's latest report [default: the config's
    /// advice.window_days, 14]; 0 for all.
    #[arg(long, value_name = "N")]
    pub days: Option<u32>,
    /// Only the domains this dashboard user sees (the config's [web.scopes]).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Config file with [[sender]], [[service]], [[domain]], [advice] and [web.scopes] tables
    /// [default: $XDG_CONFIG_HOME/dmarc-warden/config.toml, if present].
    #[arg(long, env = "DMARC_WARDEN_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
}

impl ServeArgs {
    fn serve(self) -> anyhow::Result<crate::web::ServeConfig> {
        use std::net::ToSocketAddrs;
        let listen = self
            .listen
            .to_socket_addrs()
            .with_context(|| {
                format!(
                    "--listen {:?}: expected an address such as 127.0.0.1:8080",
                    self.listen
                )
            })?
            .next()
            .with_context(|| format!("--listen {:?}: the name has no address", self.listen))?;
        let password = match &self.password_file {
            Some(path) => Some(Secret::from_file(path).context(
                "the web password file (--password-file / DMARC_WARDEN_WEB_PASSWORD_FILE)",
            )?),
            None => None,
        };
        let users = match &self.htpasswd {
            Some(file) => {
                let (config, scopes) = crate::config::web(self.config.as_deref())?;
                let users =
                    crate::web::users::Users::open(file, config, scopes, crate::config::web)?;
                Some(std::sync::Arc::new(users))
            }
            None => None,
        };
        if !listen.ip().is_loopback()
            && password.is_none()
            && users.is_none()
            && !self.danger_no_auth_on_public_address
        {
            bail!(
                "--listen {listen} is not a loopback address: set DMARC_WARDEN_WEB_PASSWORD_FILE \
                 (or --password-file) so that the dashboard asks for a password, or \
                 DMARC_WARDEN_WEB_HTPASSWD (--htpasswd) for users, or pass \
                 --danger-no-auth-on-public-address to serve every report to anyone who can reach it"
            );
        }
        if self.threads == 0 || self.threads > 64 {
            bail!("--threads / DMARC_WARDEN_WEB_THREADS must be from 1 to 64");
        }
        let judgement = crate::config::judgement(self.config.as_deref())?;
        let days = self.days.unwrap_or(judgement.thresholds.window_days);
        Ok(crate::web::ServeConfig {
            listen,
            password,
            users,
            judgement,
            days: (days > 0).then_some(days),
            threads: self.threads,
        })
    }
}

impl ReportArgs {
    fn report(self) -> anyhow::Result<crate::web::ReportConfig> {
        let judgement = crate::config::judgement(self.config.as_deref())?;
        let days = self.days.unwrap_or(judgement.thresholds.window_days);
        let visible = match &self.user {
            Some(user) => {
                let (path, scopes) = crate::config::web(self.config.as_deref())?;
                let visible = scopes.of(user);
                if visible.is_nothing() {
                    bail!(
                        "--user {user}: [web.scopes] of {} gives {user} no domain",
                        path.map_or("the config file".to_owned(), |p| p.display().to_string())
                    );
                }
                visible
            }
            None => crate::access::Visible::All,
        };
        Ok(crate::web::ReportConfig {
            file: self.html,
            domain: optional_domain("--domain", self.domain.as_deref())?.map(String::from),
            days: (days > 0).then_some(days),
            judgement,
            visible,
        })
    }
}

/// Limits and parallelism for reading inputs.
#[derive(Debug, Args)]
pub struct WorkArgs {
    /// Largest decompressed report (one XML payload) accepted; e.g. 32MiB, 100MB.
    #[arg(
        long,
        default_value = "32MiB",
        env = "DMARC_WARDEN_MAX_PAYLOAD_SIZE",
        value_name = "SIZE"
    )]
    pub max_payload_size: String,
    /// Largest input accepted: one file, or one message of an mbox or Maildir.
    #[arg(
        long,
        default_value = "64MiB",
        env = "DMARC_WARDEN_MAX_MESSAGE_SIZE",
        value_name = "SIZE"
    )]
    pub max_message_size: String,
    /// Most entries a zip archive may list.
    #[arg(
        long,
        default_value_t = 1000,
        env = "DMARC_WARDEN_MAX_ZIP_ENTRIES",
        value_name = "N"
    )]
    pub max_zip_entries: usize,
    /// Keep the body of the messages failure reports are about (by default only their headers are
    /// kept: bodies are personal data).
    #[arg(long, env = "DMARC_WARDEN_KEEP_FAILURE_BODIES")]
    pub keep_failure_bodies: bool,
    /// In failure reports, store addresses of the reported message with their local part replaced
    /// by a hash (the same address gives the same hash, so senders can still be grouped).
    #[arg(long, env = "DMARC_WARDEN_REDACT")]
    pub redact: bool,
    /// Threads that read, unpack and parse; 0 means one per CPU core (SQLite), or one per core but
    /// one (PostgreSQL, whose server does the writing).
    #[arg(
        long,
        default_value_t = 0,
        env = "DMARC_WARDEN_THREADS",
        value_name = "N"
    )]
    pub threads: usize,
}

/// Which stored data a listing covers, and how it is written.
#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Only this policy domain.
    #[arg(long, short)]
    pub domain: Option<String>,
    /// Only report periods ending on or after this date (YYYY-MM-DD, UTC, or RFC 3339).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Only report periods beginning before this date (YYYY-MM-DD, UTC, or RFC 3339).
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    /// At most this many rows.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t, env = "DMARC_WARDEN_FORMAT")]
    pub format: Format,
    /// Every column, nothing cut (the table is then wider than the terminal).
    #[arg(long)]
    pub wide: bool,
}

/// Validated settings: what [`crate::run`] acts on.
#[derive(Debug)]
pub struct Config {
    pub db: crate::store::Location,
    pub quiet: bool,
    pub verbose: bool,
    pub action: Action,
}

#[derive(Debug)]
pub enum Action {
    Ingest {
        paths: Vec<PathBuf>,
        options: crate::pipeline::Options,
        /// The config's [retention], applied afterwards when set.
        retention: crate::store::Retention,
    },
    Reprocess {
        options: crate::pipeline::Options,
    },
    Fetch {
        accounts: crate::config::Accounts,
        options: crate::pipeline::mailbox::FetchOptions,
        /// With `--notify`.
        notify: Option<crate::notify::Config>,
        /// `--metrics-file`.
        metrics_file: Option<PathBuf>,
        /// The config's [retention], applied after fetching (with --watch, when it starts).
        retention: crate::store::Retention,
    },
    Prune {
        retention: crate::store::Retention,
        dry_run: bool,
        format: Format,
    },
    Notify(crate::notify::Config),
    Digest {
        config: crate::notify::Config,
        days: u32,
        domain: Option<Domain>,
    },
    Domains(Filter, Output),
    Sources(Filter, Output),
    Reports(Filter, Output),
    Failures(Filter, Option<String>, Output),
    Senders(Judge),
    /// The DNS to read the published record from; `None` with --offline.
    Advise(Judge, Option<DnsSettings>),
    Tls(Filter, Output),
    Check(crate::pipeline::check::CheckOptions, crate::present::Format),
    Rejects(Output),
    /// `migrate --to`: the target.
    Migrate(crate::store::Location),
    Login(
        Box<crate::config::Login>,
        crate::fetch::oauth2::login::Options,
    ),
    Serve(crate::web::ServeConfig),
    Report(crate::web::ReportConfig),
    Completions(clap_complete::Shell),
    ManPages(PathBuf),
}

impl Config {
    pub fn from_cli(cli: Cli) -> anyhow::Result<Config> {
        let db = match cli.db {
            Some(db) => crate::store::Location::parse(db.as_os_str())?,
            None => crate::store::Location::Sqlite(
                dirs::data_dir()
                    .context("no data directory known for this user: set --db or DMARC_WARDEN_DB")?
                    .join("dmarc-warden")
                    .join("dmarc-warden.db"),
            ),
        };
        let action = match cli.command {
            Command::Ingest {
                paths,
                work,
                config,
            } => Action::Ingest {
                paths,
                options: work.options()?,
                retention: crate::config::retention(config.as_deref())?,
            },
            Command::Prune(args) => args.action()?,
            Command::Fetch(args) => args.action()?,
            Command::Login(args) => args.action()?,
            Command::Reprocess { work } => Action::Reprocess {
                options: work.options()?,
            },
            Command::Domains { filter } => Action::Domains(filter.filter()?, filter.output()),
            Command::Sources { filter } => Action::Sources(filter.filter()?, filter.output()),
            Command::Reports { filter } => Action::Reports(filter.filter()?, filter.output()),
            Command::Failures { source_ip, filter } => Action::Failures(
                filter.filter()?,
                source_ip.map(|ip| crate::parse::aggregate::normalise_ip(ip.trim()).into()),
                filter.output(),
            ),
            Command::Tls { filter } => Action::Tls(filter.filter()?, filter.output()),
            Command::Senders(args) => Action::Senders(args.judge()?),
            Command::Advise(args) => {
                let dns = if args.offline {
                    None
                } else {
                    Some(DnsSettings {
                        resolver: parse_resolver(args.resolver.as_deref())?,
                        timeout: seconds(args.dns_timeout, "--dns-timeout")?,
                    })
                };
                Action::Advise(args.judge.judge()?, dns)
            }
            Command::Notify(args) => Action::Notify(args.config()?),
            Command::Digest(args) => {
                if args.days == 0 {
                    bail!("--days must be at least 1");
                }
                Action::Digest {
                    config: args.notify.config()?,
                    days: args.days,
                    domain: optional_domain("--domain", args.domain.as_deref())?,
                }
            }
            Command::Check(args) => args.action()?,
            Command::Rejects { format, wide } => Action::Rejects(Output { format, wide }),
            Command::Migrate { to } => {
                Action::Migrate(crate::store::Location::parse(to.as_os_str()).map_err(|e| {
                    // The message names --db; here it is --to.
                    anyhow::anyhow!(e.to_string().replacen("--db ", "--to ", 1))
                })?)
            }
            Command::Serve(args) => Action::Serve(args.serve()?),
            Command::Report(args) => Action::Report(args.report()?),
            Command::Completions { shell } => Action::Completions(shell),
            Command::ManPages { dir } => Action::ManPages(dir),
        };
        Ok(Config {
            db,
            quiet: cli.quiet,
            verbose: cli.verbose,
            action,
        })
    }
}

/// Validated `senders` / `advise` settings.
#[derive(Debug)]
pub struct Judge {
    pub domain: Option<Domain>,
    /// `None`: all reports.
    pub days: Option<u32>,
    pub resolve: bool,
    pub judgement: crate::judge::Judgement,
    pub format: Format,
    pub wide: bool,
}

impl JudgeArgs {
    fn judge(self) -> anyhow::Result<Judge> {
        let judgement = crate::config::judgement(self.config.as_deref())?;
        let days = self.days.unwrap_or(judgement.thresholds.window_days);
        Ok(Judge {
            domain: optional_domain("--domain", self.domain.as_deref())?,
            days: (days > 0).then_some(days),
            resolve: self.resolve,
            judgement,
            format: self.format,
            wide: self.wide,
        })
    }
}

impl NotifyArgs {
    fn config(&self) -> anyhow::Result<crate::notify::Config> {
        Ok(crate::notify::Config {
            resolve: self.resolve,
            judgement: crate::config::judgement(self.config.as_deref())?,
            settings: crate::config::notify(self.config.as_deref())?,
        })
    }
}

impl FetchArgs {
    fn action(self) -> anyhow::Result<Action> {
        let notify = if self.notify {
            Some(
                NotifyArgs {
                    config: self.config.clone(),
                    // Reverse DNS is for `notify --resolve` on its own.
                    resolve: false,
                }
                .config()?,
            )
        } else {
            None
        };
        // Read here, not declared as flags: a password must not appear in `--help`, in the process's
        // arguments, or in clap's error messages.
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let mut overrides = crate::config::AccountEntry {
            name: None,
            host: self.host,
            port: self.port,
            user: self.user,
            password: Secret::from_env("DMARC_WARDEN_IMAP_PASSWORD")?,
            password_file: env("DMARC_WARDEN_IMAP_PASSWORD_FILE").map(PathBuf::from),
            password_command: None,
            tls: self.tls,
            ca_file: self.ca_file,
            danger_accept_invalid_certs: self.danger_accept_invalid_certs.then_some(true),
            folders: self.folders,
            archive: self.archive,
            invalid: self.invalid,
            mark_seen: self.mark_seen.then_some(true),
            timeout_secs: self.timeout,
            auth: self.auth,
            ..Default::default()
        };
        self.oauth2.apply(&mut overrides)?;
        let accounts =
            crate::config::accounts(self.config.as_deref(), self.account.as_deref(), &overrides)?;
        if self.batch == 0 {
            bail!("--batch / DMARC_WARDEN_IMAP_BATCH must be at least 1");
        }
        let work = self.work.options()?;
        Ok(Action::Fetch {
            retention: crate::config::retention(self.config.as_deref())?,
            notify,
            metrics_file: self.metrics_file,
            accounts,
            options: crate::pipeline::mailbox::FetchOptions {
                // A batch holds about this many bytes of mail in memory at once.
                batch_bytes: (work.limits.max_message_size).max(32 << 20),
                work,
                full: self.full,
                watch: self.watch,
                batch_messages: self.batch,
            },
        })
    }
}

impl LoginArgs {
    fn action(self) -> anyhow::Result<Action> {
        let mut overrides = crate::config::AccountEntry {
            user: self.user,
            ..Default::default()
        };
        self.oauth2.apply(&mut overrides)?;
        let login =
            crate::config::login(self.config.as_deref(), self.account.as_deref(), &overrides)?;
        let options = crate::fetch::oauth2::login::Options {
            user: login.user.clone(),
            port: self.redirect_port,
            device: self.device,
            wait: std::time::Duration::from_secs(self.wait.max(1)),
        };
        Ok(Action::Login(Box::new(login), options))
    }
}

impl WorkArgs {
    fn options(&self) -> anyhow::Result<crate::pipeline::Options> {
        Ok(crate::pipeline::Options {
            limits: Limits {
                max_payload_size: size("--max-payload-size", &self.max_payload_size)?,
                max_message_size: size("--max-message-size", &self.max_message_size)?,
                max_zip_entries: self.max_zip_entries,
            },
            failure: crate::parse::FailureOptions {
                keep_bodies: self.keep_failure_bodies,
                redact: self.redact,
            },
            threads: self.threads,
        })
    }
}

impl FilterArgs {
    fn output(&self) -> Output {
        Output {
            format: self.format,
            wide: self.wide,
        }
    }

    fn filter(&self) -> anyhow::Result<Filter> {
        Ok(Filter {
            domain: optional_domain("--domain", self.domain.as_deref())?.map(String::from),
            since: self
                .since
                .as_deref()
                .map(|s| date("--since", s))
                .transpose()?,
            until: self
                .until
                .as_deref()
                .map(|s| date("--until", s))
                .transpose()?,
            limit: self.limit,
        })
    }
}

/// A policy domain named by `option` ([`Domain::parse_policy`]); the error names the option.
fn domain(option: &str, text: &str) -> anyhow::Result<Domain> {
    Domain::parse_policy(text).map_err(|e| anyhow::anyhow!("{option}: {e}"))
}

fn optional_domain(option: &str, text: Option<&str>) -> anyhow::Result<Option<Domain>> {
    text.map(|t| domain(option, t)).transpose()
}

fn size(option: &str, value: &str) -> anyhow::Result<u64> {
    match value.trim().parse::<bytesize::ByteSize>() {
        Ok(b) if b.as_u64() > 0 => Ok(b.as_u64()),
        _ => bail!("{option} {value:?}: expected a size such as 32MiB, 100MB or 1048576"),
    }
}

/// `YYYY-MM-DD` (midnight UTC) or RFC 3339 ([`crate::time::parse_date`]); errors name `option`.
fn date(option: &str, value: &str) -> anyhow::Result<i64> {
    crate::time::parse_date(value).map_err(|e| anyhow::anyhow!("{option} {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes_and_dates() {
        assert_eq!(size("--x", "32MiB").unwrap(), 32 << 20);
        assert_eq!(size("--x", "1000").unwrap(), 1000);
        let err = size("--max-payload-size", "lots").unwrap_err().to_string();
        assert!(err.starts_with("--max-payload-size \"lots\""), "{err}");
        assert_eq!(date("--since", "2026-11-01").unwrap(), 1_793_491_200);
        assert_eq!(
            date("--since", "2026-11-01T01:00:00+01:00").unwrap(),
            1_793_491_200
        );
        assert!(date("--since", "yesterday").is_err());
    }

    /// What every run holds, from flags, files and the config: `Debug` shows no password, client
    /// secret or webhook token, however it was given.
    #[test]
    fn debug_of_the_config_never_shows_a_secret() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path.display().to_string()
        };
        let imap = file("imap-password", "hunter2-imap-file\n");
        let smtp = file("smtp-password", "hunter2-smtp\n");
        let web = file("web-password", "hunter2-web\n");
        let config = file(
            "config.toml",
            &format!(
                "[[account]]\nname = \"a\"\nhost = \"h\"\nuser = \"u\"\npassword = \"hunter2-inline\"\n\
                 [[account]]\nname = \"b\"\nhost = \"h\"\nuser = \"u\"\npassword_file = {imap:?}\n\
                 [[account]]\nname = \"c\"\nhost = \"h\"\nuser = \"u\"\nauth = \"oauth2\"\n\
                 oauth2_provider = \"generic\"\noauth2_token_url = \"https://t.example/token\"\n\
                 oauth2_client_id = \"id\"\noauth2_client_secret = \"hunter2-client\"\n\
                 [[notify.channel]]\nkind = \"webhook\"\nurl = \"https://hooks.example.org/hunter2-hook\"\n\
                 [[notify.channel]]\nkind = \"email\"\nsmtp_host = \"smtp.example.org\"\n\
                 username = \"u\"\npassword_file = {smtp:?}\nfrom = \"a@example.org\"\n\
                 to = [\"b@example.org\"]\n"
            ),
        );
        let db = dir.path().join("db").display().to_string();
        for args in [
            vec!["fetch", "--config", &config, "--notify"],
            vec!["serve", "--config", &config, "--password-file", &web],
        ] {
            let argv = ["dmarc-warden", "--db", &db].into_iter().chain(args);
            let config = Config::from_cli(Cli::try_parse_from(argv).unwrap()).unwrap();
            let shown = format!("{config:?}");
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("***"), "{shown}");
        }
    }
}
