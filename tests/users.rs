//! Dashboard users with scopes, against the real `serve` on 127.0.14.x: an htpasswd file written by
//! Debian's `htpasswd -B` (apache2-utils) and a config file's `[web.scopes]`. A scoped user sees only
//! their domains in every page, API answer and `/metrics` (another domain's page is 404), a `*`
//! user sees everything, no or a wrong password is 401, a user without a scope sees nothing (and
//! `serve` says so at start), and both files are read again when they change. `report --user`
//! writes what that user sees.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cli::{Env, samples};
use crate::web::{Tied, get, start_tied_saying, write_reports};

/// Passwords of the users the fixture's htpasswd file holds.
pub(crate) const USERS: [(&str, &str); 4] = [
    ("alice", "alice's secret"),
    ("edu", "edu-pw"),
    ("admin", "admin:pw with colon"),
    ("nobody", "nobody-pw"),
];

const SCOPES: &str = r#"
[web.scopes]
alice = ["example.org", "*.example.org"]
edu = ["EXAMPLE.EDU"]
admin = ["example.org", "*"]
"#;

/// A database of the web tests' generated reports (example.com, example.edu) and the samples
/// (example.org, example.net; TLS reports for mail.example.org), with a config and an htpasswd file.
pub(crate) struct Team {
    pub(crate) env: Env,
    pub(crate) config: PathBuf,
    pub(crate) htpasswd: PathBuf,
}

pub(crate) static TEAM: LazyLock<Team> = LazyLock::new(|| {
    let env = Env::new();
    let generated = env.dir.path().join("generated");
    write_reports(&generated);
    let out = env.run(&[
        "ingest",
        generated.to_str().unwrap(),
        samples().to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(out.code, 0, "ingest: {}", out.stderr);
    // What a `check` run would have stored (its own tests run it against real DNS servers).
    {
        use dmarc_warden::analyse::check::{Check, DomainCheck, Finding, Severity};
        let finding = |check, severity, message: &str| Finding {
            check,
            severity,
            message: message.into(),
            fix: None,
        };
        dmarc_warden::store::Store::open(&env.db())
            .unwrap()
            .write(|tx| {
                tx.save_check(&DomainCheck {
                    domain: "example.com".into(),
                    checked_at: dmarc_warden::model::Timestamp(1_793_491_200),
                    published: Default::default(),
                    findings: vec![
                        finding(Check::Dmarc, Severity::Ok, "p=none published"),
                        finding(Check::Spf, Severity::Warning, "SPF ends with ~all"),
                        finding(Check::MxTls, Severity::Warning, "an MX without STARTTLS"),
                    ],
                })
            })
            .unwrap();
    }
    let config = env.dir.path().join("config.toml");
    std::fs::write(&config, SCOPES).unwrap();
    let htpasswd = env.dir.path().join("htpasswd");
    for (user, password) in USERS {
        htpasswd_set(&htpasswd, user, password);
    }
    Team {
        env,
        config,
        htpasswd,
    }
});

/// `htpasswd -B` (bcrypt), as an administrator adds or changes a user.
pub(crate) fn htpasswd_set(file: &Path, user: &str, password: &str) {
    let tool = Path::new("/usr/bin/htpasswd");
    assert!(
        tool.exists(),
        "htpasswd is not installed (Debian's apache2-utils): run scripts/test, which installs it"
    );
    let mut command = Command::new(tool);
    command.arg("-B").arg("-b");
    if !file.exists() {
        command.arg("-c");
    }
    let out = command.arg(file).arg(user).arg(password).output().unwrap();
    assert!(out.status.success(), "htpasswd: {out:?}");
}

pub(crate) fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// `serve` with these users and scopes on `listen`; returns it, its base URL and what it said
/// before it served.
pub(crate) fn serve_users(
    db: &Path,
    listen: &str,
    htpasswd: &Path,
    config: &Path,
) -> (Tied, String, String) {
    let (tied, line, said) = start_tied_saying(
        Path::new(env!("CARGO_BIN_EXE_dmarc-warden")),
        &["--db", db.to_str().unwrap(), "serve", "--listen", listen],
        &[
            ("DMARC_WARDEN_WEB_HTPASSWD", htpasswd.to_str().unwrap()),
            ("DMARC_WARDEN_CONFIG", config.to_str().unwrap()),
        ],
        "serving http://",
    );
    (tied, crate::web::serving_address(&line), said)
}

fn json(base: &str, path: &str, auth: &str) -> Value {
    let (status, _, body) = get(base, path, Some(auth));
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// The values of `key` in a JSON array of objects.
fn values(v: &Value, key: &str) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|row| row[key].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The `domain` labels of a `/metrics` answer.
pub(crate) fn metric_domains(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once("domain=\"")?.1.split_once('"'))
        .map(|(d, _)| d.to_owned())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn a_scoped_user_sees_only_their_domains_everywhere() {
    let t = &*TEAM;
    let (_server, base, said) = serve_users(&t.env.db(), "127.0.14.1:0", &t.htpasswd, &t.config);
    assert!(
        said.contains("web user nobody has no domains in [web.scopes]")
            && said.contains("nobody sees nothing"),
        "serve did not say that nobody sees nothing: {said}"
    );
    let alice = basic("alice", USERS[0].1);

    // Pages: the overview lists only their domains; another domain's pages are 404.
    let (status, _, overview) = get(&base, "/", Some(&alice));
    assert_eq!(status, 200);
    assert!(overview.contains("example.org"), "{overview}");
    for other in ["example.com", "example.edu", "example.net"] {
        assert!(
            !overview.contains(&format!(">{other}<")),
            "{other} shown to alice"
        );
    }
    assert_eq!(get(&base, "/domain/example.org", Some(&alice)).0, 200);
    for path in [
        "/domain/example.com",
        "/domain/EXAMPLE.COM",
        "/domain/example.com/sender/SendGrid",
        "/domain/example.net?days=0",
        "/?domain=example.com",
    ] {
        let (status, _, body) = get(&base, path, Some(&alice));
        if path.starts_with("/?") {
            // The overview filtered to a domain alice does not see: empty, like one not stored.
            assert_eq!(status, 200, "{path}");
            assert!(!body.contains(">example.com<"), "{path}");
        } else {
            assert_eq!(status, 404, "{path}: {body}");
            // Answered as a domain that is not stored: nothing tells that it is.
            let (_, _, missing) = get(&base, "/domain/not-stored.example", Some(&alice));
            assert_eq!(body, missing, "{path}");
        }
    }

    // The JSON API: only their rows, in every listing and judgement.
    let mine = set(&["example.org"]);
    assert_eq!(values(&json(&base, "/api/domains", &alice), "domain"), mine);
    assert_eq!(values(&json(&base, "/api/sources", &alice), "domain"), mine);
    assert_eq!(values(&json(&base, "/api/reports", &alice), "domain"), mine);
    assert_eq!(values(&json(&base, "/api/senders", &alice), "domain"), mine);
    assert_eq!(values(&json(&base, "/api/advise", &alice), "domain"), mine);
    assert_eq!(
        values(&json(&base, "/api/failures", &alice), "reported_domain"),
        mine
    );
    // Subdomains through `*.example.org`.
    assert_eq!(
        values(&json(&base, "/api/tls", &alice), "domain"),
        set(&["example.org", "mail.example.org"])
    );
    for path in [
        "/api/domains?domain=example.com",
        "/api/sources?domain=example.com",
        "/api/advise?domain=example.com",
        "/api/senders?domain=example.com",
    ] {
        assert_eq!(json(&base, path, &alice), Value::Array(vec![]), "{path}");
    }
    // `limit` holds over the rows of all their domains.
    let limited = json(&base, "/api/tls?limit=1", &alice);
    assert_eq!(limited.as_array().unwrap().len(), 1);
    // The same rows as the command prints for that domain.
    let cli = t
        .env
        .run(&["sources", "--domain", "example.org", "--format", "json"]);
    assert_eq!(
        json(&base, "/api/sources", &alice),
        serde_json::from_str::<Value>(&cli.stdout).unwrap()
    );

    // /metrics: their domains' series only, and none of the store's totals.
    let (status, _, metrics) = get(&base, "/metrics", Some(&alice));
    assert_eq!(status, 200);
    assert_eq!(
        metric_domains(&metrics),
        set(&["example.org", "mail.example.org"])
    );
    assert!(!metrics.contains("dmarc_warden_store_"), "{metrics}");
    assert!(metrics.contains("process_resident_memory_bytes"));

    // Another scope on the same server: pages are not shared between them.
    let edu = basic("edu", USERS[1].1);
    assert_eq!(get(&base, "/domain/example.edu", Some(&edu)).0, 200);
    assert_eq!(get(&base, "/domain/example.org", Some(&edu)).0, 404);
    assert_eq!(
        values(&json(&base, "/api/domains", &edu), "domain"),
        set(&["example.edu"])
    );
    assert_eq!(values(&json(&base, "/api/domains", &alice), "domain"), mine);
}

#[test]
fn a_star_user_sees_all_and_no_scope_sees_nothing_and_bad_passwords_are_401() {
    let t = &*TEAM;
    let (_server, base, _) = serve_users(&t.env.db(), "127.0.14.2:0", &t.htpasswd, &t.config);
    let admin = basic("admin", USERS[2].1);
    let all = t.env.run(&["domains", "--format", "json"]);
    assert_eq!(
        json(&base, "/api/domains", &admin),
        serde_json::from_str::<Value>(&all.stdout).unwrap()
    );
    for d in ["example.com", "example.edu", "example.org", "example.net"] {
        assert_eq!(
            get(&base, &format!("/domain/{d}"), Some(&admin)).0,
            200,
            "{d}"
        );
    }
    let (_, _, metrics) = get(&base, "/metrics", Some(&admin));
    assert!(metrics.contains("dmarc_warden_store_records "), "{metrics}");
    assert!(metric_domains(&metrics).contains("example.com"));

    let nobody = basic("nobody", USERS[3].1);
    let (status, _, page) = get(&base, "/", Some(&nobody));
    assert_eq!(status, 200);
    assert!(page.contains("Nothing stored matches"), "{page}");
    assert_eq!(
        json(&base, "/api/domains", &nobody),
        Value::Array(Vec::new())
    );
    assert_eq!(json(&base, "/api/tls", &nobody), Value::Array(Vec::new()));
    assert_eq!(get(&base, "/domain/example.org", Some(&nobody)).0, 404);
    let (_, _, metrics) = get(&base, "/metrics", Some(&nobody));
    assert!(metric_domains(&metrics).is_empty(), "{metrics}");

    for auth in [
        None,
        Some(basic("alice", "wrong")),
        Some(basic("alice", "")),
        Some(basic("mallory", USERS[0].1)),
        Some(basic("", "")),
        Some("Basic !!!".to_owned()),
        Some("Bearer abc".to_owned()),
    ] {
        for path in ["/", "/api/domains", "/metrics", "/static/style.css"] {
            let (status, head, _) = get(&base, path, auth.as_deref());
            assert_eq!(status, 401, "{path} with {auth:?}");
            assert!(head.contains("www-authenticate: basic"), "{head}");
        }
    }
    // A guess costs bcrypt's time whether or not the user exists (within a wide margin: this
    // machine is shared).
    let time = |auth: &str| {
        let mut took: Vec<Duration> = (0..15)
            .map(|_| {
                let start = Instant::now();
                assert_eq!(get(&base, "/api", Some(auth)).0, 401);
                start.elapsed()
            })
            .collect();
        took.sort();
        took[took.len() / 2]
    };
    let known = time(&basic("alice", "nope"));
    let unknown = time(&basic("mallory", "nope"));
    assert!(
        unknown * 4 > known && known * 4 > unknown,
        "known user {known:?}, unknown user {unknown:?}"
    );
}

#[test]
fn users_and_scopes_are_read_again_when_their_files_change() {
    let t = &*TEAM;
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    let config = dir.path().join("config.toml");
    htpasswd_set(&htpasswd, "alice", "first");
    std::fs::write(&config, "[web.scopes]\nalice = [\"example.org\"]\n").unwrap();
    let (_server, base, _) = serve_users(&t.env.db(), "127.0.14.3:0", &htpasswd, &config);
    let first = basic("alice", "first");
    assert_eq!(get(&base, "/domain/example.org", Some(&first)).0, 200);
    assert_eq!(get(&base, "/domain/example.com", Some(&first)).0, 404);

    // A new password, a new user and a new scope, as an administrator would make them.
    htpasswd_set(&htpasswd, "alice", "second");
    htpasswd_set(&htpasswd, "bob", "bobs");
    std::fs::write(
        &config,
        "[web.scopes]\nalice = [\"example.com\"]\nbob = [\"*\"]\n",
    )
    .unwrap();
    let second = basic("alice", "second");
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(&base, "/domain/example.com", Some(&second)).0 != 200 {
        assert!(Instant::now() < deadline, "the changes were not read");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(get(&base, "/domain/example.com", Some(&first)).0, 401);
    assert_eq!(get(&base, "/domain/example.org", Some(&second)).0, 404);
    assert_eq!(
        get(&base, "/domain/example.edu", Some(&basic("bob", "bobs"))).0,
        200
    );

    // A broken config keeps the scopes read before; a removed htpasswd file lets nobody in.
    std::fs::write(&config, "[web.scopes]\nalice = [\"exa mple\"]\n").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(get(&base, "/domain/example.com", Some(&second)).0, 200);
    std::fs::remove_file(&htpasswd).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(&base, "/", Some(&second)).0 != 401 {
        assert!(
            Instant::now() < deadline,
            "the removed file was not noticed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_html_report_for_a_user_holds_only_their_domains() {
    let t = &*TEAM;
    let file = t.env.dir.path().join("alice.html");
    let config = t.config.to_str().unwrap();
    let out = t.env.run(&[
        "report",
        "--html",
        file.to_str().unwrap(),
        "--user",
        "alice",
        "--config",
        config,
        "--days",
        "0",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let html = std::fs::read_to_string(&file).unwrap();
    assert!(html.contains("id=\"d-example.org\""), "example.org missing");
    for other in ["example.com", "example.edu", "example.net"] {
        assert!(
            !html.contains(&format!("d-{other}\"")),
            "{other} in alice's report"
        );
    }
    let out = t.env.run(&[
        "report",
        "--html",
        file.to_str().unwrap(),
        "--user",
        "nobody",
        "--config",
        config,
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("gives nobody no domain"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_public_address_is_served_with_users_and_without_a_password_file() {
    let t = &*TEAM;
    // Users stand in for the password; they and the one password exclude each other.
    let out = t.env.run_with_env(
        &["serve", "--listen", "192.0.2.1:0"],
        &[
            ("DMARC_WARDEN_WEB_HTPASSWD", t.htpasswd.to_str().unwrap()),
            ("DMARC_WARDEN_CONFIG", t.config.to_str().unwrap()),
        ],
    );
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("cannot listen on 192.0.2.1"),
        "{}",
        out.stderr
    );
    let pw = t.env.dir.path().join("pw");
    std::fs::write(&pw, "x\n").unwrap();
    let out = t.env.run(&[
        "serve",
        "--htpasswd",
        t.htpasswd.to_str().unwrap(),
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("cannot be used with"), "{}", out.stderr);
    let out = t.env.run(&[
        "serve",
        "--htpasswd",
        t.env.dir.path().join("missing").to_str().unwrap(),
    ]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("cannot read the htpasswd file"),
        "{}",
        out.stderr
    );
}
