//! Connecting: the driver's settings from a [`PgUrl`] and a password, TLS through rustls as the URL's
//! `sslmode` asks, and every way connecting fails turned into one line that names the server.

use std::sync::Arc;
use std::time::Duration;

use postgres::config::{ChannelBinding, SslMode as DriverSslMode};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject};
use rustls::{ClientConfig, RootCertStore};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::PgError;
use super::password::{self, Password};
use super::url::{Host, PgUrl, RootCert, SslMode};
use crate::fetch::imap::AcceptAnyCertificate;

/// How to open connections to one database; cheap to use again (`serve` opens several).
pub struct Connector {
    url: PgUrl,
    config: postgres::Config,
    tls: Option<MakeRustlsConnect>,
    /// The certificates in force ("CA file …"), for messages.
    root_cert: Option<String>,
    /// The file the password came from, for messages.
    password_source: Option<String>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("url", &self.url.to_string())
            .finish()
    }
}

impl Connector {
    /// Settings for `url`, the password from the environment's files ([`password::resolve`]).
    /// Returns warnings for stderr too.
    pub fn from_env(url: &PgUrl) -> Result<(Connector, Vec<String>), PgError> {
        let found = password::resolve(
            url,
            &|name| std::env::var_os(name),
            dirs::home_dir().as_deref(),
        )?;
        let warnings = found.warnings.clone();
        Ok((Connector::new(url, found)?, warnings))
    }

    /// Settings for `url` with `password` (from [`password::resolve`]).
    pub fn new(url: &PgUrl, password: Password) -> Result<Connector, PgError> {
        let mut config = postgres::Config::new();
        config
            .user(&url.user)
            .dbname(&url.dbname)
            .port(url.port)
            .application_name("dmarc-warden")
            // No JIT compilation: the reads here are short or stream their rows, and compiling
            // a plan's expressions cost 0.3-0.9 s a query at 10M records, more than it saved.
            .options("-c jit=off")
            .connect_timeout(url.connect_timeout)
            // A server gone silent is noticed in about a minute rather than two hours.
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .keepalives_interval(Duration::from_secs(10))
            .keepalives_retries(3);
        match &url.host {
            Host::Tcp(h) => config.host(h),
            Host::Socket(dir) => config.host_path(dir),
        };
        if let Some(secret) = password.secret.as_ref().filter(|s| !s.expose().is_empty()) {
            config.password(secret.expose());
        }
        let (root_cert, roots) = roots(url)?;
        let tls = match (url.sslmode, &url.host) {
            // TLS over a Unix socket means nothing; the driver would not use it.
            (SslMode::Disable, _) | (_, Host::Socket(_)) => {
                config.ssl_mode(DriverSslMode::Disable);
                None
            }
            (mode, Host::Tcp(_)) => {
                config.ssl_mode(if mode == SslMode::Prefer {
                    DriverSslMode::Prefer
                } else {
                    DriverSslMode::Require
                });
                // With the server's certificate checked, SCRAM binds to it when the server can
                // (SCRAM-SHA-256-PLUS); unchecked, binding still stops a relay from logging in.
                config.channel_binding(ChannelBinding::Prefer);
                Some(MakeRustlsConnect::new(tls_config(url, roots)?))
            }
        };
        Ok(Connector {
            url: url.clone(),
            config,
            tls,
            root_cert,
            password_source: password.source.map(|p| p.display().to_string()),
        })
    }

    pub fn url(&self) -> &PgUrl {
        &self.url
    }

    /// A new connection.
    pub fn connect(&self) -> Result<postgres::Client, PgError> {
        let connected = match &self.tls {
            Some(tls) => self.config.connect(tls.clone()),
            None => self.config.connect(postgres::NoTls),
        };
        connected.map_err(|e| self.connect_error(&e))
    }

    /// One line for a failed connection: the certificate refused, the password refused, the
    /// database missing, or the network's own words.
    fn connect_error(&self, e: &postgres::Error) -> PgError {
        let url = self.url.to_string();
        let server = self.url.server();
        if let Some(tls) = rustls_error(e) {
            let against = match &self.root_cert {
                Some(roots) => format!(" ({roots})"),
                None => String::new(),
            };
            return PgError::Certificate {
                server,
                reason: format!("{tls}{against}"),
            };
        }
        if let Some(db) = e.as_db_error() {
            use postgres::error::SqlState;
            let code = db.code();
            if *code == SqlState::INVALID_PASSWORD {
                let from = match &self.password_source {
                    Some(file) => format!("the password from {file}"),
                    None => "no password".to_owned(),
                };
                return PgError::Refused {
                    url,
                    reason: format!("{} ({from})", one_line(db.message())),
                };
            }
            if *code == SqlState::INVALID_CATALOG_NAME {
                return PgError::NoDatabase { url };
            }
            return PgError::Refused {
                url,
                reason: one_line(db.message()),
            };
        }
        let text = error_text(e);
        if text.contains("password missing") {
            return PgError::NeedsPassword { url };
        }
        PgError::Connect {
            server,
            reason: text,
        }
    }
}

/// The certificates in force (named for messages) and the store of them, when the mode checks certificates or a
/// CA file makes `require` check them (`~/.postgresql/root.crt` as libpq, when the URL names none).
fn roots(url: &PgUrl) -> Result<(Option<String>, Option<RootCertStore>), PgError> {
    let checks = matches!(url.sslmode, SslMode::VerifyCa | SslMode::VerifyFull);
    let file = match &url.root_cert {
        Some(RootCert::System) => {
            let mut roots = RootCertStore::empty();
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            return Ok((Some("the system's trust store".into()), Some(roots)));
        }
        Some(RootCert::File(path)) => Some(path.clone()),
        None => dirs::home_dir()
            .map(|h| h.join(".postgresql/root.crt"))
            .filter(|p| p.is_file()),
    };
    let Some(file) = file else {
        if checks {
            return Err(PgError::Url {
                reason: format!(
                    "sslmode={} needs sslrootcert=FILE (the CA's certificates, PEM), or \
                     ~/.postgresql/root.crt",
                    url.sslmode.as_str()
                ),
            });
        }
        return Ok((None, None));
    };
    if !checks && url.sslmode != SslMode::Require {
        return Ok((None, None));
    }
    let ca_err = |reason: String| PgError::CaFile {
        path: file.clone(),
        reason,
    };
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(&file).map_err(|e| ca_err(e.to_string()))?;
    for cert in certs {
        let cert = cert.map_err(|e| ca_err(e.to_string()))?;
        roots.add(cert).map_err(|e| ca_err(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(ca_err("no PEM certificate in it".into()));
    }
    Ok((Some(format!("CA file {}", file.display())), Some(roots)))
}

fn tls_config(url: &PgUrl, roots: Option<RootCertStore>) -> Result<ClientConfig, PgError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls_err = |reason: String| PgError::Connect {
        server: url.server(),
        reason,
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(e.to_string()))?
        .dangerous();
    let config = match roots {
        // `prefer` and `require` without a CA file, as libpq: encrypted, the certificate not
        // checked (the handshake's signatures are).
        None => builder.with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider))),
        Some(roots) => {
            let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| tls_err(e.to_string()))?;
            builder.with_custom_certificate_verifier(Arc::new(Chain {
                webpki,
                check_name: url.sslmode == SslMode::VerifyFull,
            }))
        }
    };
    Ok(config.with_no_client_auth())
}

/// `verify-ca` / `verify-full`: the WebPKI chain to the CA file; the host name only for
/// `verify-full`.
#[derive(Debug)]
struct Chain {
    webpki: Arc<rustls::client::WebPkiServerVerifier>,
    check_name: bool,
}

impl rustls::client::danger::ServerCertVerifier for Chain {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::CertificateError as E;
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            // WebPKI checks the name last, so a certificate refused only for its name has a good
            // chain.
            Err(rustls::Error::InvalidCertificate(
                E::NotValidForName | E::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            verdict => verdict,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// The rustls error behind a failed handshake, if that is what failed.
fn rustls_error(e: &postgres::Error) -> Option<&rustls::Error> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        // io::Error's own source() skips the error it wraps.
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(tls) = inner.downcast_ref::<rustls::Error>()
        {
            return Some(tls);
        }
        next = err.source();
    }
    None
}

/// A driver error and its causes, on one line: "error connecting to server: Connection refused".
pub(crate) fn error_text(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut text = one_line(db.message());
        if let Some(detail) = db.detail() {
            text.push_str(" (");
            text.push_str(&one_line(detail));
            text.push(')');
        }
        // What the server suggests, e.g. "out of shared memory" (hint: You might need to
        // increase max_locks_per_transaction).
        if let Some(hint) = db.hint() {
            text.push_str(" (hint: ");
            text.push_str(&one_line(hint));
            text.push(')');
        }
        return text;
    }
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        let text = one_line(&err.to_string());
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
