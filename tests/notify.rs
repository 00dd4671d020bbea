//! `notify`, `digest` and their channels against real receivers: an SMTP server (Python aiosmtpd:
//! STARTTLS, implicit TLS and plain) and HTTP / HTTPS webhook receivers, all started once for this
//! test binary by `scripts/notify-sinks` on 127.0.14.1 with a test CA. Reports are generated over
//! several periods of two weeks, so that each kind of event appears, holds, goes away and returns.

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::advice::{NONE, OWN, Rec, SENDGRID, report};
use crate::cli::{Env, Out, s};

const HOST: &str = "127.0.14.1";
const DOMAIN: &str = "notify.example";

/// The receivers, shared by every test here; they stop when this process ends (their stdin closes).
struct Sinks {
    dir: tempfile::TempDir,
    ports: Value,
    _stdin: Mutex<ChildStdin>,
    _child: Mutex<Child>,
}

static SINKS: LazyLock<Sinks> = LazyLock::new(Sinks::start);

/// A Python with aiosmtpd: the one on PATH, else Debian's (`python3-aiosmtpd`).
fn python() -> &'static str {
    ["python3", "/usr/bin/python3"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .args(["-c", "import aiosmtpd"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .expect("no Python with aiosmtpd: scripts/test installs python3-aiosmtpd")
}

impl Sinks {
    fn start() -> Sinks {
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("sinks.log")).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/notify-sinks");
        let mut child = Command::new(python())
            .arg(&script)
            .args([s(dir.path()), HOST])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start scripts/notify-sinks");
        let stdin = child.stdin.take().unwrap();
        let ports = dir.path().join("ports.json");
        let started = Instant::now();
        while !ports.exists() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "scripts/notify-sinks stopped ({status}): {}",
                    std::fs::read_to_string(dir.path().join("sinks.log")).unwrap_or_default()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "scripts/notify-sinks did not start within 60 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let ports = serde_json::from_str(&std::fs::read_to_string(ports).unwrap()).unwrap();
        Sinks {
            dir,
            ports,
            _stdin: Mutex::new(stdin),
            _child: Mutex::new(child),
        }
    }

    fn port(&self, name: &str) -> u64 {
        self.ports[name].as_u64().unwrap()
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn files(&self, sub: &str, name: &str, ext: &str) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path().join(sub).join(name))
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        files.retain(|p| {
            p.to_string_lossy().ends_with(ext) && !p.to_string_lossy().ends_with(".meta.json")
        });
        files.sort();
        files
    }

    /// The webhook bodies `/hook/<name>` received, oldest first.
    fn hooks(&self, name: &str) -> Vec<Value> {
        self.files("hooks", name, ".json")
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    }

    /// The messages `rcpt` received, oldest first, with what the server saw (TLS, login).
    fn mail(&self, rcpt: &str) -> Vec<(Vec<u8>, Value)> {
        self.files("mail", rcpt, ".eml")
            .iter()
            .map(|p| {
                let meta = p.with_extension("json");
                (
                    std::fs::read(p).unwrap(),
                    serde_json::from_slice(&std::fs::read(meta).unwrap()).unwrap(),
                )
            })
            .collect()
    }

    /// While down, the receiver refuses `name` (a hook name or a recipient) with a temporary error.
    fn set_down(&self, name: &str, down: bool) {
        let flag = self.dir.path().join("down").join(name);
        if down {
            std::fs::create_dir_all(flag.parent().unwrap()).unwrap();
            std::fs::write(flag, "").unwrap();
        } else {
            std::fs::remove_file(flag).unwrap();
        }
    }

    fn hook_url(&self, scheme: &str, name: &str) -> String {
        format!("{scheme}://{HOST}:{}/hook/{name}", self.port(scheme))
    }
}

const SPAMMER: Rec<'static> = Rec {
    ip: "203.0.113.99",
    count: 15,
    header_from: "",
    dkim: ("spammer.example", "pass"),
    spf: ("spammer.example", "pass"),
    aligned: (false, false),
    disposition: "none",
    reason: None,
};

/// Spoofing: nothing passes, from `ip`.
const fn spoof(ip: &'static str) -> Rec<'static> {
    Rec {
        ip,
        count: 15,
        header_from: "",
        dkim: ("", "none"),
        spf: ("spoofer.example", "fail"),
        aligned: (false, false),
        disposition: "none",
        reason: None,
    }
}

/// SendGrid once fixed: it signs with the domain's own key.
const SENDGRID_FIXED: Rec<'static> = Rec {
    dkim: ("", "pass"),
    aligned: (true, false),
    ..SENDGRID
};

/// One SMTP TLS report (RFC 8460) for `day`: `ok` and `failed` sessions to the domain's MX.
fn tls_report(day: i64, ok: u64, failed: u64) -> String {
    let begin = chrono::DateTime::from_timestamp(1_790_812_800 + day * 86_400, 0).unwrap();
    let end = begin + chrono::Duration::seconds(86_399);
    let details = if failed > 0 {
        format!(
            r#","failure-details":[{{"result-type":"certificate-expired","sending-mta-ip":"209.85.128.44","receiving-mx-hostname":"mx.{DOMAIN}","failed-session-count":{failed}}}]"#
        )
    } else {
        String::new()
    };
    format!(
        r#"{{"organization-name":"Google Inc.","date-range":{{"start-datetime":"{}","end-datetime":"{}"}},"contact-info":"tls@google.com","report-id":"tls-{day}","policies":[{{"policy":{{"policy-type":"sts","policy-string":["version: STSv1","mode: enforce","mx: mx.{DOMAIN}"],"policy-domain":"{DOMAIN}","mx-host":["mx.{DOMAIN}"]}},"summary":{{"total-successful-session-count":{ok},"total-failure-session-count":{failed}}}{details}}}]}}"#,
        begin.format("%Y-%m-%dT%H:%M:%SZ"),
        end.format("%Y-%m-%dT%H:%M:%SZ"),
    )
}

/// A database and config file, fed period by period.
struct Scenario {
    env: Env,
    config: PathBuf,
}

impl Scenario {
    fn new(config: &str) -> Scenario {
        let env = Env::new();
        let path = env.dir.path().join("config.toml");
        std::fs::write(&path, config).unwrap();
        Scenario { env, config: path }
    }

    /// Ingests days `days` of reports from google.com and yahoo.com carrying `recs` (and from
    /// daily.example, which reports only until day 13), and a TLS report a day.
    fn period(&self, days: std::ops::Range<i64>, recs: &[Rec<'_>], tls_failed: u64) {
        let dir = self.env.dir.path().join(format!("reports-{}", days.start));
        std::fs::create_dir_all(&dir).unwrap();
        let policy = NONE;
        for day in days {
            let mut orgs = vec!["google.com", "yahoo.com"];
            if day < 14 {
                orgs.push("daily.example");
            }
            for org in orgs {
                std::fs::write(
                    dir.join(format!("{org}-{day}.xml")),
                    report(org, DOMAIN, day, policy, recs),
                )
                .unwrap();
            }
            std::fs::write(
                dir.join(format!("tls-{day}.json")),
                tls_report(day, 1000 - tls_failed * 5, tls_failed),
            )
            .unwrap();
        }
        let out = self.env.run(&["ingest", "--quiet", s(&dir)]);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        let mut all = args.to_vec();
        all.extend(["--config", s(&self.config)]);
        self.env.run_with_env(&all, env)
    }

    fn notify(&self) -> Out {
        self.run(&["notify"], &[])
    }
}

/// The kinds of the events of webhook bodies, sorted.
fn kinds(bodies: &[Value]) -> Vec<String> {
    let mut k: Vec<String> = bodies
        .iter()
        .flat_map(|b| b["events"].as_array().unwrap().clone())
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    k.sort();
    k
}

fn webhook_config(url: &str, extra: &str) -> String {
    format!("[[notify.channel]]\nkind = \"webhook\"\nurl = \"{url}\"\n{extra}\n")
}

#[test]
fn each_event_kind_fires_once_and_again_only_when_it_returns() {
    let sinks = &*SINKS;
    let hook = "weeks";
    let sc = Scenario::new(&webhook_config(&sinks.hook_url("http", hook), ""));
    let mut seen = 0;
    let mut step = |label: &str, expected: &[&str]| {
        let out = sc.notify();
        assert_eq!(out.code, 0, "{label}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{label}: {}", out.stdout);
        let bodies = sinks.hooks(hook);
        let new = &bodies[seen..];
        seen = bodies.len();
        assert!(new.len() <= 1, "{label}: one POST per run: {new:#?}");
        assert_eq!(kinds(new), expected, "{label}: {new:#?}");
        new.first().cloned()
    };

    // Two weeks of clean mail: the first advice (ready to step up) is news.
    sc.period(0..14, &[OWN], 0);
    let first = step("clean", &["advice_changed"]).unwrap();
    let event = &first["events"][0];
    assert_eq!(event["domain"], DOMAIN);
    assert!(
        event["summary"].as_str().unwrap().contains("\"step up\""),
        "{event}"
    );
    assert!(
        first["text"]
            .as_str()
            .unwrap()
            .starts_with("dmarc-warden: 1 notice.")
    );
    let keys: Vec<&str> = event
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["kind", "domain", "sender", "messages", "summary", "detail"]
    );
    step("nothing new", &[]);

    // A spammer and an unaligned ESP appear, a daily reporter stops, TLS to the MX fails.
    sc.period(14..28, &[OWN, SENDGRID, SPAMMER], 100);
    let all = step(
        "trouble",
        &[
            "advice_changed",
            "new_unauthorised_source",
            "pass_rate_drop",
            "reporter_silent",
            "sender_failing",
            "tls_failures",
        ],
    )
    .unwrap();
    let event = |kind: &str| {
        all["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == kind)
            .unwrap()
            .clone()
    };
    assert_eq!(
        event("new_unauthorised_source")["sender"],
        "spammer.example"
    );
    assert_eq!(event("sender_failing")["sender"], "SendGrid");
    assert!(
        event("sender_failing")["detail"]
            .as_str()
            .unwrap()
            .contains("DKIM signs with sendgrid.net"),
        "{all:#}"
    );
    assert_eq!(event("reporter_silent")["sender"], "daily.example");
    assert_eq!(event("tls_failures")["sender"], format!("mx.{DOMAIN}"));
    assert!(
        event("advice_changed")["summary"]
            .as_str()
            .unwrap()
            .contains("\"hold\""),
        "{all:#}"
    );
    step("nothing new again", &[]);

    // The same for two more weeks: every problem still holds, none is news.
    sc.period(28..42, &[OWN, SENDGRID, SPAMMER], 100);
    step("same trouble", &[]);

    // SendGrid fixed: ready to step up again. Spoofing starts from one address.
    let spoof_a = spoof("198.51.100.66");
    sc.period(42..48, &[OWN, SENDGRID_FIXED, SPAMMER], 100);
    sc.period(48..62, &[OWN, SENDGRID_FIXED, SPAMMER, spoof_a], 100);
    let fixed = step("fixed", &["advice_changed", "new_unauthorised_source"]).unwrap();
    assert!(
        fixed
            .to_string()
            .contains("unidentified from 1 new IP address (420 messages"),
        "{fixed:#}"
    );

    // ... and broken again: notified again; the spoofing goes on, and from a new address too.
    let spoof_b = spoof("198.51.100.77");
    sc.period(62..76, &[OWN, SENDGRID, SPAMMER, spoof_a, spoof_b], 100);
    let again = step(
        "broken again",
        &[
            "advice_changed",
            "new_unauthorised_source",
            "pass_rate_drop",
            "sender_failing",
        ],
    )
    .unwrap();
    assert!(
        again.to_string().contains("new: 198.51.100.77;"),
        "{again:#}"
    );

    // The same addresses for two more weeks, and on the last day a new one with a few messages
    // (below min_messages): nothing new.
    sc.period(76..89, &[OWN, SENDGRID, SPAMMER, spoof_a, spoof_b], 100);
    let few = Rec {
        count: 2,
        ..spoof("198.51.100.88")
    };
    sc.period(
        89..90,
        &[OWN, SENDGRID, SPAMMER, spoof_a, spoof_b, few],
        100,
    );
    step("same again", &[]);
}

/// An email channel for `rcpt` over `tls` to the sink's matching port.
fn email_config(sinks: &Sinks, tls: &str, rcpt: &str, login: &str) -> String {
    let port = match tls {
        "none" => sinks.port("plain"),
        other => sinks.port(other),
    };
    format!(
        "[[notify.channel]]\nkind = \"email\"\nsmtp_host = \"{HOST}\"\nsmtp_port = {port}\n\
         tls = \"{tls}\"\nca_file = \"{}\"\nfrom = \"dmarc-warden@{DOMAIN}\"\nto = [\"{rcpt}\"]\n{login}\n",
        s(&sinks.ca())
    )
}

#[test]
fn a_failed_delivery_is_kept_and_sent_on_the_next_run_while_others_get_theirs() {
    let sinks = &*SINKS;
    let (hook, rcpt) = ("retry", "retry@notify.example");
    let sc = Scenario::new("");
    let password = sc.env.dir.path().join("smtp-password");
    std::fs::write(&password, "smtp-secret\n").unwrap();
    let config = format!(
        "{}{}{}",
        webhook_config(
            &sinks.hook_url("https", hook),
            &format!("ca_file = \"{}\"", s(&sinks.ca()))
        ),
        email_config(
            sinks,
            "starttls",
            rcpt,
            &format!(
                "username = \"warden\"\npassword_file = \"{}\"",
                s(&password)
            )
        ),
        // Another domain's channel gets nothing.
        webhook_config(
            &sinks.hook_url("http", "other-domain"),
            "domains = [\"other.example\"]"
        ),
    );
    std::fs::write(&sc.config, config).unwrap();
    sc.period(0..14, &[OWN], 0);
    sc.period(14..28, &[OWN, SENDGRID, SPAMMER], 100);

    sinks.set_down(hook, true);
    let out = sc.notify();
    sinks.set_down(hook, false);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("error: notify channel #1 (webhook to 127.0.14.1): webhook: "),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("/hook/"),
        "the URL stays out: {}",
        out.stderr
    );
    assert!(sinks.hooks(hook).is_empty());
    // The email channel was tried all the same, and took the notices.
    assert_eq!(sinks.mail(rcpt).len(), 1);

    let out = sc.notify();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let bodies = sinks.hooks(hook);
    assert_eq!(bodies.len(), 1);
    assert_eq!(kinds(&bodies).len(), 6, "{bodies:#?}");
    assert_eq!(
        sinks.mail(rcpt).len(),
        1,
        "nothing new for the email channel"
    );

    let out = sc.notify();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(sinks.hooks(hook).len(), 1);
    assert!(sinks.hooks("other-domain").is_empty());

    // A mail server refusing for now: kept, and sent next time.
    sc.period(28..48, &[OWN, SENDGRID_FIXED, SPAMMER], 100);
    sinks.set_down(rcpt, true);
    let out = sc.notify();
    sinks.set_down(rcpt, false);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("notify channel #2 (email via 127.0.14.1:"),
        "{}",
        out.stderr
    );
    assert_eq!(sinks.hooks(hook).len(), 2);
    assert_eq!(sinks.mail(rcpt).len(), 1);
    let out = sc.notify();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(sinks.mail(rcpt).len(), 2);
}

/// The text of a MIME part, decoded.
fn body(part: &mailparse::ParsedMail<'_>) -> String {
    part.get_body().unwrap()
}

#[test]
fn mail_is_received_with_headers_a_text_part_and_an_html_part() {
    let sinks = &*SINKS;
    let sc = Scenario::new("");
    let password = sc.env.dir.path().join("smtp-password");
    std::fs::write(&password, "smtp-secret\n").unwrap();
    let login = format!(
        "username = \"warden\"\npassword_file = \"{}\"",
        s(&password)
    );
    let config = format!(
        "{}{}{}",
        email_config(sinks, "starttls", "starttls@notify.example", &login),
        email_config(
            sinks,
            "implicit",
            "implicit@notify.example",
            "username = \"warden\""
        ),
        email_config(sinks, "none", "plain@notify.example", ""),
    );
    std::fs::write(&sc.config, config).unwrap();
    sc.period(0..14, &[OWN, SENDGRID], 0);
    let out = sc.run(
        &["notify"],
        &[("DMARC_WARDEN_SMTP_PASSWORD", "smtp-secret")],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("smtp-secret") && !out.stdout.contains("smtp-secret"));

    for (rcpt, tls, login) in [
        ("starttls@notify.example", true, Some("warden")),
        ("implicit@notify.example", true, Some("warden")),
        ("plain@notify.example", false, None),
    ] {
        let mail = sinks.mail(rcpt);
        assert_eq!(mail.len(), 1, "{rcpt}");
        let (raw, meta) = &mail[0];
        assert_eq!(meta["tls"], tls, "{rcpt}: {meta}");
        assert_eq!(meta["login"].as_str(), login, "{rcpt}: {meta}");
        assert_eq!(meta["mail_from"], format!("dmarc-warden@{DOMAIN}"));
        let parsed = mailparse::parse_mail(raw).unwrap();
        let header = |name: &str| {
            use mailparse::MailHeaderMap;
            parsed.headers.get_first_value(name).unwrap_or_default()
        };
        assert_eq!(header("From"), format!("dmarc-warden@{DOMAIN}"));
        assert_eq!(header("To"), rcpt);
        assert_eq!(
            header("Subject"),
            format!("dmarc-warden: 2 notices for {DOMAIN}")
        );
        assert!(!header("Date").is_empty() && !header("Message-ID").is_empty());
        assert_eq!(parsed.ctype.mimetype, "multipart/alternative");
        assert_eq!(parsed.subparts.len(), 2);
        let (text, html) = (&parsed.subparts[0], &parsed.subparts[1]);
        assert_eq!(text.ctype.mimetype, "text/plain");
        assert_eq!(html.ctype.mimetype, "text/html");
        let text = body(text);
        assert!(
            text.contains("[sender_failing] SendGrid fails DMARC for notify.example"),
            "{text}"
        );
        assert!(
            text.contains("see more: dmarc-warden senders --domain notify.example"),
            "{text}"
        );
        assert!(
            text.contains("see more: dmarc-warden advise --domain notify.example"),
            "{text}"
        );
        let html = body(html);
        assert!(
            html.contains("<li><p><strong>SendGrid fails DMARC"),
            "{html}"
        );
        assert!(
            html.contains("<code>dmarc-warden advise --domain notify.example</code>"),
            "{html}"
        );
        // The record's quotes and the advice's arrow arrive intact, escaped where HTML needs it.
        assert!(html.contains("\"hold\" (p=none → p=none)"), "{html}");
    }
}

#[test]
fn without_channels_notices_are_printed_once() {
    let sc = Scenario::new("");
    sc.period(0..14, &[OWN], 0);
    let out = sc.notify();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("[advice_changed] notify.example: advice is now \"step up\""),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("see more: dmarc-warden advise --domain notify.example"),
        "{}",
        out.stdout
    );
    let again = sc.notify();
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        again.stdout, "",
        "nothing changed: nothing printed, so cron mails nothing"
    );
}

#[test]
fn digest_is_printed_or_sent() {
    let sinks = &*SINKS;
    let sc = Scenario::new("");
    sc.period(0..21, &[OWN], 0);
    sc.period(21..28, &[OWN, SENDGRID, SPAMMER], 100);
    let out = sc.run(&["digest", "--days", "7"], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = &out.stdout;
    // 7 days of 2 reporters × (40 + 30 + 15), against 7 days of 2 × 40.
    assert!(
        text.starts_with(
            "notify.example: 1,190 messages in 7 days (before: 560), 47.1% pass DMARC \
             (-52.9 points against the 7 days before)\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "senders: 1 aligned (560 messages), 1 needs fixing (420 messages), \
             1 unauthorised (210 messages)"
        ),
        "{text}"
    );
    assert!(
        text.contains("needs fixing: SendGrid (420 messages)"),
        "{text}"
    );
    assert!(
        text.contains("advice: hold; record: _dmarc.notify.example TXT \"v=DMARC1; p=none"),
        "{text}"
    );

    let hook = "digest";
    std::fs::write(
        &sc.config,
        webhook_config(&sinks.hook_url("http", hook), ""),
    )
    .unwrap();
    let out = sc.run(&["digest", "--days", "7"], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "");
    let bodies = sinks.hooks(hook);
    assert_eq!(bodies.len(), 1);
    let digest = &bodies[0]["digest"][0];
    assert_eq!(digest["domain"], DOMAIN);
    assert_eq!(digest["messages"], 1190);
    assert_eq!(digest["action"], "hold");
    assert!(
        bodies[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("dmarc-warden digest, last 7 days. notify.example: 1,190 messages"),
        "{:#}",
        bodies[0]
    );

    // By mail, to two recipients; only the domains asked for.
    let config = email_config(sinks, "none", "digest-a@notify.example", "").replace(
        "to = [\"digest-a@notify.example\"]",
        "to = [\"digest-a@notify.example\", \"digest-b@notify.example\"]",
    );
    std::fs::write(&sc.config, config).unwrap();
    let out = sc.run(&["digest", "--days", "7", "--domain", "other.example"], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(sinks.mail("digest-a@notify.example").is_empty());
    let out = sc.run(&["digest", "--days", "7", "--domain", DOMAIN], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for rcpt in ["digest-a@notify.example", "digest-b@notify.example"] {
        let mail = sinks.mail(rcpt);
        assert_eq!(mail.len(), 1, "{rcpt}");
        let parsed = mailparse::parse_mail(&mail[0].0).unwrap();
        use mailparse::MailHeaderMap;
        assert_eq!(
            parsed.headers.get_first_value("Subject").unwrap(),
            "dmarc-warden: digest of the last 7 days for notify.example"
        );
        assert!(body(&parsed.subparts[0]).starts_with("notify.example: 1,190 messages in 7 days"));
        assert!(body(&parsed.subparts[1]).contains("<h2>notify.example</h2>"));
    }
}

/// Issue 18: on the sample database, the digest names the action and record `advise --offline`
/// names for every domain, whatever its `--days` (which chooses only the period of its figures);
/// its counts are written as every other output writes them.
#[test]
fn the_digest_gives_the_advice_advise_gives() {
    let env = Env::new();
    let out = env.run(&["ingest", "--quiet", s(&crate::cli::samples())]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let advice = env.run(&["advise", "--offline", "--format", "json"]).json();
    assert!(advice.len() >= 2, "{advice:#?}");
    for days in ["7", "3", "30"] {
        let out = env.run(&["digest", "--days", days]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        for a in &advice {
            let line = format!(
                "  advice: {}; record: _dmarc.{} TXT \"{}\"\n",
                a["action"].as_str().unwrap(),
                a["domain"].as_str().unwrap(),
                a["record"].as_str().unwrap()
            );
            assert!(
                out.stdout.contains(&line),
                "--days {days}: {line}in\n{}",
                out.stdout
            );
        }
    }
    let out = env.run(&["digest", "--days", "7"]);
    assert!(
        out.stdout
            .contains("example.net: 135 messages in 7 days (before: 185)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("example.net: 135 messages in 7 days")
            && out
                .stdout
                .contains("  advice: at target; record: _dmarc.example.net TXT"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("example.org: 5,391 messages in 7 days (before: 5,861)"),
        "{}",
        out.stdout
    );
    // The notice writes the policy as `advise` does, sp= included (it used to drop it).
    let out = env.run(&["notify"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains(
            "example.net: advice is now \"at target\" (p=reject sp=reject → p=reject sp=reject)"
        ),
        "{}",
        out.stdout
    );
}

#[test]
fn unsafe_channel_settings_are_refused_naming_the_setting() {
    let sc = Scenario::new(&webhook_config("http://hooks.example.org/T000/B000", ""));
    let out = sc.notify();
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("[[notify.channel]] #1: url: plain http only to a loopback address"),
        "{}",
        out.stderr
    );
    std::fs::write(
        &sc.config,
        "[[notify.channel]]\nkind = \"email\"\nsmtp_host = \"smtp.example.org\"\n\
         username = \"u\"\nfrom = \"a@example.org\"\nto = [\"b@example.org\"]\n",
    )
    .unwrap();
    let out = sc.notify();
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains(
            "username is set but no password: set password_file, or DMARC_WARDEN_SMTP_PASSWORD"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn fetch_notify_fetches_then_sends_what_changed() {
    use crate::imap::{corpus, dovecot::Dovecot};
    let sinks = &*SINKS;
    let hook = "fetch";
    let dovecot = Dovecot::start();
    let messages: Vec<Vec<u8>> = (0..14)
        .flat_map(|day| ["google.com", "yahoo.com"].map(move |org| (day, org)))
        .enumerate()
        .map(|(n, (day, org))| {
            let xml = report(org, DOMAIN, day, NONE, &[OWN]);
            corpus::email(n, &format!("{org}-{day}.xml"), xml.as_bytes())
        })
        .collect();
    dovecot.append("INBOX", &messages);
    let sc = Scenario::new(&webhook_config(&sinks.hook_url("http", hook), ""));
    let env: Vec<(String, String)> = dovecot.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = sc.run(&["fetch", "--notify"], &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with("fetch: 28 inputs, 28 reports new"),
        "{}",
        out.stdout
    );
    assert_eq!(kinds(&sinks.hooks(hook)), ["advice_changed"]);
    let again = sc.run(&["fetch", "--notify"], &env);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        sinks.hooks(hook).len(),
        1,
        "nothing new fetched, nothing sent"
    );
}

#[test]
fn a_certificate_not_signed_by_a_trusted_ca_is_refused() {
    let sinks = &*SINKS;
    let hook = "untrusted";
    let rcpt = "untrusted@notify.example";
    let config = format!(
        "{}[[notify.channel]]\nkind = \"email\"\nsmtp_host = \"{HOST}\"\nsmtp_port = {}\n\
         tls = \"starttls\"\nfrom = \"dmarc-warden@{DOMAIN}\"\nto = [\"{rcpt}\"]\n",
        webhook_config(&sinks.hook_url("https", hook), ""),
        sinks.port("starttls"),
    );
    let sc = Scenario::new(&config);
    sc.period(0..14, &[OWN], 0);
    let out = sc.notify();
    assert_eq!(out.code, 1, "{}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stderr);
    assert!(lines[0].starts_with("dmarc-warden: error: notify channel #1 (webhook to 127.0.14.1)"));
    assert!(lines[1].starts_with("dmarc-warden: error: notify channel #2 (email via 127.0.14.1:"));
    assert!(
        out.stderr.to_lowercase().contains("certificate"),
        "{}",
        out.stderr
    );
    assert!(sinks.hooks(hook).is_empty());
    assert!(sinks.mail(rcpt).is_empty());
}

#[test]
fn many_events_go_in_messages_of_at_most_50() {
    let sinks = &*SINKS;
    let hook = "many";
    let sc = Scenario::new(&webhook_config(&sinks.hook_url("http", hook), ""));
    let dir = sc.env.dir.path().join("many");
    std::fs::create_dir_all(&dir).unwrap();
    for n in 0..60 {
        let domain = format!("d{n}.example");
        std::fs::write(
            dir.join(format!("{domain}.xml")),
            report("google.com", &domain, 0, NONE, &[OWN]),
        )
        .unwrap();
    }
    assert_eq!(sc.env.run(&["ingest", "--quiet", s(&dir)]).code, 0);
    let out = sc.notify();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let bodies = sinks.hooks(hook);
    let sizes: Vec<usize> = bodies
        .iter()
        .map(|b| b["events"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [50, 10]);
    assert!(
        bodies[1]["text"]
            .as_str()
            .unwrap()
            .starts_with("dmarc-warden: 10 notices.")
    );
}

#[test]
fn notices_kept_for_a_replaced_channel_go_to_the_new_one() {
    let sinks = &*SINKS;
    let (old, new) = ("rotated-old", "rotated-new");
    let sc = Scenario::new(&webhook_config(&sinks.hook_url("http", old), ""));
    sc.period(0..14, &[OWN], 0);
    sinks.set_down(old, true);
    let out = sc.notify();
    sinks.set_down(old, false);
    assert_eq!(out.code, 1, "{}", out.stderr);
    // The webhook's URL (its token) is rotated before the next run.
    std::fs::write(&sc.config, webhook_config(&sinks.hook_url("http", new), "")).unwrap();
    let out = sc.notify();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(sinks.hooks(old).is_empty());
    assert_eq!(kinds(&sinks.hooks(new)), ["advice_changed"]);
}

/// `--resolve` names sources as `senders --resolve` does: 127.0.0.1 is `localhost` (from
/// /etc/hosts, no network), which the config declares a service.
#[test]
fn resolve_names_sources_as_senders_does() {
    let relay = Rec {
        ip: "127.0.0.1",
        count: 25,
        dkim: ("", "none"),
        spf: ("", "fail"),
        aligned: (false, false),
        ..OWN
    };
    let config = "[[service]]\nname = \"Local relay\"\ndomains = [\"localhost\"]\n";
    let named = |args: &[&str]| {
        let sc = Scenario::new(config);
        sc.period(0..14, &[OWN, relay], 0);
        let out = sc.run(args, &[]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.stdout
            .lines()
            .filter(|l| l.starts_with('['))
            .map(|l| l.split(':').next().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        named(&["notify"]),
        [
            "[new_unauthorised_source] new source sending as notify.example",
            "[advice_changed] notify.example"
        ]
    );
    assert_eq!(
        named(&["notify", "--resolve"]),
        [
            "[sender_failing] Local relay fails DMARC for notify.example",
            "[advice_changed] notify.example"
        ]
    );
}
