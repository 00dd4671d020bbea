//! `serve` and `report --html` in a real browser: the executable serves a database of generated
//! reports (three weeks, three domains, every kind of sender) plus `sample-reports/` (failure and
//! TLS reports) on 127.0.13.1, and Debian's Chromium (headless, driven over the DevTools protocol by
//! `headless_chrome`) clicks through it. Server and browser start once for the test binary.
//! Screenshots of every page are kept in `target/web-screenshots/`. A few plain HTTP tests check
//! authentication, headers and that `/api/` answers what `--format json` prints.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use headless_chrome::protocol::cdp::Page;
use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::protocol::cdp::{Emulation, Network};
use headless_chrome::{Browser, Tab};
use serde_json::Value;

use crate::cli::{Backend, Env, on_both_backends, samples};

/// The first day of the generated reports: 2026-10-10.
pub(crate) const DAY0: i64 = 1_791_590_400;
pub(crate) const DAYS: i64 = 21;

/// One record: (source IP, count, DKIM (domain, result), SPF (domain, result), aligned
/// (dkim, spf), forwarded).
type Rec<'a> = (
    &'a str,
    u64,
    (&'a str, &'a str),
    (&'a str, &'a str),
    (bool, bool),
    bool,
);

fn report_xml(org: &str, domain: &str, day: i64, p: &str, recs: &[Rec<'_>]) -> String {
    let begin = DAY0 + day * 86_400;
    let mut x = format!(
        "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>{org}</org_name>\
         <email>r@{org}</email><report_id>{org}-{domain}-{day}</report_id><date_range>\
         <begin>{begin}</begin><end>{}</end></date_range></report_metadata><policy_published>\
         <domain>{domain}</domain><adkim>r</adkim><aspf>r</aspf><p>{p}</p><pct>100</pct>\
         </policy_published>",
        begin + 86_399
    );
    for (ip, count, dkim, spf, aligned, forwarded) in recs {
        let pass = |b: &bool| if *b { "pass" } else { "fail" };
        write!(
            x,
            "<record><row><source_ip>{ip}</source_ip><count>{count}</count><policy_evaluated>\
             <disposition>none</disposition><dkim>{}</dkim><spf>{}</spf>",
            pass(&aligned.0),
            pass(&aligned.1)
        )
        .unwrap();
        if *forwarded {
            x.push_str("<reason><type>forwarded</type></reason>");
        }
        write!(
            x,
            "</policy_evaluated></row><identifiers><header_from>{domain}</header_from></identifiers>\
             <auth_results><dkim><domain>{}</domain><selector>s1</selector><result>{}</result></dkim>\
             <spf><domain>{}</domain><scope>mfrom</scope><result>{}</result></spf></auth_results></record>",
            dkim.0, dkim.1, spf.0, spf.1
        )
        .unwrap();
    }
    x.push_str("</feedback>");
    x
}

/// Three weeks of reports from two reporters for three domains: example.com (own servers, an
/// unaligned ESP that improves, a forwarder, a spoofer), example.edu (clean, quarantine).
pub(crate) fn write_reports(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for day in 0..DAYS {
        let esp_unaligned = 60 - 2 * day as u64;
        let com: Vec<Rec<'_>> = vec![
            (
                "192.0.2.10",
                300 + 10 * day as u64,
                ("example.com", "pass"),
                ("example.com", "pass"),
                (true, true),
                false,
            ),
            (
                "192.0.2.11",
                120,
                ("example.com", "pass"),
                ("example.com", "pass"),
                (true, true),
                false,
            ),
            (
                "198.51.100.7",
                esp_unaligned,
                ("sendgrid.net", "pass"),
                ("sendgrid.net", "pass"),
                (false, false),
                false,
            ),
            (
                "198.51.100.8",
                2 * day as u64,
                ("example.com", "pass"),
                ("sendgrid.net", "pass"),
                (true, false),
                false,
            ),
            (
                "203.0.113.50",
                25,
                ("example.com", "fail"),
                ("lists.example.org", "pass"),
                (false, false),
                true,
            ),
            (
                "203.0.113.99",
                5 + (day as u64 % 4) * 5,
                ("spoof.test", "fail"),
                ("spoof.test", "fail"),
                (false, false),
                false,
            ),
        ];
        let net: Vec<Rec<'_>> = vec![(
            "192.0.2.20",
            80 + day as u64,
            ("example.edu", "pass"),
            ("example.edu", "pass"),
            (true, true),
            false,
        )];
        for org in ["google.com", "yahoo.com"] {
            for (domain, p, recs) in [
                ("example.com", "none", &com),
                ("example.edu", "quarantine", &net),
            ] {
                std::fs::write(
                    dir.join(format!("{org}-{domain}-{day}.xml")),
                    report_xml(org, domain, day, p, recs),
                )
                .unwrap();
            }
        }
    }
}

/// A process that ends when the test binary does: run under `sh`, which kills it once its
/// standard input (held by this process) closes.
pub(crate) struct Tied {
    _stdin: ChildStdin,
    _child: Child,
}

/// Starts `dmarc-warden serve` on `db`, listening on `listen` (port 0: any), tied to this process;
/// returns it and its base URL (`http://IP:PORT`).
pub(crate) fn serve(env: &Env, listen: &str, envs: &[(&str, &str)]) -> (Tied, String) {
    let password = crate::postgres::support::server()
        .password_file
        .display()
        .to_string();
    let mut envs = envs.to_vec();
    if env.backend() == Backend::Postgres {
        envs.push(("DMARC_WARDEN_DB_PASSWORD_FILE", &password));
    }
    serve_at(&env.location(), listen, &envs)
}

/// `serve` over the database `db` names (a path or a URL).
fn serve_at(db: &str, listen: &str, envs: &[(&str, &str)]) -> (Tied, String) {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_dmarc-warden"));
    let (server, line) = start_tied(
        &exe,
        &["--db", db, "serve", "--listen", listen],
        envs,
        "serving http://",
    );
    (server, serving_address(&line))
}

/// The base URL in `serve`'s "serving http://…" line, without its final slash.
pub(crate) fn serving_address(line: &str) -> String {
    line.split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .trim_end_matches('/')
        .to_owned()
}

/// Starts `program args`, tied to this process; returns it and the first line of its standard
/// error that contains `marker`.
pub(crate) fn start_tied(
    program: &Path,
    args: &[&str],
    envs: &[(&str, &str)],
    marker: &str,
) -> (Tied, String) {
    let (tied, line, _) = start_tied_saying(program, args, envs, marker);
    (tied, line)
}

/// [`start_tied`], also returning what it said on standard error before that line.
pub(crate) fn start_tied_saying(
    program: &Path,
    args: &[&str],
    envs: &[(&str, &str)],
    marker: &str,
) -> (Tied, String, String) {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("\"$@\" & pid=$!; read _ignored; kill $pid")
        .arg("sh")
        .arg(program)
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let stdin = child.stdin.take().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let line = loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap_or(0) == 0 {
            panic!(
                "{} ended before saying {marker:?}:\n{seen}",
                program.display()
            );
        }
        if line.contains(marker) {
            break line;
        }
        seen.push_str(&line);
    };
    // Keep draining, so the process never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = stderr.read_to_end(&mut sink);
    });
    (
        Tied {
            _stdin: stdin,
            _child: child,
        },
        line,
        seen,
    )
}

pub(crate) struct Fixture {
    pub(crate) env: Env,
    pub(crate) base: String,
    pub(crate) browser: Browser,
    _server: Tied,
    _chromium: Tied,
    _profile: tempfile::TempDir,
}

pub(crate) static FIXTURE: LazyLock<Fixture> = LazyLock::new(Fixture::start);

impl Fixture {
    fn start() -> Fixture {
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
            let store = dmarc_warden::store::Store::open(&env.db()).unwrap();
            store
                .write(|tx| {
                    tx.save_check(&DomainCheck {
                        domain: "example.com".into(),
                        checked_at: dmarc_warden::model::Timestamp(DAY0 + DAYS * 86_400),
                        published: Default::default(),
                        findings: vec![
                            Finding {
                                check: Check::Dmarc,
                                severity: Severity::Ok,
                                message: "v=DMARC1; p=none published".into(),
                                fix: None,
                            },
                            Finding {
                                check: Check::Spf,
                                severity: Severity::Warning,
                                message: "SPF ends with ~all".into(),
                                fix: Some("end it with -all once every sender is listed".into()),
                            },
                        ],
                    })
                })
                .unwrap();
        }
        let (server, base) = serve(&env, "127.0.13.1:0", &[]);
        let profile = tempfile::tempdir().unwrap();
        let chromium = Path::new("/usr/bin/chromium");
        assert!(
            chromium.exists(),
            "Chromium is not installed: run scripts/test, which installs it"
        );
        let user_dir = format!("--user-data-dir={}", profile.path().display());
        let (tied, line) = start_tied(
            chromium,
            &[
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--no-first-run",
                "--no-default-browser-check",
                "--hide-scrollbars",
                "--window-size=1280,900",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                &user_dir,
                "about:blank",
            ],
            &[],
            "DevTools listening on ws://",
        );
        let ws = line
            .split_whitespace()
            .find(|w| w.starts_with("ws://"))
            .unwrap()
            .to_owned();
        let browser = Browser::connect_with_timeout(ws, Duration::from_secs(3600)).unwrap();
        Fixture {
            env,
            base,
            browser,
            _server: server,
            _chromium: tied,
            _profile: profile,
        }
    }

    /// A new tab that records console errors. Tests use the browser one at a time (the guard):
    /// clicks in a tab that is not in front are unreliable.
    fn tab(
        &self,
    ) -> (
        Arc<Tab>,
        Arc<Mutex<Vec<String>>>,
        std::sync::MutexGuard<'static, ()>,
    ) {
        static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
        let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let tab = self.browser.new_tab().unwrap();
        tab.activate().unwrap();
        tab.set_default_timeout(Duration::from_secs(20));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&errors);
        tab.enable_log().unwrap();
        tab.enable_runtime().unwrap();
        tab.add_event_listener(Arc::new(move |event: &Event| {
            let message = match event {
                Event::LogEntryAdded(e) if format!("{:?}", e.params.entry.level) == "Error" => {
                    Some(e.params.entry.text.clone())
                }
                Event::RuntimeExceptionThrown(e) => Some(e.params.exception_details.text.clone()),
                Event::RuntimeConsoleAPICalled(e) if format!("{:?}", e.params.Type) == "Error" => {
                    Some(format!("console.error: {:?}", e.params.args))
                }
                _ => None,
            };
            if let Some(m) = message {
                sink.lock().unwrap().push(m);
            }
        }))
        .unwrap();
        (tab, errors, guard)
    }
}

/// A screenshot of the whole page (not only the window) into `target/web-screenshots/`.
fn screenshot(tab: &Tab, name: &str) {
    let width = eval(tab, "document.documentElement.scrollWidth")
        .as_f64()
        .unwrap_or(1280.0);
    let height = eval(tab, "document.documentElement.scrollHeight")
        .as_f64()
        .unwrap_or(900.0)
        .min(12_000.0);
    let shot = tab
        .call_method(Page::CaptureScreenshot {
            format: Some(Page::CaptureScreenshotFormatOption::Png),
            quality: None,
            clip: Some(Page::Viewport {
                x: 0.0,
                y: 0.0,
                width,
                height,
                scale: 1.0,
            }),
            from_surface: Some(true),
            capture_beyond_viewport: Some(true),
            optimize_for_speed: None,
        })
        .unwrap();
    use base64::Engine;
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot.data)
        .unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/web-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// Evaluates `js` in the page and returns its value.
fn eval(tab: &Tab, js: &str) -> Value {
    tab.evaluate(js, false)
        .unwrap()
        .value
        .unwrap_or(Value::Null)
}

fn text(tab: &Tab, selector: &str) -> String {
    tab.wait_for_element(selector)
        .unwrap()
        .get_inner_text()
        .unwrap()
}

fn number(s: &str) -> u64 {
    s.chars()
        .filter(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("not a number: {s:?}"))
}

fn no_errors(errors: &Mutex<Vec<String>>, page: &str) {
    let errors = errors.lock().unwrap();
    assert!(errors.is_empty(), "console errors on {page}: {errors:#?}");
}

#[test]
fn overview_domain_and_sender_pages_in_chromium() {
    let f = &*FIXTURE;
    let (tab, errors, _one) = f.tab();
    tab.navigate_to(&format!("{}/", f.base)).unwrap();
    tab.wait_until_navigated().unwrap();
    let table = text(&tab, "table#domains");
    for d in ["example.com", "example.edu", "example.net", "example.org"] {
        assert!(table.contains(d), "overview lacks {d}: {table}");
    }
    // The worst finding of example.com's last DNS check; the others were never checked.
    assert!(table.contains("spf: SPF ends with ~all"), "{table}");
    assert!(table.contains("not checked"), "{table}");
    assert!(
        eval(
            &tab,
            "document.querySelectorAll('#domains svg.spark polyline').length"
        )
        .as_u64()
            >= Some(3),
        "no trend sparklines"
    );
    screenshot(&tab, "overview");
    no_errors(&errors, "the overview");

    // Click through to example.com.
    tab.find_element("a.domain[href^='/domain/example.com']")
        .unwrap()
        .click()
        .unwrap();
    tab.wait_until_navigated().unwrap();
    tab.wait_for_element("svg.chart").unwrap();
    assert!(
        tab.get_url().contains("/domain/example.com"),
        "{}",
        tab.get_url()
    );
    let bars = eval(&tab, "document.querySelectorAll('svg.chart g.bar').length");
    // One bar per day of the window: the 14 daily reports up to the latest.
    assert_eq!(bars.as_u64(), Some(14));
    let width = eval(
        &tab,
        "document.querySelector('svg.chart').getBoundingClientRect().width",
    );
    assert!(width.as_f64().unwrap_or(0.0) > 300.0, "chart width {width}");
    let senders = text(&tab, "section.senders");
    for s in [
        "SendGrid",
        "unidentified",
        "needs fixing",
        "unauthorised",
        "forwarded",
    ] {
        assert!(
            senders.to_lowercase().contains(&s.to_lowercase()),
            "senders lack {s}: {senders}"
        );
    }
    let check = text(&tab, "section#check");
    assert!(check.contains("end it with -all"), "{check}");
    let record = text(&tab, "pre.record");
    assert!(record.starts_with("v=DMARC1;"), "{record}");
    screenshot(&tab, "domain");
    no_errors(&errors, "the domain page");

    // And to the ESP's sender page.
    tab.find_element("a.sender[href*='SendGrid']")
        .unwrap()
        .click()
        .unwrap();
    tab.wait_until_navigated().unwrap();
    let sources = text(&tab, "table#sources");
    assert!(sources.contains("198.51.100.7"), "{sources}");
    assert!(sources.contains("sendgrid.net: pass"), "{sources}");
    assert!(text(&tab, "section.fix").contains("DKIM signs with sendgrid.net"));
    screenshot(&tab, "sender");
    no_errors(&errors, "the sender page");

    // The sample reports' domain has failure and SMTP TLS reports.
    // (all of them: they are older than the last two weeks of its reports)
    tab.navigate_to(&format!("{}/domain/example.org?days=0", f.base))
        .unwrap();
    tab.wait_until_navigated().unwrap();
    let page = text(&tab, "main");
    assert!(page.contains("auth-failure"), "no failure reports: {page}");
    assert!(
        page.contains("mx1.example.org") || page.contains("sts"),
        "no TLS reports: {page}"
    );
    screenshot(&tab, "domain-failures-tls");
    no_errors(&errors, "example.org's page");
    tab.close(false).unwrap();
}

#[test]
fn pages_fit_a_phone_width_screen() {
    let f = &*FIXTURE;
    let (tab, errors, _one) = f.tab();
    tab.call_method(Emulation::SetDeviceMetricsOverride {
        width: 390,
        height: 844,
        device_scale_factor: 1.0,
        mobile: true,
        scale: None,
        screen_width: None,
        screen_height: None,
        position_x: None,
        position_y: None,
        dont_set_visible_size: None,
        screen_orientation: None,
        viewport: None,
        display_feature: None,
        device_posture: None,
    })
    .unwrap();
    for (path, name) in [
        ("/", "overview-phone"),
        ("/domain/example.com", "domain-phone"),
        ("/domain/example.com/sender/SendGrid", "sender-phone"),
    ] {
        tab.navigate_to(&format!("{}{path}", f.base)).unwrap();
        tab.wait_until_navigated().unwrap();
        tab.wait_for_element("main").unwrap();
        let overflow = eval(
            &tab,
            "document.documentElement.scrollWidth - document.documentElement.clientWidth",
        );
        assert_eq!(
            overflow.as_i64(),
            Some(0),
            "{path} scrolls sideways at 390 px"
        );
        // Table rows become labelled cards.
        let header_shown = eval(
            &tab,
            "getComputedStyle(document.querySelector('table.cards thead')).display",
        );
        assert_eq!(header_shown, Value::from("none"), "{path}");
        screenshot(&tab, name);
    }
    no_errors(&errors, "the pages at phone width");
    tab.close(false).unwrap();
}

#[test]
fn the_filter_changes_the_numbers_and_stays_in_the_address() {
    let f = &*FIXTURE;
    let (tab, errors, _one) = f.tab();
    tab.navigate_to(&format!("{}/domain/example.com", f.base))
        .unwrap();
    tab.wait_until_navigated().unwrap();
    let all = number(&text(&tab, "#messages"));
    // Fill the form as a user would and submit it.
    tab.find_element("input[name=days]")
        .unwrap()
        .click()
        .unwrap();
    tab.type_str("3").unwrap();
    tab.find_element("form.filter button")
        .unwrap()
        .click()
        .unwrap();
    tab.wait_until_navigated().unwrap();
    tab.wait_for_element("#messages").unwrap();
    assert!(tab.get_url().contains("days=3"), "{}", tab.get_url());
    let three = number(&text(&tab, "#messages"));
    assert!(three > 0 && three < all, "3 days: {three}, 14 days: {all}");
    assert_eq!(
        eval(&tab, "document.querySelectorAll('svg.chart g.bar').length").as_u64(),
        Some(3)
    );
    // Links keep the filter.
    let href = tab
        .find_element("a.sender")
        .unwrap()
        .get_attribute_value("href")
        .unwrap()
        .unwrap();
    assert!(href.ends_with("?days=3"), "{href}");
    // A date range, from the address.
    tab.navigate_to(&format!("{}/?from=2026-10-12&to=2026-10-13", f.base))
        .unwrap();
    tab.wait_until_navigated().unwrap();
    let overview = text(&tab, "table#domains");
    assert!(
        overview.contains("example.com") && !overview.contains("example.org"),
        "{overview}"
    );
    screenshot(&tab, "filtered");
    no_errors(&errors, "the filtered pages");
    tab.close(false).unwrap();
}

#[test]
fn the_html_report_renders_its_charts_from_file_with_the_network_off() {
    let f = &*FIXTURE;
    let file = f.env.dir.path().join("weekly.html");
    let out = f
        .env
        .run(&["report", "--html", file.to_str().unwrap(), "--days", "7"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let html = std::fs::read_to_string(&file).unwrap();
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("<script"));
    let (tab, errors, _one) = f.tab();
    tab.call_method(Network::Enable {
        max_total_buffer_size: None,
        max_resource_buffer_size: None,
        max_post_data_size: None,
        report_direct_socket_traffic: None,
        enable_durable_messages: None,
    })
    .unwrap();
    tab.call_method(Network::EmulateNetworkConditions {
        offline: true,
        latency: 0.0,
        download_throughput: -1.0,
        upload_throughput: -1.0,
        connection_Type: None,
        packet_loss: None,
        packet_queue_length: None,
        packet_reordering: None,
    })
    .unwrap();
    tab.navigate_to(&format!("file://{}", file.display()))
        .unwrap();
    tab.wait_until_navigated().unwrap();
    tab.wait_for_element("article.domain svg.chart").unwrap();
    let charts = eval(
        &tab,
        "Array.from(document.querySelectorAll('svg.chart')).filter(s => s.getBoundingClientRect().width > 300 && s.getBoundingClientRect().height > 20).length",
    );
    // Per domain: daily volume, pass rate, volume by class.
    assert!(charts.as_u64() >= Some(9), "sized charts: {charts}");
    assert!(text(&tab, "body").contains("_dmarc.example.com"));
    screenshot(&tab, "report");
    no_errors(&errors, "the report");
    // It prints (to PDF), each domain on its own page: more pages than domains.
    let pdf = tab.print_to_pdf(None).unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/web-screenshots");
    std::fs::write(dir.join("report.pdf"), &pdf).unwrap();
    let text = String::from_utf8_lossy(&pdf);
    let pages = text.matches("/Type /Page").count() - text.matches("/Type /Pages").count();
    assert!(pages >= 3, "{pages} pages");
    tab.close(false).unwrap();
}

/// A plain HTTP/1.1 GET; returns (status, headers in lower case, body).
pub(crate) fn get(base: &str, path: &str, auth: Option<&str>) -> (u16, String, String) {
    let host = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if let Some(a) = auth {
        req.push_str(&format!("Authorization: {a}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_owned())
}

#[test]
fn responses_carry_security_headers_and_bad_input_is_refused() {
    let f = &*FIXTURE;
    let (status, head, _) = get(&f.base, "/", None);
    assert_eq!(status, 200);
    for h in [
        "content-security-policy: default-src 'self'",
        "frame-ancestors 'none'",
        "x-content-type-options: nosniff",
        "referrer-policy: no-referrer",
    ] {
        assert!(head.contains(h), "missing {h}: {head}");
    }
    assert_eq!(get(&f.base, "/?from=yesterday", None).0, 400);
    assert_eq!(get(&f.base, "/domain/%3Cscript%3E", None).0, 404);
    assert_eq!(get(&f.base, "/nowhere", None).0, 404);
    let long = format!("/?x={}", "a".repeat(10_000));
    assert_eq!(get(&f.base, &long, None).0, 414);
    // A header without end is cut off, not buffered.
    let host = f.base.trim_start_matches("http://");
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = write!(s, "GET / HTTP/1.1\r\nHost: {host}\r\nX-Big: ");
    let chunk = vec![b'a'; 64 * 1024];
    for _ in 0..64 {
        if s.write_all(&chunk).is_err() {
            break; // the server hung up: fine
        }
    }
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    assert!(
        !String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
        "a 4 MiB header was accepted"
    );
    assert_eq!(get(&f.base, "/", None).0, 200);
    let (status, _, _) = {
        let mut s = TcpStream::connect(host).unwrap();
        s.write_all(format!("POST /api/domains HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        (
            raw.split_whitespace()
                .nth(1)
                .unwrap()
                .parse::<u16>()
                .unwrap(),
            (),
            (),
        )
    };
    assert_eq!(status, 405);
    // Still serving after all that.
    assert_eq!(get(&f.base, "/api/domains", None).0, 200);
}

#[test]
fn the_api_answers_what_format_json_prints() {
    let f = &*FIXTURE;
    for (path, args) in [
        ("/api/domains", vec!["domains"]),
        (
            "/api/domains?since=2026-10-20",
            vec!["domains", "--since", "2026-10-20"],
        ),
        (
            "/api/sources?domain=example.com",
            vec!["sources", "--domain", "example.com"],
        ),
        ("/api/senders", vec!["senders"]),
        ("/api/senders?days=3", vec!["senders", "--days", "3"]),
        // The dashboard never asks DNS: its advice is `advise --offline`'s.
        ("/api/advise", vec!["advise", "--offline"]),
        (
            "/api/advise?domain=example.edu&days=0",
            vec![
                "advise",
                "--offline",
                "--domain",
                "example.edu",
                "--days",
                "0",
            ],
        ),
        ("/api/failures", vec!["failures"]),
        ("/api/tls", vec!["tls"]),
        ("/api/reports?limit=5", vec!["reports", "--limit", "5"]),
    ] {
        let (status, head, body) = get(&f.base, path, None);
        assert_eq!(status, 200, "{path}: {body}");
        assert!(
            head.contains("content-type: application/json"),
            "{path}: {head}"
        );
        let mut args = args;
        args.extend(["--format", "json"]);
        let cli = f.env.run(&args);
        assert_eq!(cli.code, 0, "{args:?}: {}", cli.stderr);
        let api: Value = serde_json::from_str(&body).unwrap();
        let cli: Value = serde_json::from_str(&cli.stdout).unwrap();
        assert!(
            api.as_array().is_some_and(|a| !a.is_empty()),
            "{path}: empty"
        );
        assert_eq!(api, cli, "{path} differs from dmarc-warden {args:?}");
    }
}

/// Issue 18: whatever period a page or the report shows, its advice is the one `advise --offline`
/// gives (over the advice window, with the same settings).
#[test]
fn pages_and_the_report_show_the_advice_advise_gives() {
    let f = &*FIXTURE;
    let advice = f
        .env
        .run(&["advise", "--offline", "--format", "json"])
        .json();
    assert!(advice.len() >= 2);
    let between = |text: &str, from: &str, to: &str| -> String {
        let start = text
            .find(from)
            .unwrap_or_else(|| panic!("no {from} in {text}"))
            + from.len();
        text[start..][..text[start..].find(to).unwrap()].to_owned()
    };
    let mut shown = 0;
    for a in &advice {
        let (d, action) = (a["domain"].as_str().unwrap(), a["action"].as_str().unwrap());
        for query in ["", "?days=3", "?days=0", "?from=2026-10-12&to=2026-10-13"] {
            let (status, _, body) = get(&f.base, &format!("/domain/{d}{query}"), None);
            if status == 404 {
                continue; // no report of the domain in that period
            }
            assert_eq!(status, 200, "{d}{query}: {body}");
            assert_eq!(
                between(&body, "<pre class=\"record\">", "</pre>"),
                a["record"].as_str().unwrap(),
                "{d}{query}"
            );
            let badge = between(&body, "<h2>Advice: ", "</h2>");
            assert!(
                badge.ends_with(&format!(">{action}</span>")),
                "{d}{query}: {badge}"
            );
            shown += 1;
        }
    }
    assert!(shown > advice.len() * 2, "{shown}");
    let file = f.env.dir.path().join("advice.html");
    for days in ["3", "0"] {
        let out = f
            .env
            .run(&["report", "--html", file.to_str().unwrap(), "--days", days]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let html = std::fs::read_to_string(&file).unwrap();
        for a in &advice {
            let record = format!(
                "<pre class=\"record\">{}</pre>",
                a["record"].as_str().unwrap()
            );
            assert!(html.contains(&record), "--days {days}: {record}");
        }
    }
}

#[test]
fn a_public_address_needs_a_password_or_the_loud_opt_out() {
    let f = &*FIXTURE;
    // 127.0.13.1 is loopback; an unspecified address is not.
    let out = f.env.run(&["serve", "--listen", "0.0.0.0:0"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("DMARC_WARDEN_WEB_PASSWORD_FILE"),
        "{}",
        out.stderr
    );
    // The loud opt-out passes that check; 192.0.2.1 (TEST-NET, no interface here) then cannot be
    // listened on, so nothing is exposed by this test.
    let out = f.env.run(&[
        "serve",
        "--listen",
        "192.0.2.1:0",
        "--danger-no-auth-on-public-address",
    ]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("cannot listen on 192.0.2.1"),
        "{}",
        out.stderr
    );
}

#[test]
fn with_a_password_requests_without_it_are_refused() {
    let f = &*FIXTURE;
    let pw = f.env.dir.path().join("web-password");
    std::fs::write(&pw, "correct horse\n").unwrap();
    let (_server, base) = serve(
        &f.env,
        "127.0.13.2:0",
        &[("DMARC_WARDEN_WEB_PASSWORD_FILE", pw.to_str().unwrap())],
    );
    let (status, head, _) = get(&base, "/", None);
    assert_eq!(status, 401);
    assert!(head.contains("www-authenticate: basic"), "{head}");
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    assert_eq!(
        get(&base, "/", Some(&format!("Basic {}", b64("me:wrong")))).0,
        401
    );
    assert_eq!(
        get(
            &base,
            "/api/domains",
            Some(&format!("Basic {}", b64("me:correct horse")))
        )
        .0,
        200
    );
    assert_eq!(get(&base, "/", Some("Basic !!!not-base64")).0, 401);
}

on_both_backends! {
/// The page cache learns of another process's commit (SQLite's `data_version`, PostgreSQL's
/// snapshot).
fn pages_follow_a_fetch_that_commits_while_serving(backend: Backend) {
    let env = Env::on(backend);
    let dir = env.dir.path().join("first");
    std::fs::create_dir_all(&dir).unwrap();
    let rec: Rec<'_> = (
        "192.0.2.10",
        10,
        ("example.com", "pass"),
        ("example.com", "pass"),
        (true, true),
        false,
    );
    std::fs::write(
        dir.join("a.xml"),
        report_xml("google.com", "example.com", 0, "none", &[rec]),
    )
    .unwrap();
    assert_eq!(env.run(&["ingest", dir.to_str().unwrap()]).code, 0);
    let listen = match backend {
        Backend::Sqlite => "127.0.13.3:0",
        Backend::Postgres => "127.0.13.5:0",
    };
    let (_server, base) = serve(&env, listen, &[]);
    let domains = |base: &str| {
        let (status, _, body) = get(base, "/api/domains", None);
        assert_eq!(status, 200);
        let v: Value = serde_json::from_str(&body).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|d| d["domain"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(domains(&base), ["example.com"]);
    assert_eq!(domains(&base), ["example.com"]); // now from the cache
    // The sender's page lists its source IPs read from the records of its keys, on either backend.
    let (_, _, page) = get(&base, "/domain/example.com?days=365", None);
    let sender = page
        .split("href=\"/domain/example.com/sender/")
        .nth(1)
        .and_then(|rest| rest.split(['"', '?']).next())
        .expect("a sender linked from the domain's page")
        .to_owned();
    let (status, _, page) = get(
        &base,
        &format!("/domain/example.com/sender/{sender}?days=365"),
        None,
    );
    assert_eq!(status, 200);
    let sources = page.split("id=\"sources\"").nth(1).expect("the IP table");
    assert!(sources.contains("<code>192.0.2.10</code>"), "{sources}");
    assert!(sources.contains(">10<"), "{sources}");
    let (_, _, page) = get(&base, "/", None);
    assert!(!page.contains("example.net"));
    // A writer commits while serve runs (as a nightly fetch would).
    std::fs::write(
        dir.join("b.xml"),
        report_xml("google.com", "example.net", 1, "none", &[rec]),
    )
    .unwrap();
    assert_eq!(env.run(&["ingest", dir.to_str().unwrap()]).code, 0);
    assert_eq!(domains(&base), ["example.com", "example.net"]);
    let (_, _, page) = get(&base, "/", None);
    assert!(page.contains("example.net"), "the overview is stale");
}
}

/// `serve` on PostgreSQL as a role that may only read (`GRANT SELECT`), as the README sets it up:
/// the API answers what the listings print, and the role can write nothing.
#[test]
fn serve_on_postgres_needs_only_a_role_that_reads() {
    use crate::postgres::support::{self, server};
    let env = Env::on(Backend::Postgres);
    let out = env.run(&["ingest", "--quiet", samples().to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let db = env.pg().unwrap();
    let reader = format!("reader_{}", db.name);
    server()
        .admin()
        .batch_execute(&format!(
            "CREATE ROLE {reader} LOGIN PASSWORD 'pw-{reader}';
             GRANT CONNECT ON DATABASE {0} TO {reader}",
            db.name
        ))
        .unwrap();
    server()
        .admin_to(&db.name)
        .batch_execute(&format!(
            "GRANT USAGE ON SCHEMA public TO {reader};
             GRANT SELECT ON ALL TABLES IN SCHEMA public TO {reader}"
        ))
        .unwrap();
    let password = env.dir.path().join("reader-password");
    std::fs::write(&password, format!("pw-{reader}\n")).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let url = format!(
        "postgres://{reader}@{}:{}/{}?sslmode=verify-full&sslrootcert={}",
        support::HOST,
        db.port,
        db.name,
        db.ca.display()
    );
    let envs = [("DMARC_WARDEN_DB_PASSWORD_FILE", password.to_str().unwrap())];
    let (_server, base) = serve_at(&url, "127.0.13.6:0", &envs);
    let (status, _, body) = get(&base, "/api/domains", None);
    assert_eq!(status, 200, "{body}");
    let listed: Value =
        serde_json::from_str(&env.run(&["domains", "--format", "json"]).stdout).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), listed);
    let (status, _, page) = get(&base, "/", None);
    assert_eq!(status, 200);
    assert!(page.contains("example.org"));
    // The role reads; it cannot write.
    let out = env.run_with_env(
        &["--db", &url, "ingest", samples().to_str().unwrap()],
        &envs,
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("permission denied"), "{}", out.stderr);
}

#[test]
fn serve_opens_the_database_read_only_and_never_creates_it() {
    let env = Env::new();
    let out = env.run(&["serve", "--listen", "127.0.13.4:0"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("database"), "{}", out.stderr);
    assert!(!env.db().exists(), "serve created the database");
    let out = env.run(&[
        "report",
        "--html",
        env.dir.path().join("r.html").to_str().unwrap(),
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(!env.db().exists(), "report created the database");
}

/// The web names domains as the CLI does: upper case and a final dot in a path or a query give
/// the same page and the same rows; what is not a domain name is refused.
#[test]
fn domains_in_paths_and_queries_are_taken_in_their_normal_form() {
    let f = &*FIXTURE;
    let (status, _, plain) = get(&f.base, "/domain/example.com", None);
    assert_eq!(status, 200, "{plain}");
    let (status, _, spelled) = get(&f.base, "/domain/EXAMPLE.Com.", None);
    assert_eq!((status, &spelled), (200, &plain));
    let (_, _, api) = get(&f.base, "/api/sources?domain=example.com", None);
    let (_, _, spelled) = get(&f.base, "/api/sources?domain=Example.COM.", None);
    assert_eq!(spelled, api);
    let cli = f
        .env
        .run(&["sources", "--domain", "EXAMPLE.com.", "--format", "json"]);
    let api: Value = serde_json::from_str(&api).unwrap();
    assert!(api.as_array().is_some_and(|a| !a.is_empty()));
    assert_eq!(api, serde_json::from_str::<Value>(&cli.stdout).unwrap());
    let (status, _, body) = get(&f.base, "/?domain=exa%20mple.com", None);
    assert_eq!(status, 400);
    assert!(body.contains("is not a domain name"), "{body}");
    assert_eq!(get(&f.base, "/domain/localhost", None).0, 404);
    assert_eq!(get(&f.base, "/api/sources?domain=a..b", None).0, 400);
}
