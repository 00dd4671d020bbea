//! Metrics: `serve`'s `/metrics` passes `promtool check metrics` and a real Prometheus (Debian's
//! `prometheus`, started here on 127.0.14.11 with a one-second scrape interval and the dashboard's
//! basic auth) scrapes it, its per-domain message count equal to `domains --format json`; and
//! `fetch --metrics-file` against a real Dovecot writes node_exporter textfiles that pass
//! `promtool`, keeping an account's last success when a later run fails.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cli::Env;
use crate::imap::dovecot::{Dovecot, free_port};
use crate::imap::{fetch_env, sample_messages};
use crate::users::{TEAM, USERS, basic, serve_users};
use crate::web::{get, start_tied};

/// `promtool check metrics` on `text`: its complaints, empty when there are none.
fn promtool(text: &str) -> String {
    let tool = Path::new("/usr/bin/promtool");
    assert!(
        tool.exists(),
        "promtool is not installed (Debian's prometheus): run scripts/test, which installs it"
    );
    let mut child = Command::new(tool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && said.trim().is_empty() {
        String::new()
    } else {
        format!("exit {:?}: {said}", out.status.code())
    }
}

/// A sample's value in the text format: the line `series value`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let (head, value) = l.rsplit_once(' ')?;
        (head == series).then(|| value.parse().ok()).flatten()
    })
}

/// A plain HTTP GET of a Prometheus API answer, as JSON.
fn api(base: &str, path: &str) -> Value {
    let (status, _, body) = get(base, path, None);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn prometheus_scrapes_serve_and_counts_what_domains_counts() {
    let t = &*TEAM;
    let (_server, base, _) = serve_users(&t.env.db(), "127.0.14.10:0", &t.htpasswd, &t.config);
    let (admin, admin_pw) = USERS[2];
    let (status, head, text) = get(&base, "/metrics", Some(&basic(admin, admin_pw)));
    assert_eq!(status, 200);
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert_eq!(promtool(&text), "", "{text}");
    assert_eq!(get(&base, "/metrics", None).0, 401);

    // Prometheus with a short scrape interval, reading the password from a file as it would in
    // production.
    let prometheus = Path::new("/usr/bin/prometheus");
    assert!(
        prometheus.exists(),
        "Prometheus is not installed (Debian's prometheus): run scripts/test, which installs it"
    );
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, admin_pw).unwrap();
    let target = base.trim_start_matches("http://");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: dmarc-warden\n    scrape_interval: 1s\n\
             \x20   basic_auth:\n      username: {admin}\n      password_file: {}\n\
             \x20   static_configs:\n      - targets: ['{target}']\n",
            password.display()
        ),
    )
    .unwrap();
    let listen = "127.0.14.11:9090";
    let (_prometheus, _) = start_tied(
        prometheus,
        &[
            &format!("--config.file={}", config.display()),
            &format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            &format!("--web.listen-address={listen}"),
        ],
        &[],
        "Server is ready to receive web requests",
    );
    let prom = format!("http://{listen}");
    let deadline = Instant::now() + Duration::from_secs(90);
    let scraped = loop {
        let v = api(&prom, "/api/v1/query?query=dmarc_warden_messages_total");
        let result = v["data"]["result"].as_array().cloned().unwrap_or_default();
        if !result.is_empty() {
            break result;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus scraped nothing: {}",
            api(&prom, "/api/v1/targets")
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let by_prometheus: BTreeMap<String, u64> = scraped
        .iter()
        .map(|r| {
            let domain = r["metric"]["domain"].as_str().unwrap().to_owned();
            let value: f64 = r["value"][1].as_str().unwrap().parse().unwrap();
            (domain, value as u64)
        })
        .collect();
    let domains = t.env.run(&["domains", "--format", "json"]);
    assert_eq!(domains.code, 0, "{}", domains.stderr);
    let by_cli: BTreeMap<String, u64> = domains
        .json()
        .iter()
        .map(|d| {
            (
                d["domain"].as_str().unwrap().to_owned(),
                d["messages"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(by_prometheus, by_cli);
    let up = api(
        &prom,
        "/api/v1/query?query=up%7Bjob%3D%22dmarc-warden%22%7D",
    );
    assert_eq!(up["data"]["result"][0]["value"][1], "1", "{up}");
}

#[test]
fn the_figures_follow_the_judge_and_the_store() {
    let t = &*TEAM;
    let (_server, base, _) = serve_users(&t.env.db(), "127.0.14.12:0", &t.htpasswd, &t.config);
    let (admin, admin_pw) = USERS[2];
    let (_, _, text) = get(&base, "/metrics", Some(&basic(admin, admin_pw)));
    // The advice and the pass rate are `advise --offline`'s.
    let advice = t.env.run(&["advise", "--offline", "--format", "json"]);
    assert_eq!(advice.code, 0, "{}", advice.stderr);
    for a in advice.json() {
        let domain = a["domain"].as_str().unwrap();
        let series = format!(
            "dmarc_warden_advice{{domain=\"{domain}\",action=\"{}\",current=\"{}\",next=\"{}\"}}",
            a["action"].as_str().unwrap(),
            a["current"]["p"].as_str().unwrap(),
            a["recommended"]["p"].as_str().unwrap()
        );
        assert_eq!(sample(&text, &series), Some(1.0), "{series}\n{text}");
        if a["legitimate_messages"].as_u64().unwrap() > 0 {
            let ratio = sample(
                &text,
                &format!("dmarc_warden_window_legitimate_pass_ratio{{domain=\"{domain}\"}}"),
            )
            .unwrap();
            let pct = a["legitimate_pass_pct"].as_f64().unwrap();
            assert!(
                (ratio * 100.0 - pct).abs() < 1e-6,
                "{domain}: {ratio} vs {pct}"
            );
        }
    }
    // Senders by class over the window, as `senders` classifies them.
    let senders = t.env.run(&["senders", "--format", "json"]);
    let mut by_class: BTreeMap<(String, String), f64> = BTreeMap::new();
    for s in senders.json() {
        *by_class
            .entry((
                s["domain"].as_str().unwrap().to_owned(),
                s["class"].as_str().unwrap().to_owned(),
            ))
            .or_default() += s["messages"].as_f64().unwrap();
    }
    for ((domain, class), messages) in &by_class {
        let series =
            format!("dmarc_warden_window_messages{{domain=\"{domain}\",class=\"{class}\"}}");
        assert_eq!(sample(&text, &series), Some(*messages), "{series}");
    }
    // The last check's findings by severity.
    for (severity, n) in [("ok", 1.0), ("info", 0.0), ("warning", 2.0), ("error", 0.0)] {
        let series = format!(
            "dmarc_warden_check_findings{{domain=\"example.com\",severity=\"{severity}\"}}"
        );
        assert_eq!(sample(&text, &series), Some(n), "{series}");
    }
    assert_eq!(
        sample(
            &text,
            "dmarc_warden_check_timestamp_seconds{domain=\"example.com\"}"
        ),
        Some(1_793_491_200.0)
    );
    // Each reporter's latest report, as `reports` lists them.
    let mut latest: BTreeMap<(String, String), f64> = BTreeMap::new();
    for r in t.env.run(&["reports", "--format", "json"]).json() {
        let end = chrono::DateTime::parse_from_rfc3339(r["end"].as_str().unwrap())
            .unwrap()
            .timestamp() as f64;
        let key = (
            r["domain"].as_str().unwrap().to_owned(),
            r["org_name"].as_str().unwrap().to_owned(),
        );
        let slot = latest.entry(key).or_insert(end);
        *slot = slot.max(end);
    }
    for ((domain, reporter), end) in &latest {
        let series = format!(
            "dmarc_warden_reporter_last_report_end_timestamp_seconds{{domain=\"{domain}\",reporter=\"{}\"}}",
            reporter.replace('\\', "\\\\").replace('"', "\\\"")
        );
        assert_eq!(sample(&text, &series), Some(*end), "{series}");
    }
    // The store's counts.
    let reports = t.env.run(&["reports", "--format", "json"]).json().len();
    assert_eq!(
        sample(&text, "dmarc_warden_store_reports{kind=\"aggregate\"}"),
        Some(reports as f64)
    );
    // Records as the database holds them (summed from the reports' counts by `/metrics`).
    let (records, _) = t.env.records_and_orphans();
    assert!(records > 0);
    assert_eq!(
        sample(&text, "dmarc_warden_store_records"),
        Some(records as f64)
    );
    let failures = t.env.run(&["failures", "--format", "json"]).json().len();
    assert_eq!(
        sample(&text, "dmarc_warden_store_reports{kind=\"failure\"}"),
        Some(failures as f64)
    );
    assert_eq!(
        sample(&text, "dmarc_warden_notify_outbox_notices"),
        Some(0.0)
    );
    assert!(sample(&text, "process_resident_memory_bytes").is_some_and(|v| v > 1e6));
    // No address, sender or report id is a label.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        for bad in ["ip=", "sender=", "report_id=", "=\"192.0.2."] {
            assert!(!line.contains(bad), "{line}");
        }
    }
}

#[test]
fn fetch_writes_a_textfile_for_node_exporter() {
    let dovecot = Dovecot::start();
    let files = tempfile::tempdir().unwrap();
    let messages = sample_messages(files.path());
    dovecot.append("INBOX", &messages);
    let env = Env::new();
    let out_dir = tempfile::tempdir().unwrap();
    let file = out_dir.path().join("dmarc-warden.prom");
    let metrics = ["--metrics-file", file.to_str().unwrap(), "--quiet"];
    let first = fetch_env(&env, &metrics, &dovecot.env(), &[]);
    assert_eq!(
        first.code, 1,
        "the bad fixtures are rejects: {}",
        first.stderr
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(promtool(&text), "", "{text}");
    let account = "{account=\"default\"}";
    assert!(
        text.contains(&format!("dmarc_warden_fetch_success{account} 1")),
        "{text}"
    );
    assert_eq!(
        sample(&text, &format!("dmarc_warden_fetch_messages{account}")),
        Some(messages.len() as f64),
        "{text}"
    );
    assert!(sample(&text, &format!("dmarc_warden_fetch_rejects{account}")).unwrap() > 0.0);
    assert!(
        sample(
            &text,
            &format!("dmarc_warden_fetch_reports_stored{account}")
        )
        .unwrap()
            > 0.0
    );
    let success = sample(
        &text,
        &format!("dmarc_warden_fetch_last_success_timestamp_seconds{account}"),
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - success).abs() < 120.0, "{success} vs {now}");

    // The server gone: the run fails, and says so, keeping the last success.
    std::thread::sleep(Duration::from_millis(1100));
    let port = free_port().to_string();
    let failed = fetch_env(
        &env,
        &metrics,
        &dovecot.env(),
        &[("DMARC_WARDEN_IMAP_PORT", &port)],
    );
    assert_eq!(failed.code, 2, "{}", failed.stderr);
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(promtool(&text), "", "{text}");
    assert!(text.contains("dmarc_warden_fetch_ok 0"), "{text}");
    assert!(
        text.contains(&format!("dmarc_warden_fetch_success{account} 0")),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("dmarc_warden_fetch_last_success_timestamp_seconds{account}")
        ),
        Some(success)
    );
    assert!(
        sample(&text, "dmarc_warden_fetch_last_run_timestamp_seconds").unwrap() > success,
        "{text}"
    );
    let left: Vec<_> = std::fs::read_dir(out_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "temporary files left: {left:?}");
}
