//! A throwaway Dovecot for tests and benchmarks: `scripts/dovecot-test` starts it on two free ports of
//! 127.0.0.1 or another loopback address (implicit TLS and STARTTLS) with its own CA, users and
//! Maildirs; dropping stops it. A server shared by a whole test binary (a `static`, never dropped)
//! is stopped by a watchdog when the process ends: [`Dovecot::stop_at_exit`].

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use dmarc_warden::fetch::imap::{Account, Session, Tls};
use dmarc_warden::secret::Secret;
use tempfile::TempDir;

pub const USER: &str = "dmarc";
pub const PASSWORD: &str = "secret-pw";

fn s(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// A running Dovecot; stopped when dropped.
pub struct Dovecot {
    pub dir: TempDir,
    /// The address it listens on (the first, when several).
    pub host: String,
    pub imaps: u16,
    pub imap: u16,
    /// The settings it was started with, for restarts.
    env: Vec<(String, String)>,
    /// The watchdog's standard input: closed when the process ends, which stops the server.
    #[allow(dead_code)] // held, never read: its closing is the signal
    watchdog: Option<(Child, ChildStdin)>,
}

pub fn free_port() -> u16 {
    free_port_on("127.0.0.1")
}

pub fn free_port_on(host: &str) -> u16 {
    TcpListener::bind((host, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port on loopback")
        .port()
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/dovecot-test")
}

impl Dovecot {
    pub fn start() -> Dovecot {
        Dovecot::start_with(&[])
    }

    /// Starts with extra environment for `scripts/dovecot-test` (e.g. `DOVECOT_TEST_CAPABILITY`).
    pub fn start_with(env: &[(&str, &str)]) -> Dovecot {
        Dovecot::start_at("127.0.0.1", env)
    }

    /// Starts on `host` (a loopback address; `DOVECOT_TEST_ADDRESS` may add more after it).
    pub fn start_at(host: &str, env: &[(&str, &str)]) -> Dovecot {
        let mut all: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if !env.iter().any(|(k, _)| *k == "DOVECOT_TEST_ADDRESS") {
            all.push(("DOVECOT_TEST_ADDRESS".into(), host.into()));
        }
        let dovecot = Dovecot {
            dir: tempfile::tempdir().expect("a temporary directory"),
            host: host.to_owned(),
            imaps: free_port_on(host),
            imap: free_port_on(host),
            env: all,
            watchdog: None,
        };
        dovecot.run_script();
        // An empty config file, so that no config of the user running the tests leaks in.
        std::fs::write(dovecot.dir.path().join("empty.toml"), "").expect("write empty.toml");
        dovecot
    }

    /// For a server kept in a `static`: stops it, and removes its directory, when this process
    /// ends, however it ends.
    pub fn stop_at_exit(mut self) -> Dovecot {
        let dir = s(self.dir.path()).to_owned();
        let mut child = Command::new("sh")
            .args([
                "-c",
                "cat >/dev/null; \"$0\" stop \"$1\"; rm -rf \"$1\"",
                s(&script()),
                &dir,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start the Dovecot watchdog");
        let stdin = child.stdin.take().expect("the watchdog's standard input");
        self.watchdog = Some((child, stdin));
        self
    }

    fn run_script(&self) {
        let out = Command::new(script())
            .args([
                "start",
                s(self.dir.path()),
                &self.imaps.to_string(),
                &self.imap.to_string(),
            ])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("run scripts/dovecot-test");
        assert!(
            out.status.success(),
            "Dovecot did not start (scripts/test installs dovecot-imapd):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server, waits `down`, and starts it again on the same ports and mailboxes.
    pub fn restart(&self, down: Duration) {
        self.stop();
        std::thread::sleep(down);
        self.run_script();
    }

    fn stop(&self) {
        let _ = Command::new(script())
            .args(["stop", s(self.dir.path())])
            .status();
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn account(&self) -> Account {
        Account {
            name: "test".into(),
            host: self.host.clone(),
            port: self.imaps,
            user: USER.into(),
            password: Secret::new(PASSWORD.into()),
            oauth2: None,
            tls: Tls::Implicit,
            ca_file: Some(self.ca()),
            danger_accept_invalid_certs: false,
            folders: vec!["INBOX".into()],
            archive: None,
            invalid: None,
            mark_seen: false,
            timeout: Duration::from_secs(30),
        }
    }

    pub fn session(&self) -> Session {
        self.session_as(USER, PASSWORD)
    }

    /// Logged in as `user` (with the password; the users of `DOVECOT_TEST_USERS` have PASSWORD).
    pub fn session_as(&self, user: &str, password: &str) -> Session {
        let mut account = self.account();
        account.user = user.into();
        account.password = Secret::new(password.into());
        Session::connect(&account).expect("log in to the test Dovecot")
    }

    /// Appends every message to `folder`, in order, over one connection.
    pub fn append(&self, folder: &str, messages: &[Vec<u8>]) {
        self.append_as(USER, folder, messages)
    }

    /// Appends to a folder of `user`'s (a user of `DOVECOT_TEST_USERS`).
    pub fn append_as(&self, user: &str, folder: &str, messages: &[Vec<u8>]) {
        let mut session = self.session_as(user, PASSWORD);
        if folder != "INBOX" {
            session.ensure_folder(folder).expect("create the folder");
        }
        for m in messages {
            session.append(folder, m).expect("APPEND");
        }
        session.logout();
    }

    /// Messages now in `folder` (0 when it does not exist).
    pub fn count(&self, folder: &str) -> u32 {
        self.count_as(USER, folder)
    }

    /// Messages now in `user`'s `folder`.
    pub fn count_as(&self, user: &str, folder: &str) -> u32 {
        let mut session = self.session_as(user, PASSWORD);
        let n = session.select(folder).map_or(0, |status| status.exists);
        session.logout();
        n
    }

    /// Environment for the executable: everything but the password's source, which tests vary.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("DMARC_WARDEN_IMAP_HOST".into(), self.host.clone()),
            ("DMARC_WARDEN_IMAP_PORT".into(), self.imaps.to_string()),
            ("DMARC_WARDEN_IMAP_USER".into(), USER.into()),
            ("DMARC_WARDEN_IMAP_PASSWORD".into(), PASSWORD.into()),
            ("DMARC_WARDEN_IMAP_CA_FILE".into(), s(&self.ca()).into()),
            (
                "DMARC_WARDEN_CONFIG".into(),
                s(&self.dir.path().join("empty.toml")).into(),
            ),
        ]
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}
