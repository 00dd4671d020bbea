//! Rollups (issue 20, the sender tier without the source IP): every answer computed from the
//! rollups is the answer computed from the records (`DMARC_WARDEN_FROM_RECORDS=1`, the hidden
//! switch to the record-based readers), the dashboard's sender pages (their IPs), `sources` and
//! `/api/sources` (each IP's reports) among them, on SQLite and on PostgreSQL: over the samples,
//! the bad fixtures and the shared corpus (a few of its collections on PostgreSQL), over generated
//! reports, over reports ending at an hour that leaves windows a partial first day, with declared
//! senders' networks that part a row's IPs and that do not, after copies replaced by more complete
//! ones (with another period), a reprocess of kept rejects, a second ingest of everything and a
//! prune; an existing database is back-filled by the migration; a rollup that is off by one message
//! is noticed; and (PostgreSQL) several ingests at once over overlapping inputs keep them exact.

use std::path::Path;

use crate::cli::{Backend, Env, on_both_backends, s};
use crate::imap::corpus::{Rng, report_xml, write_corpus};

/// The answers compared: `senders` and `advise` over several windows, the digest, the listings
/// beside them, and the HTML report (the dashboard's pages).
const QUERIES: &[&[&str]] = &[
    &["domains", "--format", "json"],
    &["senders", "--days", "0", "--format", "json"],
    &["senders", "--days", "14", "--format", "json"],
    &["senders", "--days", "365", "--format", "json"],
    &["senders", "--wide"],
    &[
        "senders",
        "--domain",
        "example.org",
        "--days",
        "90",
        "--format",
        "json",
    ],
    &["advise", "--offline", "--days", "0", "--format", "json"],
    &["advise", "--offline", "--days", "30", "--format", "json"],
    &["advise", "--offline", "--days", "365", "--format", "json"],
    &["advise", "--offline", "--days", "365"],
    &["digest", "--days", "7"],
    // `sources` over every report, over reports ending after a moment within a day (the
    // reports ending later that day read from their records, the rest from the rollups), and
    // with an end (periods beginning before it: read from the records either way).
    &["sources", "--format", "json"],
    &[
        "sources",
        "--since",
        "2026-10-05T12:00:00Z",
        "--format",
        "json",
    ],
    &[
        "sources",
        "--domain",
        "edges.example",
        "--since",
        "2026-10-05T12:00:00Z",
        "--format",
        "json",
    ],
    &["sources", "--domain", "example.org", "--limit", "5"],
    &[
        "sources",
        "--since",
        "2026-01-01",
        "--until",
        "2026-10-10",
        "--format",
        "json",
    ],
];

/// Declared senders whose networks hold some of the generated reports' recurring servers (so a
/// row's IPs are parted between senders: that domain is read per IP), and one that holds none of
/// them (rows judged by a stand-in IP).
const CONFIGS: [&str; 2] = [
    "[[sender]]\nname = \"Half the servers\"\nips = [\"198.18.0.0/25\", \"2001:db8::/32\"]\n",
    "[[sender]]\nname = \"Elsewhere\"\nips = [\"203.0.113.0/24\"]\nlegitimate = false\n",
];

const FROM_RECORDS: (&str, &str) = ("DMARC_WARDEN_FROM_RECORDS", "1");

/// Every answer of [`QUERIES`] (also with each of [`CONFIGS`] for `senders` and `advise`) and the
/// HTML report, from the rollups or from the records.
fn answers(env: &Env, from_records: bool) -> Vec<(String, String)> {
    let vars: &[(&str, &str)] = if from_records { &[FROM_RECORDS] } else { &[] };
    let dir = tempfile::tempdir().unwrap();
    let mut runs: Vec<Vec<String>> = QUERIES
        .iter()
        .map(|q| q.iter().map(|a| a.to_string()).collect())
        .collect();
    for (i, config) in CONFIGS.iter().enumerate() {
        let path = dir.path().join(format!("config{i}.toml"));
        std::fs::write(&path, config).unwrap();
        for q in QUERIES
            .iter()
            .filter(|q| q[0] == "senders" || q[0] == "advise")
        {
            let mut q: Vec<String> = q.iter().map(|a| a.to_string()).collect();
            q.extend(["--config".to_owned(), s(&path).to_owned()]);
            runs.push(q);
        }
    }
    let mut out: Vec<(String, String)> = runs
        .iter()
        .map(|args| {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let o = env.run_with_env(&args, vars);
            assert_eq!(o.code, 0, "{args:?}: {}", o.stderr);
            (args.join(" "), o.stdout)
        })
        .collect();
    let html = dir.path().join("report.html");
    let o = env.run_with_env(&["report", "--html", s(&html)], vars);
    assert_eq!(o.code, 0, "report --html: {}", o.stderr);
    // Without the minute it was written in.
    let html = std::fs::read_to_string(&html).unwrap();
    let html = match html.split_once(" · generated ") {
        Some((head, tail)) => format!("{head}{}", &tail[tail.find(" UTC").unwrap_or(0)..]),
        None => html,
    };
    out.push(("report --html".to_owned(), html));
    out.extend(sender_pages(env, vars));
    out
}

/// The dashboard's page of every sender of every domain (its source IPs: from the rollups, each
/// IP's own sums, or from the records), over the default window, 14 days and 365 days.
fn sender_pages(env: &Env, vars: &[(&str, &str)]) -> Vec<(String, String)> {
    let (_server, base) = crate::web::serve(env, "127.0.0.1:0", vars);
    let links = |path: &str, prefix: &str| -> Vec<String> {
        let (status, _, body) = crate::web::get(&base, path, None);
        assert_eq!(status, 200, "{path}: {body}");
        let mut found: Vec<String> = body
            .split("href=\"")
            .skip(1)
            .filter_map(|h| h.split('"').next())
            .filter(|h| h.starts_with(prefix) && !h.contains('?'))
            .map(|h| h.replace("&amp;", "&"))
            .collect();
        found.sort();
        found.dedup();
        found
    };
    let mut out = Vec::new();
    let domains = links("/", "/domain/");
    let domains = domains
        .iter()
        .filter(|d| d.matches('/').count() == 2 && *d != "/domain/");
    // Every domain of the samples and generated reports, and 30 of the corpus's thousands.
    let (ours, corpus): (Vec<&String>, Vec<&String>) =
        domains.partition(|d| d.ends_with(".example") || d.ends_with("example.org"));
    let domains: Vec<&String> = ours
        .into_iter()
        .chain(corpus.into_iter().take(30))
        .collect();
    // Each domain's sources as the dashboard asks for them.
    for domain in &domains {
        let name = &domain["/domain/".len()..];
        for query in ["", "&since=2026-10-05T12:00:00Z"] {
            let path = format!("/api/sources?domain={name}&limit=100{query}");
            let (status, _, body) = crate::web::get(&base, &path, None);
            assert_eq!(status, 200, "{path}: {body}");
            out.push((path, body));
        }
    }
    for domain in domains {
        for sender in links(domain, &format!("{domain}/sender/")) {
            for query in ["", "?days=14", "?days=365"] {
                let path = format!("{sender}{query}");
                let (status, _, body) = crate::web::get(&base, &path, None);
                // A sender of the default window may have sent nothing in another.
                assert!(
                    status == 200 || (status == 404 && !query.is_empty()),
                    "{path}: {body}"
                );
                out.push((path, format!("{status} {body}")));
            }
        }
    }
    assert!(!out.is_empty(), "no sender page");
    out
}

/// The first answer that differs between the rollups and the records, if any.
fn difference(env: &Env) -> Option<String> {
    first_difference(&answers(env, false), &answers(env, true))
}

/// The first answer that differs between two sets of [`answers`], if any.
fn first_difference(rolled: &[(String, String)], recorded: &[(String, String)]) -> Option<String> {
    for ((name, a), (_, b)) in rolled.iter().zip(recorded) {
        if a != b {
            let at = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
            let near = |t: &str| -> String {
                let bytes = t.as_bytes();
                let part =
                    &bytes[at.saturating_sub(150).min(bytes.len())..(at + 150).min(bytes.len())];
                String::from_utf8_lossy(part).into_owned()
            };
            return Some(format!(
                "{name}: from rollups and from records differ at byte {at}:\n{}\n{}",
                near(a),
                near(b)
            ));
        }
    }
    None
}

#[track_caller]
fn same(env: &Env, what: &str) {
    if let Some(d) = difference(env) {
        panic!("{what}: {d}");
    }
}

fn ingest(env: &Env, paths: &[&Path], extra: &[&str]) {
    let mut args = vec!["ingest", "--quiet", "--threads", "2"];
    args.extend(extra);
    args.extend(paths.iter().map(|p| s(p)));
    let out = env.run(&args);
    assert!(out.code <= 1, "{}", out.stderr);
}

/// Runs `sql` (statements, no results) on the test's database, whichever backend.
fn execute(env: &Env, sql: &str) {
    match env.pg() {
        Some(pg) => crate::postgres::support::server()
            .admin_to(&pg.name)
            .batch_execute(sql)
            .unwrap(),
        None => rusqlite::Connection::open(env.db())
            .unwrap()
            .execute_batch(sql)
            .unwrap(),
    }
}

/// The one number `sql` selects, whichever backend.
fn number(env: &Env, sql: &str) -> i64 {
    match env.pg() {
        Some(pg) => crate::postgres::support::server()
            .admin_to(&pg.name)
            .query_one(sql, &[])
            .unwrap()
            .get(0),
        None => rusqlite::Connection::open(env.db())
            .unwrap()
            .query_row(sql, [], |r| r.get(0))
            .unwrap(),
    }
}

/// Whether the rollups hold anything (so that the comparisons compare them): day rows, or the
/// parts not yet folded into them.
fn rolled_rows(env: &Env) -> i64 {
    number(
        env,
        "SELECT (SELECT count(*) FROM rollup_days) + (SELECT count(*) FROM rollup_parts)",
    )
}

on_both_backends! {
fn rollups_answer_as_the_records_over_the_corpus_and_generated_reports(backend: Backend) {
    // The algorithms are one for both backends: the corpus is compared on SQLite; PostgreSQL's
    // own statements over the samples and generated reports here, and under concurrent writers
    // below (the corpus doubled this suite's longest test).
    let inputs = match backend {
        Backend::Sqlite => crate::tables::inputs(),
        Backend::Postgres => {
            // And a few of the corpus's collections: real reports' periods end at any hour, so
            // that windows have partial edge days, read from the records beside the rollups.
            let mut inputs = vec![crate::cli::samples(), crate::cli::bad_fixtures()];
            if let Ok(dirs) = std::fs::read_dir(crate::corpus::corpus_dir()) {
                let mut dirs: Vec<_> = dirs.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
                dirs.sort();
                inputs.extend(dirs.into_iter().take(8));
            }
            inputs
        }
    };
    let env = Env::on(backend);
    let inputs: Vec<&Path> = inputs.iter().map(|p| p.as_path()).collect();
    ingest(&env, &inputs, &[]);
    assert!(rolled_rows(&env) > 0);
    same(&env, "samples (and the corpus on SQLite)");
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path(), 300).unwrap();
    ingest(&env, &[dir.path()], &[]);
    // Reports of one day (1,825 apart: five years of the generator's 365 days) and two domains
    // (domain0 and domain25, in turn) in each batch of a unit of work: each batch's sums come
    // encoded, added together at commit; with copies of two reports stored above, whose batch the
    // unit of work sums itself.
    let one_day = tempfile::tempdir().unwrap();
    for j in 0..600 {
        let path = one_day.path().join(format!("day-{j}.xml"));
        std::fs::write(path, generated(1_000 + 1_825 * j, 30, 0)).unwrap();
    }
    for copy in ["report-0.xml", "report-4.xml"] {
        std::fs::copy(dir.path().join("0000").join(copy), one_day.path().join(copy)).unwrap();
    }
    ingest(&env, &[one_day.path()], &[]);
    if backend == Backend::Postgres {
        // The run's end settled the months its last units of work left stale.
        assert_eq!(number(&env, "SELECT count(*) FROM rollup_stale"), 0);
        assert_eq!(number(&env, "SELECT count(*) FROM rollup_parts"), 0);
    }
    // A few runs of one later report each: on SQLite, the units of work after which the months
    // the generated reports left stale settle (PostgreSQL settled them at each run's end). Their
    // 300 days hold whole quarters, summed from their months: the windows below read them.
    for n in 360..365 {
        let one = tempfile::tempdir().unwrap();
        std::fs::write(one.path().join("later.xml"), generated(n, 3, 0)).unwrap();
        ingest(&env, &[one.path()], &[]);
    }
    assert!(number(&env, "SELECT count(*) FROM rollup_quarters") > 0);
    assert!(number(&env, "SELECT count(*) FROM rollup_thirds") > 0);
    same(&env, "with generated reports");
    // Reports ending at 20:00 and the last at 01:00: a window of days then begins at 01:00:01
    // of a day whose report ends within it (a partial edge day, read from the records).
    let hours = tempfile::tempdir().unwrap();
    let midnight = 20_717 * 86_400;
    for i in 0..30 {
        let end = midnight + i * 86_400 + if i == 29 { 3_600 } else { 72_000 };
        let name = hours.path().join(format!("hours-{i}.xml"));
        std::fs::write(name, at_hour(i, end)).unwrap();
    }
    ingest(&env, &[hours.path()], &[]);
    same(&env, "with reports ending at any hour");
    // A large domain's sources are read from the records in two halves at once: the same
    // listing.
    for args in [
        &["sources", "--domain", "example.org", "--format", "json"][..],
        &["sources", "--domain", "domain7.example", "--format", "json"],
        &["sources", "--domain", "domain7.example", "--limit", "7", "--format", "json"],
    ] {
        let whole = env.run_with_env(args, &[FROM_RECORDS]);
        let halves =
            env.run_with_env(args, &[FROM_RECORDS, ("DMARC_WARDEN_SPLIT_RECORDS", "1")]);
        assert_eq!(whole.code, 0, "{args:?}: {}", whole.stderr);
        assert!(whole.stdout.len() > 100, "{args:?}: {}", whole.stdout);
        assert_eq!(whole.stdout, halves.stdout, "{args:?} read in halves");
    }
}
}

/// A report of `edges.example` numbered `i`, its day ending at `end`: three records, one of them
/// failing DKIM, under a header From in capitals, and in every other report from the first
/// record's IP (a report that `sources` counts once for that IP and From, under two keys).
fn at_hour(i: i64, end: i64) -> String {
    let record = |ip: i64, count: i64, dkim: &str| {
        let from = if dkim == "fail" {
            "Edges.Example"
        } else {
            "edges.example"
        };
        format!(
            "<record><row><source_ip>192.0.2.{ip}</source_ip><count>{count}</count>\
             <policy_evaluated><disposition>none</disposition><dkim>{dkim}</dkim><spf>pass</spf>\
             </policy_evaluated></row><identifiers><header_from>{from}</header_from>\
             </identifiers><auth_results><dkim><domain>edges.example</domain>\
             <result>{dkim}</result></dkim><spf><domain>edges.example</domain>\
             <result>pass</result></spf></auth_results></record>"
        )
    };
    format!(
        "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>Receiver {}</org_name>\
         <email>r@receiver.example</email><report_id>hours-{i}</report_id><date_range>\
         <begin>{}</begin><end>{end}</end></date_range></report_metadata>\
         <policy_published><domain>edges.example</domain><p>none</p></policy_published>\
         {}{}{}</feedback>",
        i % 3,
        end - 86_399,
        record(i % 5, i + 1, "pass"),
        record(i % 7 + 10, 2, "pass"),
        record(if i % 2 == 0 { i % 5 } else { i % 4 + 20 }, 1, "fail"),
    )
}

/// A generated report `n` with `records` records and its period ending `shift` seconds later:
/// copies with fewer records have the first records of the whole one.
fn generated(n: usize, records: usize, shift: i64) -> String {
    let xml = report_xml(&mut Rng::new(n as u64 + 1), n, records);
    if shift == 0 {
        return xml;
    }
    let (head, rest) = xml.split_once("<end>").unwrap();
    let (end, tail) = rest.split_once("</end>").unwrap();
    let end: i64 = end.trim().parse().unwrap();
    format!("{head}<end>{}</end>{tail}", end + shift)
}

on_both_backends! {
fn replacements_reprocess_a_second_ingest_and_prune_keep_the_rollups_exact(backend: Backend) {
    let env = Env::on(backend);
    let dir = tempfile::tempdir().unwrap();
    let (partial, whole, big) = (
        dir.path().join("partial"),
        dir.path().join("whole"),
        dir.path().join("big"),
    );
    for d in [&partial, &whole, &big] {
        std::fs::create_dir(d).unwrap();
    }
    // Reports 0..40: first copies with 2 records, half of them over another period (ending a day
    // later); then the whole copies (8 records), which replace them.
    for n in 0..40 {
        let shift = if n % 2 == 0 { 86_400 } else { 0 };
        std::fs::write(partial.join(format!("{n}.xml")), generated(n, 2, shift)).unwrap();
        std::fs::write(whole.join(format!("{n}.xml")), generated(n, 8, 0)).unwrap();
    }
    ingest(&env, &[&partial], &[]);
    same(&env, "partial copies");
    ingest(&env, &[&whole, &partial], &[]);
    same(&env, "partial copies replaced by whole ones");
    // Reports too large for the first ingest are kept as rejects; reprocess stores them.
    for n in 40..50 {
        std::fs::write(big.join(format!("{n}.xml")), generated(n, 60, 0)).unwrap();
    }
    ingest(&env, &[&big], &["--max-payload-size", "4KiB"]);
    let out = env.run(&["reprocess"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        env.run(&["reports", "--format", "json"]).json().len(),
        50,
        "the rejects were stored by reprocess"
    );
    same(&env, "after reprocess");
    // Everything once more: nothing changes.
    let before = answers(&env, false);
    ingest(&env, &[&whole, &partial, &big], &[]);
    if let Some(d) = first_difference(&answers(&env, false), &before) {
        panic!("a second ingest changed an answer: {d}");
    }
    same(&env, "after a second ingest");
    // The generated reports span 50 days from 2026-09-21; prune the first 20 or so of them.
    let out = env.run(&["prune", "--older-than", "70"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let left = env.run(&["reports", "--format", "json"]).json().len();
    assert!(left > 0 && left < 50, "{left} reports left");
    same(&env, "after prune");
}
}

on_both_backends! {
/// A database made before the rollups (their tables dropped, the schema version set back) gets
/// them from its records on first use; a month row gone missing is noticed.
fn an_existing_database_is_back_filled_and_a_wrong_rollup_is_noticed(backend: Backend) {
    let env = Env::on(backend);
    // On PostgreSQL, generated reports and the samples (the corpus is compared on it above):
    // the test's time.
    let dir = tempfile::tempdir().unwrap();
    let inputs = match backend {
        Backend::Sqlite => crate::tables::inputs(),
        Backend::Postgres => {
            write_corpus(dir.path(), 300).unwrap();
            vec![dir.path().to_path_buf(), crate::cli::samples()]
        }
    };
    let inputs: Vec<&Path> = inputs.iter().map(|p| p.as_path()).collect();
    ingest(&env, &inputs, &[]);
    let want = answers(&env, true);
    let version = |env: &Env| -> i64 {
        match backend {
            Backend::Sqlite => number(env, "PRAGMA user_version"),
            Backend::Postgres => number(env, "SELECT max(version)::int8 FROM schema_migrations"),
        }
    };
    let latest = version(&env);
    execute(
        &env,
        &match backend {
            Backend::Sqlite => format!(
                "DROP TABLE rollup_days; DROP TABLE rollup_months; DROP TABLE rollup_stale;
                 DROP TABLE rollup_parts; DROP TABLE rollup_clock; DROP TABLE rollup_quarters;
                 DROP TABLE rollup_thirds; PRAGMA user_version = {};",
                // 0012_rollups.sql is the eleventh migration (0008 was never used); the ones after
                // it run again too and must be idempotent.
                10
            ),
            // 0005_rollups and every migration after it (which run again and must be
            // idempotent).
            Backend::Postgres => "DROP TABLE rollup_days; DROP TABLE rollup_months;
                 DROP TABLE rollup_stale; DROP TABLE rollup_parts; DROP SEQUENCE rollup_clock;
                 DROP TABLE rollup_quarters; DROP TABLE rollup_thirds;
                 DELETE FROM schema_migrations WHERE version >=
                    (SELECT version FROM schema_migrations WHERE name = '0005_rollups');"
                .to_owned(),
        },
    );
    // A command that writes migrates it (a read-only one refuses a database too old).
    let out = env.run(&["ingest", "--quiet", s(&crate::cli::samples())]);
    assert!(out.code <= 1, "{}", out.stderr);
    if let Some(d) = first_difference(&answers(&env, false), &want) {
        panic!("the back-filled rollups answer as the records: {d}");
    }
    assert_eq!(version(&env), latest, "the rollups' migration applied");
    assert!(number(&env, "SELECT count(*) FROM rollup_quarters") > 0, "quarters back-filled");
    assert!(number(&env, "SELECT count(*) FROM rollup_thirds") > 0, "thirds back-filled");
    // A database made before the thirds, the keys' shorter form and the IPs' own sums (0017 to
    // 0019, postgres 7 to 10) gets its rollups summed again.
    let thirds = number(&env, "SELECT count(*) FROM rollup_thirds");
    execute(
        &env,
        &match backend {
            // 0017_rollup_thirds.sql is the sixteenth migration.
            Backend::Sqlite => "DROP TABLE rollup_thirds; PRAGMA user_version = 15;".to_owned(),
            Backend::Postgres => "DROP TABLE rollup_thirds; DELETE FROM schema_migrations
                 WHERE version >= (SELECT version FROM schema_migrations
                    WHERE name = '0007_rollup_thirds');"
                .to_owned(),
        },
    );
    let out = env.run(&["ingest", "--quiet", s(&crate::cli::samples())]);
    assert!(out.code <= 1, "{}", out.stderr);
    assert_eq!(version(&env), latest, "the thirds', keys' and IPs' migrations applied");
    assert_eq!(number(&env, "SELECT count(*) FROM rollup_thirds"), thirds);
    if let Some(d) = first_difference(&answers(&env, false), &want) {
        panic!("the rollups summed again answer as the records: {d}");
    }
    // Without the quarters and thirds, their months and days are read: the same answers.
    execute(&env, "DELETE FROM rollup_quarters; DELETE FROM rollup_thirds");
    if let Some(d) = first_difference(&answers(&env, false), &want) {
        panic!("the months and days answer as the quarters and thirds did: {d}");
    }
    // The largest month row goes missing.
    execute(
        &env,
        "DELETE FROM rollup_months WHERE (domain, month) IN
            (SELECT domain, month FROM rollup_months ORDER BY length(sums) DESC LIMIT 1)",
    );
    let found = difference(&env).expect("a wrong rollup is noticed");
    assert!(
        found.contains("from rollups and from records differ"),
        "{found}"
    );
}
}

/// Several `ingest` processes at once into one PostgreSQL database, over overlapping generated
/// inputs (each report read by two or three of them, copies of some with fewer records and
/// another period, so that concurrent writers replace each other's copies), in many small units of
/// work that commit, fold and settle beside each other: afterwards every answer from the
/// rollups is the records'.
#[test]
fn concurrent_ingests_keep_the_postgres_rollups_exact() {
    let env = Env::on(Backend::Postgres);
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for n in 0..120 {
        // Two copies of every third report: a partial one over another period, and the whole.
        if n % 3 == 0 {
            let path = dir.path().join(format!("{n}-partial.xml"));
            std::fs::write(&path, generated(n, 3, 86_400 * (n as i64 % 5))).unwrap();
            files.push(path);
        }
        let path = dir.path().join(format!("{n}.xml"));
        std::fs::write(&path, generated(n, 6, 0)).unwrap();
        files.push(path);
    }
    // Each of four threads reads 60% of the inputs, starting at its own quarter and going round,
    // as many small `ingest` runs one after the other (each a unit of work or two): every input
    // is read by two or three of them, and their units of work commit beside each other.
    let n = files.len();
    std::thread::scope(|scope| {
        for k in 0..4 {
            let (env, files) = (&env, &files);
            scope.spawn(move || {
                let mine: Vec<&str> = (0..n * 3 / 5)
                    .map(|i| s(&files[(k * n / 4 + i) % n]))
                    .collect();
                for chunk in mine.chunks(6) {
                    let mut args = vec!["ingest", "--quiet", "--threads", "1"];
                    args.extend(chunk);
                    let out = env.run(&args);
                    assert!(out.code <= 1, "{}", out.stderr);
                }
            });
        }
    });
    assert_eq!(
        env.run(&["reports", "--format", "json"]).json().len(),
        120,
        "every report stored once"
    );
    assert!(number(&env, "SELECT count(*) FROM rollup_days") > 0);
    same(&env, "after four ingests at once");
}
