//! What `--db` names: an SQLite file, or a PostgreSQL server as
//! `postgres://USER@HOST[:PORT]/DB[?sslmode=…&sslrootcert=…]` (also `postgresql://`).
//!
//! A value that starts like a URL (`scheme://`) with any other scheme is refused rather than taken
//! for a file path, and so is a URL holding a password: passwords come from a file
//! (`DMARC_WARDEN_DB_PASSWORD_FILE`, `PGPASSFILE`, `~/.pgpass`), never from argv or a URL.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use percent_encoding::percent_decode_str;

use super::PgError;

/// Where the database is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(PgUrl),
}

impl Location {
    /// Reads a `--db` value (or `DMARC_WARDEN_DB`). Anything that does not start with
    /// `scheme://` is an SQLite path.
    pub fn parse(db: &OsStr) -> Result<Location, PgError> {
        let Some(text) = db.to_str() else {
            return Ok(Location::Sqlite(PathBuf::from(db)));
        };
        match url_scheme(text) {
            None => Ok(Location::Sqlite(PathBuf::from(db))),
            Some(scheme)
                if scheme.eq_ignore_ascii_case("postgres")
                    || scheme.eq_ignore_ascii_case("postgresql") =>
            {
                PgUrl::parse(&text[scheme.len() + 3..]).map(Location::Postgres)
            }
            Some(scheme) => Err(PgError::Scheme {
                scheme: scheme.to_owned(),
            }),
        }
    }
}

/// The file's path, or the URL without a password: safe to show.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "{}", path.display()),
            Location::Postgres(url) => write!(f, "{url}"),
        }
    }
}

/// The scheme of `text` when it starts like a URL (`scheme://`).
fn url_scheme(text: &str) -> Option<&str> {
    let (scheme, _) = text.split_once("://")?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(scheme)
}

/// How the connection uses TLS, as libpq's `sslmode`. `allow` is not offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, else plain; the certificate is not checked. libpq's default.
    Prefer,
    /// TLS or nothing; the certificate is not checked unless a CA file is given (`sslrootcert`, or
    /// `~/.postgresql/root.crt`), which makes it `verify-ca`, as in libpq.
    Require,
    /// TLS, with a certificate chain to the CA file; the host name is not checked.
    VerifyCa,
    /// TLS, with a certificate chain to the CA file (or the system's roots with
    /// `sslrootcert=system`) that names the host.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode, String> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(format!(
                    "sslmode={other} is not supported (disable, prefer, require, verify-ca or \
                     verify-full)"
                ));
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Which certificates a server's chain may end in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// The certificates in this PEM file.
    File(PathBuf),
    /// The system's trust store (`sslrootcert=system`, as libpq 16).
    System,
}

/// The server: a host name or address, or the directory of a Unix socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Tcp(String),
    Socket(PathBuf),
}

/// Debian's directory of the server's Unix socket, for a URL with no host.
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// How long connecting may take when the URL does not say (`connect_timeout`).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A PostgreSQL database, parsed from its URL. It holds no password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgUrl {
    pub user: String,
    pub host: Host,
    pub port: u16,
    pub dbname: String,
    pub sslmode: SslMode,
    /// `sslrootcert`, when given.
    pub root_cert: Option<RootCert>,
    pub connect_timeout: Duration,
}

impl PgUrl {
    /// Parses what follows `postgres://`.
    fn parse(rest: &str) -> Result<PgUrl, PgError> {
        let bad = |reason: String| PgError::Url { reason };
        if rest.contains('#') {
            return Err(bad("a fragment (#…) has no meaning here".into()));
        }
        let (main, query) = match rest.split_once('?') {
            Some((m, q)) => (m, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = main.split_once('/').unwrap_or((main, ""));
        let Some((userinfo, hostport)) = authority.rsplit_once('@') else {
            return Err(bad("names no user (postgres://USER@HOST[:PORT]/DB)".into()));
        };
        if userinfo.contains(':') {
            return Err(PgError::PasswordInUrl);
        }
        let user = decode(userinfo, "user")?;
        if user.is_empty() {
            return Err(bad("names no user (postgres://USER@HOST[:PORT]/DB)".into()));
        }
        let (host, port) = split_host_port(hostport).map_err(bad)?;
        let dbname = decode(path, "database name")?;
        if dbname.is_empty() {
            return Err(bad(
                "names no database (postgres://USER@HOST[:PORT]/DB)".into()
            ));
        }
        if dbname.contains('/') {
            return Err(bad(format!("{dbname:?} is not a database name")));
        }
        let mut url = PgUrl {
            user,
            host,
            port: port.unwrap_or(5432),
            dbname,
            sslmode: SslMode::Prefer,
            root_cert: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        };
        let mut sslmode = None;
        let mut seen: Vec<String> = Vec::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode(name, "parameter name")?;
            if name == "password" {
                return Err(PgError::PasswordInUrl);
            }
            let value = decode(value, &name)?;
            if seen.contains(&name) {
                return Err(bad(format!("{name} is given twice")));
            }
            match name.as_str() {
                "sslmode" => sslmode = Some(SslMode::parse(&value).map_err(bad)?),
                "sslrootcert" if value == "system" => url.root_cert = Some(RootCert::System),
                "sslrootcert" if !value.is_empty() => {
                    url.root_cert = Some(RootCert::File(PathBuf::from(value)));
                }
                "connect_timeout" => {
                    let secs: u64 = value.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                        bad(format!("connect_timeout={value}: not a number of seconds"))
                    })?;
                    url.connect_timeout = Duration::from_secs(secs);
                }
                "host" if value.starts_with('/') => url.host = Host::Socket(PathBuf::from(value)),
                _ => {
                    return Err(bad(format!(
                        "unknown parameter {name}={value} (known: sslmode, sslrootcert, \
                         connect_timeout, host=/socket/dir)"
                    )));
                }
            }
            seen.push(name);
        }
        url.sslmode = match (sslmode, &url.root_cert) {
            // As libpq 16: the system's roots are only worth it with the host name checked.
            (None, Some(RootCert::System)) => SslMode::VerifyFull,
            (Some(mode), Some(RootCert::System)) if mode != SslMode::VerifyFull => {
                return Err(bad(format!(
                    "sslrootcert=system needs sslmode=verify-full, not {}",
                    mode.as_str()
                )));
            }
            (mode, _) => mode.unwrap_or(SslMode::Prefer),
        };
        Ok(url)
    }

    /// `HOST:PORT`, or the socket directory: the server, for messages.
    pub fn server(&self) -> String {
        match &self.host {
            Host::Tcp(h) if h.contains(':') => format!("[{h}]:{}", self.port),
            Host::Tcp(h) => format!("{h}:{}", self.port),
            Host::Socket(dir) => format!("{} (port {})", dir.display(), self.port),
        }
    }

    /// The host as `.pgpass` names it: the host name, or `localhost` for a Unix socket.
    pub fn pgpass_host(&self) -> &str {
        match &self.host {
            Host::Tcp(h) => h,
            Host::Socket(_) => "localhost",
        }
    }

    pub fn root_cert_path(&self) -> Option<&Path> {
        match &self.root_cert {
            Some(RootCert::File(p)) => Some(p),
            _ => None,
        }
    }
}

/// `postgres://USER@HOST:PORT/DB` with the TLS settings: safe to show (it never holds a password).
impl fmt::Display for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match &self.host {
            Host::Tcp(h) if h.contains(':') => format!("[{h}]"),
            Host::Tcp(h) => h.clone(),
            Host::Socket(dir) => {
                percent_encoding::utf8_percent_encode(&dir.to_string_lossy(), PATH_SET).to_string()
            }
        };
        write!(
            f,
            "postgres://{}@{host}:{}/{}",
            self.user, self.port, self.dbname
        )?;
        if self.sslmode != SslMode::Prefer {
            write!(f, "?sslmode={}", self.sslmode.as_str())?;
        }
        Ok(())
    }
}

const PATH_SET: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b'/').add(b'%');

fn decode(text: &str, what: &str) -> Result<String, PgError> {
    percent_decode_str(text)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| PgError::Url {
            reason: format!("the {what} is not UTF-8 once decoded"),
        })
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`, a percent-encoded socket directory, or nothing (the
/// default socket).
fn split_host_port(text: &str) -> Result<(Host, Option<u16>), String> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{text:?}: an IPv6 address lacks its closing ]"))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("{text:?}: expected :PORT after ]"))?,
            ),
        };
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("{v6:?} is not an IPv6 address"));
        }
        (v6.to_owned(), port)
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (text.to_owned(), None),
        }
    };
    if host.contains(',') {
        return Err("several hosts are not supported".into());
    }
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("port {p:?} is not a port number"))?,
        ),
    };
    let host = percent_decode_str(&host)
        .decode_utf8()
        .map_err(|_| "the host is not UTF-8 once decoded".to_owned())?
        .into_owned();
    let host = if host.is_empty() {
        Host::Socket(PathBuf::from(DEFAULT_SOCKET_DIR))
    } else if host.starts_with('/') {
        Host::Socket(PathBuf::from(host))
    } else {
        Host::Tcp(host)
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(text: &str) -> PgUrl {
        match Location::parse(OsStr::new(text)) {
            Ok(Location::Postgres(url)) => url,
            other => panic!("{text}: {other:?}"),
        }
    }

    fn err(text: &str) -> String {
        match Location::parse(OsStr::new(text)) {
            Err(e) => e.to_string(),
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn paths_stay_paths() {
        for path in [
            "x.db",
            "/var/lib/dmarc/x.db",
            "postgres:x",
            "./postgres/db",
            "c:\\x.db",
        ] {
            assert_eq!(
                Location::parse(OsStr::new(path)).unwrap(),
                Location::Sqlite(PathBuf::from(path))
            );
        }
    }

    #[test]
    fn postgres_urls() {
        let u = pg("postgres://warden@db.example.org/dmarc");
        assert_eq!(u.user, "warden");
        assert_eq!(u.host, Host::Tcp("db.example.org".into()));
        assert_eq!((u.port, u.dbname.as_str()), (5432, "dmarc"));
        assert_eq!(u.sslmode, SslMode::Prefer);
        assert_eq!(u.to_string(), "postgres://warden@db.example.org:5432/dmarc");

        let u =
            pg("postgresql://a%40b@[::1]:6543/d%20b?sslmode=verify-full&sslrootcert=/etc/ca.pem");
        assert_eq!(u.user, "a@b");
        assert_eq!(u.host, Host::Tcp("::1".into()));
        assert_eq!((u.port, u.dbname.as_str()), (6543, "d b"));
        assert_eq!(u.sslmode, SslMode::VerifyFull);
        assert_eq!(u.root_cert, Some(RootCert::File("/etc/ca.pem".into())));
        assert_eq!(u.server(), "[::1]:6543");

        let u = pg("POSTGRES://w@%2Frun%2Fpg/d?connect_timeout=3");
        assert_eq!(u.host, Host::Socket("/run/pg".into()));
        assert_eq!(u.connect_timeout, Duration::from_secs(3));
        assert_eq!(u.pgpass_host(), "localhost");

        let u = pg("postgres://w@/d");
        assert_eq!(u.host, Host::Socket(DEFAULT_SOCKET_DIR.into()));

        let u = pg("postgres://w@h/d?sslrootcert=system");
        assert_eq!(u.sslmode, SslMode::VerifyFull);
        assert_eq!(u.root_cert, Some(RootCert::System));
    }

    #[test]
    fn other_schemes_are_refused() {
        assert_eq!(
            err("mysql://u@h/d"),
            "--db mysql://…: not a database dmarc-warden can use (a file path for SQLite, or \
             postgres://USER@HOST[:PORT]/DB)"
        );
        assert!(err("file:///tmp/x.db").starts_with("--db file://…"));
    }

    #[test]
    fn passwords_are_refused_without_being_shown() {
        for url in [
            "postgres://u:hunter2@h/d",
            "postgres://u:@h/d",
            "postgres://u@h/d?password=hunter2",
        ] {
            let e = err(url);
            assert!(e.contains("password"), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn bad_urls_say_why() {
        for (url, says) in [
            ("postgres://h/d", "names no user"),
            ("postgres://u@h", "names no database"),
            ("postgres://u@h/", "names no database"),
            ("postgres://u@h:99999/d", "not a port number"),
            (
                "postgres://u@h/d?sslmode=allow",
                "sslmode=allow is not supported",
            ),
            (
                "postgres://u@h/d?sslmode=require&sslrootcert=system",
                "needs sslmode=verify-full",
            ),
            ("postgres://u@h/d?foo=1", "unknown parameter foo=1"),
            (
                "postgres://u@h/d?sslmode=disable&sslmode=require",
                "sslmode is given twice",
            ),
            ("postgres://u@a,b/d", "several hosts"),
            ("postgres://u@[::1/d", "closing ]"),
        ] {
            let e = err(url);
            assert!(e.contains(says), "{url}: {e}");
            assert!(!e.contains('\n'));
        }
    }
}
