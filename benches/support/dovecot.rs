//! A throwaway Dovecot for tests and benchmarks: `scripts/dovecot-test` starts it on two free ports of
//! 127.0.0.1 or another loopback address (implicit TLS and STARTTLS) with its own CA, users and
//! Maildirs; dropping stops it. A server shared by a whole test binary (a `static`, never dropped)
//! is stopped by a watchdog when the process ends: [`Dovecot::stop_at_exit`].
//!
//! A port found free may be taken by another process before Dovecot binds it (tests run in
//! parallel, and other programs connect out): the script then says so (exit 75), and the server
//! is started again on new ports; a restart, which must keep its ports, waits for them instead.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

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

/// How often a start on new ports is tried when the ports found free were taken before Dovecot
/// bound them.
const START_ATTEMPTS: u32 = 5;
/// `scripts/dovecot-test start`'s exit status when a port is in use.
const PORT_IN_USE: i32 = 75;

/// A port was in use; what the script said.
struct PortInUse(String);

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
        let mut dovecot = Dovecot {
            dir: tempfile::tempdir().expect("a temporary directory"),
            host: host.to_owned(),
            imaps: 0,
            imap: 0,
            env: all,
            watchdog: None,
        };
        for attempt in 1.. {
            dovecot.imaps = free_port_on(host);
            dovecot.imap = free_port_on(host);
            while dovecot.imap == dovecot.imaps {
                dovecot.imap = free_port_on(host);
            }
            match dovecot.try_script() {
                Ok(()) => break,
                Err(PortInUse(_)) if attempt < START_ATTEMPTS => continue,
                Err(PortInUse(log)) => {
                    panic!("Dovecot found its ports taken {START_ATTEMPTS} times in a row:\n{log}")
                }
            }
        }
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

    /// Starts the server on its ports; `Err` when one of them is in use. Any other failure panics:
    /// a test fails, never skips, when its server cannot start.
    fn try_script(&self) -> Result<(), PortInUse> {
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
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        match out.status.code() {
            Some(0) => Ok(()),
            Some(PORT_IN_USE) => Err(PortInUse(log)),
            _ => panic!("Dovecot did not start (scripts/test installs dovecot-imapd):\n{log}"),
        }
    }

    /// Stops the server, waits `down`, and starts it again on the same ports and mailboxes. A
    /// port taken meanwhile (by a client's connection, most likely) is waited for, up to 10 s.
    pub fn restart(&self, down: Duration) {
        self.stop();
        std::thread::sleep(down);
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Err(PortInUse(log)) = self.try_script() {
            assert!(
                Instant::now() < deadline,
                "Dovecot's ports stayed taken for 10 s after a restart:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
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
