//! `fetch` against a small IMAP server written here, on 127.0.0.1 with TLS from a test CA made by
//! openssl, that lies: it lists messages as small and then sends far more (or announces a huge
//! literal and sends nothing). Every read must stay bounded by `--max-message-size`: the liar's
//! message becomes a reject naming it, the honest messages land, the run ends promptly, and the
//! server can tell how little of its flood was read. It also answers SELECT with untagged `NO`,
//! `BAD` or `BYE` lines (on which the imap crate panics), with a line that is not IMAP, or IDLE
//! with a tagged OK: `fetch` ends that account with one line, no panic text, and reads the next.
//! A test fails, never skips, when the server cannot start.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use tempfile::TempDir;

use crate::cli::{Env, Out, s};
use crate::imap::{corpus, generated, report_keys, summary};

/// What the server sends when asked for a message's text.
enum Sent {
    /// These bytes, the partial fetch `<0.N>` honoured: an honest server.
    Bytes(Vec<u8>),
    /// This many bytes of filler, whatever was asked for and whatever size was listed. `hidden`:
    /// the literal's announcement is preceded by `* OK {n}`, which is text, not a literal, to a
    /// parser, but makes a reader that takes it for one skip the real announcement.
    Flood { total: u64, hidden: bool },
    /// A literal of this many bytes announced, then nothing: the connection is held open until
    /// the client leaves.
    Announce(u64),
}

/// One message of the INBOX (UIDs 1, 2, … in order): the size LISTed (`RFC822.SIZE`) and its text.
struct Message {
    listed: u64,
    sent: Sent,
}

impl Message {
    /// A message that tells the truth about its size.
    fn honest(data: Vec<u8>) -> Message {
        Message {
            listed: data.len() as u64,
            sent: Sent::Bytes(data),
        }
    }
}

/// How the server misbehaves beyond the sizes of messages.
#[derive(Debug, Default, Clone, Copy)]
enum Hostile {
    #[default]
    No,
    /// This untagged line (`* NO …`, `* BAD …`, `* BYE …`) in SELECT's response, which then ends
    /// as usual, in OK.
    Select(&'static str),
    /// A line that is not IMAP in answer to SELECT.
    Garbage,
    /// A tagged OK in answer to IDLE, where a continuation request is due.
    IdleOk,
}

#[derive(Default)]
struct State {
    messages: Vec<Message>,
    hostile: Hostile,
    /// Filler bytes of [`Sent::Flood`] written to clients, over every connection.
    flood_written: AtomicU64,
    connections: AtomicU64,
    /// `(uid, folder)` of each UID MOVE, in order.
    moved: Mutex<Vec<(u32, String)>>,
    stop: AtomicBool,
}

/// The fake server: one thread accepts, one per connection answers; stopped when dropped.
struct FakeImap {
    dir: TempDir,
    addr: SocketAddr,
    state: Arc<State>,
}

const UIDVALIDITY: u32 = 7;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl (Debian package openssl): {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test CA (`ca.pem`) and a server certificate it signed for 127.0.0.1 (`server.pem`,
/// `server.key`), as `scripts/dovecot-test` makes them; P-256 keys, which are quick to make.
fn certificates(dir: &Path) -> Arc<ServerConfig> {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    let mut ca = vec!["req", "-x509", "-nodes", "-days", "2"];
    ca.extend(ec);
    ca.extend([
        "-subj",
        "/CN=dmarc-warden fake IMAP CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(dir, &ca);
    let mut csr = vec!["req", "-nodes"];
    csr.extend(ec);
    csr.extend([
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
    );
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("the test certificate and key");
    Arc::new(config)
}

impl FakeImap {
    fn start(messages: Vec<Message>) -> FakeImap {
        FakeImap::start_hostile(messages, Hostile::No)
    }

    fn start_hostile(messages: Vec<Message>, hostile: Hostile) -> FakeImap {
        let dir = tempfile::tempdir().unwrap();
        let tls = certificates(dir.path());
        std::fs::write(dir.path().join("empty.toml"), "").unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port on 127.0.0.1");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            messages,
            hostile,
            ..State::default()
        });
        let shared = state.clone();
        std::thread::spawn(move || {
            for tcp in listener.incoming() {
                if shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(tcp) = tcp else { continue };
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let (state, tls) = (shared.clone(), tls.clone());
                std::thread::spawn(move || {
                    // A client that leaves mid-response ends the conversation; nothing to report.
                    let _ = serve(tcp, tls, &state);
                });
            }
        });
        FakeImap { dir, addr, state }
    }

    /// Environment for the executable's `fetch` against this server.
    fn env(&self) -> Vec<(String, String)> {
        [
            ("DMARC_WARDEN_IMAP_HOST", "127.0.0.1".to_owned()),
            ("DMARC_WARDEN_IMAP_PORT", self.addr.port().to_string()),
            ("DMARC_WARDEN_IMAP_USER", "dmarc".to_owned()),
            ("DMARC_WARDEN_IMAP_PASSWORD", "fake-pw".to_owned()),
            (
                "DMARC_WARDEN_IMAP_CA_FILE",
                s(&self.dir.path().join("ca.pem")).to_owned(),
            ),
            (
                "DMARC_WARDEN_CONFIG",
                s(&self.dir.path().join("empty.toml")).to_owned(),
            ),
            // Far longer than the test may take: a run that waits for the server to send what it
            // announced fails the time check instead of ending in a timeout.
            ("DMARC_WARDEN_IMAP_TIMEOUT", "120".to_owned()),
            // A panic would print a backtrace too.
            ("RUST_BACKTRACE", "1".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Runs `fetch` with `args`; returns its outcome and how long it took.
    fn fetch(&self, env: &Env, args: &[&str]) -> (Out, Duration) {
        let vars = self.env();
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut all = vec!["fetch"];
        all.extend_from_slice(args);
        let started = Instant::now();
        let out = env.run_with_env(&all, &vars);
        (out, started.elapsed())
    }
}

impl Drop for FakeImap {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread, which then sees `stop`.
        let _ = TcpStream::connect(self.addr);
    }
}

type Tls = StreamOwned<ServerConnection, TcpStream>;

/// One connection: greeting, then commands until LOGOUT or until the client leaves.
fn serve(tcp: TcpStream, tls: Arc<ServerConfig>, state: &State) -> std::io::Result<()> {
    tcp.set_read_timeout(Some(Duration::from_secs(120)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(60)))?;
    let conn = ServerConnection::new(tls).map_err(std::io::Error::other)?;
    let mut io = BufReader::new(StreamOwned::new(conn, tcp));
    send(&mut io, b"* OK [CAPABILITY IMAP4rev1] fake IMAP ready\r\n")?;
    loop {
        let mut line = Vec::new();
        (&mut io).take(64 << 10).read_until(b'\n', &mut line)?;
        if line.is_empty() {
            return Ok(());
        }
        let line = String::from_utf8_lossy(&line).trim_end().to_owned();
        let (tag, command) = line.split_once(' ').unwrap_or((&line, ""));
        let upper = command.to_ascii_uppercase();
        let words: Vec<&str> = command.split(' ').collect();
        let reply = if upper.starts_with("CAPABILITY") {
            format!("* CAPABILITY IMAP4rev1 MOVE UIDPLUS\r\n{tag} OK done\r\n")
        } else if upper.starts_with("LOGIN") || upper.starts_with("CREATE") {
            format!("{tag} OK done\r\n")
        } else if upper.starts_with("SELECT") {
            let n = state.messages.len();
            let extra = match state.hostile {
                Hostile::Select(line) => format!("{line}\r\n"),
                Hostile::Garbage => "this is not IMAP\r\n".to_owned(),
                Hostile::No | Hostile::IdleOk => String::new(),
            };
            format!(
                "* FLAGS (\\Seen \\Deleted)\r\n* {n} EXISTS\r\n{extra}* 0 RECENT\r\n\
                 * OK [UIDVALIDITY {UIDVALIDITY}] UIDs valid\r\n* OK [UIDNEXT {}] next\r\n\
                 {tag} OK [READ-WRITE] selected\r\n",
                n + 1
            )
        } else if upper.starts_with("IDLE") && matches!(state.hostile, Hostile::IdleOk) {
            format!("{tag} OK idle done\r\n")
        } else if upper.starts_with("UID FETCH") && upper.contains("RFC822.SIZE") {
            let mut reply = String::new();
            for uid in uids(words[2], state.messages.len()) {
                let listed = state.messages[uid as usize - 1].listed;
                reply += &format!("* {uid} FETCH (UID {uid} RFC822.SIZE {listed})\r\n");
            }
            reply + &format!("{tag} OK fetched\r\n")
        } else if upper.starts_with("UID FETCH") && upper.contains("BODY.PEEK[]") {
            let partial = upper
                .split_once("<0.")
                .and_then(|(_, rest)| rest.split_once('>'))
                .and_then(|(n, _)| n.parse::<u64>().ok());
            for uid in uids(words[2], state.messages.len()) {
                body(&mut io, state, uid, partial)?;
            }
            format!("{tag} OK fetched\r\n")
        } else if upper.starts_with("UID MOVE") {
            let folder = words[3..].join(" ").trim_matches('"').to_owned();
            let mut moved = state.moved.lock().unwrap();
            for uid in uids(words[2], state.messages.len()) {
                moved.push((uid, folder.clone()));
            }
            format!("{tag} OK moved\r\n")
        } else if upper.starts_with("UID STORE") {
            format!("{tag} OK stored\r\n")
        } else if upper.starts_with("LOGOUT") {
            send(
                &mut io,
                format!("* BYE bye\r\n{tag} OK done\r\n").as_bytes(),
            )?;
            return Ok(());
        } else {
            format!("{tag} BAD unknown command\r\n")
        };
        send(&mut io, reply.as_bytes())?;
    }
}

fn send(io: &mut BufReader<Tls>, bytes: &[u8]) -> std::io::Result<()> {
    io.get_mut().write_all(bytes)?;
    io.get_mut().flush()
}

/// The UIDs of a UID set (`1:3,5`, `4:*`) that exist, in order.
fn uids(set: &str, count: usize) -> Vec<u32> {
    let max = count as u32;
    let number = |n: &str| {
        if n == "*" { max } else { n.parse().unwrap() }
    };
    let mut out = Vec::new();
    for part in set.split(',') {
        let (a, b) = part.split_once(':').unwrap_or((part, part));
        let (a, b) = (number(a), number(b));
        let (low, high) = (a.min(b), a.max(b));
        out.extend((low..=high.min(max)).filter(|uid| *uid >= 1));
    }
    out
}

/// One `FETCH (UID … BODY[]<0> {n})` response, as the message's [`Sent`] says.
fn body(
    io: &mut BufReader<Tls>,
    state: &State,
    uid: u32,
    partial: Option<u64>,
) -> std::io::Result<()> {
    let part = if partial.is_some() { "<0>" } else { "" };
    let head = |n: u64| format!("* {uid} FETCH (UID {uid} BODY[]{part} {{{n}}}\r\n");
    match &state.messages[uid as usize - 1].sent {
        Sent::Bytes(data) => {
            let n = partial.map_or(data.len(), |p| data.len().min(p as usize));
            send(io, head(n as u64).as_bytes())?;
            send(io, &data[..n])?;
        }
        Sent::Flood { total, hidden } => {
            let head = head(*total);
            if *hidden {
                send(io, format!("* OK {{{}}}\r\n", head.len() - 1).as_bytes())?;
            }
            send(io, head.as_bytes())?;
            let mut line = vec![b'x'; 76];
            line.extend_from_slice(b"\r\n");
            let chunk: Vec<u8> = line.iter().copied().cycle().take(64 << 10).collect();
            let mut left = *total;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                io.get_mut().write_all(&chunk[..n])?;
                state.flood_written.fetch_add(n as u64, Ordering::SeqCst);
                left -= n as u64;
            }
        }
        Sent::Announce(n) => {
            send(io, head(*n).as_bytes())?;
            // Nothing follows: wait for the client to give up on this connection.
            let mut sink = [0u8; 1024];
            while io.get_mut().read(&mut sink)? > 0 {}
            return Err(std::io::Error::other("the client left"));
        }
    }
    send(io, b")\r\n")
}

/// `(origin, reason, size)` of every kept reject.
fn rejects(env: &Env) -> Vec<(String, String, serde_json::Value)> {
    let out = env.run(&["rejects", "--format", "json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut rejects: Vec<_> = out
        .json()
        .iter()
        .map(|r| {
            (
                r["origin"].as_str().unwrap().to_owned(),
                r["reason"].as_str().unwrap().to_owned(),
                r["size"].clone(),
            )
        })
        .collect();
    rejects.sort_by(|a, b| a.0.cmp(&b.0));
    rejects
}

const LIMIT: u64 = 1 << 20;

/// A report message of about 350 kB: under the limit, far over any slack.
fn big_report() -> Vec<u8> {
    let xml = corpus::report_xml(&mut corpus::Rng::new(2), 77, 400);
    corpus::email(77, "big.xml", xml.as_bytes())
}

#[test]
fn a_server_lying_about_sizes_cannot_make_fetch_hold_more_than_the_limit() {
    let (reports, _) = generated(3, 41);
    let big = big_report();
    assert!(big.len() > 300 << 10 && (big.len() as u64) < LIMIT);
    let flood = 1u64 << 30;
    let server = FakeImap::start(vec![
        Message::honest(reports[0].clone()),
        // Listed as 600 bytes, sends 1 GiB whatever the partial fetch asked for, and hides the
        // literal's announcement from a reader that looks for one.
        Message {
            listed: 600,
            sent: Sent::Flood {
                total: flood,
                hidden: true,
            },
        },
        // Grew after it was listed (or the server counts differently): still under the limit.
        Message {
            listed: 1000,
            sent: Sent::Bytes(big),
        },
        // Listed as 500 bytes, is 3 MiB; the partial fetch is honoured.
        Message {
            listed: 500,
            sent: Sent::Bytes(vec![b'y'; 3 << 20]),
        },
        // Listed as 800 bytes, announces and sends 1 GiB.
        Message {
            listed: 800,
            sent: Sent::Flood {
                total: flood,
                hidden: false,
            },
        },
        Message::honest(reports[1].clone()),
        Message::honest(reports[2].clone()),
    ]);
    let env = Env::new();
    let (out, took) = server.fetch(
        &env,
        &["--max-message-size", "1MiB", "--invalid", "Invalid"],
    );
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    // inputs, reports new, duplicates, rejected.
    assert_eq!(summary(&out)[..4], [7, 4, 0, 3], "{}", out.stdout);
    assert_eq!(report_keys(&env).len(), 4);

    let written = server.state.flood_written.load(Ordering::SeqCst);
    assert!(
        written < 32 << 20,
        "the client read on: {written} bytes of the floods were written"
    );
    assert!(took < Duration::from_secs(30), "fetch took {took:?}");

    let rejects = rejects(&env);
    let expected = [
        (2, "listed as 600 bytes, the server sent more"),
        (4, "listed as 500 bytes, the server sent more"),
        (
            5,
            "listed as 800 bytes, the server announced 1073741824 bytes",
        ),
    ];
    assert_eq!(rejects.len(), expected.len(), "{rejects:?}");
    for ((origin, reject, size), (uid, why)) in rejects.iter().zip(expected) {
        assert!(
            origin.ends_with(&format!(";UIDVALIDITY={UIDVALIDITY}/;UID={uid}")),
            "{origin}"
        );
        assert!(
            reject.contains(&format!(
                "message exceeds the limit of {LIMIT} bytes ({why}), not kept"
            )) && reject.contains("--max-message-size / DMARC_WARDEN_MAX_MESSAGE_SIZE"),
            "{reject}"
        );
        assert!(
            size.is_null(),
            "no byte of an oversized message is kept: {reject}"
        );
    }
    assert!(
        out.stderr.contains(";UID=2: message exceeds the limit"),
        "{}",
        out.stderr
    );
    // Rejects go where rejects go, once their outcome is committed; the rest stays.
    let moved = server.state.moved.lock().unwrap().clone();
    let invalid = |uid| (uid, "Invalid".to_owned());
    assert_eq!(moved, [invalid(2), invalid(4), invalid(5)]);

    // Nothing new on the next run: no liar is read again.
    let connections = server.state.connections.load(Ordering::SeqCst);
    let (again, _) = server.fetch(&env, &["--max-message-size", "1MiB"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(summary(&again)[..4], [0, 0, 0, 0], "{}", again.stdout);
    assert_eq!(
        server.state.connections.load(Ordering::SeqCst),
        connections + 1
    );
    assert_eq!(server.state.flood_written.load(Ordering::SeqCst), written);
}

#[test]
fn a_huge_literal_announced_and_never_sent_is_refused_unread() {
    let (reports, _) = generated(2, 43);
    let server = FakeImap::start(vec![
        Message::honest(reports[0].clone()),
        Message {
            listed: 700,
            sent: Sent::Announce(4_000_000_000),
        },
        Message::honest(reports[1].clone()),
    ]);
    let env = Env::new();
    let (out, took) = server.fetch(&env, &["--max-message-size", "1MiB"]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert_eq!(summary(&out)[..4], [3, 2, 0, 1], "{}", out.stdout);
    assert_eq!(report_keys(&env).len(), 2);
    // Waiting for the literal would have taken the 120 s timeout.
    assert!(took < Duration::from_secs(30), "fetch took {took:?}");
    let rejects = rejects(&env);
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    let (origin, reject, size) = &rejects[0];
    assert!(origin.ends_with(";UID=2"), "{origin}");
    assert!(
        reject.contains(&format!(
            "message exceeds the limit of {LIMIT} bytes (listed as 700 bytes, the server announced 4000000000 bytes)"
        )) && reject.contains("--max-message-size"),
        "{reject}"
    );
    assert!(size.is_null(), "{reject}");
}

/// Asserts that `out` is the end of a run that failed on `server` with one line saying `said`,
/// and nothing of a panic.
fn failed_with_one_line(out: &Out, server: &FakeImap, what: &str, said: &str) {
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {}", out.stderr);
    let expected = format!(
        "127.0.0.1:{}: {what}: the server sent {said}",
        server.addr.port()
    );
    assert!(
        lines[0].contains(&expected),
        "{expected:?} in {}",
        out.stderr
    );
    for panic in [
        "panicked",
        "backtrace",
        "unreachable",
        "RUST_BACKTRACE",
        ".rs:",
    ] {
        assert!(!out.stderr.contains(panic), "{panic:?} in {}", out.stderr);
    }
}

/// A config file of two accounts, each on its fake server (and trusting its CA).
fn two_accounts(dir: &Path, servers: [(&str, &FakeImap); 2]) -> std::path::PathBuf {
    let config = dir.join("two.toml");
    let text: String = servers
        .iter()
        .map(|(name, server)| {
            format!(
                "[[account]]\nname = \"{name}\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"dmarc\"\n\
                 password = \"fake-pw\"\nca_file = \"{}\"\ntimeout_secs = 120\n",
                server.addr.port(),
                s(&server.dir.path().join("ca.pem"))
            )
        })
        .collect();
    std::fs::write(&config, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    config
}

#[test]
fn untagged_no_bad_or_bye_and_garbage_end_that_account_with_one_line_and_the_next_is_read() {
    let (reports, _) = generated(3, 47);
    let honest = FakeImap::start(vec![
        Message::honest(reports[1].clone()),
        Message::honest(reports[2].clone()),
    ]);
    // The imap crate panics (`unreachable!`) on an untagged NO, BAD or BYE in SELECT's response.
    let crashes = "a response the imap crate cannot handle there";
    let cases = [
        (
            Hostile::Select("* NO [ALERT] mailbox is being repaired"),
            crashes,
        ),
        (Hostile::Select("* BAD internal server error"), crashes),
        (Hostile::Select("* BYE going away"), crashes),
        (Hostile::Garbage, "a line that is not IMAP"),
    ];
    for (hostile, said) in cases {
        let server = FakeImap::start_hostile(vec![Message::honest(reports[0].clone())], hostile);
        let env = Env::new();
        let (out, took) = server.fetch(&env, &[]);
        failed_with_one_line(&out, &server, "SELECT INBOX", said);
        // Not retried: the server would only say it again.
        assert_eq!(
            server.state.connections.load(Ordering::SeqCst),
            1,
            "{hostile:?}"
        );
        assert!(took < Duration::from_secs(10), "{hostile:?}: {took:?}");
        // The database is as usable as before.
        assert_eq!(report_keys(&env).len(), 0);

        // One bad server does not keep the next account from being read.
        let config = two_accounts(env.dir.path(), [("hostile", &server), ("honest", &honest)]);
        let out = env.run_with_env(
            &["fetch"],
            &[("DMARC_WARDEN_CONFIG", s(&config)), ("RUST_BACKTRACE", "1")],
        );
        assert_eq!(out.code, 2, "{hostile:?}: {}{}", out.stdout, out.stderr);
        assert!(
            out.stderr
                .starts_with("dmarc-warden: error: account hostile: 127.0.0.1:")
                && out.stderr.lines().count() == 1
                && out.stderr.contains(said),
            "{hostile:?}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        assert_eq!(summary(&out)[..2], [2, 2], "{hostile:?}: {}", out.stdout);
        assert_eq!(report_keys(&env).len(), 2, "{hostile:?}");
    }
}

#[test]
fn a_tagged_ok_to_idle_ends_watch_with_one_line_after_the_mail_is_stored() {
    let (reports, _) = generated(2, 53);
    let server = FakeImap::start_hostile(
        reports.iter().cloned().map(Message::honest).collect(),
        Hostile::IdleOk,
    );
    let env = Env::new();
    let (out, took) = server.fetch(&env, &["--watch"]);
    // The imap crate panics (`unreachable!`) when IDLE is answered without a continuation.
    failed_with_one_line(
        &out,
        &server,
        "IDLE",
        "a response the imap crate cannot handle there",
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(report_keys(&env).len(), 2);
}
