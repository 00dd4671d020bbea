//! Dashboard users: `serve --htpasswd FILE` takes them from an htpasswd file with bcrypt entries
//! (`htpasswd -B`), and the config file's `[web.scopes]` table gives each the domains they see
//! ([`crate::access::Visible`]). Both files are read again when they change, so users are added,
//! removed or re-scoped without a restart.
//!
//! ```toml
//! [web.scopes]
//! alice = ["example.org", "*.example.org"]
//! bob = ["example.net"]
//! admin = ["*"]
//! ```
//!
//! A password is checked with bcrypt, whose comparison takes the same time however much of a
//! guess is right; an unknown user costs the same bcrypt work as a known one. A password that
//! passed is remembered as a keyed SHA-256 digest (key made at start, never stored), so the pages'
//! style sheet and icon do not pay for bcrypt again; a changed entry, or a re-read file, forgets it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use serde::Deserialize;
use sha2::Digest;

use crate::access::{DomainPattern, Visible};
use crate::lock;

/// `[web]` in the config file, as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebEntry {
    /// User name → domain patterns.
    #[serde(default)]
    scopes: BTreeMap<String, Vec<String>>,
}

/// Each user's domains, from `[web.scopes]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scopes(BTreeMap<String, Visible>);

impl Scopes {
    /// What `user` sees: nothing when the table does not name them.
    pub fn of(&self, user: &str) -> Visible {
        self.0
            .get(user)
            .cloned()
            .unwrap_or(Visible::Only(Vec::new()))
    }
}

/// `[web]` checked: every pattern a domain, `*.domain` or `*`. `shown` names the file in errors.
pub fn validate(entry: WebEntry, shown: &str) -> anyhow::Result<Scopes> {
    let mut scopes = BTreeMap::new();
    for (user, patterns) in entry.scopes {
        let parsed = patterns
            .iter()
            .map(|p| DomainPattern::parse(p))
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("{shown}: [web.scopes] {user}"))?;
        scopes.insert(user, Visible::of(parsed));
    }
    Ok(Scopes(scopes))
}

/// The bcrypt entries of an htpasswd file, and what was skipped.
#[derive(Debug, Default)]
pub struct Htpasswd {
    /// User name → bcrypt hash (`$2y$…`).
    pub users: BTreeMap<String, String>,
    /// One line per skipped entry (its line number and user; never the hash).
    pub skipped: Vec<String>,
}

/// Reads `user:hash` lines; blank lines and `#` comments are ignored, and entries that are not
/// bcrypt (MD5 `$apr1$`, SHA-1 `{SHA}`, crypt) are skipped: they are too cheap to guess.
pub fn parse_htpasswd(text: &str) -> Htpasswd {
    let mut out = Htpasswd::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, hash)) = line.split_once(':') else {
            out.skipped.push(format!("line {}: not user:hash", n + 1));
            continue;
        };
        let bcrypt = ["$2y$", "$2b$", "$2a$", "$2x$"]
            .iter()
            .any(|p| hash.starts_with(p))
            && hash.parse::<bcrypt::HashParts>().is_ok();
        if user.is_empty() || !bcrypt {
            out.skipped.push(format!(
                "line {} ({user}): not a bcrypt entry; write it with `htpasswd -B`",
                n + 1
            ));
            continue;
        }
        out.users.insert(user.to_owned(), hash.to_owned());
    }
    out
}

/// What a file was when last read: it is read again when this changes.
#[derive(Debug, Clone, PartialEq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    #[cfg(unix)]
    inode: (u64, u64),
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: m.modified().ok(),
        len: m.len(),
        #[cfg(unix)]
        inode: {
            use std::os::unix::fs::MetadataExt;
            (m.ino(), m.ctime() as u64)
        },
    })
}

/// How often the files' metadata is looked at, at most.
const RECHECK: Duration = Duration::from_secs(1);

/// The cost of the stand-in hash checked for unknown users when the file has no entry to copy.
const DEFAULT_COST: u32 = 10;

/// The users of one htpasswd file with their scopes, kept current.
pub struct Users {
    htpasswd: PathBuf,
    /// The config file `[web.scopes]` came from, read again when it changes.
    config: Option<PathBuf>,
    /// How that file's `[web.scopes]` is read again (the config module's reader, handed in, so
    /// that the web does not import the config edge).
    reread: RereadScopes,
    /// Key of the digests of passwords that passed.
    key: [u8; 32],
    /// What to say at start: skipped entries, users who see nothing.
    warnings: Vec<String>,
    state: Mutex<State>,
}

/// Reads `[web.scopes]` from the config file named: the path read and the scopes.
pub type RereadScopes = fn(Option<&Path>) -> anyhow::Result<(Option<PathBuf>, Scopes)>;

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Users")
            .field("htpasswd", &self.htpasswd)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

struct State {
    checked: Instant,
    htpasswd_stamp: Option<Stamp>,
    config_stamp: Option<Stamp>,
    users: BTreeMap<String, String>,
    scopes: Scopes,
    /// A hash of the same cost as the file's, checked for unknown users.
    stand_in: String,
    /// User → digest of the password that last passed (with its entry).
    passed: HashMap<String, [u8; 32]>,
}

impl Users {
    /// Reads the htpasswd file (which must be readable) and takes `scopes`, read from `config`
    /// (and read again by `reread` when it changes).
    pub fn open(
        htpasswd: &Path,
        config: Option<PathBuf>,
        scopes: Scopes,
        reread: RereadScopes,
    ) -> anyhow::Result<Users> {
        let htpasswd_stamp = stamp(htpasswd);
        let text = std::fs::read_to_string(htpasswd).with_context(|| {
            format!(
                "cannot read the htpasswd file {} (--htpasswd / DMARC_WARDEN_WEB_HTPASSWD)",
                htpasswd.display()
            )
        })?;
        let parsed = parse_htpasswd(&text);
        let mut warnings: Vec<String> = parsed
            .skipped
            .iter()
            .map(|s| format!("warning: htpasswd file {}: {s}", htpasswd.display()))
            .collect();
        if parsed.users.is_empty() {
            warnings.push(format!(
                "warning: the htpasswd file {} has no bcrypt user: nobody can sign in",
                htpasswd.display()
            ));
        }
        let shown = config
            .as_ref()
            .map_or("the config file".to_owned(), |p| p.display().to_string());
        warnings.extend(nothing_seen(&parsed.users, &scopes, &shown));
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("no random numbers: {e}"))?;
        let config_stamp = config.as_deref().and_then(stamp);
        let stand_in = stand_in(&parsed.users)?;
        Ok(Users {
            htpasswd: htpasswd.to_owned(),
            config,
            reread,
            key,
            warnings,
            state: Mutex::new(State {
                checked: Instant::now(),
                htpasswd_stamp,
                config_stamp,
                users: parsed.users,
                scopes,
                stand_in,
                passed: HashMap::new(),
            }),
        })
    }

    /// What to say at start: entries skipped, users who see nothing.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The htpasswd file.
    pub fn file(&self) -> &Path {
        &self.htpasswd
    }

    /// How many users can sign in now.
    pub fn count(&self) -> usize {
        lock(&self.state).users.len()
    }

    /// The scope of `user` when `password` is theirs; `None` otherwise. Blocks for the bcrypt
    /// check (milliseconds to a second, by the entry's cost): call it off the async threads.
    pub fn check(&self, user: &str, password: &str) -> Option<Visible> {
        self.refresh();
        let (hash, remembered, stand_in) = {
            let state = lock(&self.state);
            (
                state.users.get(user).cloned(),
                state.passed.get(user).copied(),
                state.stand_in.clone(),
            )
        };
        let Some(hash) = hash else {
            // The same work as for a user who exists, so the time does not tell.
            let _ = bcrypt::verify(password, &stand_in);
            return None;
        };
        let digest = self.digest(user, password, &hash);
        let ok = remembered == Some(digest) || bcrypt::verify(password, &hash).unwrap_or(false);
        let mut state = lock(&self.state);
        if !ok {
            return None;
        }
        // Unless the entry changed meanwhile.
        if state.users.get(user) != Some(&hash) {
            return None;
        }
        state.passed.insert(user.to_owned(), digest);
        Some(state.scopes.of(user))
    }

    fn digest(&self, user: &str, password: &str, hash: &str) -> [u8; 32] {
        let mut h = sha2::Sha256::new();
        h.update(self.key);
        for part in [user, password, hash] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        h.finalize().into()
    }

    /// Reads the files again when they changed (looked at once a second at most). An htpasswd file
    /// that cannot be read leaves no user; a config file that cannot be read or is wrong keeps the
    /// scopes read before. Either is said on stderr.
    fn refresh(&self) {
        let mut state = lock(&self.state);
        if state.checked.elapsed() < RECHECK {
            return;
        }
        state.checked = Instant::now();
        let before = (
            state.users.len(),
            state.scopes.clone(),
            state.htpasswd_stamp.clone(),
        );
        let now = stamp(&self.htpasswd);
        if now != state.htpasswd_stamp {
            state.htpasswd_stamp = now;
            state.passed.clear();
            match std::fs::read_to_string(&self.htpasswd) {
                Ok(text) => {
                    let parsed = parse_htpasswd(&text);
                    for s in &parsed.skipped {
                        eprintln!(
                            "dmarc-warden: warning: htpasswd file {}: {s}",
                            self.htpasswd.display()
                        );
                    }
                    if let Ok(s) = stand_in(&parsed.users) {
                        state.stand_in = s;
                    }
                    eprintln!(
                        "dmarc-warden: read {} again: {} user(s)",
                        self.htpasswd.display(),
                        parsed.users.len()
                    );
                    state.users = parsed.users;
                }
                Err(e) => {
                    eprintln!(
                        "dmarc-warden: error: cannot read the htpasswd file {}: {e}; nobody can \
                         sign in until it can be read",
                        self.htpasswd.display()
                    );
                    state.users.clear();
                }
            }
        }
        if let Some(config) = &self.config {
            let now = stamp(config);
            if now != state.config_stamp {
                state.config_stamp = now;
                state.passed.clear();
                match (self.reread)(Some(config)) {
                    Ok((_, scopes)) => {
                        eprintln!(
                            "dmarc-warden: read [web.scopes] of {} again",
                            config.display()
                        );
                        state.scopes = scopes;
                    }
                    Err(e) => eprintln!(
                        "dmarc-warden: error: {e:#}; the scopes read before stay in force"
                    ),
                }
            }
        }
        let after = (
            state.users.len(),
            state.scopes.clone(),
            state.htpasswd_stamp.clone(),
        );
        if after != before {
            let shown = self
                .config
                .as_ref()
                .map_or("the config file".to_owned(), |p| p.display().to_string());
            for warning in nothing_seen(&state.users, &state.scopes, &shown) {
                eprintln!("dmarc-warden: {warning}");
            }
        }
    }
}

/// A bcrypt hash of nothing anyone knows, as costly as the file's first entry.
fn stand_in(users: &BTreeMap<String, String>) -> anyhow::Result<String> {
    let cost = users
        .values()
        .find_map(|h| h.parse::<bcrypt::HashParts>().ok())
        .map_or(DEFAULT_COST, |p| p.get_cost());
    let mut secret = [0u8; 16];
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no random numbers: {e}"))?;
    bcrypt::hash(secret, cost).context("cannot make a bcrypt hash")
}

/// A warning for every user of the file who sees no domain.
fn nothing_seen(users: &BTreeMap<String, String>, scopes: &Scopes, shown: &str) -> Vec<String> {
    users
        .keys()
        .filter(|u| scopes.of(u).is_nothing())
        .map(|u| {
            format!(
                "warning: web user {u} has no domains in [web.scopes] of {shown}: {u} sees nothing"
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bcrypt_entries_are_taken() {
        let b = bcrypt::hash("pw", 4).unwrap();
        let text = format!(
            "# users\nalice:{b}\n\nmd5:$apr1$abc$def\nsha:{{SHA}}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\nbroken\nbad:$2y$xx\n"
        );
        let h = parse_htpasswd(&text);
        assert_eq!(h.users.keys().collect::<Vec<_>>(), ["alice"]);
        assert_eq!(h.skipped.len(), 4, "{:?}", h.skipped);
        assert!(
            h.skipped.iter().all(|s| !s.contains("$apr1$")),
            "{:?}",
            h.skipped
        );
    }

    #[test]
    fn passwords_are_checked_and_the_file_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("htpasswd");
        let alice = bcrypt::hash("alice-pw", 4).unwrap();
        std::fs::write(&file, format!("alice:{alice}\nbob:{alice}\n")).unwrap();
        let scopes = validate(
            toml::from_str("scopes = { alice = [\"example.org\"] }").unwrap(),
            "test",
        )
        .unwrap();
        let users = Users::open(&file, None, scopes, |_| Ok((None, Scopes::default()))).unwrap();
        let warnings = users.warnings();
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("web user bob") && w.contains("sees nothing")),
            "{warnings:?}"
        );
        let seen = users.check("alice", "alice-pw").unwrap();
        assert!(seen.allows("example.org") && !seen.allows("example.com"));
        // Remembered, and still right.
        assert_eq!(users.check("alice", "alice-pw"), Some(seen));
        assert_eq!(users.check("alice", "wrong"), None);
        assert_eq!(users.check("carol", "alice-pw"), None);
        assert!(users.check("bob", "alice-pw").unwrap().is_nothing());
        // A new password replaces the old once the file changes.
        let new = bcrypt::hash("new-pw", 4).unwrap();
        std::fs::write(&file, format!("alice:{new}\n")).unwrap();
        std::thread::sleep(RECHECK + Duration::from_millis(50));
        assert_eq!(users.check("alice", "alice-pw"), None);
        assert!(users.check("alice", "new-pw").is_some());
        assert_eq!(users.check("bob", "alice-pw"), None);
    }
}
