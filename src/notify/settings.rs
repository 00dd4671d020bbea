//! The `[notify]` table of the config file: thresholds of the events and the channels notices go
//! to, validated into [`Settings`]. The CLI edge: it reads the SMTP password (from `password_file` or
//! `DMARC_WARDEN_SMTP_PASSWORD`, never from the command line), and its errors name the setting.
//!
//! ```toml
//! [notify]
//! min_messages = 10              # new_unauthorised_source, sender_failing: at least this many messages
//! pass_rate_drop_points = 5.0    # pass_rate_drop: legitimate pass rate down by more than this
//! silent_days = 3                # reporter_silent: a daily reporter quiet this many days
//! tls_failure_pct = 5.0          # tls_failures: failed share of TLS sessions to an MX above this
//! tls_min_sessions = 20          #   ... out of at least this many sessions
//!
//! [[notify.channel]]
//! kind = "webhook"
//! url = "https://hooks.example.org/T000/B000"      # plain http only to a loopback address
//! domains = ["example.org"]                          # optional: only these domains' events
//!
//! [[notify.channel]]
//! kind = "email"
//! smtp_host = "smtp.example.org"
//! smtp_port = 587
//! tls = "starttls"                                   # "implicit", or "none" (loopback hosts only)
//! ca_file = "/etc/dmarc-warden/smtp-ca.pem"          # optional extra trust anchor
//! username = "dmarc-warden@example.org"              # optional; password_file or DMARC_WARDEN_SMTP_PASSWORD
//! password_file = "/etc/dmarc-warden/smtp-password"
//! from = "dmarc-warden@example.org"
//! to = ["postmaster@example.org"]
//! ```

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use sha2::Digest;

use super::events::NoticeThresholds;
use crate::domain::Domain;
use crate::secret::Secret;

/// `[notify]` as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyEntry {
    min_messages: Option<u64>,
    pass_rate_drop_points: Option<f64>,
    silent_days: Option<u32>,
    tls_failure_pct: Option<f64>,
    tls_min_sessions: Option<u64>,
    #[serde(default)]
    channel: Vec<ChannelEntry>,
}

/// `[[notify.channel]]` as written; which fields apply depends on `kind`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelEntry {
    kind: String,
    domains: Option<Vec<String>>,
    url: Option<Secret>,
    smtp_host: Option<String>,
    smtp_port: Option<u16>,
    tls: Option<String>,
    ca_file: Option<PathBuf>,
    username: Option<String>,
    password_file: Option<PathBuf>,
    from: Option<String>,
    to: Option<Vec<String>>,
    timeout_secs: Option<u64>,
}

/// Validated `[notify]` settings.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub thresholds: NoticeThresholds,
    /// Empty: notices are printed on stdout.
    pub channels: Vec<Channel>,
}

/// One place notices go.
#[derive(Debug, Clone)]
pub struct Channel {
    /// Identifies the channel in the outbox; holds no secret (a webhook URL is one: it is hashed).
    pub id: String,
    /// Names the channel in messages: `#2 (webhook to hooks.example.org)`.
    pub label: String,
    /// Only these policy domains' events; `None`: all.
    pub domains: Option<Vec<Domain>>,
    pub target: Target,
}

impl Channel {
    /// Whether this channel takes `domain`'s events.
    pub fn wants(&self, domain: &str) -> bool {
        self.domains
            .as_ref()
            .is_none_or(|d| d.iter().any(|d| d.as_str() == domain))
    }
}

#[derive(Debug, Clone)]
pub enum Target {
    Webhook(Webhook),
    Email(Email),
}

#[derive(Debug, Clone)]
pub struct Webhook {
    /// May carry a token: never printed.
    pub url: Secret,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// TLS from the first byte (port 465).
    Implicit,
    /// STARTTLS, required (port 587).
    Starttls,
    /// No TLS: only to a loopback host.
    None,
}

#[derive(Debug, Clone)]
pub struct Email {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub ca_file: Option<PathBuf>,
    /// `(username, password)`.
    pub login: Option<(String, Secret)>,
    pub from: String,
    pub to: Vec<String>,
    pub timeout: Duration,
}

/// The environment variable holding the SMTP password when no `password_file` is set.
pub const PASSWORD_ENV: &str = "DMARC_WARDEN_SMTP_PASSWORD";

/// Validates `[notify]`; `shown` names the config file in errors.
pub fn validate(entry: NotifyEntry, shown: &str) -> anyhow::Result<Settings> {
    let d = NoticeThresholds::default();
    let thresholds = NoticeThresholds {
        min_messages: entry.min_messages.unwrap_or(d.min_messages),
        pass_rate_drop_points: entry
            .pass_rate_drop_points
            .unwrap_or(d.pass_rate_drop_points),
        silent_days: entry.silent_days.unwrap_or(d.silent_days).max(1),
        tls_failure_pct: entry.tls_failure_pct.unwrap_or(d.tls_failure_pct),
        tls_min_sessions: entry.tls_min_sessions.unwrap_or(d.tls_min_sessions),
    };
    let mut channels = Vec::new();
    for (i, c) in entry.channel.into_iter().enumerate() {
        channels.push(channel(i + 1, c, shown)?);
    }
    Ok(Settings {
        thresholds,
        channels,
    })
}

fn channel(n: usize, c: ChannelEntry, shown: &str) -> anyhow::Result<Channel> {
    let place = format!("{shown}: [[notify.channel]] #{n}");
    let domains = match c.domains {
        Some(v) => Some(
            v.iter()
                .map(|d| {
                    Domain::parse_policy(d).map_err(|e| anyhow::anyhow!("{place}: domains: {e}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?,
        ),
        None => None,
    };
    let timeout = Duration::from_secs(c.timeout_secs.unwrap_or(30).max(1));
    let unused = |fields: &[(&str, bool)]| -> anyhow::Result<()> {
        match fields.iter().find(|(_, set)| *set) {
            Some((name, _)) => bail!("{place}: {name} does not apply to kind = {:?}", c.kind),
            None => Ok(()),
        }
    };
    match c.kind.as_str() {
        "webhook" => {
            unused(&[
                ("smtp_host", c.smtp_host.is_some()),
                ("smtp_port", c.smtp_port.is_some()),
                ("tls", c.tls.is_some()),
                ("username", c.username.is_some()),
                ("password_file", c.password_file.is_some()),
                ("from", c.from.is_some()),
                ("to", c.to.is_some()),
            ])?;
            let url = c
                .url
                .as_ref()
                .map(|u| u.expose().trim())
                .filter(|u| !u.is_empty())
                .with_context(|| {
                    format!("{place}: kind = \"webhook\" needs url = \"https://…\"")
                })?;
            let uri: ureq::http::Uri = url
                .parse()
                .map_err(|_| anyhow::anyhow!("{place}: url is not a URL"))?;
            let host = uri.host().unwrap_or_default().to_owned();
            match uri.scheme_str() {
                Some("https") => {}
                Some("http") if is_loopback(&host) => {}
                Some("http") => bail!(
                    "{place}: url: plain http only to a loopback address (127.0.0.1, ::1, localhost); \
                     use https for {host}"
                ),
                _ => bail!("{place}: url must start with https://"),
            }
            let hash = hex(&sha2::Sha256::digest(url.as_bytes()));
            Ok(Channel {
                id: format!("webhook:{}", &hash[..16]),
                label: format!("#{n} (webhook to {host})"),
                domains,
                target: Target::Webhook(Webhook {
                    url: Secret::new(url.to_owned()),
                    ca_file: c.ca_file,
                    timeout,
                }),
            })
        }
        "email" => {
            unused(&[("url", c.url.is_some())])?;
            let host = c
                .smtp_host
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
                .with_context(|| format!("{place}: kind = \"email\" needs smtp_host"))?;
            let tls = match c.tls.as_deref().unwrap_or("starttls") {
                "starttls" => SmtpTls::Starttls,
                "implicit" => SmtpTls::Implicit,
                "none" if is_loopback(&host) => SmtpTls::None,
                "none" => bail!(
                    "{place}: tls = \"none\" only to a loopback host (127.0.0.1, ::1, localhost), \
                     not {host}: the password and the reports' findings would cross the network in clear"
                ),
                other => bail!(
                    "{place}: tls = {other:?}: expected \"starttls\", \"implicit\" or \"none\""
                ),
            };
            let port = c.smtp_port.unwrap_or(match tls {
                SmtpTls::Implicit => 465,
                SmtpTls::Starttls => 587,
                SmtpTls::None => 25,
            });
            let from = c
                .from
                .filter(|f| !f.trim().is_empty())
                .with_context(|| format!("{place}: kind = \"email\" needs from = \"…\""))?;
            let to: Vec<String> =
                c.to.unwrap_or_default()
                    .into_iter()
                    .map(|t| t.trim().to_owned())
                    .filter(|t| !t.is_empty())
                    .collect();
            if to.is_empty() {
                bail!("{place}: kind = \"email\" needs to = [\"…\"]");
            }
            for address in std::iter::once(&from).chain(&to) {
                address.parse::<lettre::message::Mailbox>().map_err(|e| {
                    anyhow::anyhow!("{place}: {address:?} is not a mail address: {e}")
                })?;
            }
            let login = match c.username.filter(|u| !u.is_empty()) {
                None => None,
                Some(user) => {
                    let password = if let Some(path) = &c.password_file {
                        Secret::from_file(path).with_context(|| {
                            format!("{place}: the password file (password_file)")
                        })?
                    } else if let Some(p) = Secret::from_env(PASSWORD_ENV)? {
                        p
                    } else {
                        bail!(
                            "{place}: username is set but no password: set password_file, or \
                             {PASSWORD_ENV} in the environment"
                        );
                    };
                    Some((user, password))
                }
            };
            Ok(Channel {
                id: format!("email:{host}:{port}:{}", to.join(",")),
                label: format!("#{n} (email via {host}:{port})"),
                domains,
                target: Target::Email(Email {
                    host,
                    port,
                    tls,
                    ca_file: c.ca_file,
                    login,
                    from: from.trim().to_owned(),
                    to,
                    timeout,
                }),
            })
        }
        other => bail!("{place}: kind = {other:?}: expected \"webhook\" or \"email\""),
    }
}

/// A loopback address, or `localhost`.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> anyhow::Result<Settings> {
        #[derive(Deserialize)]
        struct F {
            notify: NotifyEntry,
        }
        let f: F = toml::from_str(toml_text)?;
        validate(f.notify, "test")
    }

    #[test]
    fn plain_http_and_tls_none_only_to_loopback() {
        let err =
            parse("[[notify.channel]]\nkind = \"webhook\"\nurl = \"http://hooks.example.org/x\"\n")
                .unwrap_err()
                .to_string();
        assert!(err.contains("loopback"), "{err}");
        assert!(
            parse("[[notify.channel]]\nkind = \"webhook\"\nurl = \"http://127.0.14.1:8080/x\"\n")
                .is_ok()
        );
        let err = parse(
            "[[notify.channel]]\nkind = \"email\"\nsmtp_host = \"smtp.example.org\"\ntls = \"none\"\n\
             from = \"a@example.org\"\nto = [\"b@example.org\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("loopback"), "{err}");
    }

    #[test]
    fn channel_domains_are_domains_in_their_normal_form() {
        let s = parse(
            "[[notify.channel]]\nkind = \"webhook\"\nurl = \"https://h.example/x\"\n\
             domains = [\"Example.ORG.\"]\n",
        )
        .unwrap();
        assert!(s.channels[0].wants("example.org"));
        assert!(!s.channels[0].wants("example.net"));
        let err = parse(
            "[[notify.channel]]\nkind = \"webhook\"\nurl = \"https://h.example/x\"\n\
             domains = [\"example org\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "test: [[notify.channel]] #1: domains: \"example org\" is not a domain name"
        );
    }

    #[test]
    fn webhook_urls_stay_out_of_ids_and_labels() {
        let s = parse(
            "[[notify.channel]]\nkind = \"webhook\"\nurl = \"https://hooks.example.org/T000/SECRET\"\n",
        )
        .unwrap();
        let c = &s.channels[0];
        assert!(!c.id.contains("SECRET") && !c.label.contains("SECRET"));
        assert!(!format!("{c:?}").contains("SECRET"));
        assert_eq!(c.label, "#1 (webhook to hooks.example.org)");
    }
}
