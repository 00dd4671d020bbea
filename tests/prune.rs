//! `prune` through the executable, on both backends: reports written by the test with dates
//! relative to now, on both sides of the cutoff (and on it, and a second before it); `--dry-run`
//! counts what `prune` then removes and removes nothing; exactly the right aggregate reports (with
//! their records), failure reports, TLS reports and kept rejects remain; `senders --days 365`
//! counts exactly the remaining messages; on PostgreSQL the month partitions wholly before the
//! cutoff are gone (`pg_inherits`); a second prune removes nothing. The config's `[retention]` is
//! applied by the nightly `ingest`. On PostgreSQL, a reader holding the partitions makes prune
//! delete rows instead of dropping them; and the migration to month partitions converts a
//! database made by schema 0001, its records landing in their months' partitions.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::cli::{Env, Out, on_both_backends};

const DAY: i64 = 86_400;

fn now() -> i64 {
    dmarc_warden::time::now()
}

/// As `prune --older-than days` cuts: the first UTC midnight at or after now − days.
fn cutoff(now: i64, days: i64) -> i64 {
    (now - days * DAY + DAY - 1).div_euclid(DAY) * DAY
}

/// An aggregate report for `domain` by `org` ending at `end`, with two records of `count` and 2
/// messages (one with DKIM and SPF results, one forwarded).
fn aggregate(org: &str, domain: &str, id: &str, end: i64, count: u64) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>{org}</org_name>\
         <email>r@{org}</email><report_id>{id}</report_id><date_range><begin>{}</begin>\
         <end>{end}</end></date_range></report_metadata><policy_published><domain>{domain}</domain>\
         <adkim>r</adkim><aspf>r</aspf><p>none</p></policy_published>",
        end - DAY + 1
    );
    write!(
        xml,
        "<record><row><source_ip>192.0.2.10</source_ip><count>{count}</count><policy_evaluated>\
         <disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row>\
         <identifiers><header_from>{domain}</header_from></identifiers><auth_results><dkim>\
         <domain>{domain}</domain><selector>s1</selector><result>pass</result></dkim><spf>\
         <domain>{domain}</domain><result>pass</result></spf></auth_results></record>\
         <record><row><source_ip>198.51.100.7</source_ip><count>2</count><policy_evaluated>\
         <disposition>none</disposition><dkim>fail</dkim><spf>fail</spf><reason>\
         <type>forwarded</type></reason></policy_evaluated></row><identifiers>\
         <header_from>{domain}</header_from></identifiers><auth_results><spf>\
         <domain>list.example</domain><result>fail</result></spf></auth_results></record>\
         </feedback>"
    )
    .unwrap();
    xml
}

/// `t` as a mail date: `05 Dec 2026 09:13:58 +0000`.
fn mail_date(t: i64) -> String {
    let text = dmarc_warden::time::format_rfc3339(t).unwrap(); // 2026-12-05T09:13:58Z
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month: usize = text[5..7].parse().unwrap();
    format!(
        "{} {} {} {} +0000",
        &text[8..10],
        months[month - 1],
        &text[0..4],
        &text[11..19]
    )
}

/// A DMARC failure report about a message that arrived at `arrival`.
fn failure(arrival: i64, n: u32) -> String {
    let date = mail_date(arrival);
    format!(
        "From: ruf@mail.example.net\r\nTo: dmarc@example.org\r\nSubject: failure {n}\r\n\
         Date: {date}\r\nMessage-ID: <ruf-{n}@mail.example.net>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=feedback-report; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nA failure report.\r\n\r\n\
         --b\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: auth-failure\r\n\
         Version: 1\r\nOriginal-Mail-From: <person{n}@example.org>\r\n\
         Arrival-Date: {date}\r\nSource-IP: 203.0.113.{n}\r\nReported-Domain: example.org\r\n\
         Authentication-Results: mx.example.net; dmarc=fail header.from=example.org\r\n\
         Auth-Failure: dmarc\r\n\r\n\
         --b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: person{n}@example.org\r\n\
         To: someone@example.net\r\nSubject: private subject {n}\r\n\
         Message-ID: <m{n}@example.org>\r\n\r\n--b--\r\n"
    )
}

/// An SMTP TLS report ending at `end`, with `ok` successful sessions.
fn tls(id: &str, end: i64, ok: u64) -> String {
    let at = |t| dmarc_warden::time::format_rfc3339(t).unwrap();
    format!(
        "{{\"organization-name\":\"tls.example\",\"date-range\":{{\"start-datetime\":\"{}\",\
         \"end-datetime\":\"{}\"}},\"contact-info\":\"tls@tls.example\",\"report-id\":\"{id}\",\
         \"policies\":[{{\"policy\":{{\"policy-type\":\"sts\",\"policy-domain\":\"example.org\",\
         \"mx-host\":[\"mx.example.org\"]}},\"summary\":{{\"total-successful-session-count\":{ok},\
         \"total-failure-session-count\":1}},\"failure-details\":[{{\"result-type\":\
         \"certificate-expired\",\"sending-mta-ip\":\"192.0.2.1\",\"failed-session-count\":1}}]}}]}}",
        at(end - DAY + 1),
        at(end)
    )
}

/// What the test stores: `(report id, end, count)` of each aggregate report, and whether
/// `prune --older-than 180` keeps it.
struct Estate {
    reports: Vec<(String, i64, u64, bool)>,
}

/// Writes the inputs into `dir`: aggregate reports for two domains from 400 days ago to
/// yesterday, two failure reports (40 and 20 days ago), two TLS reports (200 and 100 days ago)
/// and two inputs that are not reports (kept as rejects).
fn write_estate(dir: &Path, now: i64) -> Estate {
    let cut = cutoff(now, 180);
    let mut reports = Vec::new();
    let mut ends: Vec<i64> = [400, 330, 250, 181, 179, 90, 10, 1]
        .iter()
        .map(|d| now - d * DAY)
        .collect();
    ends.extend([cut - 1, cut]);
    for (i, end) in ends.into_iter().enumerate() {
        for domain in ["example.org", "example.net"] {
            let id = format!("{domain}-{i}");
            let count = 10 + i as u64;
            let xml = aggregate("rep.example", domain, &id, end, count);
            std::fs::write(dir.join(format!("{id}.xml")), xml).unwrap();
            reports.push((id, end, count, end >= cut));
        }
    }
    std::fs::write(dir.join("old.eml"), failure(now - 40 * DAY, 1)).unwrap();
    std::fs::write(dir.join("new.eml"), failure(now - 20 * DAY, 2)).unwrap();
    std::fs::write(dir.join("old.json"), tls("tls-old", now - 200 * DAY, 100)).unwrap();
    std::fs::write(dir.join("new.json"), tls("tls-new", now - 100 * DAY, 7)).unwrap();
    std::fs::write(dir.join("bad-old.txt"), "not a report (1)").unwrap();
    std::fs::write(dir.join("bad-new.txt"), "not a report (2)").unwrap();
    Estate { reports }
}

/// Makes the kept reject from `bad-old.txt` 40 days old (as if kept then).
fn age_reject(env: &Env, now: i64) {
    let sql = "UPDATE reject_inputs SET first_seen = first_seen - 40 * 86400 WHERE origin LIKE '%bad-old.txt'";
    let changed = match env.pg() {
        Some(db) => crate::postgres::support::server()
            .admin_to(&db.name)
            .execute(sql, &[])
            .unwrap(),
        None => rusqlite::Connection::open(env.db())
            .unwrap()
            .execute(sql, [])
            .unwrap() as u64,
    };
    assert_eq!(changed, 1);
    let _ = now;
}

/// `prune`'s JSON as kind → (removed, before, dry_run).
fn counts(out: &Out) -> BTreeMap<String, (u64, Option<String>, bool)> {
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    out.json()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_owned(),
                (
                    r["removed"].as_u64().unwrap(),
                    r["before"].as_str().map(str::to_owned),
                    r["dry_run"].as_bool().unwrap(),
                ),
            )
        })
        .collect()
}

fn json(env: &Env, args: &[&str]) -> Vec<Value> {
    let out = env.run(args);
    assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
    out.json()
}

/// The month partitions of `records` (their names), on PostgreSQL.
fn partitions(env: &Env) -> BTreeSet<String> {
    let db = env.pg().expect("PostgreSQL");
    crate::postgres::support::server()
        .admin_to(&db.name)
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'records'::regclass",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect()
}

/// The first moment of the month a partition `records_yYYYYmMM` holds.
fn partition_month(name: &str) -> Option<i64> {
    dmarc_warden::time::parse_month_name(name.strip_prefix("records_")?)
}

on_both_backends! {
    fn prune_keeps_exactly_what_ended_since_the_cutoff(backend: Backend) {
        let env = Env::on(backend);
        let inputs = tempfile::tempdir().unwrap();
        let now = now();
        let estate = write_estate(inputs.path(), now);
        let out = env.run(&["ingest", crate::cli::s(inputs.path())]);
        assert_eq!(out.code, 1, "two inputs are not reports: {}", out.stderr);
        age_reject(&env, now);
        let before = json(&env, &["reports", "--format", "json"]);
        assert_eq!(before.len(), estate.reports.len());
        let partitions_before = (backend == Backend::Postgres).then(|| partitions(&env));

        let gone: Vec<_> = estate.reports.iter().filter(|r| !r.3).collect();
        let kept: Vec<_> = estate.reports.iter().filter(|r| r.3).collect();
        let cut_day = dmarc_warden::time::format_day(cutoff(now, 180)).unwrap();
        let failures_day = dmarc_warden::time::format_day(cutoff(now, 30)).unwrap();
        let args = [
            "prune", "--older-than", "180", "--failures-older-than", "30", "--format", "json",
        ];

        // --dry-run: the counts, and nothing removed.
        let dry = counts(&env.run(&[&args[..], &["--dry-run"]].concat()));
        let expect = |kind: &str, n: u64, day: &str| {
            assert_eq!(dry[kind].0, n, "{kind}: {dry:?}");
            assert_eq!(dry[kind].1.as_deref(), Some(day), "{kind}");
            assert!(dry[kind].2, "{kind} is a dry run");
        };
        expect("aggregate_reports", gone.len() as u64, &cut_day);
        expect("records", 2 * gone.len() as u64, &cut_day);
        expect("failure_reports", 1, &failures_day);
        expect("tls_reports", 1, &cut_day);
        expect("reject_inputs", 1, &failures_day);
        // The sender tier: rows of the days, thirds, months and quarters wholly before the
        // cutoff (summed per key: four at most for each report, however many records).
        let n = dry["rollups"].0;
        assert!(n > 0 && n <= 4 * gone.len() as u64, "{dry:?}");
        expect("rollups", n, &cut_day);
        match backend {
            Backend::Postgres => {
                // Months wholly before the cutoff: at least those of 400, 330 and 250 days ago.
                assert!(dry["partitions"].0 >= 3, "{dry:?}");
            }
            Backend::Sqlite => assert!(!dry.contains_key("partitions"), "{dry:?}"),
        }
        assert_eq!(json(&env, &["reports", "--format", "json"]), before, "a dry run removes nothing");
        if let Some(p) = &partitions_before {
            assert_eq!(&partitions(&env), p);
        }

        // The real thing removes what the dry run counted.
        let done = counts(&env.run(&args));
        for (kind, (n, day, dry_run)) in &done {
            assert_eq!((n, day), (&dry[kind].0, &dry[kind].1), "{kind}");
            assert!(!dry_run);
        }

        // Exactly the reports that ended at or after the cutoff remain, with their records.
        let reports = json(&env, &["reports", "--format", "json"]);
        let ids: BTreeSet<&str> = reports.iter().map(|r| r["report_id"].as_str().unwrap()).collect();
        let want: BTreeSet<&str> = kept.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(ids, want);
        assert!(reports.iter().all(|r| r["records"] == 2));
        let messages: u64 = kept.iter().map(|r| r.2 + 2).sum();
        let sources = json(&env, &["sources", "--format", "json"]);
        let sum = |rows: &[Value]| -> u64 { rows.iter().map(|r| r["messages"].as_u64().unwrap()).sum() };
        assert_eq!(sum(&sources), messages, "records of removed reports are gone");
        // `senders` over a year counts exactly the remaining messages.
        let senders = json(&env, &["senders", "--days", "365", "--format", "json"]);
        assert_eq!(sum(&senders), messages);
        let records: i64 = reports.iter().map(|r| r["records"].as_i64().unwrap()).sum();
        assert_eq!(env.records_and_orphans(), (records, 0), "no record outlives its report");

        // The failure report that arrived 20 days ago stays; the one of 40 days ago is gone.
        let failures = json(&env, &["failures", "--format", "json"]);
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert_eq!(failures[0]["source_ip"], "203.0.113.2");
        // The TLS report of 100 days ago stays, with its sessions.
        let tls = json(&env, &["tls", "--format", "json"]);
        assert_eq!(tls.len(), 1, "{tls:?}");
        assert_eq!(tls[0]["successful_sessions"], 7);
        assert_eq!(tls[0]["reports"], 1);
        // The fresh reject stays.
        let rejects = json(&env, &["rejects", "--format", "json"]);
        let origins: Vec<&str> = rejects.iter().map(|r| r["origin"].as_str().unwrap()).collect();
        assert!(origins.iter().all(|o| o.ends_with("bad-new.txt")), "{origins:?}");
        assert!(!origins.is_empty());

        if backend == Backend::Postgres {
            let after = partitions(&env);
            let dropped: Vec<&String> = partitions_before.as_ref().unwrap().difference(&after).collect();
            assert_eq!(dropped.len() as u64, done["partitions"].0, "{dropped:?}");
            // No month wholly before the cutoff is left; the boundary month is.
            let cut = cutoff(now, 180);
            for name in &after {
                if let Some(start) = partition_month(name) {
                    let (_, next) = dmarc_warden::time::month_of(start).unwrap();
                    assert!(next > cut, "{name} is wholly before the cutoff");
                }
            }
            let (boundary, _) = dmarc_warden::time::month_of(cut).unwrap();
            assert!(after.iter().any(|n| partition_month(n) == Some(boundary)), "{after:?}");
            // This month's and the next's are made ahead.
            let (_, next) = dmarc_warden::time::month_of(now).unwrap();
            assert!(after.iter().any(|n| partition_month(n) == Some(next)), "{after:?}");
        }

        // A second prune finds nothing to remove.
        let again = counts(&env.run(&args));
        assert!(again.values().all(|(n, _, _)| *n == 0), "{again:?}");

        // The table, as people read it.
        let out = env.run(&["prune", "--older-than", "180", "--dry-run"]);
        assert_eq!(out.code, 0);
        assert!(out.stdout.contains("aggregate reports"), "{}", out.stdout);
        assert!(out.stdout.contains(&cut_day), "{}", out.stdout);
        assert!(out.stdout.contains("nothing was removed"), "{}", out.stdout);
    }
}

on_both_backends! {
    fn the_nightly_ingest_applies_the_config_s_retention(backend: Backend) {
        let env = Env::on(backend);
        let inputs = tempfile::tempdir().unwrap();
        let now = now();
        let estate = write_estate(inputs.path(), now);
        let config = env.dir.path().join("config.toml");
        std::fs::write(&config, "[retention]\nolder_than_days = 180\nfailures_older_than_days = 30\n")
            .unwrap();
        let out = env.run(&["ingest", "--config", crate::cli::s(&config), crate::cli::s(inputs.path())]);
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert!(out.stdout.contains("prune: "), "{}", out.stdout);
        let reports = json(&env, &["reports", "--format", "json"]);
        assert_eq!(reports.len(), estate.reports.iter().filter(|r| r.3).count());
        assert_eq!(json(&env, &["failures", "--format", "json"]).len(), 1);

        // Without a limit anywhere, prune says what it needs.
        let empty = env.dir.path().join("empty.toml");
        std::fs::write(&empty, "").unwrap();
        let out = env.run(&["prune", "--config", crate::cli::s(&empty)]);
        assert_eq!(out.code, 2);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(out.stderr.contains("--older-than"), "{}", out.stderr);
        // The config's limit, taken by `prune` itself: nothing more to remove.
        let out = env.run(&["prune", "--config", crate::cli::s(&config), "--format", "json"]);
        assert!(counts(&out).values().all(|(n, _, _)| *n == 0));
    }
}

/// A database made by schema 0001 (records not partitioned, their lists in three tables), with
/// reports in three months (one without a period), is converted by the migrations: every record
/// lands in its month's partition with its lists packed into it, and the listings answer as before.
#[test]
fn the_migration_partitions_a_database_of_schema_0001() {
    let server = crate::postgres::support::server();
    let db = server.fresh_db();
    let mut admin = server.admin_to(&db.name);
    admin
        .batch_execute(&format!(
            "SET ROLE {role};
             {schema}
             CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now());
             INSERT INTO schema_migrations (version, name) VALUES (1, '0001_initial');",
            role = crate::postgres::support::ROLE,
            schema = include_str!("../schemas/postgres/0001_initial.sql"),
        ))
        .unwrap();
    let jan = dmarc_warden::time::parse_date("2026-01-15T23:59:59Z").unwrap();
    let mar = dmarc_warden::time::parse_date("2026-03-31T23:59:59Z").unwrap();
    let may = dmarc_warden::time::parse_date("2026-05-02T10:00:00Z").unwrap();
    for (id, end, ingested) in [(1i64, Some(jan), jan), (2, Some(mar), mar), (3, None, may)] {
        admin
            .execute(
                "INSERT INTO reports (domain, id, org_name, report_id, date_begin, date_end,
                     record_count, message_count, pass_count, ingested_at, origin, location, p)
                 VALUES ('example.org', $1, 'rep.example', $5, $2::int8 - 86399, $2, 2, $3, 0,
                     $4, 'test', '', 'none')",
                &[&id, &end, &(id * 10 + 1), &ingested, &format!("r{id}")],
            )
            .unwrap();
        for n in 0..2i32 {
            let count = if n == 0 { id * 10 } else { 1 };
            admin
                .execute(
                    "INSERT INTO records (domain, report, count, n, forwarded, source_ip,
                         disposition, dkim, spf, header_from, auth_dkim_domain, auth_dkim_result)
                     VALUES ('example.org', $1, $2, $3, false, $4, 'none', 'fail',
                         'fail', 'example.org', 'example.org', 'fail')",
                    &[&id, &count, &n, &format!("192.0.2.{n}")],
                )
                .unwrap();
            admin
                .execute(
                    "INSERT INTO record_dkim (domain, report, record, n, dkim_domain, result)
                     VALUES ('example.org', $1, $2, 0, 'example.org', 'fail')",
                    &[&id, &n],
                )
                .unwrap();
            admin
                .execute(
                    "INSERT INTO record_spf (domain, report, record, n, spf_domain, result)
                     VALUES ('example.org', $1, $2, 0, 'example.org', 'fail')",
                    &[&id, &n],
                )
                .unwrap();
            admin
                .execute(
                    "INSERT INTO record_reasons (domain, report, record, n, type)
                     VALUES ('example.org', $1, $2, 0, 'forwarded')",
                    &[&id, &n],
                )
                .unwrap();
        }
    }
    let run = |args: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_dmarc-warden"));
        command
            .args(args)
            .env("DMARC_WARDEN_DB", db.url())
            .env("DMARC_WARDEN_DB_PASSWORD_FILE", &server.password_file)
            .env_remove("DMARC_WARDEN_CONFIG");
        crate::cli::output_of(&mut command)
    };
    // A listing opens the database, which migrates it.
    let out = run(&["sources", "--format", "json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let sources = out.json();
    let messages: u64 = sources
        .iter()
        .map(|r| r["messages"].as_u64().unwrap())
        .sum();
    assert_eq!(messages, 10 + 20 + 30 + 3);
    let version: i32 = admin
        .query_one("SELECT max(version) FROM schema_migrations", &[])
        .unwrap()
        .get(0);
    assert!(version >= 2);
    let rows: BTreeMap<String, i64> = admin
        .query(
            "SELECT tableoid::regclass::text, count(*) FROM records GROUP BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let want: BTreeMap<String, i64> = ["y2026m01", "y2026m03", "y2026m05"]
        .iter()
        .map(|m| (format!("records_{m}"), 2))
        .collect();
    assert_eq!(rows, want);
    let partitioned: bool = admin
        .query_one(
            "SELECT relkind = 'p' FROM pg_class WHERE oid = 'records'::regclass",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(partitioned);
    // Each record's DKIM, SPF and reason rows, packed into its `auth`; the tables are gone.
    for row in admin.query("SELECT auth FROM records", &[]).unwrap() {
        let auth: serde_json::Value = serde_json::from_str(row.get(0)).unwrap();
        assert_eq!(
            auth,
            serde_json::json!([
                [["example.org", null, "fail", null]],
                [["example.org", null, "fail"]],
                [["forwarded", null]]
            ])
        );
    }
    let gone: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relname LIKE 'record\\_%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(gone, 0);
    // And the converted database takes more reports, and prunes by month.
    let out = run(&["prune", "--older-than", "1", "--format", "json"]);
    let pruned = counts(&out);
    assert_eq!(pruned["aggregate_reports"].0, 3);
    assert_eq!(pruned["records"].0, 6);
    assert_eq!(pruned["partitions"].0, 3);
    let left: i64 = admin
        .query_one("SELECT count(*) FROM records", &[])
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}

/// On PostgreSQL, a reader holding the record tables longer than prune waits to drop partitions
/// does not stop prune: the old months' rows are deleted instead, the answers are the same, and
/// the next prune drops the emptied months.
#[test]
fn prune_deletes_rows_when_a_reader_holds_the_partitions() {
    let env = Env::on(crate::cli::Backend::Postgres);
    let inputs = tempfile::tempdir().unwrap();
    let now = now();
    let estate = write_estate(inputs.path(), now);
    assert_eq!(env.run(&["ingest", crate::cli::s(inputs.path())]).code, 1);
    let before = partitions(&env);
    let db = env.pg().unwrap();
    let mut reader = crate::postgres::support::server().admin_to(&db.name);
    let mut held = reader.transaction().unwrap();
    held.query("SELECT count(*) FROM records", &[]).unwrap();

    let args = ["prune", "--older-than", "180", "--format", "json"];
    let first = counts(&env.run(&args));
    assert_eq!(first["partitions"].0, 0, "{first:?}");
    let gone = estate.reports.iter().filter(|r| !r.3).count() as u64;
    assert_eq!(first["aggregate_reports"].0, gone);
    assert_eq!(first["records"].0, 2 * gone);
    let kept: u64 = estate.reports.iter().filter(|r| r.3).map(|r| r.2 + 2).sum();
    let sources = json(&env, &["sources", "--format", "json"]);
    let messages: u64 = sources
        .iter()
        .map(|r| r["messages"].as_u64().unwrap())
        .sum();
    assert_eq!(messages, kept);
    held.rollback().unwrap();
    assert_eq!(partitions(&env), before, "nothing dropped while held");
    let cut = cutoff(now, 180);
    let old_rows: i64 = reader
        .query_one(
            "SELECT count(*) FROM records WHERE report_end < $1",
            &[&cut],
        )
        .unwrap()
        .get(0);
    assert_eq!(old_rows, 0, "the old months' rows are deleted instead");

    let second = counts(&env.run(&args));
    assert!(second["partitions"].0 >= 3, "{second:?}");
    assert_eq!(second["aggregate_reports"].0, 0);
}
