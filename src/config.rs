//! The config file (TOML; `~/.config/dmarc-warden/config.toml` by default): `[[account]]` tables for
//! `fetch`, merged with the `DMARC_WARDEN_IMAP_*` environment and flags into validated [`Account`]s;
//! `[[sender]]`, `[[service]]`, `[[domain]]` and `[advice]` for `senders` and `advise`
//! ([`judgement`]); `[notify]` for `notify` and `digest` ([`notify`]); `[retention]` for `prune`
//! and the nightly `fetch` / `ingest` ([`retention`]). The CLI edge: it reads files
//! and runs `password_command`, and its errors name the file, the account and the setting.
//!
//! ```toml
//! [[account]]
//! name = "example"                  # optional; used by --account
//! host = "imap.example.org"
//! port = 993                        # default: 993 (tls = "implicit"), 143 (tls = "starttls")
//! user = "dmarc@example.org"
//! password_file = "/etc/dmarc-warden/imap-password"   # or password_command, or password
//! tls = "implicit"                  # or "starttls"
//! ca_file = "/etc/ssl/private-ca.pem"
//! folders = ["INBOX"]
//! archive = "DMARC/done"            # unset: processed messages stay where they are
//! invalid = "DMARC/invalid"         # unset: rejected messages stay where they are
//! mark_seen = false
//! timeout_secs = 60
//!
//! # OAuth2 instead of a password (see the README for each provider):
//! auth = "oauth2"                   # default: "password"
//! oauth2_provider = "microsoft"     # or "google", "generic" (with oauth2_token_url)
//! oauth2_tenant = "contoso.onmicrosoft.com"
//! oauth2_client_id = "…"
//! oauth2_client_secret_file = "/etc/dmarc-warden/client-secret"   # client credentials, or:
//! oauth2_refresh_token_file = "/var/lib/dmarc-warden/refresh-token" # written by `login`, or:
//! oauth2_token_command = "my-token-helper"                         # prints an access token
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::analyse::{DeclaredSender, Knowledge, Published, Service, Thresholds, registrable};
use crate::domain::Domain;
use crate::fetch::imap::{Account, Tls};
use crate::fetch::oauth2::{self, Grant, Mechanism, Provider};
use crate::judge::Judgement;
use crate::secret::Secret;

/// How an account logs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Auth {
    /// IMAP LOGIN with the password.
    #[default]
    Password,
    /// SASL XOAUTH2 / OAUTHBEARER with an OAuth2 access token.
    Oauth2,
}

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    account: Vec<AccountEntry>,
    #[serde(default)]
    sender: Vec<SenderEntry>,
    #[serde(default)]
    service: Vec<ServiceEntry>,
    #[serde(default)]
    domain: Vec<DomainEntry>,
    #[serde(default)]
    advice: AdviceEntry,
    #[serde(default)]
    notify: crate::notify::settings::NotifyEntry,
    #[serde(default)]
    web: crate::web::users::WebEntry,
    #[serde(default)]
    retention: RetentionEntry,
}

/// `[retention]`: how many days reports are kept; `prune` and the nightly `fetch` / `ingest`
/// apply it.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetentionEntry {
    older_than_days: Option<u32>,
    failures_older_than_days: Option<u32>,
}

/// `[[sender]]`: a sender of yours (or, with `legitimate = false`, one that is not).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SenderEntry {
    name: String,
    #[serde(default)]
    ips: Vec<String>,
    #[serde(default)]
    dkim_domains: Vec<String>,
    #[serde(default)]
    spf_domains: Vec<String>,
    #[serde(default = "yes")]
    legitimate: bool,
}

fn yes() -> bool {
    true
}

/// `[[service]]`: a sending service, as in `data/services.toml`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceEntry {
    name: String,
    domains: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Services {
    service: Vec<ServiceEntry>,
}

/// `[[domain]]`: where a domain's reports go, as published (reports do not carry it).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct DomainEntry {
    name: String,
    rua: Option<String>,
    ruf: Option<String>,
    /// DKIM selectors `check` looks up besides those the reports show.
    #[serde(default)]
    selectors: Vec<String>,
}

/// `[advice]`: thresholds; see [`Thresholds`].
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdviceEntry {
    window_days: Option<u32>,
    min_days: Option<u32>,
    min_reporters: Option<u32>,
    min_messages: Option<u64>,
    aligned_pct: Option<f64>,
    blocking_pct: Option<f64>,
    backoff_pct: Option<f64>,
    /// `testing` (the default: t=y with pct=0) or `pct` (quarantine at pct 10, 25, 50, 100).
    ladder: Option<String>,
}

/// The map of well-known sending services built into the binary.
const SERVICES: &str = include_str!("../data/services.toml");

/// Reads the `[[sender]]`, `[[service]]`, `[[domain]]` and `[advice]` parts of the config file (when
/// there is one) and the built-in service map.
pub fn judgement(config: Option<&Path>) -> anyhow::Result<Judgement> {
    let (path, file) = load(config)?;
    let shown = match (&path, &file) {
        (Some(p), Some(_)) => format!("config {}", p.display()),
        _ => "config".to_owned(),
    };
    let file = file.unwrap_or_default();
    let builtin: Services = toml::from_str(SERVICES).context("built-in data/services.toml")?;
    // Each domain named in its normal form, reduced to its registrable domain.
    let registrables = |v: &[String], place: &dyn Fn() -> String| -> anyhow::Result<Vec<String>> {
        v.iter()
            .map(|d| match Domain::parse(d) {
                Ok(d) => Ok(registrable(&d)),
                Err(e) => Err(anyhow::anyhow!("{}: {e}", place())),
            })
            .collect()
    };
    let mut declared = Vec::new();
    for s in &file.sender {
        let mut networks = Vec::new();
        for ip in &s.ips {
            let net = ip
                .parse::<ipnet::IpNet>()
                .or_else(|_| ip.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    anyhow::anyhow!(
                        "{shown}: sender {:?}: {ip:?} is not an IP address or CIDR network",
                        s.name
                    )
                })?;
            networks.push(net);
        }
        declared.push(DeclaredSender {
            name: s.name.clone(),
            networks,
            dkim_domains: registrables(&s.dkim_domains, &|| {
                format!("{shown}: sender {:?}: dkim_domains", s.name)
            })?,
            spf_domains: registrables(&s.spf_domains, &|| {
                format!("{shown}: sender {:?}: spf_domains", s.name)
            })?,
            legitimate: s.legitimate,
        });
    }
    let mut services = Vec::new();
    for (s, origin) in (file.service.iter().map(|s| (s, shown.as_str()))).chain(
        builtin
            .service
            .iter()
            .map(|s| (s, "built-in data/services.toml")),
    ) {
        services.push(Service {
            name: s.name.clone(),
            domains: registrables(&s.domains, &|| {
                format!("{origin}: service {:?}: domains", s.name)
            })?,
        });
    }
    let d = Thresholds::default();
    let a = &file.advice;
    let thresholds = Thresholds {
        window_days: a.window_days.unwrap_or(d.window_days).max(1),
        min_days: a.min_days.unwrap_or(d.min_days),
        min_reporters: a.min_reporters.unwrap_or(d.min_reporters),
        min_messages: a.min_messages.unwrap_or(d.min_messages),
        aligned_pct: a.aligned_pct.unwrap_or(d.aligned_pct),
        blocking_pct: a.blocking_pct.unwrap_or(d.blocking_pct),
        backoff_pct: a.backoff_pct.unwrap_or(d.backoff_pct),
        ladder: match &a.ladder {
            Some(l) => l
                .parse()
                .map_err(|e| anyhow::anyhow!("{shown}: [advice] ladder: {e}"))?,
            None => d.ladder,
        },
    };
    let mut published = std::collections::BTreeMap::new();
    let mut selectors = std::collections::BTreeMap::new();
    for d in &file.domain {
        let name = String::from(
            Domain::parse_policy(&d.name)
                .map_err(|e| anyhow::anyhow!("{shown}: [[domain]] name: {e}"))?,
        );
        published.insert(
            name.clone(),
            Published {
                rua: d.rua.clone(),
                ruf: d.ruf.clone(),
            },
        );
        selectors.insert(
            name,
            d.selectors
                .iter()
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect(),
        );
    }
    Ok(Judgement {
        knowledge: Knowledge { declared, services },
        thresholds,
        published,
        selectors,
    })
}

/// The `[notify]` table and its `[[notify.channel]]`s, validated (passwords read); see
/// [`crate::notify::settings`].
pub fn notify(config: Option<&Path>) -> anyhow::Result<crate::notify::settings::Settings> {
    let (path, file) = load(config)?;
    let shown = match (&path, &file) {
        (Some(p), Some(_)) => format!("config {}", p.display()),
        _ => "config".to_owned(),
    };
    crate::notify::settings::validate(file.map(|f| f.notify).unwrap_or_default(), &shown)
}

/// The `[web]` table: each dashboard user's domains ([`crate::web::users`]); and the file read,
/// which `serve` reads again when it changes.
pub fn web(config: Option<&Path>) -> anyhow::Result<(Option<PathBuf>, crate::web::users::Scopes)> {
    let (path, file) = load(config)?;
    let shown = match (&path, &file) {
        (Some(p), Some(_)) => format!("config {}", p.display()),
        _ => "config".to_owned(),
    };
    let scopes = crate::web::users::validate(file.map(|f| f.web).unwrap_or_default(), &shown)?;
    Ok((path, scopes))
}

/// The `[retention]` table ([`crate::store::Retention`]); no limit where it sets none.
pub fn retention(config: Option<&Path>) -> anyhow::Result<crate::store::Retention> {
    let (path, file) = load(config)?;
    let entry = file.map(|f| f.retention).unwrap_or_default();
    for (name, days) in [
        ("older_than_days", entry.older_than_days),
        ("failures_older_than_days", entry.failures_older_than_days),
    ] {
        if days == Some(0) {
            bail!(
                "config {}: retention.{name} must be at least 1",
                path.map_or("file".to_owned(), |p| p.display().to_string())
            );
        }
    }
    Ok(crate::store::Retention {
        older_than: entry.older_than_days,
        failures_older_than: entry.failures_older_than_days,
    })
}

/// Reads the config file named, or the default one. Returns the path tried and the file, `None`
/// when the default file does not exist; a file named explicitly must exist.
fn load(config: Option<&Path>) -> anyhow::Result<(Option<PathBuf>, Option<File>)> {
    let (path, explicit) = match config {
        Some(p) => (p.to_owned(), true),
        None => match dirs::config_dir() {
            Some(d) => (d.join("dmarc-warden").join("config.toml"), false),
            None => return Ok((None, None)),
        },
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let file =
                toml::from_str(&text).with_context(|| format!("config {}", path.display()))?;
            Ok((Some(path), Some(file)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => Ok((Some(path), None)),
        Err(e) => Err(e).with_context(|| {
            format!(
                "cannot read config {} (--config / DMARC_WARDEN_CONFIG)",
                path.display()
            )
        }),
    }
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountEntry {
    pub name: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
    pub password_command: Option<String>,
    pub tls: Option<Tls>,
    pub ca_file: Option<PathBuf>,
    pub danger_accept_invalid_certs: Option<bool>,
    pub folders: Option<Vec<String>>,
    pub archive: Option<String>,
    pub invalid: Option<String>,
    pub mark_seen: Option<bool>,
    pub timeout_secs: Option<u64>,
    pub auth: Option<Auth>,
    pub oauth2_provider: Option<Provider>,
    pub oauth2_tenant: Option<String>,
    pub oauth2_client_id: Option<String>,
    pub oauth2_client_secret: Option<Secret>,
    pub oauth2_client_secret_file: Option<PathBuf>,
    /// Space-separated, as OAuth2 writes scopes.
    pub oauth2_scope: Option<String>,
    pub oauth2_refresh_token_file: Option<PathBuf>,
    pub oauth2_token_command: Option<String>,
    pub oauth2_token_url: Option<String>,
    pub oauth2_auth_url: Option<String>,
    pub oauth2_device_url: Option<String>,
    pub oauth2_mechanism: Option<Mechanism>,
}

impl AccountEntry {
    fn is_empty(&self) -> bool {
        *self == AccountEntry::default()
    }

    /// Fields set in `over` replace those here.
    fn overlay(mut self, over: &AccountEntry) -> AccountEntry {
        macro_rules! take {
            ($($f:ident),*) => { $( if over.$f.is_some() { self.$f = over.$f.clone(); } )* };
        }
        take!(
            host,
            port,
            user,
            password,
            password_file,
            password_command,
            tls,
            ca_file,
            danger_accept_invalid_certs,
            folders,
            archive,
            invalid,
            mark_seen,
            timeout_secs,
            auth,
            oauth2_provider,
            oauth2_tenant,
            oauth2_client_id,
            oauth2_client_secret,
            oauth2_client_secret_file,
            oauth2_scope,
            oauth2_refresh_token_file,
            oauth2_token_command,
            oauth2_token_url,
            oauth2_auth_url,
            oauth2_device_url,
            oauth2_mechanism
        );
        // A password given outside the file replaces every way the file had of getting one.
        if over.password.is_some() || over.password_file.is_some() {
            self.password_command = None;
            if over.password.is_some() {
                self.password_file = None;
            } else {
                self.password = None;
            }
        }
        // So do a client secret and a source of tokens.
        if over.oauth2_client_secret.is_some() {
            self.oauth2_client_secret_file = None;
        } else if over.oauth2_client_secret_file.is_some() {
            self.oauth2_client_secret = None;
        }
        if over.oauth2_token_command.is_some() {
            self.oauth2_refresh_token_file = None;
        } else if over.oauth2_refresh_token_file.is_some() {
            self.oauth2_token_command = None;
        }
        self
    }
}

/// The accounts a `fetch` run works on, and warnings to print before it starts.
#[derive(Debug)]
pub struct Accounts {
    pub accounts: Vec<Account>,
    pub warnings: Vec<String>,
}

/// Reads the config file (when there is one), applies `overrides` (from flags and the environment)
/// and validates. `config` names an explicit file, which must then exist.
pub fn accounts(
    config: Option<&Path>,
    select: Option<&str>,
    overrides: &AccountEntry,
) -> anyhow::Result<Accounts> {
    let Chosen {
        shown,
        entries,
        mut warnings,
    } = choose(config, select, overrides)?;
    let mut accounts = Vec::new();
    for (name, entry) in entries {
        let account = validate(&name, entry, &shown, &mut warnings)?;
        if account.danger_accept_invalid_certs {
            warnings.push(format!(
                "warning: account {name}: TLS certificates are NOT verified \
                 (danger_accept_invalid_certs / DMARC_WARDEN_IMAP_DANGER_ACCEPT_INVALID_CERTS): \
                 anyone on the network path can read the password and the mail"
            ));
        }
        accounts.push(account);
    }
    Ok(Accounts { accounts, warnings })
}

/// The accounts chosen from the file and the overrides, not yet validated.
struct Chosen {
    /// The file, for messages.
    shown: String,
    entries: Vec<(String, AccountEntry)>,
    warnings: Vec<String>,
}

fn choose(
    config: Option<&Path>,
    select: Option<&str>,
    overrides: &AccountEntry,
) -> anyhow::Result<Chosen> {
    let (path, file) = load(config)?;
    let mut warnings = Vec::new();
    let (shown, entries) = match (&path, file) {
        (Some(path), Some(file)) => {
            warn_if_readable(path, &file, &mut warnings);
            (format!("config {}", path.display()), file.account)
        }
        _ => (String::from("the environment"), Vec::new()),
    };
    let named =
        |e: &AccountEntry, i: usize| e.name.clone().unwrap_or_else(|| format!("#{}", i + 1));
    let chosen: Vec<(String, AccountEntry)> = match select {
        Some(want) => {
            let found = entries
                .iter()
                .enumerate()
                .find(|(i, e)| named(e, *i) == want)
                .with_context(|| {
                    format!(
                        "{shown}: no account named {want:?} (--account / DMARC_WARDEN_IMAP_ACCOUNT)"
                    )
                })?;
            vec![(want.to_owned(), found.1.clone().overlay(overrides))]
        }
        None if entries.is_empty() => {
            if overrides.is_empty() {
                bail!(
                    "no IMAP account: set DMARC_WARDEN_IMAP_HOST and DMARC_WARDEN_IMAP_USER, or list \
                     accounts in {} (see `dmarc-warden fetch --help`)",
                    path.map_or("a config file".into(), |p| p.display().to_string())
                );
            }
            vec![("default".to_owned(), overrides.clone())]
        }
        None if entries.len() == 1 => {
            vec![(named(&entries[0], 0), entries[0].clone().overlay(overrides))]
        }
        None => {
            if !overrides.is_empty() {
                bail!(
                    "{shown} lists {} accounts: choose the one that DMARC_WARDEN_IMAP_* settings and \
                     flags apply to with --account NAME",
                    entries.len()
                );
            }
            entries
                .iter()
                .enumerate()
                .map(|(i, e)| (named(e, i), e.clone()))
                .collect()
        }
    };
    Ok(Chosen {
        shown,
        entries: chosen,
        warnings,
    })
}

/// What `dmarc-warden login` works with: one account's OAuth2 settings, the file its refresh token
/// goes to, and the user to sign in as.
#[derive(Debug)]
pub struct Login {
    pub account: String,
    pub settings: oauth2::Settings,
    pub refresh_token_file: PathBuf,
    pub user: Option<String>,
    pub warnings: Vec<String>,
}

/// The one account `login` is for (`select`, or the only one), validated for that.
pub fn login(
    config: Option<&Path>,
    select: Option<&str>,
    overrides: &AccountEntry,
) -> anyhow::Result<Login> {
    let Chosen {
        shown,
        mut entries,
        mut warnings,
    } = choose(config, select, overrides)?;
    if entries.len() != 1 {
        bail!(
            "{shown} lists {} accounts: choose the one to log in to with --account NAME",
            entries.len()
        );
    }
    let (name, e) = entries.remove(0);
    let place = format!("{shown}: account {name}");
    let file = e.oauth2_refresh_token_file.clone().with_context(|| {
        format!(
            "{place}: login stores a refresh token: set oauth2_refresh_token_file / \
             DMARC_WARDEN_OAUTH2_REFRESH_TOKEN_FILE"
        )
    })?;
    let timeout = Duration::from_secs(e.timeout_secs.unwrap_or(60).max(1));
    let user = e.user.clone().filter(|u| !u.is_empty());
    let settings = oauth2_settings(&e, &place, timeout, &mut warnings)?;
    Ok(Login {
        account: name,
        settings,
        refresh_token_file: file,
        user,
        warnings,
    })
}

/// An account's OAuth2 settings, checked for what its way of getting tokens needs.
fn oauth2_settings(
    e: &AccountEntry,
    place: &str,
    timeout: Duration,
    warnings: &mut Vec<String>,
) -> anyhow::Result<oauth2::Settings> {
    let blank_is_none = |s: &Option<String>| {
        s.as_ref()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    let token_url = blank_is_none(&e.oauth2_token_url);
    let provider = match (e.oauth2_provider, &token_url) {
        (Some(p), _) => p,
        (None, Some(_)) => Provider::Generic,
        (None, None) if blank_is_none(&e.oauth2_token_command).is_some() => Provider::Generic,
        (None, None) => bail!(
            "{place}: auth = oauth2 needs a provider: oauth2_provider / DMARC_WARDEN_OAUTH2_PROVIDER \
             = microsoft, google or generic (with DMARC_WARDEN_OAUTH2_TOKEN_URL)"
        ),
    };
    let tenant = blank_is_none(&e.oauth2_tenant);
    let client_id = blank_is_none(&e.oauth2_client_id);
    let client_secret = if let Some(secret) = &e.oauth2_client_secret {
        Some(secret.clone())
    } else if let Some(path) = &e.oauth2_client_secret_file {
        let secret = Secret::from_file(path).with_context(|| {
            format!(
                "{place}: the client secret file (oauth2_client_secret_file / \
                 DMARC_WARDEN_OAUTH2_CLIENT_SECRET_FILE)"
            )
        })?;
        warn_if_others_can_read(path, "the OAuth2 client secret file", warnings);
        Some(secret)
    } else {
        None
    }
    .filter(|s| !s.is_empty());
    let grant = if let Some(command) = blank_is_none(&e.oauth2_token_command) {
        Grant::Command(command)
    } else if let Some(path) = &e.oauth2_refresh_token_file {
        warn_if_others_can_read(path, "the OAuth2 refresh token file", warnings);
        Grant::RefreshToken(path.clone())
    } else {
        Grant::ClientCredentials
    };
    let settings = oauth2::Settings {
        provider,
        tenant,
        client_id,
        client_secret,
        scopes: e
            .oauth2_scope
            .iter()
            .flat_map(|s| s.split_whitespace())
            .map(str::to_owned)
            .collect(),
        token_url,
        auth_url: blank_is_none(&e.oauth2_auth_url),
        device_url: blank_is_none(&e.oauth2_device_url),
        grant,
        mechanism: e.oauth2_mechanism,
        timeout,
        ca_file: e.ca_file.clone(),
    };
    if settings.grant == Grant::ClientCredentials && settings.client_secret.is_none() {
        bail!(
            "{place}: auth = oauth2 needs a way to get tokens: a client secret \
             (DMARC_WARDEN_OAUTH2_CLIENT_SECRET_FILE or DMARC_WARDEN_OAUTH2_CLIENT_SECRET), a refresh \
             token file (DMARC_WARDEN_OAUTH2_REFRESH_TOKEN_FILE, written by `dmarc-warden login`) or \
             a token command (DMARC_WARDEN_OAUTH2_TOKEN_COMMAND)"
        );
    }
    if !matches!(settings.grant, Grant::Command(_)) {
        if settings.client_id.is_none() {
            bail!(
                "{place}: no OAuth2 client id (oauth2_client_id / DMARC_WARDEN_OAUTH2_CLIENT_ID)"
            );
        }
        if settings.token_url().is_none() {
            match provider {
                Provider::Microsoft => bail!(
                    "{place}: oauth2_provider microsoft needs the tenant (oauth2_tenant / \
                     DMARC_WARDEN_OAUTH2_TENANT)"
                ),
                _ => bail!(
                    "{place}: no OAuth2 token URL (oauth2_token_url / DMARC_WARDEN_OAUTH2_TOKEN_URL)"
                ),
            }
        }
    }
    Ok(settings)
}

fn validate(
    name: &str,
    e: AccountEntry,
    shown: &str,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Account> {
    let place = format!("{shown}: account {name}");
    let timeout = e.timeout_secs.unwrap_or(60);
    if timeout == 0 {
        bail!("{place}: timeout_secs / --timeout must be at least 1");
    }
    let oauth2 = match e.auth.unwrap_or_default() {
        Auth::Password => None,
        Auth::Oauth2 => Some(std::sync::Arc::new(oauth2::Tokens::new(oauth2_settings(
            &e,
            &place,
            Duration::from_secs(timeout),
            warnings,
        )?))),
    };
    let host = e
        .host
        .filter(|h| !h.trim().is_empty())
        .with_context(|| format!("{place}: no host (host = … or DMARC_WARDEN_IMAP_HOST)"))?;
    let user = e
        .user
        .filter(|u| !u.is_empty())
        .with_context(|| format!("{place}: no user (user = … or DMARC_WARDEN_IMAP_USER)"))?;
    let tls = e.tls.unwrap_or_default();
    let port = e.port.unwrap_or(match tls {
        Tls::Implicit => 993,
        Tls::Starttls => 143,
    });
    let password = if oauth2.is_some() {
        Secret::new(String::new())
    } else if let Some(p) = e.password {
        p
    } else if let Some(path) = &e.password_file {
        Secret::from_file(path).with_context(|| {
            format!("{place}: the password file (password_file / DMARC_WARDEN_IMAP_PASSWORD_FILE)")
        })?
    } else if let Some(command) = &e.password_command {
        Secret::from_command(command).with_context(|| format!("{place}: password_command"))?
    } else {
        bail!(
            "{place}: no password (set DMARC_WARDEN_IMAP_PASSWORD or DMARC_WARDEN_IMAP_PASSWORD_FILE, \
             or password_file / password_command in the config file)"
        );
    };
    let folders: Vec<String> = e
        .folders
        .unwrap_or_else(|| vec!["INBOX".to_owned()])
        .into_iter()
        .map(|f| f.trim().to_owned())
        .filter(|f| !f.is_empty())
        .collect();
    if folders.is_empty() {
        bail!("{place}: no folders to read (folders = [\"INBOX\"] or DMARC_WARDEN_IMAP_FOLDERS)");
    }
    let blank_is_none =
        |s: Option<String>| s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    Ok(Account {
        name: name.to_owned(),
        host: host.trim().to_owned(),
        port,
        user,
        password,
        oauth2,
        tls,
        ca_file: e.ca_file,
        danger_accept_invalid_certs: e.danger_accept_invalid_certs.unwrap_or(false),
        folders,
        archive: blank_is_none(e.archive),
        invalid: blank_is_none(e.invalid),
        mark_seen: e.mark_seen.unwrap_or(false),
        timeout: Duration::from_secs(timeout),
    })
}

/// A config file holding a password or client secret that other users can read earns a warning.
#[cfg(unix)]
fn warn_if_readable(path: &Path, file: &File, warnings: &mut Vec<String>) {
    let what = if file.account.iter().any(|a| a.password.is_some()) {
        "a password"
    } else if file
        .account
        .iter()
        .any(|a| a.oauth2_client_secret.is_some())
    {
        "an OAuth2 client secret"
    } else {
        return;
    };
    if let Some(mode) = readable_by_others(path) {
        warnings.push(format!(
            "warning: config {} holds {what} and others can read it (mode {mode:o}); \
             run `chmod 600 {}`",
            path.display(),
            path.display()
        ));
    }
}

/// The file's mode when users other than its owner may read it.
#[cfg(unix)]
fn readable_by_others(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn warn_if_readable(_: &Path, _: &File, _: &mut Vec<String>) {}

/// A file holding a secret (client secret, refresh token) that other users can read earns a warning.
#[cfg(unix)]
fn warn_if_others_can_read(path: &Path, what: &str, warnings: &mut Vec<String>) {
    if let Some(mode) = readable_by_others(path) {
        warnings.push(format!(
            "warning: {what} {} can be read by others (mode {mode:o}); run `chmod 600 {}`",
            path.display(),
            path.display()
        ));
    }
}

#[cfg(not(unix))]
fn warn_if_others_can_read(_: &Path, _: &str, _: &mut Vec<String>) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(host: &str) -> AccountEntry {
        AccountEntry {
            host: Some(host.into()),
            user: Some("u".into()),
            password: Some(Secret::new("p".into())),
            ..AccountEntry::default()
        }
    }

    #[test]
    fn domains_of_the_file_are_domains_in_their_normal_form() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "[[domain]]\nname = \"Example.ORG.\"\nrua = \"mailto:d@example.org\"\n\
             selectors = [\"S1\"]\n\
             [[sender]]\nname = \"relay\"\ndkim_domains = [\"Mail.Relay.Example.\"]\n",
        )
        .unwrap();
        let j = judgement(Some(&path)).unwrap();
        assert!(j.published.contains_key("example.org"), "{:?}", j.published);
        assert_eq!(j.selectors["example.org"], ["s1"]);
        assert_eq!(j.knowledge.declared[0].dkim_domains, ["relay.example"]);
        for (text, setting) in [
            ("[[domain]]\nname = \"exa mple.org\"\n", "[[domain]] name"),
            (
                "[[sender]]\nname = \"x\"\nspf_domains = [\"a..b\"]\n",
                "sender \"x\": spf_domains",
            ),
            (
                "[[service]]\nname = \"x\"\ndomains = [\"\"]\n",
                "service \"x\": domains",
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = judgement(Some(&path)).unwrap_err().to_string();
            let place = format!("config {}: {setting}: ", path.display());
            assert!(
                err.starts_with(&place) && err.contains("is not a domain name"),
                "{err}"
            );
        }
    }

    /// The file as read, before validation: `Debug` shows no secret either.
    #[test]
    fn debug_of_the_raw_file_never_shows_a_secret() {
        let file: File = toml::from_str(
            "[[account]]\nhost = \"h\"\npassword = \"hunter2-a\"\n\
             oauth2_client_secret = \"hunter2-b\"\n\
             [[notify.channel]]\nkind = \"webhook\"\nurl = \"https://h.example/hunter2-c\"\n",
        )
        .unwrap();
        let shown = format!("{file:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("password: Some(***)"), "{shown}");
    }

    #[test]
    fn defaults_follow_the_tls_mode() {
        let a = validate("x", entry("h"), "test", &mut Vec::new()).unwrap();
        assert_eq!(
            (a.port, a.tls, a.folders.clone()),
            (993, Tls::Implicit, vec!["INBOX".into()])
        );
        let mut e = entry("h");
        e.tls = Some(Tls::Starttls);
        assert_eq!(validate("x", e, "test", &mut Vec::new()).unwrap().port, 143);
    }

    #[test]
    fn errors_name_the_setting() {
        let mut e = entry("h");
        e.password = None;
        let err = validate("x", e, "test", &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("DMARC_WARDEN_IMAP_PASSWORD"), "{err}");
        let mut e = entry("h");
        e.user = None;
        let err = validate("x", e, "test", &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("DMARC_WARDEN_IMAP_USER"), "{err}");
    }

    #[test]
    fn oauth2_needs_a_provider_a_tenant_and_a_way_to_get_tokens() {
        let mut e = entry("h");
        e.password = None;
        e.auth = Some(Auth::Oauth2);
        e.oauth2_client_id = Some("app".into());
        e.oauth2_client_secret = Some(Secret::new("s".into()));
        let err = |e: &AccountEntry| {
            validate("x", e.clone(), "test", &mut Vec::new())
                .unwrap_err()
                .to_string()
        };
        assert!(
            err(&e).contains("DMARC_WARDEN_OAUTH2_PROVIDER"),
            "{}",
            err(&e)
        );
        e.oauth2_provider = Some(Provider::Microsoft);
        assert!(
            err(&e).contains("DMARC_WARDEN_OAUTH2_TENANT"),
            "{}",
            err(&e)
        );
        e.oauth2_tenant = Some("contoso".into());
        let a = validate("x", e.clone(), "test", &mut Vec::new()).unwrap();
        let tokens = a.oauth2.expect("OAuth2 settings");
        assert_eq!(tokens.settings().grant, Grant::ClientCredentials);
        assert_eq!(a.password.expose(), "");
        e.oauth2_client_secret = None;
        assert!(err(&e).contains("needs a way to get tokens"), "{}", err(&e));
        // A token command needs nothing else.
        let mut c = entry("h");
        c.password = None;
        c.auth = Some(Auth::Oauth2);
        c.oauth2_token_command = Some("echo t".into());
        let a = validate("x", c, "test", &mut Vec::new()).unwrap();
        assert_eq!(
            a.oauth2.unwrap().settings().grant,
            Grant::Command("echo t".into())
        );
    }

    #[test]
    fn oauth2_sources_from_outside_the_file_replace_the_file_s() {
        let mut file = entry("h");
        file.oauth2_token_command = Some("helper".into());
        file.oauth2_client_secret = Some(Secret::new("in-file".into()));
        let over = AccountEntry {
            oauth2_refresh_token_file: Some("/r".into()),
            oauth2_client_secret_file: Some("/s".into()),
            ..AccountEntry::default()
        };
        let merged = file.overlay(&over);
        assert!(merged.oauth2_token_command.is_none() && merged.oauth2_client_secret.is_none());
        assert_eq!(merged.oauth2_refresh_token_file, Some(PathBuf::from("/r")));
    }

    #[test]
    fn overrides_replace_the_password_source() {
        let mut file = entry("h");
        file.password = None;
        file.password_command = Some("exit 1".into());
        let over = AccountEntry {
            password: Some(Secret::new("env".into())),
            ..AccountEntry::default()
        };
        let merged = file.overlay(&over);
        assert_eq!(merged.password.as_ref().map(Secret::expose), Some("env"));
        assert!(merged.password_command.is_none());
    }
}
