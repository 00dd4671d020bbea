//! Secrets — IMAP and SMTP passwords, OAuth2 client secrets, refresh and access tokens, webhook
//! URLs that carry a token, the web password — live in one type, [`Secret`]: its `Debug` and
//! `Display` print `***`, and its memory is overwritten with zeros when it is dropped (the `zeroize`
//! crate), copies made by `clone` included.
//!
//! This module is also the one place that reads a secret from outside the program, from a file
//! ([`Secret::from_file`]), a command's output ([`Secret::from_command`]) or the environment
//! ([`Secret::from_env`]), always by one rule: **the secret is the first line, without its line
//! ending (`\n` or `\r\n`); nothing else is trimmed** (a password may begin or end with a space),
//! and what follows the first line is ignored. So `echo secret > file`, a file saved by an editor
//! with or without a final newline, and a helper that prints a token and then something else all
//! give the same secret. An empty first line is an error: no source yields an empty secret.
//! A value written in the config file itself is taken exactly as TOML quotes it.
//!
//! [`write_file`] replaces a secret file atomically with mode 0600 (a rotated refresh token).

use std::path::{Path, PathBuf};

use zeroize::{Zeroize, Zeroizing};

/// A password, token or secret URL. Never printed; zeroed on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A secret exactly as given (from a token endpoint, a config value).
    pub fn new(s: String) -> Secret {
        Secret(s)
    }

    /// The secret itself, to hand to a protocol. Never to a log, an error or a URL shown.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The one rule: the first line of `text`, without its line ending; `None` when that is empty.
    pub fn first_line(text: &str) -> Option<Secret> {
        let line = text.split('\n').next().unwrap_or_default();
        let line = line.strip_suffix('\r').unwrap_or(line);
        (!line.is_empty()).then(|| Secret(line.to_owned()))
    }

    /// The secret in the file at `path` (its first line; see the module's rule).
    pub fn from_file(path: &Path) -> Result<Secret, SecretError> {
        let text =
            Zeroizing::new(
                std::fs::read_to_string(path).map_err(|source| SecretError::Read {
                    path: path.to_owned(),
                    source,
                })?,
            );
        Secret::first_line(&text).ok_or_else(|| SecretError::EmptyFile {
            path: path.to_owned(),
        })
    }

    /// The secret `sh -c command` prints (its first line; see the module's rule). Its standard
    /// error goes to ours; its output is never shown, even when it fails.
    pub fn from_command(command: &str) -> Result<Secret, SecretError> {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(SecretError::Spawn)?;
        let stdout = Zeroizing::new(out.stdout);
        if !out.status.success() {
            return Err(SecretError::CommandFailed {
                command: command.to_owned(),
                status: out.status,
            });
        }
        let text = std::str::from_utf8(&stdout).map_err(|_| SecretError::NotUtf8 {
            command: command.to_owned(),
        })?;
        Secret::first_line(text).ok_or_else(|| SecretError::CommandEmpty {
            command: command.to_owned(),
        })
    }

    /// The secret in the environment variable `name` (its first line; see the module's rule);
    /// `None` when it is unset or empty.
    pub fn from_env(name: &str) -> Result<Option<Secret>, SecretError> {
        match std::env::var(name) {
            Ok(value) => Ok(Secret::first_line(&Zeroizing::new(value))),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(SecretError::EnvNotUtf8 {
                name: name.to_owned(),
            }),
        }
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// A config value (`password = "…"`), taken as TOML quotes it.
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// Why a secret could not be read. The messages name the file, command or variable, never what
/// they hold; the caller adds which setting it was.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is empty (the secret is its first line)")]
    EmptyFile { path: PathBuf },
    #[error("cannot run sh: {0}")]
    Spawn(std::io::Error),
    #[error("{command:?} failed ({status})")]
    CommandFailed {
        command: String,
        status: std::process::ExitStatus,
    },
    #[error("{command:?} printed nothing on its first line")]
    CommandEmpty { command: String },
    #[error("the output of {command:?} is not UTF-8")]
    NotUtf8 { command: String },
    #[error("the environment variable {name} is not UTF-8")]
    EnvNotUtf8 { name: String },
}

/// Replaces `path` with `secret` (and a newline) atomically: written to a new file of mode 0600
/// in the same directory, synced, then renamed over the old one. A crash leaves the old file or
/// the new one, never half of either.
pub fn write_file(path: &Path, secret: &Secret) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "secret".to_owned());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(secret.expose().as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(***)");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn one_rule_the_first_line_without_its_ending() {
        let first = |t: &str| Secret::first_line(t).map(|s| s.expose().to_owned());
        assert_eq!(first("pw\n").as_deref(), Some("pw"));
        assert_eq!(first("pw\r\n").as_deref(), Some("pw"));
        assert_eq!(first("pw").as_deref(), Some("pw"));
        assert_eq!(first(" p w \nsecond line\n").as_deref(), Some(" p w "));
        assert_eq!(first(""), None);
        assert_eq!(first("\nlater"), None);
        assert_eq!(first("\r\n"), None);
    }

    #[test]
    fn files_commands_and_the_environment_follow_the_rule() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret\r\nignored\n").unwrap();
        assert_eq!(Secret::from_file(&path).unwrap().expose(), "s3cret");
        std::fs::write(&path, "\n").unwrap();
        let err = Secret::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("is empty"), "{err}");
        let err = Secret::from_file(&dir.path().join("none"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("cannot read "), "{err}");

        assert_eq!(
            Secret::from_command("printf 'tok\\nmore\\n'")
                .unwrap()
                .expose(),
            "tok"
        );
        let err = Secret::from_command("echo $((6 * 7))sec; exit 3")
            .unwrap_err()
            .to_string();
        assert!(err.contains("failed") && !err.contains("42sec"), "{err}");
        let err = Secret::from_command("true").unwrap_err().to_string();
        assert!(err.contains("printed nothing"), "{err}");

        assert!(
            Secret::from_env("DMARC_WARDEN_TEST_SURELY_UNSET_SECRET")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn secret_files_are_replaced_whole_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("refresh");
        std::fs::write(&path, "old\n").unwrap();
        write_file(&path, &Secret::new("new".into())).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
