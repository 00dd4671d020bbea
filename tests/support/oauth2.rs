//! The tests' OAuth2 authorisation server: `tests/support/oauth2-server.mjs` (the npm package
//! oauth2-mock-server, which `scripts/test` installs into target/oauth2-test-server, wrapped to
//! check client secrets and refresh tokens and to introspect tokens) run with the machine's
//! Node.js on a loopback address. It ends when the test process does (its standard input closes).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use serde_json::{Value, json};

pub struct AuthServer {
    pub host: String,
    pub port: u16,
    _child: Child,
    _stdin: ChildStdin,
}

fn module() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/oauth2-test-server/node_modules/oauth2-mock-server/dist/index.mjs")
}

/// A client the server knows.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub secret: Option<String>,
    /// The mailbox user its tokens are for.
    pub user: String,
    pub refresh_token: Option<String>,
    /// Lifetime announced with its tokens, in seconds.
    pub ttl: u64,
    /// May use the client-credentials grant.
    pub app: bool,
    /// Its tokens are never active.
    pub refuse: bool,
}

impl Client {
    pub fn new(id: &str, user: &str) -> Client {
        Client {
            id: id.into(),
            secret: None,
            user: user.into(),
            refresh_token: None,
            ttl: 3600,
            app: false,
            refuse: false,
        }
    }
}

/// A client's account at the server.
#[derive(Debug, PartialEq)]
pub struct Issued {
    /// Access tokens issued.
    pub tokens: u64,
    /// Introspections of its tokens answered "inactive" (a token refused).
    pub refused: u64,
    /// The refresh token now valid.
    pub refresh_token: Option<String>,
}

impl AuthServer {
    pub fn start(host: &str) -> AuthServer {
        let module = module();
        assert!(
            module.exists(),
            "{} is missing: scripts/test installs oauth2-mock-server 8.2.3 there \
             (npm install --prefix target/oauth2-test-server oauth2-mock-server@8.2.3)",
            module.display()
        );
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/oauth2-server.mjs");
        let mut child = Command::new("node")
            .arg(&script)
            .arg(host)
            .arg(&module)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run node (scripts/test needs Node.js for the OAuth2 tests)");
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the OAuth2 test server did not start: {line:?}"));
        AuthServer {
            host: host.into(),
            port,
            _child: child,
            _stdin: stdin,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}:{}{path}", self.host, self.port)
    }

    /// The introspection endpoint, for Dovecot.
    pub fn introspection(&self) -> String {
        self.url("/introspect")
    }

    pub fn register(&self, c: &Client) {
        let body = json!({
            "client_id": c.id,
            "secret": c.secret,
            "user": c.user,
            "refresh_token": c.refresh_token,
            "ttl": c.ttl,
            "app": c.app,
            "refuse": c.refuse,
        });
        ureq::post(&self.url("/test/clients"))
            .send_json_text(&body.to_string())
            .unwrap();
    }

    /// What the server did for a client.
    pub fn client(&self, id: &str) -> Issued {
        let text = ureq::get(&self.url(&format!("/test/clients/{id}")))
            .call()
            .unwrap()
            .into_body()
            .read_to_string()
            .unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        Issued {
            tokens: v["issued"].as_u64().unwrap(),
            refused: v["refused"].as_u64().unwrap(),
            refresh_token: v["refresh_token"].as_str().map(str::to_owned),
        }
    }

    /// Makes every token issued to the client so far inactive, as an expiry or a revocation does.
    pub fn expire(&self, id: &str) {
        ureq::post(&self.url("/test/expire"))
            .send_json_text(&json!({ "client_id": id }).to_string())
            .unwrap();
    }
}

/// `send_json` without ureq's `json` feature.
trait SendJsonText {
    fn send_json_text(self, body: &str) -> Result<ureq::http::Response<ureq::Body>, ureq::Error>;
}

impl SendJsonText for ureq::RequestBuilder<ureq::typestate::WithBody> {
    fn send_json_text(self, body: &str) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        self.header("content-type", "application/json").send(body)
    }
}
