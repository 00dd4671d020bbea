//! The Debian package, installed into this machine as an administrator would: `scripts/build-deb`
//! makes it with cargo-deb from the debug binary this test binary was built with (the same code
//! unoptimised: CI makes no release build for it; `scripts/build-deb` alone packages a release
//! build), `dpkg -i` installs it, `man` finds its pages, `systemd-analyze verify` accepts its units
//! (and finds their `Documentation=` man pages), the system user can use its state directory, an
//! upgrade keeps the edited configuration, and `dpkg --purge` leaves nothing behind but the system
//! user. Runs as root
//! (as CI does); fails, never skips, when a tool is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const PACKAGE: &str = "dmarc-warden";

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

fn ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// dpkg, waiting while another installation holds its lock (apt run by a test script).
fn dpkg(args: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let out = run("dpkg", args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() {
            return format!("{}{err}", String::from_utf8_lossy(&out.stdout));
        }
        if err.contains("lock") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_secs(2));
            continue;
        }
        panic!("dpkg {args:?}: {}\n{err}", out.status);
    }
}

fn installed() -> bool {
    run("dpkg-query", &["-W", "-f=${Status}", PACKAGE])
        .stdout
        .starts_with(b"install ok installed")
}

/// Purges the package however the test ends.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        let _ = run("dpkg", &["--purge", PACKAGE]);
    }
}

/// `scripts/build-deb` with the test's binary; the package written to `out` with this revision.
fn build(out: &Path, revision: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = out.join(format!("{PACKAGE}-{revision}.deb"));
    let status = Command::new(root.join("scripts/build-deb"))
        .current_dir(root)
        .args(["--binary", env!("CARGO_BIN_EXE_dmarc-warden"), "--"])
        // Stripped (the debug binary's symbols are 200 MB) and quickly compressed.
        .args(["--strip", "--no-dbgsym", "--fast", "--quiet"])
        .args(["--deb-revision", revision])
        .arg("--output")
        .arg(&out)
        .status()
        .expect("cannot run scripts/build-deb");
    assert!(status.success(), "scripts/build-deb: {status}");
    assert!(out.exists(), "no package at {}", out.display());
    out
}

fn mode(path: &str) -> (u32, String, String) {
    let line = ok("stat", &["-c", "%a %U %G", path]);
    let mut parts = line.split_whitespace();
    (
        u32::from_str_radix(parts.next().unwrap(), 8).unwrap(),
        parts.next().unwrap().to_owned(),
        parts.next().unwrap().to_owned(),
    )
}

#[test]
fn the_debian_package_installs_upgrades_and_purges() {
    assert_eq!(
        ok("id", &["-u"]).trim(),
        "0",
        "the package test installs with dpkg: run it as root (CI does)"
    );
    for tool in [
        "/usr/bin/dpkg",
        "/usr/bin/man",
        "/usr/bin/systemd-analyze",
        "/usr/sbin/adduser",
    ] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: run scripts/test, which installs man-db, systemd and adduser"
        );
    }
    assert!(
        !installed(),
        "{PACKAGE} is installed on this machine already and this test would remove it: purge it \
         first (`dpkg --purge {PACKAGE}`) if an interrupted test run left it"
    );
    let dir = tempfile::tempdir().unwrap();
    let first = build(dir.path(), "1");
    let _purge = Purge;
    // Man pages are installed even where the image excludes them (Debian's slim containers).
    dpkg(&[
        "--path-include=/usr/share/man/*",
        "-i",
        first.to_str().unwrap(),
    ]);
    assert!(installed());
    assert!(ok("/usr/bin/dmarc-warden", &["--version"]).starts_with("dmarc-warden "));

    // The system user and what it owns.
    let user = ok("getent", &["passwd", PACKAGE]);
    assert!(
        user.contains(":/var/lib/dmarc-warden:"),
        "home of the user: {user}"
    );
    assert_eq!(
        mode("/var/lib/dmarc-warden"),
        (0o750, PACKAGE.into(), PACKAGE.into())
    );
    assert_eq!(
        mode("/etc/dmarc-warden"),
        (0o750, "root".into(), PACKAGE.into())
    );
    assert_eq!(
        mode("/etc/dmarc-warden/config.toml"),
        (0o640, "root".into(), PACKAGE.into())
    );
    let conffiles = ok("dpkg-query", &["-W", "-f=${Conffiles}", PACKAGE]);
    for f in ["/etc/dmarc-warden/config.toml", "/etc/default/dmarc-warden"] {
        assert!(conffiles.contains(f), "{f} is not a conffile: {conffiles}");
    }

    // The man pages resolve, by file and by name; completions are where the shells look.
    let page = ok("man", &["-w", PACKAGE]);
    assert_eq!(page.trim(), "/usr/share/man/man1/dmarc-warden.1.gz");
    let text = ok("man", &["-l", page.trim()]);
    assert!(text.contains("dmarc-warden-fetch"), "{text}");
    let fetch = ok("man", &["dmarc-warden-fetch"]);
    assert!(fetch.contains("--metrics-file"), "{fetch}");
    let serve = ok("man", &["dmarc-warden-serve"]);
    assert!(serve.contains("DMARC_WARDEN_WEB_HTPASSWD"), "{serve}");
    for f in [
        "/usr/share/bash-completion/completions/dmarc-warden",
        "/usr/share/zsh/vendor-completions/_dmarc-warden",
        "/usr/share/fish/vendor_completions.d/dmarc-warden.fish",
    ] {
        assert!(Path::new(f).exists(), "{f} missing");
    }
    ok(
        "bash",
        &["-n", "/usr/share/bash-completion/completions/dmarc-warden"],
    );

    // The units: systemd accepts them (binary, man pages of Documentation=, every setting) and
    // they are hardened.
    let units = [
        "/usr/lib/systemd/system/dmarc-warden-fetch.service",
        "/usr/lib/systemd/system/dmarc-warden-fetch.timer",
        "/usr/lib/systemd/system/dmarc-warden-serve.service",
    ];
    let out = run("systemd-analyze", &[&["verify"][..], &units[..]].concat());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify: {}\n{said}",
        out.status
    );
    for unit in [units[0], units[2]] {
        let text = std::fs::read_to_string(unit).unwrap();
        for setting in [
            "User=dmarc-warden",
            "ProtectSystem=strict",
            "NoNewPrivileges=yes",
            "PrivateTmp=yes",
            "StateDirectory=dmarc-warden",
        ] {
            assert!(text.contains(setting), "{unit}: no {setting}");
        }
        let out = run("systemd-analyze", &["security", "--offline=true", unit]);
        let report = String::from_utf8_lossy(&out.stdout);
        let level: f64 = report
            .lines()
            .find_map(|l| l.split("exposure level for ").nth(1))
            .and_then(|l| l.split(": ").nth(1))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|l| l.parse().ok())
            .unwrap_or_else(|| panic!("{unit}: no exposure level in {report}"));
        assert!(level <= 2.0, "{unit}: exposure {level}\n{report}");
    }
    let timer = std::fs::read_to_string(units[1]).unwrap();
    assert!(timer.contains("RandomizedDelaySec="), "{timer}");

    // The installed binary, as the system user, with the installed config: makes its database
    // in the state directory.
    let db = "/var/lib/dmarc-warden/dmarc-warden.db";
    let as_user = |args: &[&str]| {
        let mut all = vec![
            "-u",
            PACKAGE,
            "--",
            "env",
            "DMARC_WARDEN_CONFIG=/etc/dmarc-warden/config.toml",
        ];
        all.push("/usr/bin/dmarc-warden");
        all.extend(["--db", db]);
        all.extend(args);
        run("runuser", &all)
    };
    // A listing needs a database; `reprocess` (nothing kept yet) makes one, as the user, in the
    // state directory.
    let out = as_user(&["reprocess"]);
    assert!(
        out.status.success(),
        "as dmarc-warden: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = as_user(&["domains", "--format", "json"]);
    assert!(
        out.status.success(),
        "as dmarc-warden: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    assert_eq!(mode(db).1, PACKAGE);

    // An upgrade keeps the administrator's configuration and the data.
    let edited = format!(
        "{}\n# edited by the administrator\n",
        std::fs::read_to_string("/etc/dmarc-warden/config.toml").unwrap()
    );
    std::fs::write("/etc/dmarc-warden/config.toml", &edited).unwrap();
    let second = build(dir.path(), "2");
    dpkg(&[
        "--force-confold",
        "--path-include=/usr/share/man/*",
        "-i",
        second.to_str().unwrap(),
    ]);
    assert_eq!(
        ok("dpkg-query", &["-W", "-f=${Version}", PACKAGE]),
        format!("{}-2", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        std::fs::read_to_string("/etc/dmarc-warden/config.toml").unwrap(),
        edited
    );
    assert!(Path::new(db).exists(), "the upgrade lost the database");
    assert!(as_user(&["domains"]).status.success());

    // Purge: nothing of it is left.
    dpkg(&["--purge", PACKAGE]);
    assert!(!installed());
    for path in [
        "/usr/bin/dmarc-warden",
        "/etc/dmarc-warden",
        "/etc/default/dmarc-warden",
        "/var/lib/dmarc-warden",
        "/usr/share/man/man1/dmarc-warden.1.gz",
        units[0],
    ] {
        assert!(!Path::new(path).exists(), "{path} left after purge");
    }
    // The system user stays (its uid may own copies elsewhere), without a login shell.
    let user = ok("getent", &["passwd", PACKAGE]);
    assert!(user.trim_end().ends_with(":/usr/sbin/nologin"), "{user}");
    assert!(run("getent", &["group", PACKAGE]).status.success());
}
