//! The config file (TOML; `~/.config/dmarc-warden/config.toml` by default): `[[account]]` tables for
//! `fetch`, merged with the `DMARC_WARDEN_IMAP_*` environment and flags into validated [`Account`]s;
//! `[[sender]]`, `[[service]]`, `[[domain]]` and `[advice]` for `senders` and `advise`
//! ([`judgement`]); `[notify]` for `notify` and `digest` ([`notify`]). The CLI edge: it reads files
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
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::analyse::{DeclaredSender, Knowledge, Published, Service, Thresholds, registrable};
use crate::fetch::imap::{Account, Secret, Tls};

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
}

/// The map of well-known sending services built into the binary.
const SERVICES: &str = include_str!("../data/services.toml");

/// What `senders` and `advise` know beyond the reports, from the config file.
#[derive(Debug, Clone, Default)]
pub struct Judgement {
    pub knowledge: Knowledge,
    pub thresholds: Thresholds,
    /// Per domain: rua / ruf as published.
    pub published: std::collections::BTreeMap<String, Published>,
}

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
    let lower = |v: &[String]| -> Vec<String> { v.iter().map(|d| registrable(d)).collect() };
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
            dkim_domains: lower(&s.dkim_domains),
            spf_domains: lower(&s.spf_domains),
            legitimate: s.legitimate,
        });
    }
    let services = file
        .service
        .iter()
        .chain(&builtin.service)
        .map(|s| Service {
            name: s.name.clone(),
            domains: lower(&s.domains),
        })
        .collect();
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
    };
    let published = file
        .domain
        .iter()
        .map(|d| {
            (
                d.name.trim().trim_end_matches('.').to_ascii_lowercase(),
                Published {
                    rua: d.rua.clone(),
                    ruf: d.ruf.clone(),
                },
            )
        })
        .collect();
    Ok(Judgement {
        knowledge: Knowledge { declared, services },
        thresholds,
        published,
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
    pub password: Option<String>,
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
            timeout_secs
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
    let mut accounts = Vec::new();
    for (name, entry) in chosen {
        let account = validate(&name, entry, &shown)?;
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

fn validate(name: &str, e: AccountEntry, shown: &str) -> anyhow::Result<Account> {
    let place = format!("{shown}: account {name}");
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
    let password = if let Some(p) = e.password {
        p
    } else if let Some(path) = &e.password_file {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "{place}: cannot read the password file {} (password_file / DMARC_WARDEN_IMAP_PASSWORD_FILE)",
                path.display()
            )
        })?;
        text.trim_end_matches(['\r', '\n']).to_owned()
    } else if let Some(command) = &e.password_command {
        run_password_command(command).with_context(|| format!("{place}: password_command"))?
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
    let timeout = e.timeout_secs.unwrap_or(60);
    if timeout == 0 {
        bail!("{place}: timeout_secs / --timeout must be at least 1");
    }
    Ok(Account {
        name: name.to_owned(),
        host: host.trim().to_owned(),
        port,
        user,
        password: Secret::new(password),
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

/// Runs `sh -c command` and takes its first line of output as the password. Its output is never
/// shown, even on failure.
fn run_password_command(command: &str) -> anyhow::Result<String> {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("cannot run sh")?;
    if !out.status.success() {
        bail!("{command:?} failed ({})", out.status);
    }
    let text = String::from_utf8(out.stdout).context("output is not UTF-8")?;
    let line = text.lines().next().unwrap_or_default().to_owned();
    if line.is_empty() {
        bail!("{command:?} printed no password");
    }
    Ok(line)
}

/// A config file holding a password that other users can read earns a warning.
#[cfg(unix)]
fn warn_if_readable(path: &Path, file: &File, warnings: &mut Vec<String>) {
    use std::os::unix::fs::PermissionsExt;
    if !file.account.iter().any(|a| a.password.is_some()) {
        return;
    }
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            warnings.push(format!(
                "warning: config {} holds a password and others can read it (mode {mode:o}); \
                 run `chmod 600 {}`",
                path.display(),
                path.display()
            ));
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable(_: &Path, _: &File, _: &mut Vec<String>) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(host: &str) -> AccountEntry {
        AccountEntry {
            host: Some(host.into()),
            user: Some("u".into()),
            password: Some("p".into()),
            ..AccountEntry::default()
        }
    }

    #[test]
    fn defaults_follow_the_tls_mode() {
        let a = validate("x", entry("h"), "test").unwrap();
        assert_eq!(
            (a.port, a.tls, a.folders.clone()),
            (993, Tls::Implicit, vec!["INBOX".into()])
        );
        let mut e = entry("h");
        e.tls = Some(Tls::Starttls);
        assert_eq!(validate("x", e, "test").unwrap().port, 143);
    }

    #[test]
    fn errors_name_the_setting() {
        let mut e = entry("h");
        e.password = None;
        let err = validate("x", e, "test").unwrap_err().to_string();
        assert!(err.contains("DMARC_WARDEN_IMAP_PASSWORD"), "{err}");
        let mut e = entry("h");
        e.user = None;
        let err = validate("x", e, "test").unwrap_err().to_string();
        assert!(err.contains("DMARC_WARDEN_IMAP_USER"), "{err}");
    }

    #[test]
    fn overrides_replace_the_password_source() {
        let mut file = entry("h");
        file.password = None;
        file.password_command = Some("exit 1".into());
        let over = AccountEntry {
            password: Some("env".into()),
            ..AccountEntry::default()
        };
        let merged = file.overlay(&over);
        assert_eq!(merged.password.as_deref(), Some("env"));
        assert!(merged.password_command.is_none());
    }
}
