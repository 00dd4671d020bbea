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

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
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
    #[error("{addr}: {what}: {error}")]
    Protocol {
        addr: String,
        what: String,
        error: Box<imap::Error>,
    },
}

impl ImapError {
    /// A dropped connection or a timeout after login, worth reconnecting for; a refused login or
    /// certificate is not.
    pub fn is_transient(&self) -> bool {
        match self {
            ImapError::Protocol { error, .. } => matches!(
                **error,
                imap::Error::Io(_) | imap::Error::ConnectionLost | imap::Error::Bye(_)
            ),
            _ => false,
        }
    }
}

/// The TLS stream, wrapped so that IDLE can adjust its read timeout, and the account's timeout comes
/// back afterwards.
pub struct Stream(StreamOwned<ClientConnection, TcpStream>, Duration);

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl imap::extensions::idle::SetReadTimeout for Stream {
    /// The imap crate clears the read timeout (`None`) when IDLE ends; every operation after that
    /// must still time out, so `None` means the account's timeout here.
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> imap::Result<()> {
        self.0
            .sock
            .set_read_timeout(Some(timeout.unwrap_or(self.1)))
            .map_err(imap::Error::Io)
    }
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
        let mut client = imap::Client::new(Stream(stream, account.timeout));
        if account.tls == Tls::Implicit {
            client
                .read_greeting()
                .map_err(protocol(&addr, "reading the greeting"))?;
        }
        let mut inner = match &account.oauth2 {
            None => client
                .login(&account.user, account.password.expose())
                .map_err(|(e, _)| ImapError::Login {
                    user: account.user.clone(),
                    addr: addr.clone(),
                    reason: refusal(e),
                })?,
            Some(tokens) => authenticate(client, account, tokens, &addr)?,
        };
        let caps = inner
            .capabilities()
            .map_err(protocol(&addr, "CAPABILITY"))?;
        let can_move = caps.has_str("MOVE");
        let uidplus = caps.has_str("UIDPLUS");
        drop(caps);
        Ok(Session {
            inner,
            addr,
            can_move,
            uidplus,
        })
    }

    fn err<W: Into<String>>(&self, what: W) -> impl FnOnce(imap::Error) -> ImapError + use<W> {
        protocol(&self.addr, what)
    }

    /// Opens `folder` read-write.
    pub fn select(&mut self, folder: &str) -> Result<FolderStatus, ImapError> {
        let mailbox = self
            .inner
            .select(folder)
            .map_err(protocol(&self.addr, format!("SELECT {folder}")))?;
        Ok(FolderStatus {
            uidvalidity: mailbox.uid_validity.unwrap_or(0),
            exists: mailbox.exists,
        })
    }

    /// UIDs above `after` in the selected folder, with their sizes, in UID order.
    pub fn sizes_after(&mut self, after: u32) -> Result<Vec<(u32, u64)>, ImapError> {
        let Some(from) = after.checked_add(1) else {
            return Ok(Vec::new());
        };
        let query = format!("{from}:*");
        let fetches = self
            .inner
            .uid_fetch(&query, "(UID RFC822.SIZE)")
            .map_err(protocol(
                &self.addr,
                format!("UID FETCH {query} (RFC822.SIZE)"),
            ))?;
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

    /// The full text of these messages, without setting `\Seen`. A message that vanished meanwhile
    /// (expunged by another client) is simply absent.
    pub fn bodies(&mut self, uids: &[u32]) -> Result<Vec<(u32, Vec<u8>)>, ImapError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let set = uid_set(uids);
        let fetches = self
            .inner
            .uid_fetch(&set, "(UID BODY.PEEK[])")
            .map_err(self.err("UID FETCH (BODY.PEEK[])"))?;
        let mut out: Vec<(u32, Vec<u8>)> = fetches
            .iter()
            .filter_map(|f| Some((f.uid?, f.body()?.to_vec())))
            .collect();
        out.sort_unstable_by_key(|(uid, _)| *uid);
        Ok(out)
    }

    /// Creates `folder` unless it exists. CREATE first: a server says NO to an existing folder
    /// (RFC 5530 `ALREADYEXISTS`, or plain words), which STATUS then confirms.
    pub fn ensure_folder(&mut self, folder: &str) -> Result<(), ImapError> {
        match self.inner.create(folder) {
            Ok(()) => Ok(()),
            Err(create) => match self.inner.status(folder, "(MESSAGES)") {
                Ok(_) => Ok(()),
                Err(_) => Err(protocol(&self.addr, format!("CREATE {folder}"))(create)),
            },
        }
    }

    /// Moves messages of the selected folder to `folder`: MOVE where the server has it, otherwise
    /// COPY, `\Deleted` and UID EXPUNGE (which touches only these UIDs). Without UIDPLUS the
    /// originals are left flagged `\Deleted`, never expunged with anything else.
    pub fn move_to(&mut self, uids: &[u32], folder: &str) -> Result<(), ImapError> {
        if uids.is_empty() {
            return Ok(());
        }
        let set = uid_set(uids);
        if self.can_move {
            return self
                .inner
                .uid_mv(&set, folder)
                .map_err(self.err(format!("UID MOVE to {folder}")));
        }
        self.inner
            .uid_copy(&set, folder)
            .map_err(self.err(format!("UID COPY to {folder}")))?;
        self.inner
            .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
            .map_err(self.err("UID STORE \\Deleted"))?;
        if self.uidplus {
            self.inner
                .uid_expunge(&set)
                .map_err(self.err("UID EXPUNGE"))?;
        }
        Ok(())
    }

    /// Sets `\Seen` on these messages.
    pub fn mark_seen(&mut self, uids: &[u32]) -> Result<(), ImapError> {
        if uids.is_empty() {
            return Ok(());
        }
        self.inner
            .uid_store(uid_set(uids), "+FLAGS.SILENT (\\Seen)")
            .map(drop)
            .map_err(self.err("UID STORE \\Seen"))
    }

    /// Waits (IMAP IDLE) until the selected folder changes or `timeout` passes.
    pub fn idle(&mut self, timeout: Duration) -> Result<(), ImapError> {
        let addr = self.addr.clone();
        let mut handle = self.inner.idle();
        handle.timeout(timeout).keepalive(false);
        handle
            .wait_while(imap::extensions::idle::stop_on_any)
            .map(drop)
            .map_err(protocol(&addr, "IDLE"))
    }

    /// Appends a message to `folder` (used by tests and benchmarks to fill a mailbox).
    pub fn append(&mut self, folder: &str, message: &[u8]) -> Result<(), ImapError> {
        let addr = self.addr.clone();
        self.inner
            .append(folder, message)
            .finish()
            .map(drop)
            .map_err(protocol(&addr, format!("APPEND to {folder}")))
    }

    /// Says goodbye; errors are of no interest by then.
    pub fn logout(mut self) {
        let _ = self.inner.logout();
    }
}

/// What the server said when it refused a login.
fn refusal(e: imap::Error) -> String {
    match e {
        imap::Error::No(no) => no.information,
        other => other.to_string(),
    }
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
            let caps = client
                .capabilities()
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
    let client = match client.authenticate(mechanism.name(), &sasl(&token)) {
        Ok(session) => return Ok(session),
        // A NO is the token refused (expired, revoked); anything else is no token matter.
        Err((imap::Error::No(_), client)) => client,
        Err((e, _)) => {
            return Err(protocol(addr, format!("AUTHENTICATE {}", mechanism.name()))(e));
        }
    };
    let token = tokens.refresh(&token).map_err(token_err)?;
    client
        .authenticate(mechanism.name(), &sasl(&token))
        .map_err(|(e, _)| ImapError::TokenRefused {
            user: account.user.clone(),
            addr: addr.to_owned(),
            mechanism: mechanism.name(),
            reason: refusal(e),
        })
}

/// Turns an error of the imap crate into one that names the server and the command.
fn protocol<W: Into<String>>(
    addr: &str,
    what: W,
) -> impl FnOnce(imap::Error) -> ImapError + use<W> {
    let (addr, what) = (addr.to_owned(), what.into());
    move |source| ImapError::Protocol {
        addr,
        what,
        error: Box::new(source),
    }
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
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

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
}
