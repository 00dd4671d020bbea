//! IMAP: connect over TLS (implicit, or STARTTLS) with certificates verified by rustls, log in, and
//! read, move and flag messages by UID. Knows nothing of reports or the database: the pipeline decides
//! what to fetch and when to move, and this module only speaks the protocol.
//!
//! Logging in is LOGIN with a password, or SASL XOAUTH2 / OAUTHBEARER with an access token from
//! [`crate::fetch::oauth2`]. Certificates are verified by WebPKI against the system's CAs plus
//! `ca_file`, whose certificates also count as pinned when the server presents one of them itself.
//!
//! Every network operation has a timeout (the socket's read and write timeouts), so a silent server
//! ends in an error rather than a hang. Passwords and tokens live in [`Secret`], which never prints.
//!
//! Every read is bounded, whatever the server says. The imap crate keeps a command's whole response in
//! memory (a literal is read line by line until it is complete), so the bound is kept below it, on
//! the stream ([`Stream`]): what the server sends between two of our writes may not exceed a budget,
//! and a literal the budget cannot hold is refused as soon as it is announced, before any of it is
//! read. A message body is asked for as `BODY.PEEK[]<0.N>` with N = `--max-message-size` + 1, and the
//! budget of one such command is what the listed sizes allow (each at most N); a server that lies
//! about sizes, or a message that grew, costs a reconnection and single fetches, never memory.
//!
//! Nothing the server sends may crash the run. The imap crate panics on some responses it does not
//! expect (an untagged `NO`, `BAD`, `BYE` or `PREAUTH` during SELECT, a tagged `OK` to IDLE), so
//! every call into it goes through [`unwound`], which turns such a panic into
//! [`ImapError::Unreadable`] without printing it; the connection it happened on is given up. A line
//! that is not IMAP at all ends the same way (the crate reports it as a `BYE` without text).

use std::cell::Cell;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::fetch::oauth2::{OAuthError, Tokens, sasl};
use crate::secret::Secret;

/// How the connection is secured. Plain-text IMAP is not offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    /// TLS from the first byte (port 993).
    #[default]
    Implicit,
    /// Plain connection upgraded with STARTTLS before login (port 143).
    Starttls,
}

/// One mailbox account, validated.
#[derive(Debug, Clone)]
pub struct Account {
    /// The name in the config file, or `default`.
    pub name: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    /// The password; unused when `oauth2` is set.
    pub password: Secret,
    /// `auth = "oauth2"`: log in with SASL XOAUTH2 / OAUTHBEARER and tokens from here.
    pub oauth2: Option<Arc<Tokens>>,
    pub tls: Tls,
    /// An extra trusted CA (PEM), for a server with a private certificate.
    pub ca_file: Option<PathBuf>,
    /// Skip certificate verification altogether. Only ever set explicitly, and warned about.
    pub danger_accept_invalid_certs: bool,
    pub folders: Vec<String>,
    /// Where processed messages go; `None` leaves them in place.
    pub archive: Option<String>,
    /// Where rejected messages go; `None` leaves them in place.
    pub invalid: Option<String>,
    /// Set `\Seen` on messages once their outcome is stored.
    pub mark_seen: bool,
    /// Timeout of each network operation.
    pub timeout: Duration,
}

impl Account {
    /// The key under which folder state is remembered: renaming the account in the config file does
    /// not make it new.
    pub fn key(&self) -> String {
        format!("{}@{}:{}", self.user, self.host, self.port)
    }

    /// `host:port`, for messages.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// An RFC 5092 IMAP URL naming one message: the origin of what it carried.
    pub fn message_url(&self, folder: &str, uidvalidity: u32, uid: u32) -> String {
        format!(
            "imap://{}@{}/{};UIDVALIDITY={uidvalidity}/;UID={uid}",
            self.user,
            self.addr(),
            folder
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error(
        "cannot connect to {addr}: {error} (check DMARC_WARDEN_IMAP_HOST / DMARC_WARDEN_IMAP_PORT)"
    )]
    // `error`, not `source`: the message says it already, so the chain must not say it again.
    Connect { addr: String, error: std::io::Error },
    #[error(
        "TLS with {addr} failed: {reason} (for a private CA set DMARC_WARDEN_IMAP_CA_FILE / ca_file; check DMARC_WARDEN_IMAP_TLS)"
    )]
    Tls { addr: String, reason: String },
    #[error("cannot read the CA file {path} (DMARC_WARDEN_IMAP_CA_FILE / ca_file): {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error(
        "login as {user} at {addr} failed: {reason} (check DMARC_WARDEN_IMAP_USER and the password)"
    )]
    Login {
        user: String,
        addr: String,
        reason: String,
    },
    #[error(
        "login as {user} at {addr} with {mechanism} failed: the server refused a new token too: \
         {reason} (check DMARC_WARDEN_IMAP_USER and that the app may open this mailbox)"
    )]
    TokenRefused {
        user: String,
        addr: String,
        mechanism: &'static str,
        reason: String,
    },
    #[error(
        "{addr} offers neither AUTH=OAUTHBEARER nor AUTH=XOAUTH2 (set oauth2_mechanism / \
         DMARC_WARDEN_OAUTH2_MECHANISM to try one anyway)"
    )]
    NoOAuthMechanism { addr: String },
    /// No token to log in with (the token endpoint said no, or could not be reached).
    #[error(transparent)]
    Token(Box<OAuthError>),
    #[error("{addr}: {what}: {}", shortened(error.to_string()))]
    Protocol {
        addr: String,
        what: String,
        error: Box<imap::Error>,
    },
    #[error("{addr}: the UIDVALIDITY of {folder} changed while it was read")]
    Renumbered { addr: String, folder: String },
    /// The server sent what the imap crate cannot read where it came: a line that is not IMAP, or
    /// a response it does not expect there (on some it panics; [`unwound`] catches that). Reading
    /// it again would read the same: not transient.
    #[error("{addr}: {what}: the server sent {detail}; the connection was dropped")]
    Unreadable {
        addr: String,
        what: String,
        detail: String,
    },
}

impl ImapError {
    /// A dropped connection or a timeout after login, worth reconnecting for; a refused login or
    /// certificate is not, nor a response refused for its size (it would only come again).
    pub fn is_transient(&self) -> bool {
        match self {
            ImapError::Protocol { error, .. } => match &**error {
                imap::Error::Io(e) => Refused::of(e).is_none(),
                imap::Error::ConnectionLost | imap::Error::Bye(_) => true,
                _ => false,
            },
            ImapError::Renumbered { .. } => true,
            _ => false,
        }
    }
}

/// The most bytes the server may send in answer to one command other than a body fetch (whose
/// budget [`Session::bodies`] sets): room for the sizes of about five million messages.
const RESPONSE_BUDGET: u64 = 256 << 20;
/// What a body fetch may hold per message beyond the message itself (the `FETCH (UID …)` framing),
/// and per command (untagged `EXISTS`, `FLAGS` and the like).
const PER_MESSAGE_SLACK: u64 = 1 << 10;
const PER_COMMAND_SLACK: u64 = 64 << 10;

/// The bound the stream keeps, set by the [`Session`] around a body fetch.
#[derive(Debug)]
struct Bounds {
    /// Most bytes the server may send between two writes of ours.
    budget: AtomicU64,
    /// Largest literal the server may announce.
    literal: AtomicU64,
}

impl Bounds {
    fn set(&self, budget: u64, literal: u64) {
        self.budget.store(budget, Ordering::Relaxed);
        self.literal.store(literal, Ordering::Relaxed);
    }

    fn reset(&self) {
        self.set(RESPONSE_BUDGET, u64::MAX);
    }
}

/// Why the stream refused to read on: carried inside the `std::io::Error` the imap crate returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Refused {
    /// The budget of the response.
    budget: u64,
    /// The literal announced, when it was the announcement that was refused.
    announced: Option<u64>,
}

impl Refused {
    /// The refusal inside an I/O error, if that is what it is.
    fn of(e: &std::io::Error) -> Option<Refused> {
        e.get_ref()?.downcast_ref::<Refused>().copied()
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.announced {
            Some(n) => write!(
                f,
                "the server announced a literal of {n} bytes, above the bound of {} bytes of this \
                 response: refused unread",
                self.budget
            ),
            None => write!(
                f,
                "the server's response exceeds the bound of {} bytes: refused",
                self.budget
            ),
        }
    }
}

impl std::error::Error for Refused {}

/// Follows the server's side of the protocol just far enough to see literals announced: `{n}`
/// closing a line announces n bytes that follow it, which are skipped. A server that hides an
/// announcement gains nothing by it: the byte budget holds all the same.
#[derive(Debug, Default)]
struct Literals {
    /// Bytes still to come of the literal being read.
    pending: u64,
    /// Where the current line is in a possible announcement.
    at: Announcing,
}

/// How far the end of the current line looks like `{n}\r\n` (`{n+}`, which only clients send,
/// counts too).
#[derive(Debug, Default, Clone, Copy)]
enum Announcing {
    #[default]
    No,
    /// `{` and these digits so far (`None` before the first).
    Open(Option<u64>),
    /// `{n+`
    Plus(u64),
    /// `{n}`
    Closed(u64),
    /// `{n}\r`
    Cr(u64),
}

impl Literals {
    /// Reads `bytes` on; at each literal announced, asks `allowed(offset just past the
    /// announcement, length)`, and stops with the length of the first one it refuses.
    fn feed(&mut self, bytes: &[u8], mut allowed: impl FnMut(usize, u64) -> bool) -> Option<u64> {
        use Announcing::*;
        let mut i = 0;
        while i < bytes.len() {
            if self.pending > 0 {
                let skip = usize::try_from(self.pending)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len() - i);
                self.pending -= skip as u64;
                i += skip;
                continue;
            }
            let b = bytes[i];
            i += 1;
            self.at = match (self.at, b) {
                (_, b'{') => Open(None),
                (Open(n), b'0'..=b'9') => Open(Some(
                    n.unwrap_or(0)
                        .saturating_mul(10)
                        .saturating_add(u64::from(b - b'0')),
                )),
                (Open(Some(n)), b'+') => Plus(n),
                (Open(Some(n)) | Plus(n), b'}') => Closed(n),
                (Closed(n), b'\r') => Cr(n),
                (Cr(n), b'\n') => {
                    if !allowed(i, n) {
                        return Some(n);
                    }
                    self.pending = n;
                    No
                }
                _ => No,
            };
        }
        None
    }
}

/// The bound on what the server sends: a byte budget per response (what comes between two writes
/// of ours) and a largest literal, refused as soon as it is announced.
#[derive(Debug)]
struct Bounded {
    bounds: Arc<Bounds>,
    /// Bytes read since our last write: the response so far.
    used: u64,
    literals: Literals,
    /// Once refused, the connection is out of step with the protocol: every later read fails too.
    refused: Option<Refused>,
}

impl Bounded {
    fn new() -> Bounded {
        let bounds = Bounds {
            budget: AtomicU64::new(0),
            literal: AtomicU64::new(0),
        };
        bounds.reset();
        Bounded {
            bounds: Arc::new(bounds),
            used: 0,
            literals: Literals::default(),
            refused: None,
        }
    }

    /// Reads into `buf` with `read`, no further than the budget allows.
    fn read(
        &mut self,
        buf: &mut [u8],
        read: impl FnOnce(&mut [u8]) -> std::io::Result<usize>,
    ) -> std::io::Result<usize> {
        if let Some(refused) = self.refused {
            return Err(std::io::Error::other(refused));
        }
        let budget = self.bounds.budget.load(Ordering::Relaxed);
        let largest = self.bounds.literal.load(Ordering::Relaxed);
        let remaining = budget.saturating_sub(self.used);
        if remaining == 0 {
            return Err(self.refuse(Refused {
                budget,
                announced: None,
            }));
        }
        let cap = buf
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let n = read(&mut buf[..cap])?;
        let start = self.used;
        self.used += n as u64;
        let refused = self.literals.feed(&buf[..n], |at, len| {
            len <= largest && (start + at as u64).saturating_add(len) <= budget
        });
        match refused {
            Some(len) => Err(self.refuse(Refused {
                budget: budget.min(largest),
                announced: Some(len),
            })),
            None => Ok(n),
        }
    }

    /// A write of ours starts a command (or goes on with one): the server's answer starts afresh.
    fn wrote(&mut self) {
        self.used = 0;
    }

    fn refuse(&mut self, refused: Refused) -> std::io::Error {
        self.refused = Some(refused);
        std::io::Error::other(refused)
    }
}

/// The TLS stream, wrapped so that every read is bounded (see the module's documentation) and
/// IDLE can adjust its read timeout, with the account's timeout back afterwards.
pub struct Stream {
    tls: StreamOwned<ClientConnection, TcpStream>,
    timeout: Duration,
    bounded: Bounded,
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let tls = &mut self.tls;
        self.bounded.read(buf, |buf| tls.read(buf))
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bounded.wrote();
        self.tls.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.tls.flush()
    }
}

impl imap::extensions::idle::SetReadTimeout for Stream {
    /// The imap crate clears the read timeout (`None`) when IDLE ends; every operation after that
    /// must still time out, so `None` means the account's timeout here.
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> imap::Result<()> {
        self.tls
            .sock
            .set_read_timeout(Some(timeout.unwrap_or(self.timeout)))
            .map_err(imap::Error::Io)
    }
}

/// A message's text, fetched with a bound the server cannot exceed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// The whole message, at most the limit.
    Whole(Vec<u8>),
    /// Longer than the limit, whatever size was listed: nothing of it is kept. `announced` is the
    /// length the server announced, when it was refused unread.
    TooLarge { announced: Option<u64> },
}

/// What SELECT says of a folder.
#[derive(Debug, Clone, Copy)]
pub struct FolderStatus {
    pub uidvalidity: u32,
    pub exists: u32,
}

/// A logged-in connection.
pub struct Session {
    inner: imap::Session<Stream>,
    /// The stream's bounds, set around a body fetch.
    bounds: Arc<Bounds>,
    /// To connect again after a refused response, which leaves the connection out of step.
    account: Account,
    /// The folder selected, and its UIDVALIDITY: selected again after reconnecting.
    selected: Option<(String, u32)>,
    /// A response was refused: the next command first reconnects.
    broken: bool,
    addr: String,
    can_move: bool,
    uidplus: bool,
}

impl Session {
    /// Connects, secures the connection (verifying the certificate unless told otherwise) and logs in.
    pub fn connect(account: &Account) -> Result<Session, ImapError> {
        let addr = account.addr();
        let config = tls_config(account)?;
        let tcp = connect_tcp(account)?;
        let tcp = match account.tls {
            Tls::Implicit => tcp,
            Tls::Starttls => starttls(tcp, &addr)?,
        };
        let server_name =
            ServerName::try_from(account.host.clone()).map_err(|e| ImapError::Tls {
                addr: addr.clone(),
                reason: format!("{:?} is not a valid host name: {e}", account.host),
            })?;
        let conn = ClientConnection::new(config, server_name).map_err(|e| ImapError::Tls {
            addr: addr.clone(),
            reason: e.to_string(),
        })?;
        let mut stream = StreamOwned::new(conn, tcp);
        // Handshake now, so that a certificate problem is reported as one.
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .map_err(|e| ImapError::Tls {
                    addr: addr.clone(),
                    reason: e.to_string(),
                })?;
        }
        let stream = Stream {
            tls: stream,
            timeout: account.timeout,
            bounded: Bounded::new(),
        };
        let bounds = stream.bounded.bounds.clone();
        let mut client = imap::Client::new(stream);
        if account.tls == Tls::Implicit {
            unwound(&addr, "reading the greeting", || client.read_greeting())?
                .map_err(protocol(&addr, "reading the greeting"))?;
        }
        let mut inner = match &account.oauth2 {
            None => unwound(&addr, "LOGIN", || {
                client
                    .login(&account.user, account.password.expose())
                    .map_err(|(e, _)| Box::new(e))
            })?
            .map_err(|e| match protocol(&addr, "LOGIN")(*e) {
                ImapError::Protocol { error, .. } => ImapError::Login {
                    user: account.user.clone(),
                    addr: addr.clone(),
                    reason: refusal(*error),
                },
                unreadable => unreadable,
            })?,
            Some(tokens) => authenticate(client, account, tokens, &addr)?,
        };
        let caps = unwound(&addr, "CAPABILITY", || inner.capabilities())?
            .map_err(protocol(&addr, "CAPABILITY"))?;
        let can_move = caps.has_str("MOVE");
        let uidplus = caps.has_str("UIDPLUS");
        drop(caps);
        Ok(Session {
            inner,
            bounds,
            account: account.clone(),
            selected: None,
            broken: false,
            addr,
            can_move,
            uidplus,
        })
    }

    /// After a refused response: a new connection, with the folder selected again (the UIDs stand
    /// only while its UIDVALIDITY does).
    fn ready(&mut self) -> Result<(), ImapError> {
        if !self.broken {
            return Ok(());
        }
        let selected = self.selected.take();
        *self = Session::connect(&self.account)?;
        if let Some((folder, uidvalidity)) = selected
            && self.select(&folder)?.uidvalidity != uidvalidity
        {
            return Err(ImapError::Renumbered {
                addr: self.addr.clone(),
                folder,
            });
        }
        Ok(())
    }

    /// Runs `f` on the imap crate's session: the one place where a logged-in connection talks to
    /// the crate. A panic in the crate becomes [`ImapError::Unreadable`] ([`unwound`]), and so does
    /// a response it could not read; either way the connection is out of step, and given up: the
    /// next command connects anew, and [`Session::logout`] says nothing on it. The crate's error,
    /// when it returned one, is `f`'s to interpret.
    fn run<R>(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut imap::Session<Stream>) -> imap::Result<R>,
    ) -> Result<imap::Result<R>, ImapError> {
        let inner = &mut self.inner;
        let result = unwound(&self.addr, what, || f(inner));
        // Unsolicited responses (EXISTS, EXPUNGE, …) tell this client nothing it uses; left in
        // the crate's queue, they would pile up over a long `--watch`.
        drop(self.inner.take_all_unsolicited());
        self.broken |= match &result {
            Err(_) => true,
            Ok(Err(e)) => unreadable(e).is_some(),
            Ok(Ok(_)) => false,
        };
        result
    }

    /// [`Session::run`], with the crate's error named by the server and `what`.
    fn call<R>(
        &mut self,
        what: impl Into<String>,
        f: impl FnOnce(&mut imap::Session<Stream>) -> imap::Result<R>,
    ) -> Result<R, ImapError> {
        let what = what.into();
        self.run(&what, f)?.map_err(protocol(&self.addr, what))
    }

    /// Opens `folder` read-write.
    pub fn select(&mut self, folder: &str) -> Result<FolderStatus, ImapError> {
        self.ready()?;
        self.selected = None;
        let mailbox = self.call(format!("SELECT {folder}"), |s| s.select(folder))?;
        let uidvalidity = mailbox.uid_validity.unwrap_or(0);
        self.selected = Some((folder.to_owned(), uidvalidity));
        Ok(FolderStatus {
            uidvalidity,
            exists: mailbox.exists,
        })
    }

    /// UIDs above `after` in the selected folder, with their sizes, in UID order.
    pub fn sizes_after(&mut self, after: u32) -> Result<Vec<(u32, u64)>, ImapError> {
        self.ready()?;
        let Some(from) = after.checked_add(1) else {
            return Ok(Vec::new());
        };
        let query = format!("{from}:*");
        let fetches = self.call(format!("UID FETCH {query} (RFC822.SIZE)"), |s| {
            s.uid_fetch(&query, "(UID RFC822.SIZE)")
        })?;
        // `n:*` includes the highest UID even when it is below n: filter.
        let mut out: Vec<(u32, u64)> = fetches
            .iter()
            .filter_map(|f| Some((f.uid?, u64::from(f.size?))))
            .filter(|(uid, _)| *uid > after)
            .collect();
        out.sort_unstable();
        out.dedup_by_key(|(uid, _)| *uid);
        Ok(out)
    }

    /// The text of these listed messages (`(uid, size listed)`), without setting `\Seen`, each
    /// at most `limit` bytes: one longer than that, whatever its listed size, is [`Body::TooLarge`]
    /// and nothing of it is kept. A message that vanished meanwhile (expunged by another client) is
    /// simply absent.
    ///
    /// One command fetches them all, bounded by what their listed sizes allow. When the server sends
    /// more than that (a size it lied about, or a message that grew), the connection is given up and
    /// the messages are fetched again one by one, each bounded by the limit; one that exceeds it
    /// costs another reconnection.
    pub fn bodies(
        &mut self,
        listed: &[(u32, u64)],
        limit: u64,
    ) -> Result<Vec<(u32, Body)>, ImapError> {
        self.ready()?;
        if listed.is_empty() {
            return Ok(Vec::new());
        }
        let uids: Vec<u32> = listed.iter().map(|(uid, _)| *uid).collect();
        let budget = listed
            .iter()
            .map(|(_, size)| size.saturating_add(size / 8).min(limit.saturating_add(1)))
            .fold(PER_COMMAND_SLACK, |sum, size| {
                sum.saturating_add(size).saturating_add(PER_MESSAGE_SLACK)
            });
        let mut out = match self.bounded_fetch(&uids, limit, budget)? {
            Ok(bodies) => bodies,
            Err(_) => {
                let single = limit
                    .saturating_add(1)
                    .saturating_add(PER_MESSAGE_SLACK + PER_COMMAND_SLACK);
                let mut bodies = Vec::with_capacity(uids.len());
                for &uid in &uids {
                    self.ready()?;
                    match self.bounded_fetch(&[uid], limit, single)? {
                        Ok(mut body) => bodies.append(&mut body),
                        Err(refused) => bodies.push((
                            uid,
                            Body::TooLarge {
                                announced: refused.announced,
                            },
                        )),
                    }
                }
                bodies
            }
        };
        out.sort_unstable_by_key(|(uid, _)| *uid);
        Ok(out)
    }

    /// One `UID FETCH` of these messages' first `limit + 1` bytes, the response bounded by `budget`.
    /// The inner error is the refusal of a response that exceeded it; the connection is then
    /// marked for reconnecting.
    fn bounded_fetch(
        &mut self,
        uids: &[u32],
        limit: u64,
        budget: u64,
    ) -> Result<Result<Vec<(u32, Body)>, Refused>, ImapError> {
        let set = uid_set(uids);
        let want = limit.saturating_add(1);
        // A partial fetch's length is a 32-bit number; above that, the stream's bound alone holds.
        let query = if want <= u64::from(u32::MAX) {
            format!("(UID BODY.PEEK[]<0.{want}>)")
        } else {
            "(UID BODY.PEEK[])".to_owned()
        };
        let what = format!("UID FETCH {query}");
        self.bounds.set(budget, want);
        let fetched = self.run(&what, |s| s.uid_fetch(&set, &query));
        self.bounds.reset();
        let fetches = match fetched? {
            Ok(fetches) => fetches,
            Err(e) => {
                if let imap::Error::Io(io) = &e
                    && let Some(refused) = Refused::of(io)
                {
                    self.broken = true;
                    return Ok(Err(refused));
                }
                return Err(protocol(&self.addr, what)(e));
            }
        };
        Ok(Ok(fetches
            .iter()
            .filter_map(|f| Some((f.uid?, f.body()?)))
            // Only what was asked for: a server's extra is no message of ours.
            .filter(|(uid, _)| uids.contains(uid))
            .map(|(uid, body)| {
                let body = if body.len() as u64 > limit {
                    Body::TooLarge { announced: None }
                } else {
                    Body::Whole(body.to_vec())
                };
                (uid, body)
            })
            .collect()))
    }

    /// Creates `folder` unless it exists. CREATE first: a server says NO to an existing folder
    /// (RFC 5530 `ALREADYEXISTS`, or plain words), which STATUS then confirms.
    pub fn ensure_folder(&mut self, folder: &str) -> Result<(), ImapError> {
        self.ready()?;
        let what = format!("CREATE {folder}");
        match self.run(&what, |s| s.create(folder))? {
            Ok(()) => Ok(()),
            Err(create) => match self.run(&format!("STATUS {folder}"), |s| {
                s.status(folder, "(MESSAGES)")
            })? {
                Ok(_) => Ok(()),
                Err(_) => Err(protocol(&self.addr, what)(create)),
            },
        }
    }

    /// Moves messages of the selected folder to `folder`: MOVE where the server has it, otherwise
    /// COPY, `\Deleted` and UID EXPUNGE (which touches only these UIDs). Without UIDPLUS the
    /// originals are left flagged `\Deleted`, never expunged with anything else.
    pub fn move_to(&mut self, uids: &[u32], folder: &str) -> Result<(), ImapError> {
        self.ready()?;
        if uids.is_empty() {
            return Ok(());
        }
        let set = uid_set(uids);
        if self.can_move {
            return self.call(format!("UID MOVE to {folder}"), |s| s.uid_mv(&set, folder));
        }
        self.call(format!("UID COPY to {folder}"), |s| {
            s.uid_copy(&set, folder)
        })?;
        self.call("UID STORE \\Deleted", |s| {
            s.uid_store(&set, "+FLAGS.SILENT (\\Deleted)").map(drop)
        })?;
        if self.uidplus {
            self.call("UID EXPUNGE", |s| s.uid_expunge(&set).map(drop))?;
        }
        Ok(())
    }

    /// Sets `\Seen` on these messages.
    pub fn mark_seen(&mut self, uids: &[u32]) -> Result<(), ImapError> {
        self.ready()?;
        if uids.is_empty() {
            return Ok(());
        }
        self.call("UID STORE \\Seen", |s| {
            s.uid_store(uid_set(uids), "+FLAGS.SILENT (\\Seen)")
                .map(drop)
        })
    }

    /// Waits (IMAP IDLE) until the selected folder changes or `timeout` passes.
    pub fn idle(&mut self, timeout: Duration) -> Result<(), ImapError> {
        self.ready()?;
        self.call("IDLE", |s| {
            let mut handle = s.idle();
            handle.timeout(timeout).keepalive(false);
            handle
                .wait_while(imap::extensions::idle::stop_on_any)
                .map(drop)
        })
    }

    /// Appends a message to `folder` (used by tests and benchmarks to fill a mailbox).
    pub fn append(&mut self, folder: &str, message: &[u8]) -> Result<(), ImapError> {
        self.ready()?;
        self.call(format!("APPEND to {folder}"), |s| {
            s.append(folder, message).finish().map(drop)
        })
    }

    /// Says goodbye; errors are of no interest by then (nor is a connection out of step).
    pub fn logout(mut self) {
        if !self.broken {
            let _ = self.run("LOGOUT", |s| s.logout());
        }
    }
}

/// What the server said when it refused a login.
fn refusal(e: imap::Error) -> String {
    shortened(match e {
        imap::Error::No(no) => no.information,
        other => other.to_string(),
    })
}

/// Logs in with an access token: the mechanism from CAPABILITY unless configured, the cached token
/// (or a new one); when the server refuses it, once more with a new token on the same connection.
fn authenticate(
    mut client: imap::Client<Stream>,
    account: &Account,
    tokens: &Tokens,
    addr: &str,
) -> Result<imap::Session<Stream>, ImapError> {
    let configured = tokens.settings().mechanism;
    let mechanism = match configured {
        Some(m) => m,
        None => {
            let caps = unwound(addr, "CAPABILITY", || client.capabilities())?
                .map_err(protocol(addr, "CAPABILITY"))?;
            let offered = |c: &str| caps.has_str(c);
            sasl::choose(None, &offered).ok_or_else(|| ImapError::NoOAuthMechanism {
                addr: addr.to_owned(),
            })?
        }
    };
    let token_err = |e| ImapError::Token(Box::new(e));
    let token = tokens.access_token().map_err(token_err)?;
    let sasl = |token| {
        sasl::Authenticator::new(mechanism, &account.user, &account.host, account.port, token)
    };
    let what = format!("AUTHENTICATE {}", mechanism.name());
    let first = unwound(addr, &what, || {
        client
            .authenticate(mechanism.name(), &sasl(&token))
            .map_err(Box::new)
    })?;
    let client = match first.map_err(|e| *e) {
        Ok(session) => return Ok(session),
        // A NO is the token refused (expired, revoked); anything else is no token matter.
        Err((imap::Error::No(_), client)) => client,
        Err((e, _)) => return Err(protocol(addr, what)(e)),
    };
    let token = tokens.refresh(&token).map_err(token_err)?;
    unwound(addr, &what, || {
        client
            .authenticate(mechanism.name(), &sasl(&token))
            .map_err(|(e, _)| Box::new(e))
    })?
    .map_err(|e| match protocol(addr, what)(*e) {
        ImapError::Protocol { error, .. } => ImapError::TokenRefused {
            user: account.user.clone(),
            addr: addr.to_owned(),
            mechanism: mechanism.name(),
            reason: refusal(*error),
        },
        unreadable => unreadable,
    })
}

/// Turns an error of the imap crate into one that names the server and the command.
fn protocol<W: Into<String>>(
    addr: &str,
    what: W,
) -> impl FnOnce(imap::Error) -> ImapError + use<W> {
    let (addr, what) = (addr.to_owned(), what.into());
    move |source| match unreadable(&source) {
        Some(detail) => ImapError::Unreadable { addr, what, detail },
        None => ImapError::Protocol {
            addr,
            what,
            error: Box::new(source),
        },
    }
}

/// What the server sent, when the crate's error says it could not read it: a line no IMAP parser
/// takes (which the crate reports as a `BYE` without text: a real BYE is untagged, and never
/// comes back as this error), a response it could not parse, or one it did not expect.
fn unreadable(e: &imap::Error) -> Option<String> {
    match e {
        imap::Error::Bye(bye)
            if bye.code.is_none() && bye.information == "no explanation given" =>
        {
            Some("a line that is not IMAP".into())
        }
        imap::Error::Parse(imap::error::ParseError::Invalid(_)) => {
            Some("a response that is not IMAP".into())
        }
        imap::Error::Unexpected(response) => Some(format!(
            "a response not expected there: {}",
            shortened(format!("{response:?}"))
        )),
        _ => None,
    }
}

/// The server's words in a message: at most 200 characters of them (a response may be megabytes).
fn shortened(text: String) -> String {
    const MOST: usize = 200;
    match text.char_indices().nth(MOST) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text,
    }
}

thread_local! {
    /// Set while this thread runs the imap crate under [`unwound`]: its panics are not printed.
    static IN_CRATE: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, a call into the imap crate, and turns a panic in it into [`ImapError::Unreadable`].
/// The crate panics on some responses it does not expect (see the module's documentation): what
/// the server sent, untrusted, which must end in an error for this account, never in a crash. A
/// panic hook, installed once in front of the one there was, keeps such panics off stderr (the
/// error says what happened); every other panic is printed as before. Whoever holds the crate's
/// connection must give it up after a panic: it is out of step, its state half updated.
///
/// This needs panics to unwind, which is the default of every profile in Cargo.toml.
fn unwound<R>(addr: &str, what: &str, f: impl FnOnce() -> R) -> Result<R, ImapError> {
    static QUIET: Once = Once::new();
    QUIET.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_CRATE.get() {
                previous(info);
            }
        }));
    });
    let outer = IN_CRATE.replace(true);
    let result = catch_unwind(AssertUnwindSafe(f));
    IN_CRATE.set(outer);
    result.map_err(|_| ImapError::Unreadable {
        addr: addr.to_owned(),
        what: what.to_owned(),
        detail: "a response the imap crate cannot handle there (such as an untagged NO or BAD)"
            .into(),
    })
}

/// `1:3,5,7:9` for UIDs 1, 2, 3, 5, 7, 8, 9 (sorted or not).
pub fn uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

fn connect_tcp(account: &Account) -> Result<TcpStream, ImapError> {
    let addr = account.addr();
    let connect_err = |error| ImapError::Connect {
        addr: addr.clone(),
        error,
    };
    let addrs = (account.host.as_str(), account.port)
        .to_socket_addrs()
        .map_err(connect_err)?;
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address for the host");
    for sockaddr in addrs {
        match TcpStream::connect_timeout(&sockaddr, account.timeout) {
            Ok(tcp) => {
                tcp.set_read_timeout(Some(account.timeout))
                    .and_then(|()| tcp.set_write_timeout(Some(account.timeout)))
                    .and_then(|()| tcp.set_nodelay(true))
                    .map_err(connect_err)?;
                return Ok(tcp);
            }
            Err(e) => last = e,
        }
    }
    Err(connect_err(last))
}

/// Upgrades a plain connection: reads the greeting, sends STARTTLS and waits for its OK. Done by hand
/// because the imap crate offers STARTTLS only with its own TLS back-ends. Lines are bounded, so a
/// server that never ends one cannot make this grow.
fn starttls(mut tcp: TcpStream, addr: &str) -> Result<TcpStream, ImapError> {
    const MAX_LINE: u64 = 16 * 1024;
    let fail = |reason: String| ImapError::Tls {
        addr: addr.to_owned(),
        reason: format!("STARTTLS: {reason}"),
    };
    let mut reader = BufReader::new(tcp.try_clone().map_err(|e| fail(e.to_string()))?);
    let read_line = |reader: &mut BufReader<TcpStream>| -> Result<String, ImapError> {
        let mut line = Vec::new();
        reader
            .by_ref()
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)
            .map_err(|e| fail(e.to_string()))?;
        if line.is_empty() {
            return Err(fail("the server closed the connection".into()));
        }
        Ok(String::from_utf8_lossy(&line).trim_end().to_owned())
    };
    let greeting = read_line(&mut reader)?;
    if !greeting.starts_with("* OK") {
        return Err(fail(format!("unexpected greeting {greeting:?}")));
    }
    tcp.write_all(b"s1 STARTTLS\r\n")
        .map_err(|e| fail(e.to_string()))?;
    loop {
        let line = read_line(&mut reader)?;
        if let Some(status) = line.strip_prefix("s1 ") {
            if status.starts_with("OK") {
                break;
            }
            return Err(fail(format!("refused by the server: {status}")));
        }
    }
    if !reader.buffer().is_empty() {
        return Err(fail("the server sent data before the TLS handshake".into()));
    }
    Ok(tcp)
}

fn tls_config(account: &Account) -> Result<Arc<ClientConfig>, ImapError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ImapError::Tls {
            addr: account.addr(),
            reason: e.to_string(),
        })?;
    let config = if account.danger_accept_invalid_certs {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        // The system's trust store; certificates it cannot parse are skipped, as every TLS client does.
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        let mut pinned = Vec::new();
        if let Some(path) = &account.ca_file {
            let ca_err = |reason: String| ImapError::CaFile {
                path: path.clone(),
                reason,
            };
            let certs = CertificateDer::pem_file_iter(path).map_err(|e| ca_err(e.to_string()))?;
            for cert in certs {
                let cert = cert.map_err(|e| ca_err(e.to_string()))?;
                roots.add(cert.clone()).map_err(|e| ca_err(e.to_string()))?;
                pinned.push(cert);
            }
            if pinned.is_empty() {
                return Err(ca_err("no PEM certificate in it".into()));
            }
        }
        let webpki =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| ImapError::Tls {
                    addr: account.addr(),
                    reason: e.to_string(),
                })?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedOrWebPki { webpki, pinned }))
            .with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// The usual WebPKI verification, plus certificate pinning through `ca_file`: a server certificate
/// that is byte for byte one of the `ca_file` certificates is accepted when it is valid now and names
/// the host, even where WebPKI says no because it is marked as a CA (`openssl req -x509` makes such
/// self-signed certificates) or signed by no CA at all.
#[derive(Debug)]
struct PinnedOrWebPki {
    webpki: Arc<rustls::client::WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl rustls::client::danger::ServerCertVerifier for PinnedOrWebPki {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::CertificateError as E;
        let verdict = self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match verdict {
            Err(rustls::Error::InvalidCertificate(
                E::Expired
                | E::ExpiredContext { .. }
                | E::NotValidYet
                | E::NotValidYetContext { .. }
                | E::BadEncoding,
            )) => verdict,
            // WebPKI checks the validity period before anything else that can fail here, so a
            // pinned certificate that got past it is current; its name is checked here.
            Err(_)
                if self
                    .pinned
                    .iter()
                    .any(|p| p.as_ref() == end_entity.as_ref()) =>
            {
                let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_name(&parsed, server_name)?;
                Ok(rustls::client::danger::ServerCertVerified::assertion())
            }
            other => other,
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

/// `danger_accept_invalid_certs`: checks the handshake signatures but not who signed the certificate.
/// The one such verifier: the database's `sslmode=prefer`/`require` use it too.
#[derive(Debug)]
pub struct AcceptAnyCertificate(pub Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_compress_runs() {
        assert_eq!(uid_set(&[1, 2, 3, 5, 9, 8, 7]), "1:3,5,7:9");
        assert_eq!(uid_set(&[4]), "4");
        assert_eq!(uid_set(&[]), "");
    }

    /// Reads `data` through `bounded` in reads of at most `chunk` bytes: the bytes read, or the
    /// refusal.
    fn read_through(bounded: &mut Bounded, mut data: &[u8], chunk: usize) -> Result<u64, Refused> {
        let mut buf = vec![0; chunk];
        let mut total = 0;
        loop {
            match bounded.read(&mut buf, |b| data.read(b)) {
                Ok(0) => return Ok(total),
                Ok(n) => total += n as u64,
                Err(e) => return Err(Refused::of(&e).expect("a refusal, not another error")),
            }
        }
    }

    #[test]
    fn literals_are_seen_across_reads_and_their_content_is_skipped() {
        let response = b"* 1 FETCH (UID 1 BODY[]<0> {16}\r\nab {999}\r\n{77}\r\n)\r\n\
                         * 2 FETCH (UID 2 BODY[] {0}\r\n)\r\n* OK {3+}\r\nxyz\r\na1 OK {x}\r\n";
        for chunk in 1..=response.len() {
            let mut literals = Literals::default();
            let mut seen = Vec::new();
            for part in response.chunks(chunk) {
                literals.feed(part, |_, n| {
                    seen.push(n);
                    true
                });
            }
            assert_eq!(seen, [16, 0, 3], "in reads of {chunk} bytes");
        }
    }

    #[test]
    fn a_literal_above_the_bound_is_refused_when_announced() {
        let mut bounded = Bounded::new();
        bounded.bounds.set(1 << 20, 1000);
        let response = b"* 1 FETCH (UID 1 BODY[]<0> {4000000000}\r\nxx";
        let refused = read_through(&mut bounded, response, 8192).unwrap_err();
        assert_eq!(refused.announced, Some(4_000_000_000));
        assert!(
            refused.to_string().contains("4000000000 bytes"),
            "{refused}"
        );
        // Out of step with the protocol now: nothing more is read.
        assert!(read_through(&mut bounded, b"a1 OK\r\n", 8192).is_err());
        // A literal the largest allows, but the response's budget cannot hold: refused too.
        let mut bounded = Bounded::new();
        bounded.bounds.set(100, 1000);
        let refused = read_through(&mut bounded, b"* 1 FETCH (BODY[] {500}\r\n", 8192);
        assert_eq!(refused.unwrap_err().announced, Some(500));
    }

    #[test]
    fn the_byte_budget_holds_when_an_announcement_is_hidden() {
        // `* OK {40}` is text to a parser, but a reader that takes it for a literal skips the real
        // announcement that follows; the budget does not care.
        let mut response = b"* OK {40}\r\n* 2 FETCH (UID 2 BODY[]<0> {1073741824}\r\n".to_vec();
        response.extend(std::iter::repeat_n(b'x', 100_000));
        let mut bounded = Bounded::new();
        bounded.bounds.set(2000, 1000);
        let refused = read_through(&mut bounded, &response, 300).unwrap_err();
        assert_eq!(refused.announced, None);
        assert_eq!(bounded.used, 2000, "not a byte beyond the budget");
    }

    #[test]
    fn each_write_starts_a_new_response_and_the_default_budget_is_generous() {
        let mut bounded = Bounded::new();
        bounded.bounds.set(50, 50);
        assert_eq!(read_through(&mut bounded, &[b'a'; 40], 16), Ok(40));
        bounded.wrote();
        assert_eq!(read_through(&mut bounded, &[b'a'; 40], 16), Ok(40));
        assert!(read_through(&mut bounded, &[b'a'; 40], 16).is_err());
        let mut bounded = Bounded::new();
        assert_eq!(
            read_through(&mut bounded, &[b'a'; 1 << 20], 8192),
            Ok(1 << 20)
        );
    }

    #[test]
    fn a_panic_in_the_crate_is_an_error_and_the_server_text_shown_is_cut() {
        let e = unwound("host:993", "SELECT INBOX", || -> u8 {
            unreachable!("as the imap crate does")
        })
        .unwrap_err();
        assert!(!e.is_transient());
        assert_eq!(
            e.to_string(),
            "host:993: SELECT INBOX: the server sent a response the imap crate cannot handle there \
             (such as an untagged NO or BAD); the connection was dropped"
        );
        // Panics elsewhere, and after, are no concern of it.
        assert!(!IN_CRATE.get());
        assert_eq!(unwound("host:993", "NOOP", || 7).unwrap(), 7);
        assert_eq!(shortened("é".repeat(1000)).chars().count(), 201);
        assert_eq!(shortened("short".into()), "short");
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s:?}"), "***");
    }
}
