//! Issue 10: every listing's default table fits the width — 100 columns when piped, `COLUMNS` when
//! set — over real data: the shared corpus (when present, as for `corpus`), the samples and the bad
//! fixtures, ingested once into one database for the whole binary. Dates are days, shares are percentages, free text
//! sits on its own line, and `--wide` shows every column.

use std::process::Stdio;
use std::sync::LazyLock;

use unicode_width::UnicodeWidthStr;

use crate::cli::{Env, Out, bad_fixtures, finish, s, samples};

/// The samples, the bad fixtures and, where it is present, the corpus ([`inputs`]), in one
/// database.
pub(crate) static DB: LazyLock<Env> = LazyLock::new(|| {
    let env = Env::new();
    let mut args = vec!["ingest", "--quiet", "--threads", "2"];
    let inputs = inputs();
    args.extend(inputs.iter().map(|p| s(p)));
    let out = env.run(&args);
    assert!(out.code <= 1, "{}", out.stderr);
    env
});

/// The samples, the bad fixtures and, where it is present, the corpus.
pub(crate) fn inputs() -> Vec<std::path::PathBuf> {
    let mut inputs = vec![samples(), bad_fixtures()];
    let corpus = crate::corpus::corpus_dir();
    if corpus.is_dir() {
        inputs.push(corpus);
    } else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have the corpus at {}",
            corpus.display()
        );
        eprintln!(
            "corpus not found at {}: tables checked on the samples only",
            corpus.display()
        );
    }
    inputs
}

/// Every listing, as a user types it (`senders` and `advise` over all days, to cover every domain).
const LISTINGS: &[&[&str]] = &[
    &["domains"],
    &["sources"],
    &["reports"],
    &["senders", "--days", "0"],
    &["advise", "--offline", "--days", "0"],
    &["failures"],
    &["tls"],
    &["rejects"],
];

/// The listing `args` with stdout piped and `COLUMNS` as given (`None`: unset).
fn table(args: &[&str], columns: Option<&str>) -> Out {
    let mut command = DB.command(args);
    command.env_remove("COLUMNS");
    if let Some(columns) = columns {
        command.env("COLUMNS", columns);
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = finish(child);
    assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
    out
}

/// The lines of `out` wider than `width`, each as `N columns: <line>`; `advise`'s record lines are
/// exempt: a DNS record is copied whole, so it is never broken.
fn too_wide(out: &Out, width: usize) -> Vec<String> {
    out.stdout
        .lines()
        .filter(|l| l.width() > width && !l.trim_start().starts_with("\"v=DMARC1"))
        .map(|l| format!("{} columns: {l}", l.width()))
        .collect()
}

#[test]
fn every_listing_fits_100_columns_when_piped() {
    for args in LISTINGS {
        let out = table(args, None);
        assert!(out.stdout.lines().count() > 1, "{args:?}: {}", out.stdout);
        let wide = too_wide(&out, 100);
        assert!(wide.is_empty(), "{args:?}:\n{}", wide.join("\n"));
    }
}

#[test]
fn every_listing_follows_columns() {
    for width in [80, 120] {
        let columns = width.to_string();
        for args in LISTINGS {
            let out = table(args, Some(&columns));
            // At 80 columns some rows cannot fit (an IPv6 address beside the counts): those rows
            // only may overflow; free text (the indented lines) still wraps at the width.
            let mut wide = too_wide(&out, width);
            if width < 100 {
                wide.retain(|l| l.contains(" columns:     "));
            }
            assert!(wide.is_empty(), "{args:?} at {width}:\n{}", wide.join("\n"));
        }
    }
    // The reasons under `senders` use the room they are given.
    let at_120 = table(&["senders", "--days", "0"], Some("120"));
    assert!(
        at_120
            .stdout
            .lines()
            .any(|l| l.starts_with("    ") && l.width() > 100),
        "{}",
        at_120.stdout
    );
}

#[test]
fn tables_show_days_percentages_and_free_text_on_its_own_line() {
    let env = Env::new();
    let dir = samples().join("google");
    assert_eq!(env.run(&["ingest", s(&dir)]).code, 0);
    let domains = env.run(&["domains"]);
    let mut lines = domains.stdout.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("DOMAIN") && header.contains("PASS") && header.contains("POLICY"),
        "{header}"
    );
    let row = lines.next().unwrap();
    assert!(
        row.contains("2026-11-01") && !row.contains("T00:00:00Z") && row.contains('%'),
        "{row}"
    );
    let reports = env.run(&["reports"]).stdout;
    assert!(
        !reports.contains("T00:00:00Z") && !reports.contains(":59:59"),
        "{reports}"
    );
    // The policy as every output writes it (`advise`, notices, the web): sp= whenever published.
    let story = Env::new();
    assert_eq!(
        story
            .run(&["ingest", s(&samples().join("story").join("example.net"))])
            .code,
        0
    );
    let domains = story.run(&["domains"]).stdout;
    assert!(
        domains
            .lines()
            .nth(1)
            .unwrap()
            .ends_with("p=reject sp=reject"),
        "{domains}"
    );

    // A sender's reason is the indented line under its row.
    let senders = env.run(&["senders", "--days", "0"]).stdout;
    let lines: Vec<&str> = senders.lines().collect();
    assert!(
        lines[0].starts_with("DOMAIN") && lines[0].contains("SENDER"),
        "{senders}"
    );
    assert!(
        lines[1].starts_with("example.org") && lines[2].starts_with("    "),
        "{senders}"
    );

    // --wide adds columns; JSON and CSV keep every field whatever the table shows.
    let wide = env.run(&["senders", "--days", "0", "--wide"]).stdout;
    for column in ["REPORTERS", "IPS", "FIRST", "LAST"] {
        assert!(!lines[0].contains(column), "{}", lines[0]);
        assert!(wide.lines().next().unwrap().contains(column), "{wide}");
    }
    let sources = env.run(&["sources", "--wide"]).stdout;
    assert!(
        sources.lines().next().unwrap().contains("FAILURE REPORTS"),
        "{sources}"
    );
    let csv = env.run(&["senders", "--days", "0", "--format", "csv", "--wide"]);
    assert!(
        csv.stdout.starts_with(
            "domain,sender,class,messages,dmarc_pass,dmarc_pass_pct,dkim_aligned,spf_aligned,\
             source_ips,first,last,reporters,reason\n"
        ),
        "{}",
        csv.stdout
    );
}

#[test]
fn an_empty_listing_says_so() {
    let env = Env::new();
    // `reprocess` creates the database, and finds nothing to do.
    assert_eq!(env.run(&["reprocess"]).code, 0);
    let out = env.run(&["sources"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "(nothing stored matches)\n")
    );
}
