//! Where the database password comes from: the file `DMARC_WARDEN_DB_PASSWORD_FILE` names (its
//! first line), else libpq's password file (`PGPASSFILE`, or `~/.pgpass`), read as libpq reads it:
//! lines of `host:port:database:user:password`, `*` matching anything in the first four fields, `\:`
//! and `\\` standing for `:` and `\`, the first matching line winning, and the file ignored (with a
//! warning) when others may read it.
//!
//! Never from argv, the URL or the environment's value itself: only files hold it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::PgError;
use super::url::PgUrl;
use crate::secret::Secret;

/// The variable naming a file that holds the database password.
pub const PASSWORD_FILE_VAR: &str = "DMARC_WARDEN_DB_PASSWORD_FILE";

/// A password found, and where.
#[derive(Debug, Default)]
pub struct Password {
    pub secret: Option<Secret>,
    /// The file it came from, for messages.
    pub source: Option<PathBuf>,
    /// Lines for stderr (a password file others can read).
    pub warnings: Vec<String>,
}

/// The password for `url`. `env` reads the environment (`std::env::var_os` outside tests); `home`
/// is the home directory.
pub fn resolve(
    url: &PgUrl,
    env: &dyn Fn(&str) -> Option<OsString>,
    home: Option<&Path>,
) -> Result<Password, PgError> {
    let mut found = Password::default();
    if let Some(path) = env(PASSWORD_FILE_VAR).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        // The one rule for secrets in files: the first line, without its line ending.
        let text = zeroize::Zeroizing::new(std::fs::read_to_string(&path).map_err(|source| {
            PgError::PasswordFile {
                path: path.clone(),
                error: source,
            }
        })?);
        let Some(secret) = Secret::first_line(&text) else {
            return Err(PgError::EmptyPasswordFile { path });
        };
        if let Some(mode) = readable_by_others(&path) {
            found.warnings.push(format!(
                "warning: database password file {} can be read by others (mode {mode:o}); run \
                 `chmod 600 {}`",
                path.display(),
                path.display()
            ));
        }
        found.secret = Some(secret);
        found.source = Some(path);
        return Ok(found);
    }
    let path = match env("PGPASSFILE").filter(|p| !p.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => match home {
            Some(home) => home.join(".pgpass"),
            None => return Ok(found),
        },
    };
    let text = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        // A directory or an unreadable file: libpq passes over it too, but say so.
        Err(e) => {
            found.warnings.push(format!(
                "warning: password file {}: {e}; not used",
                path.display()
            ));
            return Ok(found);
        }
    };
    if let Some(mode) = readable_by_others(&path) {
        found.warnings.push(format!(
            "warning: password file {} has group or world access (mode {mode:o}); not used, as \
             libpq does not use it: run `chmod 600 {}`",
            path.display(),
            path.display()
        ));
        return Ok(found);
    }
    let text = String::from_utf8_lossy(&text);
    let port = url.port.to_string();
    if let Some(password) = lookup(&text, [url.pgpass_host(), &port, &url.dbname, &url.user]) {
        found.secret = Some(Secret::new(password));
        found.source = Some(path);
    }
    Ok(found)
}

/// The password of the first line of a `.pgpass` text whose four fields match `wanted` (host, port,
/// database, user).
pub fn lookup(text: &str, wanted: [&str; 4]) -> Option<String> {
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some(fields) = split_fields(line) else {
            continue;
        };
        let matches = fields
            .iter()
            .take(4)
            .zip(wanted)
            .all(|((text, literal_star), want)| (text == "*" && !literal_star) || text == want);
        if matches {
            return Some(fields[4].0.clone());
        }
    }
    None
}

/// The five fields of a `.pgpass` line, unescaped, each with whether it was a literal `\*` (which
/// matches only `*`); `None` when the line has fewer than five. The password is the rest of the
/// line after the fourth separator.
fn split_fields(line: &str) -> Option<Vec<(String, bool)>> {
    let mut fields = Vec::with_capacity(5);
    let mut current = String::new();
    let mut escaped_star = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next) => {
                    if next == '*' && current.is_empty() {
                        escaped_star = true;
                    }
                    current.push(next);
                }
                None => current.push('\\'),
            },
            ':' if fields.len() < 4 => {
                fields.push((std::mem::take(&mut current), escaped_star));
                escaped_star = false;
            }
            c => current.push(c),
        }
    }
    if fields.len() < 4 {
        return None;
    }
    fields.push((current, false));
    Some(fields)
}

#[cfg(unix)]
fn readable_by_others(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn readable_by_others(_: &Path) -> Option<u32> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const WANT: [&str; 4] = ["db.example.org", "5432", "dmarc", "warden"];

    #[test]
    fn pgpass_lines() {
        let text = "# comment\n\
                    other.host:5432:dmarc:warden:no\n\
                    db.example.org:5433:dmarc:warden:wrong-port\n\
                    db.example.org:*:dmarc:warden:pa\\:ss\\\\word:with:colons\n\
                    *:*:*:*:fallback\n";
        assert_eq!(
            lookup(text, WANT).as_deref(),
            Some("pa:ss\\word:with:colons")
        );
        assert_eq!(
            lookup(text, ["x", "1", "y", "z"]).as_deref(),
            Some("fallback")
        );
    }

    #[test]
    fn escapes_in_the_first_fields() {
        let text = "h\\:1:5432:d\\\\b:u:pw\r\n";
        assert_eq!(
            lookup(text, ["h:1", "5432", "d\\b", "u"]).as_deref(),
            Some("pw")
        );
        // `\*` is a literal star, not a wildcard.
        let text = "\\*:5432:dmarc:warden:star\n";
        assert_eq!(lookup(text, WANT), None);
        assert_eq!(
            lookup(text, ["*", "5432", "dmarc", "warden"]).as_deref(),
            Some("star")
        );
    }

    #[test]
    fn short_lines_are_skipped() {
        assert_eq!(lookup("db.example.org:5432:dmarc\n", WANT), None);
        assert_eq!(lookup("*:*:*:*:\n", WANT).as_deref(), Some(""));
    }
}
