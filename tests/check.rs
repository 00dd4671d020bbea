//! `dmarc-warden check` against real servers, started once for the whole test binary on
//! 127.0.12.x: an authoritative DNS server (NSD) serving zones written here, SMTP servers with
//! STARTTLS (Python's aiosmtpd) on port 25 of several addresses, and nginx serving MTA-STS policies
//! on port 443, with certificates from a test CA made by openssl (one expired, one for the wrong
//! name). Each case is a domain of its own in the zones, so one zone triggers one finding.

use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cli::{Env, Out, on_both_backends, s};

/// The DNS server's address.
const DNS_IP: &str = "127.0.12.1";
/// MX hosts: a good certificate, an expired one, one for another name, no STARTTLS at all.
const MX_GOOD: &str = "127.0.12.10";
const MX_EXPIRED: &str = "127.0.12.11";
const MX_WRONG_NAME: &str = "127.0.12.12";
const MX_PLAIN: &str = "127.0.12.13";
const MX_OLD_TLS: &str = "127.0.12.14";
/// nginx, serving every mta-sts.<domain>.
const STS_IP: &str = "127.0.12.20";
/// A UDP and TCP socket that never answers, for the timeout case.
const SILENT_IP: &str = "127.0.12.2";

struct Fixture {
    dir: tempfile::TempDir,
    dns: SocketAddr,
    silent: SocketAddr,
    /// Held open: each server's wrapper stops it when this process exits and the pipe closes.
    _stdins: Mutex<Vec<ChildStdin>>,
    _children: Mutex<Vec<Child>>,
    _silent_sockets: (UdpSocket, std::net::TcpListener),
}

impl Fixture {
    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(start)
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn openssl(dir: &Path, args: &[&str]) -> String {
    run(Command::new("openssl").current_dir(dir).args(args))
}

/// A leaf certificate signed by the test CA for `names`, valid from `start` to `end`
/// (YYYYMMDDHHMMSSZ), as `<file>.pem` and `<file>.key`.
fn leaf(dir: &Path, file: &str, names: &[&str], start: &str, end: &str) {
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={}", names[0]),
            "-keyout",
            &format!("{file}.key"),
            "-out",
            &format!("{file}.csr"),
        ],
    );
    let sans: Vec<String> = names.iter().map(|n| format!("DNS:{n}")).collect();
    std::fs::write(
        dir.join(format!("{file}.ext")),
        format!(
            "[leaf]\nsubjectAltName={}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
            sans.join(",")
        ),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-notext",
            "-startdate",
            start,
            "-enddate",
            end,
            "-extfile",
            &format!("{file}.ext"),
            "-extensions",
            "leaf",
            "-in",
            &format!("{file}.csr"),
            "-out",
            &format!("{file}.pem"),
        ],
    );
}

/// A DKIM key record's `p=` for a new RSA key of `bits`, split into TXT strings.
fn dkim_key(dir: &Path, bits: u32) -> String {
    let key = format!("dkim{bits}.key");
    openssl(dir, &["genrsa", "-out", &key, &bits.to_string()]);
    openssl(
        dir,
        &[
            "rsa",
            "-in",
            &key,
            "-pubout",
            "-outform",
            "DER",
            "-out",
            &format!("{key}.der"),
        ],
    );
    let der = std::fs::read(dir.join(format!("{key}.der"))).unwrap();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let record = format!("v=DKIM1; k=rsa; p={b64}");
    record
        .as_bytes()
        .chunks(200)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn free_port(ip: &str) -> u16 {
    for _ in 0..50 {
        let udp = UdpSocket::bind((ip, 0)).unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind((ip, port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on {ip}");
}

/// Starts `command` (a shell command running a server in the foreground) under a wrapper that stops
/// it when our end of its standard input closes, that is when the test binary exits.
fn spawn(command: &str, log: &Path) -> (Child, ChildStdin) {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{command} & p=$!; cat >/dev/null; kill $p 2>/dev/null; wait"
        ))
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(log).unwrap())
        .stderr(std::fs::File::create(log.with_extension("err")).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command}: {e}"));
    let stdin = child.stdin.take().unwrap();
    (child, stdin)
}

/// The zone of `test.`: one domain per case.
fn test_zone(dir: &Path) -> String {
    let good = dkim_key(dir, 2048);
    let weak = dkim_key(dir, 1024);
    let mut z = String::from(
        "$ORIGIN test.\n$TTL 60\n@ SOA ns.test. hostmaster.test. 1 3600 600 86400 60\n@ NS ns.test.\nns A 127.0.12.1\n",
    );
    let mut add = |line: &str| {
        z.push_str(line);
        z.push('\n');
    };
    // clean.test: everything right.
    add("_dmarc.clean TXT \"v=DMARC1; p=reject; rua=mailto:dmarc@clean.test\"");
    add("clean TXT \"v=spf1 ip4:192.0.2.0/24 mx -all\"");
    add("clean MX 10 mx.clean");
    add(&format!("mx.clean A {MX_GOOD}"));
    add(&format!("s1._domainkey.clean TXT {good}"));
    add("_mta-sts.clean TXT \"v=STSv1; id=20261126\"");
    add(&format!("mta-sts.clean A {STS_IP}"));
    add("_smtp._tls.clean TXT \"v=TLSRPTv1; rua=mailto:tls@clean.test\"");
    // DMARC cases.
    add("nodmarc TXT \"v=spf1 -all\"");
    add("_dmarc.twodmarc TXT \"v=DMARC1; p=none; rua=mailto:d@twodmarc.test\"");
    add("_dmarc.twodmarc TXT \"v=DMARC1; p=reject; rua=mailto:d@twodmarc.test\"");
    add(
        "_dmarc.baddmarc TXT \"v=DMARC1; p=bogus; pct=50; foo=bar; fo=2; rua=mailto:d@baddmarc.test\"",
    );
    add("_dmarc.norua TXT \"v=DMARC1; p=quarantine\"");
    // advise starts from the published record: tags in an unusual order, reports that saw another p.
    add(
        "_dmarc.advised TXT \"v=DMARC1; rua=mailto:agg@advised.test; p=none; ruf=mailto:ruf@advised.test; fo=1; adkim=s\"",
    );
    add("sub.clean TXT \"v=spf1 -all\"");
    // Report authorisation: one destination authorised, one not.
    add(
        "_dmarc.extrua TXT \"v=DMARC1; p=none; rua=mailto:d@reports.example,mailto:d@auth.example\"",
    );
    // SPF cases: 11 lookups through nested includes; 3 void lookups; +all; two records; no mail.
    add("_dmarc.spf11 TXT \"v=DMARC1; p=none; rua=mailto:d@spf11.test\"");
    add("spf11 TXT \"v=spf1 include:i1.spf11.test -all\"");
    for i in 1..=10 {
        add(&format!(
            "i{i}.spf11 TXT \"v=spf1 include:i{}.spf11.test -all\"",
            i + 1
        ));
    }
    add("i11.spf11 TXT \"v=spf1 ip4:192.0.2.1 -all\"");
    add("spfvoid TXT \"v=spf1 a:v1.spfvoid.test a:v2.spfvoid.test a:v3.spfvoid.test -all\"");
    add("spfplusall TXT \"v=spf1 +all\"");
    add("spftwo TXT \"v=spf1 -all\"");
    add("spftwo TXT \"v=spf1 ip4:192.0.2.1 -all\"");
    add("nomail TXT \"v=spf1 ip4:192.0.2.1 ~all\"");
    // Joined with reports: p=reject published while the reports saw p=none; a source passing DKIM
    // that SPF does not list; the reports' selector has a 1024-bit key; a revoked selector.
    add("_dmarc.joined TXT \"v=DMARC1; p=reject; rua=mailto:d@joined.test\"");
    add("joined TXT \"v=spf1 ip4:192.0.2.0/24 -all\"");
    add(&format!("old._domainkey.joined TXT {weak}"));
    add(&format!(
        "tst._domainkey.joined TXT {}",
        good.replacen("v=DKIM1; k=rsa;", "v=DKIM1; k=rsa; t=y;", 1)
    ));
    add("spfneutral TXT \"v=spf1 ip4:192.0.2.1 ?all\"");
    add("gone._domainkey.joined TXT \"v=DKIM1; k=rsa; p=\"");
    // MX TLS cases.
    for (name, ip) in [
        ("expired", MX_EXPIRED),
        ("wrongname", MX_WRONG_NAME),
        ("plain", MX_PLAIN),
        ("oldtls", MX_OLD_TLS),
    ] {
        add(&format!("{name} MX 10 mx.{name}"));
        add(&format!("mx.{name} A {ip}"));
    }
    // An MTA-STS policy that misses an MX.
    add("stsmiss MX 10 mx.clean.test.");
    add("_mta-sts.stsmiss TXT \"v=STSv1; id=1\"");
    add(&format!("mta-sts.stsmiss A {STS_IP}"));
    // MTA-STS enforced on an MX whose certificate expired.
    add("stsbadmx MX 10 mx.expired.test.");
    add("_mta-sts.stsbadmx TXT \"v=STSv1; id=1\"");
    add(&format!("mta-sts.stsbadmx A {STS_IP}"));
    // An MTA-STS record whose policy host serves nothing; a TLS-RPT record without rua=.
    add("stsdown MX 10 mx.clean.test.");
    add("_mta-sts.stsdown TXT \"v=STSv1; id=1\"");
    add("mta-sts.stsdown A 127.0.12.21");
    add("_smtp._tls.stsdown TXT \"v=TLSRPTv1; ruf=mailto:x@stsdown.test\"");
    z
}

fn start() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The test CA, and certificates: good ones, an expired one, one for the wrong name.
    std::fs::create_dir_all(d.join("ca")).unwrap();
    std::fs::write(d.join("ca/index.txt"), "").unwrap();
    std::fs::write(d.join("ca/serial"), "1000\n").unwrap();
    std::fs::write(
        d.join("ca.cnf"),
        "[ca]\ndefault_ca=test\n[test]\ndir=ca\ndatabase=ca/index.txt\nserial=ca/serial\n\
         new_certs_dir=ca\ncertificate=ca.pem\nprivate_key=ca.key\ndefault_md=sha256\n\
         policy=any\nunique_subject=no\ncopy_extensions=none\n[any]\ncommonName=supplied\n",
    )
    .unwrap();
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=dmarc-warden test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    let now = chrono::Utc::now();
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y%m%d%H%M%SZ").to_string();
    let (from, to) = (
        fmt(now - chrono::Duration::days(1)),
        fmt(now + chrono::Duration::days(60)),
    );
    leaf(d, "mx-good", &["mx.clean.test"], &from, &to);
    leaf(
        d,
        "mx-expired",
        &["mx.expired.test"],
        &fmt(now - chrono::Duration::days(60)),
        &fmt(now - chrono::Duration::days(2)),
    );
    leaf(d, "mx-wrong", &["other.test"], &from, &to);
    leaf(
        d,
        "sts",
        &[
            "mta-sts.clean.test",
            "mta-sts.stsmiss.test",
            "mta-sts.stsbadmx.test",
        ],
        &from,
        &to,
    );

    // DNS: NSD with the zones `test.` and `example.`, and a zone it cannot load (SERVFAIL).
    let zone = test_zone(d);
    std::fs::write(d.join("test.zone"), zone).unwrap();
    std::fs::write(
        d.join("example.zone"),
        "$ORIGIN example.\n$TTL 60\n@ SOA ns.test. hostmaster.test. 1 3600 600 86400 60\n@ NS ns.test.\n\
         extrua.test._report._dmarc.auth TXT \"v=DMARC1\"\n",
    )
    .unwrap();
    std::fs::write(d.join("servfail.zone"), "this is not a zone file\n").unwrap();
    let port = free_port(DNS_IP);
    std::fs::write(
        d.join("nsd.conf"),
        format!(
            "server:\n  ip-address: {DNS_IP}@{port}\n  username: \"\"\n  chroot: \"\"\n  zonesdir: \"{p}\"\n  \
             database: \"\"\n  pidfile: \"{p}/nsd.pid\"\n  xfrdfile: \"{p}/xfrd.state\"\n  xfrdir: \"{p}\"\n  \
             zonelistfile: \"{p}/zone.list\"\n  logfile: \"{p}/nsd.log\"\n  verbosity: 1\n  \
             server-count: 1\n\
             remote-control:\n  control-enable: no\n\
             zone:\n  name: test\n  zonefile: test.zone\n\
             zone:\n  name: example\n  zonefile: example.zone\n\
             zone:\n  name: servfail.test\n  zonefile: servfail.zone\n",
            p = d.display()
        ),
    )
    .unwrap();
    let mut stdins = Vec::new();
    let mut children = Vec::new();
    let (c, s) = spawn(
        &format!("/usr/sbin/nsd -d -c {}/nsd.conf", d.display()),
        &d.join("nsd.out"),
    );
    children.push(c);
    stdins.push(s);
    let dns = SocketAddr::new(DNS_IP.parse().unwrap(), port);

    // SMTP: aiosmtpd on port 25 of each MX address.
    std::fs::write(d.join("smtp.py"), SMTP_SERVER).unwrap();
    let p = d.display();
    let (c, s) = spawn(
        &format!(
            "/usr/bin/python3 {p}/smtp.py {MX_GOOD},{p}/mx-good.pem,{p}/mx-good.key \
             {MX_EXPIRED},{p}/mx-expired.pem,{p}/mx-expired.key \
             {MX_WRONG_NAME},{p}/mx-wrong.pem,{p}/mx-wrong.key {MX_PLAIN} \
             {MX_OLD_TLS},{p}/mx-good.pem,{p}/mx-good.key,tls1.1"
        ),
        &d.join("smtp.out"),
    );
    children.push(c);
    stdins.push(s);

    // HTTPS: nginx serving each mta-sts.<domain>'s policy from <dir>/www/<host>/.
    for (host, policy) in [
        (
            "mta-sts.clean.test",
            "version: STSv1\nmode: enforce\nmx: mx.clean.test\nmax_age: 604800\n",
        ),
        (
            "mta-sts.stsmiss.test",
            "version: STSv1\nmode: enforce\nmx: mx.elsewhere.test\nmax_age: 604800\n",
        ),
        (
            "mta-sts.stsbadmx.test",
            "version: STSv1\nmode: enforce\nmx: *.expired.test\nmax_age: 604800\n",
        ),
    ] {
        let www = d.join("www").join(host).join(".well-known");
        std::fs::create_dir_all(&www).unwrap();
        std::fs::write(www.join("mta-sts.txt"), policy).unwrap();
    }
    std::fs::write(
        d.join("nginx.conf"),
        format!(
            "user root;\nworker_processes 1;\npid {p}/nginx.pid;\nerror_log {p}/nginx.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {p}/tmp;\n  proxy_temp_path {p}/tmp;\n  \
             fastcgi_temp_path {p}/tmp;\n  uwsgi_temp_path {p}/tmp;\n  scgi_temp_path {p}/tmp;\n  \
             types {{ text/plain txt; }}\n  \
             server {{\n    listen {STS_IP}:443 ssl;\n    server_name _;\n    ssl_certificate {p}/sts.pem;\n    \
             ssl_certificate_key {p}/sts.key;\n    root {p}/www/$host;\n  }}\n}}\n"
        ),
    )
    .unwrap();
    std::fs::create_dir_all(d.join("tmp")).unwrap();
    std::fs::create_dir_all(d.join("logs")).unwrap();
    let (c, s) = spawn(
        &format!("/usr/sbin/nginx -p {p} -c {p}/nginx.conf -g 'daemon off;'"),
        &d.join("nginx.out"),
    );
    children.push(c);
    stdins.push(s);

    // The config: DKIM selectors for the domains whose reports do not show them.
    std::fs::write(
        d.join("config.toml"),
        "[[domain]]\nname = \"clean.test\"\nselectors = [\"s1\"]\n\n\
         [[domain]]\nname = \"joined.test\"\nselectors = [\"gone\", \"tst\"]\n",
    )
    .unwrap();

    let silent_udp = UdpSocket::bind((SILENT_IP, 0)).unwrap();
    let silent = silent_udp.local_addr().unwrap();
    let silent_tcp = std::net::TcpListener::bind(silent).unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    let log = |name: &str| std::fs::read_to_string(d.join(name)).unwrap_or_default();
    while !dns_answers(dns) {
        assert!(
            Instant::now() < deadline,
            "NSD did not answer on {dns}: {}{}{}",
            log("nsd.out"),
            log("nsd.err"),
            log("nsd.log")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for (addr, port, name) in [
        (MX_GOOD, 25, "smtp"),
        (MX_EXPIRED, 25, "smtp"),
        (MX_WRONG_NAME, 25, "smtp"),
        (MX_PLAIN, 25, "smtp"),
        (MX_OLD_TLS, 25, "smtp"),
        (STS_IP, 443, "nginx"),
    ] {
        while TcpStream::connect((addr, port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{name} did not listen on {addr}:{port}: {}{}",
                log(&format!("{name}.err")),
                log("nginx.log")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Fixture {
        dir,
        dns,
        silent,
        _stdins: Mutex::new(stdins),
        _children: Mutex::new(children),
        _silent_sockets: (silent_udp, silent_tcp),
    }
}

/// Whether the server answers a query for `test. SOA` with NOERROR.
fn dns_answers(server: SocketAddr) -> bool {
    let Ok(sock) = UdpSocket::bind("127.0.12.1:0") else {
        return false;
    };
    let _ = sock.set_read_timeout(Some(Duration::from_millis(200)));
    // Header: id 0x1234, RD, one question; then `test.` SOA IN.
    let query = [
        0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 4, b't', b'e', b's', b't', 0, 0, 6, 0, 1,
    ];
    if sock.send_to(&query, server).is_err() {
        return false;
    }
    let mut buf = [0u8; 512];
    matches!(sock.recv(&mut buf), Ok(n) if n > 12 && buf[0] == 0x12 && buf[3] & 0x0f == 0)
}

const SMTP_SERVER: &str = r#"
# SMTP servers for dmarc-warden's check tests: ADDR[,CERT,KEY[,tls1.1]] ... ; STARTTLS where a
# certificate is given, at most TLS 1.1 with `tls1.1`. Runs until killed (by the wrapper, when the
# test binary exits).
import ssl, sys, threading
from aiosmtpd.controller import Controller

class Handler:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"

controllers = []
for spec in sys.argv[1:]:
    parts = spec.split(",")
    context = None
    if len(parts) >= 3:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(parts[1], parts[2])
    if len(parts) == 4:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    c = Controller(Handler(), hostname=parts[0], port=25, tls_context=context,
                   require_starttls=False, server_hostname="mx.test")
    c.start()
    controllers.append(c)
print("ready", flush=True)
threading.Event().wait()
"#;

/// Runs `check` on `domains` against the fixture's DNS server, as JSON.
fn check(env: &Env, domains: &[&str]) -> (Out, Vec<Value>) {
    let f = fixture();
    let resolver = f.dns.to_string();
    let ca = f.ca().display().to_string();
    let config = f.config().display().to_string();
    let mut args = vec![
        "check",
        "--format",
        "json",
        "--resolver",
        &resolver,
        "--ca-file",
        &ca,
        "--config",
        &config,
    ];
    args.extend_from_slice(domains);
    let out = env.run(&args);
    assert!(
        out.code == 0 || out.code == 1,
        "exit {}: {}{}",
        out.code,
        out.stdout,
        out.stderr
    );
    let json = out.json();
    (out, json)
}

/// The findings of `domain` in a `check` output: (check, severity, message).
fn findings(json: &[Value], domain: &str) -> Vec<(String, String, String)> {
    let d = json
        .iter()
        .find(|d| d["domain"] == domain)
        .unwrap_or_else(|| panic!("{domain} not in {json:?}"));
    d["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["check"].as_str().unwrap().to_owned(),
                f["severity"].as_str().unwrap().to_owned(),
                f["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Asserts `domain` has a finding of `check` with `severity` whose message contains `words`.
#[track_caller]
fn has(json: &[Value], domain: &str, check: &str, severity: &str, words: &str) {
    let all = findings(json, domain);
    assert!(
        all.iter()
            .any(|(c, s, m)| c == check && s == severity && m.contains(words)),
        "{domain}: no {check} {severity} finding with {words:?} in {all:#?}"
    );
}

#[test]
fn a_clean_domain_has_no_error_and_its_records_are_shown_and_kept() {
    let env = Env::new();
    let (out, json) = check(&env, &["clean.test"]);
    let all = findings(&json, "clean.test");
    assert!(
        all.iter().all(|(_, s, _)| s != "error"),
        "errors for a clean domain: {all:#?}"
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    for check in ["dmarc", "spf", "dkim", "mx-tls", "mta-sts"] {
        assert!(
            all.iter().any(|(c, s, _)| c == check && s == "ok"),
            "no ok {check} finding: {all:#?}"
        );
    }
    let published = &json[0]["published"];
    assert_eq!(
        published["dmarc"][0],
        "v=DMARC1; p=reject; rua=mailto:dmarc@clean.test"
    );
    assert_eq!(published["mx"][0], "10 mx.clean.test");
    assert!(
        published["dkim"]["s1"][0]
            .as_str()
            .unwrap()
            .starts_with("v=DKIM1")
    );
    assert!(json[0]["checked_at"].as_str().unwrap().ends_with('Z'));
    // No TLS report stored yet: a warning, not an error.
    has(&json, "clean.test", "tls-rpt", "warning", "no TLS report");
    // The result is kept: the database holds it.
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let (n, worst): (i64, String) = conn
        .query_row(
            "SELECT count(*), max(worst) FROM dns_checks WHERE domain = 'clean.test'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((n, worst.as_str()), (1, "warning"));
}

#[test]
fn dmarc_record_problems_are_each_found() {
    let env = Env::new();
    let (out, json) = check(
        &env,
        &[
            "nodmarc.test",
            "twodmarc.test",
            "baddmarc.test",
            "norua.test",
            "sub.clean.test",
        ],
    );
    assert_eq!(out.code, 1, "error findings exit 1: {}", out.stderr);
    has(&json, "nodmarc.test", "dmarc", "error", "no DMARC record");
    has(&json, "twodmarc.test", "dmarc", "error", "2 DMARC records");
    has(&json, "baddmarc.test", "dmarc", "error", "p=bogus");
    has(
        &json,
        "baddmarc.test",
        "dmarc",
        "info",
        "pct=50 was removed",
    );
    has(
        &json,
        "baddmarc.test",
        "dmarc",
        "info",
        "unknown tag foo=bar",
    );
    has(
        &json,
        "baddmarc.test",
        "dmarc",
        "warning",
        "fo=2 is not a list",
    );
    has(&json, "norua.test", "dmarc", "warning", "no rua=");
    has(
        &json,
        "sub.clean.test",
        "dmarc",
        "warning",
        "_dmarc.clean.test applies",
    );
}

#[test]
fn an_external_report_destination_without_authorisation_is_an_error() {
    let env = Env::new();
    let (_, json) = check(&env, &["extrua.test"]);
    has(
        &json,
        "extrua.test",
        "report-auth",
        "error",
        "reports to reports.example are not authorised",
    );
    has(
        &json,
        "extrua.test",
        "report-auth",
        "ok",
        "auth.example accepts reports",
    );
}

#[test]
fn spf_problems_are_each_found() {
    let env = Env::new();
    let (_, json) = check(
        &env,
        &[
            "spf11.test",
            "spfvoid.test",
            "spfplusall.test",
            "spftwo.test",
            "nomail.test",
            "spfneutral.test",
        ],
    );
    has(&json, "spf11.test", "spf", "error", "needs 11 DNS lookups");
    has(
        &json,
        "spfvoid.test",
        "spf",
        "error",
        "3 SPF lookups find nothing",
    );
    has(&json, "spfplusall.test", "spf", "error", "+all");
    has(&json, "spfneutral.test", "spf", "warning", "?all");
    has(&json, "spftwo.test", "spf", "error", "2 SPF records");
    has(
        &json,
        "nomail.test",
        "spf",
        "warning",
        "yet its SPF is not v=spf1 -all",
    );
}

/// An aggregate report for joined.test: `count` messages from `ip`, DKIM-signed with `selector`.
fn report(id: &str, begin: i64, ip: &str, selector: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>rep.example</org_name>\
         <report_id>{id}</report_id><date_range><begin>{begin}</begin><end>{}</end></date_range>\
         </report_metadata><policy_published><domain>joined.test</domain><p>none</p></policy_published>\
         <record><row><source_ip>{ip}</source_ip><count>7</count><policy_evaluated>\
         <disposition>none</disposition><dkim>pass</dkim><spf>fail</spf></policy_evaluated></row>\
         <identifiers><header_from>joined.test</header_from></identifiers><auth_results>\
         <dkim><domain>joined.test</domain><selector>{selector}</selector><result>pass</result></dkim>\
         <spf><domain>joined.test</domain><result>fail</result></spf></auth_results></record></feedback>",
        begin + 86_399
    )
}

on_both_backends! {
    /// On both backends: `check` reads the reports' evidence from the database it is given.
    fn dns_is_joined_with_the_reports(backend: Backend) {
        let env = Env::on(backend);
        let dir = tempfile::tempdir().unwrap();
        let now = chrono::Utc::now().timestamp();
        let day = 86_400;
        std::fs::write(
            dir.path().join("a.xml"),
            report("a", now - 400 * day, "198.51.100.7", "old"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("b.xml"),
            report("b", now - 2 * day, "198.51.100.7", "old"),
        )
        .unwrap();
        let ingest = env.run(&["ingest", dir.path().to_str().unwrap()]);
        assert_eq!(ingest.code, 0, "{}", ingest.stderr);
        let (_, json) = check(&env, &["joined.test"]);
        has(
            &json,
            "joined.test",
            "dmarc",
            "warning",
            "published p=reject, but the latest report",
        );
        has(
            &json,
            "joined.test",
            "spf",
            "warning",
            "198.51.100.7 (DKIM d=joined.test, 7 messages",
        );
        has(
            &json,
            "joined.test",
            "dkim",
            "warning",
            "selector old: RSA key of 1024 bits",
        );
        has(
            &json,
            "joined.test",
            "dkim",
            "info",
            "selector old has been signing since",
        );
        has(
            &json,
            "joined.test",
            "dkim",
            "warning",
            "selector gone: the key is revoked",
        );
        has(
            &json,
            "joined.test",
            "dkim",
            "info",
            "selector tst: t=y (testing)",
        );
        has(
            &json,
            "joined.test",
            "dkim",
            "ok",
            "selector tst: RSA 2048-bit key",
        );
    }
}

#[test]
fn mx_tls_problems_are_each_found() {
    let env = Env::new();
    let (out, json) = check(
        &env,
        &[
            "expired.test",
            "wrongname.test",
            "plain.test",
            "oldtls.test",
        ],
    );
    assert_eq!(out.code, 1);
    has(
        &json,
        "expired.test",
        "mx-tls",
        "error",
        "mx.expired.test: the certificate expired on",
    );
    has(
        &json,
        "wrongname.test",
        "mx-tls",
        "error",
        "mx.wrongname.test: the certificate is not trusted for mx.wrongname.test: certificate not valid for name",
    );
    has(
        &json,
        "plain.test",
        "mx-tls",
        "error",
        "does not offer STARTTLS",
    );
    has(
        &json,
        "oldtls.test",
        "mx-tls",
        "error",
        "TLS 1.2 or newer is needed",
    );
}

#[test]
fn an_mta_sts_policy_missing_an_mx_is_an_error() {
    let env = Env::new();
    let (_, json) = check(&env, &["stsmiss.test"]);
    has(
        &json,
        "stsmiss.test",
        "mta-sts",
        "error",
        "MX mx.clean.test is not covered",
    );
    let (_, json) = check(&env, &["stsbadmx.test"]);
    has(
        &json,
        "stsbadmx.test",
        "mta-sts",
        "error",
        "MTA-STS mode enforce, but mx.expired.test has a certificate that does not validate",
    );
    assert!(
        !findings(&json, "stsbadmx.test")
            .iter()
            .any(|(_, _, m)| m.contains("not covered")),
        "*.expired.test covers mx.expired.test"
    );
}

#[test]
fn an_mta_sts_policy_that_cannot_be_fetched_and_a_tls_rpt_record_without_rua_are_errors() {
    let env = Env::new();
    let (_, json) = check(&env, &["stsdown.test"]);
    has(
        &json,
        "stsdown.test",
        "mta-sts",
        "error",
        "the MTA-STS policy cannot be fetched: https://mta-sts.stsdown.test/.well-known/mta-sts.txt",
    );
    has(
        &json,
        "stsdown.test",
        "tls-rpt",
        "error",
        "has no valid rua=",
    );
}

#[test]
fn dns_failures_are_findings_not_crashes() {
    let env = Env::new();
    let (out, json) = check(&env, &["servfail.test"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    has(
        &json,
        "servfail.test",
        "dmarc",
        "error",
        "could not resolve _dmarc.servfail.test: SERVFAIL",
    );

    // A resolver that never answers: every question times out, and the run still reports.
    let f = fixture();
    let silent = f.silent.to_string();
    let out = env.run(&[
        "check",
        "--format",
        "json",
        "--resolver",
        &silent,
        "--dns-timeout",
        "1",
        "clean.test",
    ]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    has(
        &out.json(),
        "clean.test",
        "dmarc",
        "error",
        "could not resolve _dmarc.clean.test: timed out",
    );
}

#[test]
fn the_table_shows_each_finding_and_a_bad_resolver_is_fatal() {
    let env = Env::new();
    let f = fixture();
    let resolver = f.dns.to_string();
    let ca = f.ca().display().to_string();
    // Wide enough that no message is wrapped.
    let out = env.run_with_env(
        &[
            "check",
            "--resolver",
            &resolver,
            "--ca-file",
            &ca,
            "plain.test",
        ],
        &[("COLUMNS", "300")],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stdout.starts_with("plain.test (checked "),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.lines().any(|l| l
            .starts_with("  error    mx-tls       mx.plain.test does not offer STARTTLS")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("fix: enable STARTTLS on the MX host"),
        "{}",
        out.stdout
    );
    let out = env.run(&[
        "check",
        "--resolver",
        &resolver,
        "--ca-file",
        &ca,
        "--format",
        "csv",
        "plain.test",
    ]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let mut lines = out.stdout.lines();
    assert_eq!(
        lines.next(),
        Some("domain,checked_at,check,severity,message,fix")
    );
    assert!(
        lines.any(|l| l.starts_with("plain.test,") && l.contains(",mx-tls,error,")),
        "{}",
        out.stdout
    );
    let out = env.run(&["check", "--resolver", "not-an-ip", "plain.test"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--resolver"), "{}", out.stderr);
    let _ = std::io::stderr().flush();
}

#[test]
fn without_domains_every_known_domain_is_checked_and_the_last_check_can_be_read_back() {
    let env = Env::new();
    // A TLS report for clean.test: TLS-RPT then says reports arrive.
    let dir = tempfile::tempdir().unwrap();
    let sample = crate::cli::samples().join("tls/google.com!example.org!1793491200.json");
    let text = std::fs::read_to_string(sample)
        .unwrap()
        .replace("example.org", "clean.test");
    std::fs::write(dir.path().join("tls.json"), text).unwrap();
    let ingest = env.run(&["ingest", dir.path().to_str().unwrap()]);
    assert_eq!(ingest.code, 0, "{}", ingest.stderr);
    // No domain named: the config's [[domain]] tables (clean.test, joined.test).
    let (_, json) = check(&env, &[]);
    let domains: Vec<&str> = json.iter().map(|d| d["domain"].as_str().unwrap()).collect();
    assert_eq!(domains, ["clean.test", "joined.test"]);
    has(&json, "clean.test", "tls-rpt", "ok", "1 TLS reports stored");
    check(&env, &["clean.test"]);
    let store = dmarc_warden::store::Store::open(&env.db()).unwrap();
    let last = store.last_checks(None).unwrap();
    assert_eq!(last.len(), 2);
    assert_eq!(last[0].domain, "clean.test");
    assert_eq!(
        serde_json::to_value(&last[0]).unwrap()["findings"],
        json[0]["findings"]
    );
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM dns_checks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 3, "every run is kept");
    // --last shows the stored result without asking anyone (no --resolver: nothing is queried).
    let out = env.run(&["check", "--last", "--format", "json", "joined.test"]);
    assert_eq!(out.code, 0, "no error finding: {}", out.stderr);
    let shown = out.json();
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0]["findings"], json[1]["findings"]);
}

#[test]
fn advise_can_read_the_record_that_applies() {
    use dmarc_warden::analyse::check::DmarcLookup;
    use dmarc_warden::fetch::probe::{dns::Dns, lookup_dmarc};
    let f = fixture();
    let dns = Dns::new(Some(f.dns), Duration::from_secs(5)).unwrap();
    match lookup_dmarc(&dns, "clean.test") {
        DmarcLookup::Own(r) => {
            assert_eq!(
                r.to_record(),
                "v=DMARC1; p=reject; rua=mailto:dmarc@clean.test"
            )
        }
        other => panic!("{other:?}"),
    }
    match lookup_dmarc(&dns, "sub.clean.test") {
        DmarcLookup::Inherited { at, record } => {
            assert_eq!(at, "_dmarc.clean.test");
            assert_eq!(record.p().as_deref(), Some("reject"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(lookup_dmarc(&dns, "nodmarc.test"), DmarcLookup::Missing);
    assert!(matches!(
        lookup_dmarc(&dns, "twodmarc.test"),
        DmarcLookup::Invalid(_)
    ));
    assert_eq!(
        lookup_dmarc(&dns, "servfail.test"),
        DmarcLookup::Failed("SERVFAIL".into())
    );
}

/// Issue 12: `advise` starts from the record DNS publishes, keeps every tag it has (no guessed
/// rua=), notes a mismatch with the reports and a record without rua=; `--offline` falls back to the
/// last stored `check`, else to the reports.
#[test]
fn advise_starts_from_the_published_record() {
    use crate::advice::{NONE, OWN, pol, report};
    let f = fixture();
    let env = Env::new();
    let dir = env.dir.path().join("advised");
    std::fs::create_dir_all(&dir).unwrap();
    for day in 0..8 {
        for org in ["google.com", "yahoo.com"] {
            for (domain, policy) in [("advised.test", pol("quarantine")), ("norua.test", NONE)] {
                std::fs::write(
                    dir.join(format!("{org}-{domain}-{day}.xml")),
                    report(org, domain, day, policy, &[OWN]),
                )
                .unwrap();
            }
        }
    }
    assert_eq!(env.run(&["ingest", "--quiet", s(&dir)]).code, 0);
    let resolver = f.dns.to_string();
    let advise = |extra: &[&str]| -> Value {
        let mut args = vec!["advise", "--format", "json", "--domain", "advised.test"];
        args.extend_from_slice(extra);
        let out = env.run(&args);
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.json()[0].clone()
    };
    let live = advise(&["--resolver", &resolver]);
    assert_eq!(live["current"]["p"], "none", "{live:#}");
    assert_eq!(live["current"]["from_dns"], true);
    assert_eq!(live["current"]["adkim"], "s");
    assert_eq!(live["action"], "step up");
    assert_eq!(
        live["record"],
        "v=DMARC1; p=quarantine; t=y; pct=0; sp=quarantine; np=quarantine; \
         rua=mailto:agg@advised.test; ruf=mailto:ruf@advised.test; fo=1; adkim=s"
    );
    let notes = live["notes"].to_string();
    assert!(
        notes.contains("DNS publishes p=none but the latest reports saw p=quarantine"),
        "{notes}"
    );
    assert!(!notes.contains("assumed"), "{notes}");

    // Offline, before any check: the reports' policy, and where reports go is a stated guess.
    let offline = advise(&["--offline"]);
    assert_eq!(offline["current"]["p"], "quarantine", "{offline:#}");
    assert_eq!(offline["current"]["from_dns"], false);
    let notes = offline["notes"].to_string();
    assert!(notes.contains("DNS not read (--offline)"), "{notes}");
    assert!(notes.contains("rua= assumed"), "{notes}");

    // Offline after a check: the record the check stored.
    check(&env, &["advised.test"]);
    let stored = advise(&["--offline"]);
    assert_eq!(stored["current"]["p"], "none", "{stored:#}");
    assert_eq!(stored["record"], live["record"]);
    assert!(
        stored["notes"]
            .to_string()
            .contains("the record `check` read on"),
        "{stored:#}"
    );

    // A published record without rua=: said, not guessed.
    let out = env.run(&[
        "advise",
        "--format",
        "json",
        "--domain",
        "norua.test",
        "--resolver",
        &resolver,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let norua = &out.json()[0];
    assert_eq!(norua["current"]["p"], "quarantine");
    assert!(
        !norua["record"].as_str().unwrap().contains("rua="),
        "{norua:#}"
    );
    assert!(
        norua["notes"].to_string().contains("has no rua="),
        "{norua:#}"
    );
}

/// Issue 14: `notify` tells once what the last `check` found for each domain, and again only when
/// what DNS publishes (or the kind of problem) changed.
#[test]
fn notify_tells_when_what_dns_publishes_changes() {
    let f = fixture();
    let env = Env::new();
    let config = env.dir.path().join("notify.toml");
    std::fs::write(&config, "").unwrap();
    let notify = || {
        let out = env.run(&["notify", "--config", s(&config)]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.stdout
    };
    let (out, _) = check(&env, &["clean.test"]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let first = notify();
    assert!(
        first.contains("[dns_changed] clean.test: what DNS publishes"),
        "{first}"
    );
    assert!(first.contains("0 error(s)"), "{first}");
    assert!(first.contains("check --last clean.test"), "{first}");
    // The same answers again: nothing new.
    check(&env, &["clean.test"]);
    assert!(!notify().contains("dns_changed"));
    // DNS stops answering: the records are gone and errors appear.
    let silent = f.silent.to_string();
    let out = env.run(&[
        "check",
        "--resolver",
        &silent,
        "--dns-timeout",
        "1",
        "clean.test",
    ]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let changed = notify();
    assert!(
        changed.contains("[dns_changed] clean.test") && changed.contains("timed out"),
        "{changed}"
    );
    assert!(!notify().contains("dns_changed"));
}

/// `check` takes its domains as every option does: upper case and the root's final dot name the
/// same domain, checked once, and `--last` finds it under either spelling.
#[test]
fn check_names_domains_in_their_normal_form() {
    let env = Env::new();
    let (_, json) = check(&env, &["CLEAN.Test.", "clean.test"]);
    assert_eq!(json.len(), 1, "{json:?}");
    assert_eq!(json[0]["domain"], "clean.test");
    let last = env.run(&["check", "--last", "--format", "json", "Clean.TEST."]);
    assert!(last.code == 0 || last.code == 1, "{}", last.stderr);
    let last = last.json();
    assert_eq!(last.len(), 1, "{last:?}");
    assert_eq!(last[0]["domain"], "clean.test");
    assert_eq!(last[0]["findings"], json[0]["findings"]);
}
