//! `dmarc-warden fetch` and `login` with OAuth2, against real servers on 127.0.11.x: the
//! authorisation server of `tests/support/oauth2-server.mjs` (oauth2-mock-server under Node.js) and
//! Dovecots in OAuth2 mode (`scripts/dovecot-test` with `DOVECOT_TEST_OAUTH2_URL`: SASL XOAUTH2 and
//! OAUTHBEARER, tokens checked by introspection). The authorisation server and two Dovecots are
//! shared by the tests of this binary; the cases of refused tokens have a Dovecot of their own,
//! because a failed login slows down every later one from the same address. Every test has its own
//! clients and mailbox users, so they do not see each other's mail.

#[path = "support/oauth2.rs"]
#[allow(dead_code)]
mod oauth2;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::Stdio;
use std::sync::LazyLock;
use std::time::Duration;

use crate::cli::{Env, Out, s};
use crate::imap::dovecot::{Dovecot, PASSWORD, free_port_on};
use crate::imap::{
    KillOnDrop, fetch_env, generated, report_keys, sample_messages, stored, summary,
};
use oauth2::{AuthServer, Client};

/// Mailbox users of the shared Dovecots (each with the password PASSWORD for filling them).
const USERS: &str = "cc rt cmd login device refused ttl exp";

static AUTH: LazyLock<AuthServer> = LazyLock::new(|| AuthServer::start("127.0.11.1"));
static MAILBOXES: LazyLock<Dovecot> = LazyLock::new(|| oauth2_dovecot("127.0.11.2"));
static REFUSING: LazyLock<Dovecot> = LazyLock::new(|| oauth2_dovecot("127.0.11.3"));

fn oauth2_dovecot(host: &str) -> Dovecot {
    Dovecot::start_at(
        host,
        &[
            ("DOVECOT_TEST_OAUTH2_URL", &AUTH.introspection()),
            ("DOVECOT_TEST_USERS", USERS),
        ],
    )
    .stop_at_exit()
}

/// The environment of a fetch from `user`'s mailbox with OAuth2 (and no password).
fn oauth2_env(dovecot: &Dovecot, user: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = dovecot
        .env()
        .into_iter()
        .filter(|(k, _)| k != "DMARC_WARDEN_IMAP_PASSWORD" && k != "DMARC_WARDEN_IMAP_USER")
        .collect();
    env.push(("DMARC_WARDEN_IMAP_USER".into(), user.into()));
    env.push(("DMARC_WARDEN_IMAP_AUTH".into(), "oauth2".into()));
    env
}

fn secret_file(dir: &Path, name: &str, text: &str, mode: u32) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("{text}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    s(&path).to_owned()
}

fn mode(path: &str) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn dovecot_log(dovecot: &Dovecot) -> String {
    std::fs::read_to_string(dovecot.dir.path().join("dovecot.log")).unwrap_or_default()
}

/// Exit status 2 and one line on stderr, which says `expected` (once) and none of `secrets`.
fn assert_one_line_failure(out: &Out, expected: &str, secrets: &[&str]) {
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert_eq!(
        out.stderr.matches(expected).count(),
        1,
        "{expected:?} once in {}",
        out.stderr
    );
    for secret in secrets {
        assert!(!out.stderr.contains(secret), "{secret:?} in {}", out.stderr);
    }
}

#[test]
fn client_credentials_fetch_the_sample_reports_as_ingest_stores_them() {
    let (auth, dovecot) = (&*AUTH, &*MAILBOXES);
    let mut app = Client::new("cc-app", "cc");
    app.secret = Some("cc-secret-Zq81".into());
    app.app = true;
    auth.register(&app);
    let files = tempfile::tempdir().unwrap();
    let messages = sample_messages(files.path());
    dovecot.append_as("cc", "INBOX", &messages);
    let private = tempfile::tempdir().unwrap();
    let secret = secret_file(private.path(), "client-secret", "cc-secret-Zq81", 0o600);

    let by_files = Env::new();
    let ingested = by_files.run(&["ingest", s(files.path())]);
    let env = Env::new();
    let token_url = auth.url("/contoso/oauth2/v2.0/token");
    let out = fetch_env(
        &env,
        &[],
        &oauth2_env(dovecot, "cc"),
        &[
            ("DMARC_WARDEN_OAUTH2_PROVIDER", "microsoft"),
            ("DMARC_WARDEN_OAUTH2_TENANT", "contoso"),
            ("DMARC_WARDEN_OAUTH2_TOKEN_URL", &token_url),
            ("DMARC_WARDEN_OAUTH2_CLIENT_ID", "cc-app"),
            ("DMARC_WARDEN_OAUTH2_CLIENT_SECRET_FILE", &secret),
        ],
    );
    assert_eq!(out.code, ingested.code, "{}", out.stderr);
    assert_eq!(out.code, 1, "sample-reports/bad/ must be rejected");
    assert_eq!(report_keys(&env), report_keys(&by_files));
    assert!(!out.stderr.contains("cc-secret-Zq81"), "{}", out.stderr);
    assert_eq!(auth.client("cc-app").tokens, 1);
    // Dovecot offers both mechanisms: the standard one is chosen.
    assert!(
        dovecot_log(dovecot).contains("user=<cc>, method=OAUTHBEARER"),
        "{}",
        dovecot_log(dovecot)
    );

    // The same account from a config file, with XOAUTH2 asked for: nothing new, one token more.
    let config = private.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[[account]]\nname = \"m365\"\nhost = \"{}\"\nport = {}\nuser = \"cc\"\nca_file = \"{}\"\n\
             auth = \"oauth2\"\noauth2_provider = \"microsoft\"\noauth2_tenant = \"contoso\"\n\
             oauth2_token_url = \"{token_url}\"\noauth2_client_id = \"cc-app\"\n\
             oauth2_client_secret_file = \"{secret}\"\noauth2_mechanism = \"xoauth2\"\n",
            dovecot.host,
            dovecot.imaps,
            s(&dovecot.ca()),
        ),
    )
    .unwrap();
    let out = env.run_with_env(
        &["fetch", "--account", "m365"],
        &[("DMARC_WARDEN_CONFIG", s(&config))],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(summary(&out)[..2], [0, 0], "{}", out.stdout);
    assert_eq!(auth.client("cc-app").tokens, 2);
    assert!(dovecot_log(dovecot).contains("user=<cc>, method=XOAUTH2"));
}

#[test]
fn a_refresh_token_is_rotated_and_the_new_one_written_back() {
    let (auth, dovecot) = (&*AUTH, &*MAILBOXES);
    let mut public = Client::new("rt-app", "rt");
    public.refresh_token = Some("rt-first-token".into());
    auth.register(&public);
    let (messages, _) = generated(3, 31);
    dovecot.append_as("rt", "INBOX", &messages);
    let private = tempfile::tempdir().unwrap();
    let file = secret_file(private.path(), "refresh-token", "rt-first-token", 0o644);
    let env = Env::new();
    let settings = [
        ("DMARC_WARDEN_OAUTH2_TOKEN_URL", auth.url("/token")),
        ("DMARC_WARDEN_OAUTH2_CLIENT_ID", "rt-app".into()),
        ("DMARC_WARDEN_OAUTH2_REFRESH_TOKEN_FILE", file.clone()),
    ];
    let extra: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let out = fetch_env(&env, &[], &oauth2_env(dovecot, "rt"), &extra);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(stored(&env).0, 3);
    // The file was readable by others: said once, before the run.
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("refresh token file") && out.stderr.contains("chmod 600"),
        "{}",
        out.stderr
    );
    let rotated = auth.client("rt-app").refresh_token.unwrap();
    assert_ne!(rotated, "rt-first-token");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!("{rotated}\n")
    );
    assert_eq!(mode(&file), 0o600, "written back private");
    assert_eq!(std::fs::read_dir(private.path()).unwrap().count(), 1);

    // The token written back is the one that works next time.
    let out = fetch_env(&env, &[], &oauth2_env(dovecot, "rt"), &extra);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "");
    assert_ne!(
        std::fs::read_to_string(&file).unwrap(),
        format!("{rotated}\n")
    );

    // A void refresh token: one line that says what to do.
    secret_file(private.path(), "refresh-token", &rotated, 0o600);
    let out = fetch_env(&env, &[], &oauth2_env(dovecot, "rt"), &extra);
    assert_one_line_failure(&out, "invalid_grant", &[&rotated]);
    assert!(out.stderr.contains("dmarc-warden login"), "{}", out.stderr);
}

#[test]
fn a_token_command_provides_the_token() {
    let (auth, dovecot) = (&*AUTH, &*MAILBOXES);
    let mut app = Client::new("cmd-app", "cmd");
    app.secret = Some("cmd-secret".into());
    app.app = true;
    auth.register(&app);
    let answer = ureq::post(&auth.url("/token"))
        .send_form([
            ("grant_type", "client_credentials"),
            ("client_id", "cmd-app"),
            ("client_secret", "cmd-secret"),
        ])
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    let token = serde_json::from_str::<serde_json::Value>(&answer).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let private = tempfile::tempdir().unwrap();
    let file = secret_file(private.path(), "token", &token, 0o600);
    let (messages, _) = generated(2, 41);
    dovecot.append_as("cmd", "INBOX", &messages);
    let env = Env::new();
    let command = format!("cat {file}");
    let out = fetch_env(
        &env,
        &[],
        &oauth2_env(dovecot, "cmd"),
        &[("DMARC_WARDEN_OAUTH2_TOKEN_COMMAND", &command)],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(stored(&env).0, 2);
    assert_eq!(out.stderr, "");

    let out = fetch_env(
        &env,
        &[],
        &oauth2_env(dovecot, "cmd"),
        &[("DMARC_WARDEN_OAUTH2_TOKEN_COMMAND", "echo; exit 3")],
    );
    assert_one_line_failure(&out, "DMARC_WARDEN_OAUTH2_TOKEN_COMMAND", &[&token]);
}

#[test]
fn token_endpoint_and_login_failures_exit_2_with_one_line_and_no_secret() {
    let (auth, dovecot) = (&*AUTH, &*REFUSING);
    let mut app = Client::new("bad-app", "refused");
    app.secret = Some("right-secret-4x".into());
    app.app = true;
    auth.register(&app);
    let mut refused = Client::new("refused-app", "refused");
    refused.secret = Some("refused-secret-9".into());
    refused.app = true;
    refused.refuse = true;
    auth.register(&refused);
    let closed = format!("http://127.0.11.1:{}/token", free_port_on("127.0.11.1"));
    let (token, tenant_token, missing) = (
        auth.url("/token"),
        auth.url("/nowhere/oauth2/v2.0/token"),
        auth.url("/no/such/token"),
    );
    let secrets = ["right-secret-4x", "wrong-secret-7y", "refused-secret-9"];
    let cases: [(&[(&str, &str)], &str); 6] = [
        (
            &[("DMARC_WARDEN_OAUTH2_CLIENT_SECRET", "wrong-secret-7y")],
            "refused the client credentials request: invalid_client: AADSTS7000215",
        ),
        (
            &[
                ("DMARC_WARDEN_OAUTH2_PROVIDER", "microsoft"),
                ("DMARC_WARDEN_OAUTH2_TENANT", "nowhere"),
                ("DMARC_WARDEN_OAUTH2_TOKEN_URL", &tenant_token),
            ],
            "Tenant 'nowhere' not found",
        ),
        (
            &[("DMARC_WARDEN_OAUTH2_TOKEN_URL", &missing)],
            "answered HTTP 404, not a token",
        ),
        (
            &[("DMARC_WARDEN_OAUTH2_TOKEN_URL", &closed)],
            "cannot reach the token endpoint",
        ),
        (
            &[
                ("DMARC_WARDEN_OAUTH2_CLIENT_ID", "refused-app"),
                ("DMARC_WARDEN_OAUTH2_CLIENT_SECRET", "refused-secret-9"),
            ],
            "failed: the server refused a new token too",
        ),
        (
            &[("DMARC_WARDEN_OAUTH2_CLIENT_SECRET", "")],
            "auth = oauth2 needs a way to get tokens",
        ),
    ];
    let env = Env::new();
    let mut base = oauth2_env(dovecot, "refused");
    base.extend([
        ("DMARC_WARDEN_OAUTH2_TOKEN_URL".into(), token),
        ("DMARC_WARDEN_OAUTH2_CLIENT_ID".into(), "bad-app".into()),
        (
            "DMARC_WARDEN_OAUTH2_CLIENT_SECRET".into(),
            "right-secret-4x".into(),
        ),
    ]);
    for (extra, expected) in cases {
        let out = fetch_env(&env, &[], &base, extra);
        assert_one_line_failure(&out, expected, &secrets);
    }
    // The refused token was replaced once, and the new one refused too.
    let refused = auth.client("refused-app");
    assert_eq!((refused.tokens, refused.refused), (2, 2));
    // The right secret works (the server did not lock the user out).
    let out = fetch_env(&env, &[], &base, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// A `--watch` fetch that loses its connection (the server restarts) logs in again: with a new
/// token when the old one has expired by its lifetime (without trying it), and with a new token
/// after the server refused the cached one (revoked before its time).
#[test]
fn tokens_are_renewed_when_they_expire_or_are_refused_mid_run() {
    let auth = &*AUTH;
    let dovecot = Dovecot::start_at(
        "127.0.11.5",
        &[
            ("DOVECOT_TEST_OAUTH2_URL", &auth.introspection()),
            ("DOVECOT_TEST_USERS", USERS),
        ],
    );
    // ttl-app's tokens live 1 s: stale by the time the fetch reconnects (it waits 1 s first).
    for (id, user, ttl, refused) in [("ttl-app", "ttl", 1, 0), ("exp-app", "exp", 3600, 1)] {
        let mut app = Client::new(id, user);
        app.secret = Some(format!("{id}-secret"));
        app.app = true;
        app.ttl = ttl;
        auth.register(&app);
        let env = Env::new();
        let mut command = env.command(&["fetch", "--watch"]);
        command
            .envs(oauth2_env(&dovecot, user))
            .envs([
                ("DMARC_WARDEN_OAUTH2_TOKEN_URL", auth.url("/token")),
                ("DMARC_WARDEN_OAUTH2_CLIENT_ID", id.into()),
                ("DMARC_WARDEN_OAUTH2_CLIENT_SECRET", format!("{id}-secret")),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut watcher = KillOnDrop(Some(command.spawn().unwrap()));
        let (messages, _) = generated(4, 51);
        dovecot.append_as(user, "INBOX", &messages[..2]);
        watcher.wait_for_reports(&env, 2, Duration::from_millis(100));
        // Either way the old token is void at the server now.
        auth.expire(id);
        dovecot.restart(Duration::from_millis(500));
        dovecot.append_as(user, "INBOX", &messages[2..]);
        watcher.wait_for_reports(&env, 4, Duration::from_millis(100));
        let out = watcher.finish();
        assert!(
            out.stderr.contains("reconnecting in"),
            "{id}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("secret"), "{id}: {}", out.stderr);
        let issued = auth.client(id);
        assert_eq!((issued.tokens, issued.refused), (2, refused), "{id}");
    }
}

#[test]
fn a_self_signed_ca_certificate_given_as_ca_file_is_pinned_and_names_still_checked() {
    // `openssl req -x509` marks the certificate CA:TRUE, which WebPKI refuses for a server.
    let dovecot = Dovecot::start_at(
        "127.0.11.4",
        &[
            ("DOVECOT_TEST_SELF_SIGNED", "1"),
            ("DOVECOT_TEST_ADDRESS", "127.0.11.4 127.0.11.7"),
        ],
    );
    let pem = std::fs::read_to_string(dovecot.ca()).unwrap();
    assert_eq!(
        pem,
        std::fs::read_to_string(dovecot.dir.path().join("server.pem")).unwrap()
    );
    let (messages, _) = generated(2, 61);
    dovecot.append("INBOX", &messages);
    let env = Env::new();
    let out = fetch_env(&env, &[], &dovecot.env(), &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(stored(&env).0, 2);

    // The same server and certificate at an address the certificate does not name.
    let out = fetch_env(
        &env,
        &[],
        &dovecot.env(),
        &[("DMARC_WARDEN_IMAP_HOST", "127.0.11.7")],
    );
    assert_one_line_failure(&out, "not valid for name", &[PASSWORD]);
    // Another certificate is no pin.
    let other = MAILBOXES.ca();
    let out = fetch_env(
        &env,
        &[],
        &dovecot.env(),
        &[("DMARC_WARDEN_IMAP_CA_FILE", s(&other))],
    );
    assert_one_line_failure(&out, "TLS with 127.0.11.4:", &[PASSWORD]);
    // A server that offers no OAuth2 mechanism (this one has passwords only) is told apart.
    let out = fetch_env(
        &env,
        &[],
        &dovecot.env(),
        &[
            ("DMARC_WARDEN_IMAP_AUTH", "oauth2"),
            ("DMARC_WARDEN_OAUTH2_TOKEN_COMMAND", "echo some-token-5"),
        ],
    );
    assert_one_line_failure(
        &out,
        "offers neither AUTH=OAUTHBEARER nor AUTH=XOAUTH2",
        &["some-token-5"],
    );
}

#[test]
fn login_stores_a_refresh_token_that_fetch_then_uses() {
    let (auth, dovecot) = (&*AUTH, &*MAILBOXES);
    let mut app = Client::new("login-app", "login");
    app.secret = Some("login-secret-3".into());
    auth.register(&app);
    let private = tempfile::tempdir().unwrap();
    let file = private.path().join("refresh-token");
    let env = Env::new();
    let settings = [
        (
            "DMARC_WARDEN_CONFIG",
            s(&dovecot.dir.path().join("empty.toml")).to_owned(),
        ),
        ("DMARC_WARDEN_IMAP_USER", "login".into()),
        ("DMARC_WARDEN_OAUTH2_PROVIDER", "generic".into()),
        ("DMARC_WARDEN_OAUTH2_TOKEN_URL", auth.url("/token")),
        ("DMARC_WARDEN_OAUTH2_AUTH_URL", auth.url("/authorize")),
        ("DMARC_WARDEN_OAUTH2_CLIENT_ID", "login-app".into()),
        ("DMARC_WARDEN_OAUTH2_CLIENT_SECRET", "login-secret-3".into()),
        (
            "DMARC_WARDEN_OAUTH2_REFRESH_TOKEN_FILE",
            s(&file).to_owned(),
        ),
    ];
    let mut command = env.command(&["login", "--wait", "60"]);
    command
        .envs(settings.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = KillOnDrop(Some(command.spawn().unwrap()));
    let mut stderr = BufReader::new(child.0.as_mut().unwrap().stderr.take().unwrap());
    let mut said = String::new();
    let url = read_until(&mut stderr, &mut said, "http://");
    assert!(url.starts_with(&auth.url("/authorize?")), "{url}");
    for part in [
        "response_type=code",
        "client_id=login-app",
        "code_challenge_method=S256",
        "state=",
        "login_hint=login",
        "redirect_uri=http%3A%2F%2F127.0.0.1%3A",
    ] {
        assert!(url.contains(part), "{part} not in {url}");
    }
    // The "browser": the authorisation server sends it straight back to login's loopback address.
    let page = ureq::get(&url)
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    assert!(page.contains("signed in"), "{page}");
    stderr.read_to_string(&mut said).unwrap();
    let status = child.0.take().unwrap().wait().unwrap();
    assert!(status.success(), "{said}");
    assert!(said.contains("refresh token stored in"), "{said}");
    assert!(!said.contains("login-secret-3"), "{said}");
    let stored_token = std::fs::read_to_string(&file).unwrap();
    let issued = auth.client("login-app").refresh_token.unwrap();
    assert_eq!(stored_token, format!("{issued}\n"));
    assert_eq!(mode(s(&file)), 0o600);

    let (messages, _) = generated(1, 71);
    dovecot.append_as("login", "INBOX", &messages);
    let mut fetch_settings = oauth2_env(dovecot, "login");
    fetch_settings.extend(settings.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    let out = fetch_env(&env, &[], &fetch_settings, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(stored(&env).0, 1);

    // A wrong client secret: the code cannot be exchanged; one line, exit 2, the file untouched.
    let before = std::fs::read_to_string(&file).unwrap();
    let mut command = env.command(&["login", "--wait", "60"]);
    command
        .envs(settings.iter().map(|(k, v)| (k, v)))
        .env("DMARC_WARDEN_OAUTH2_CLIENT_SECRET", "wrong-login-secret")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = KillOnDrop(Some(command.spawn().unwrap()));
    let mut stderr = BufReader::new(child.0.as_mut().unwrap().stderr.take().unwrap());
    let mut said = String::new();
    let url = read_until(&mut stderr, &mut said, "http://");
    ureq::get(&url).call().unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let status = child.0.take().unwrap().wait().unwrap();
    assert_eq!(status.code(), Some(2), "{said}{rest}");
    let error: Vec<&str> = rest
        .lines()
        .filter(|l| l.starts_with("dmarc-warden:"))
        .collect();
    assert_eq!(error.len(), 1, "{rest}");
    assert!(
        error[0].contains("refused the authorisation code request: invalid_client"),
        "{rest}"
    );
    assert!(!rest.contains("wrong-login-secret"), "{rest}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);

    // Nowhere to store the token: said before anything else happens.
    let out = env.run_with_env(
        &["login"],
        &settings
            .iter()
            .filter(|(k, _)| *k != "DMARC_WARDEN_OAUTH2_REFRESH_TOKEN_FILE")
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>(),
    );
    assert_one_line_failure(
        &out,
        "DMARC_WARDEN_OAUTH2_REFRESH_TOKEN_FILE",
        &["login-secret-3"],
    );
}

/// Reads lines of `login`'s stderr into `said` until one starts with `start`; returns that line.
fn read_until(stderr: &mut impl BufRead, said: &mut String, start: &str) -> String {
    loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "login ended before saying {start:?}: {said}"
        );
        said.push_str(&line);
        if line.starts_with(start) {
            return line.trim().to_owned();
        }
    }
}

#[test]
fn login_by_device_code_stores_a_refresh_token_that_fetch_then_uses() {
    let (auth, dovecot) = (&*AUTH, &*MAILBOXES);
    auth.register(&Client::new("device-app", "device"));
    let private = tempfile::tempdir().unwrap();
    let file = private.path().join("refresh-token");
    let env = Env::new();
    let settings = [
        (
            "DMARC_WARDEN_CONFIG",
            s(&dovecot.dir.path().join("empty.toml")).to_owned(),
        ),
        ("DMARC_WARDEN_IMAP_USER", "device".into()),
        ("DMARC_WARDEN_OAUTH2_PROVIDER", "microsoft".into()),
        ("DMARC_WARDEN_OAUTH2_TENANT", "contoso".into()),
        (
            "DMARC_WARDEN_OAUTH2_TOKEN_URL",
            auth.url("/contoso/oauth2/v2.0/token"),
        ),
        (
            "DMARC_WARDEN_OAUTH2_DEVICE_URL",
            auth.url("/contoso/oauth2/v2.0/devicecode"),
        ),
        ("DMARC_WARDEN_OAUTH2_CLIENT_ID", "device-app".into()),
        (
            "DMARC_WARDEN_OAUTH2_REFRESH_TOKEN_FILE",
            s(&file).to_owned(),
        ),
    ];
    let mut command = env.command(&["login", "--device", "--wait", "60"]);
    command
        .envs(settings.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = KillOnDrop(Some(command.spawn().unwrap()));
    let mut stderr = BufReader::new(child.0.as_mut().unwrap().stderr.take().unwrap());
    let mut said = String::new();
    let first = read_until(&mut stderr, &mut said, "On any device, open ");
    assert!(
        first.contains(&format!("open {} and enter the code ", auth.url("/device"))),
        "{first}"
    );
    let complete = read_until(&mut stderr, &mut said, "(or open ");
    let url = complete
        .trim_start_matches("(or open ")
        .trim_end_matches(')');
    // The user, elsewhere, signs in: login's polling then gets the tokens.
    ureq::get(url).call().unwrap();
    stderr.read_to_string(&mut said).unwrap();
    let status = child.0.take().unwrap().wait().unwrap();
    assert!(status.success(), "{said}");
    let issued = auth.client("device-app").refresh_token.unwrap();
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!("{issued}\n")
    );
    assert_eq!(mode(s(&file)), 0o600);

    let (messages, _) = generated(1, 81);
    dovecot.append_as("device", "INBOX", &messages);
    let mut fetch_settings = oauth2_env(dovecot, "device");
    fetch_settings.extend(settings.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    let out = fetch_env(&env, &[], &fetch_settings, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(stored(&env).0, 1);
}

#[test]
fn help_and_errors_never_show_the_client_secret() {
    let env = Env::new();
    let out = env.run_with_env(
        &["fetch", "--help"],
        &[
            ("DMARC_WARDEN_OAUTH2_CLIENT_SECRET", "help-secret-1"),
            (
                "DMARC_WARDEN_OAUTH2_TOKEN_COMMAND",
                "get-token --key help-key-2",
            ),
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("DMARC_WARDEN_OAUTH2_TOKEN_COMMAND"));
    assert!(
        out.stdout
            .contains("DMARC_WARDEN_OAUTH2_CLIENT_SECRET_FILE")
    );
    assert!(!out.stdout.contains("help-secret-1") && !out.stdout.contains("help-key-2"));
    let out = env.run_with_env(&["login", "--help"], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("DMARC_WARDEN_OAUTH2_REFRESH_TOKEN_FILE")
    );
}
