//! A throwaway Dovecot for tests and benchmarks: `scripts/dovecot-test` starts it on two free ports of
//! 127.0.0.1 (implicit TLS and STARTTLS) with its own CA, users and Maildirs; dropping stops it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use dmarc_warden::fetch::imap::{Account, Secret, Session, Tls};
use tempfile::TempDir;

pub const USER: &str = "dmarc";
pub const PASSWORD: &str = "secret-pw";

fn s(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// A running Dovecot; stopped when dropped.
pub struct Dovecot {
    pub dir: TempDir,
    pub imaps: u16,
    pub imap: u16,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
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
        let dovecot = Dovecot {
            dir: tempfile::tempdir().expect("a temporary directory"),
            imaps: free_port(),
            imap: free_port(),
        };
        dovecot.run_script(env);
        // An empty config file, so that no config of the user running the tests leaks in.
        std::fs::write(dovecot.dir.path().join("empty.toml"), "").expect("write empty.toml");
        dovecot
    }

    fn run_script(&self, env: &[(&str, &str)]) {
        let out = Command::new(script())
            .args([
                "start",
                s(self.dir.path()),
                &self.imaps.to_string(),
                &self.imap.to_string(),
            ])
            .envs(env.iter().copied())
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
        self.run_script(&[]);
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
            host: "127.0.0.1".into(),
            port: self.imaps,
            user: USER.into(),
            password: Secret::new(PASSWORD.into()),
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
        Session::connect(&self.account()).expect("log in to the test Dovecot")
    }

    /// Appends every message to `folder`, in order, over one connection.
    pub fn append(&self, folder: &str, messages: &[Vec<u8>]) {
        let mut session = self.session();
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
        let mut session = self.session();
        let n = session.select(folder).map_or(0, |status| status.exists);
        session.logout();
        n
    }

    /// Environment for the executable: everything but the password's source, which tests vary.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("DMARC_WARDEN_IMAP_HOST".into(), "127.0.0.1".into()),
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
