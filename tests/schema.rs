//! SQLite databases written by earlier versions of the schema, upgraded by the migrations the
//! next writing command applies. (PostgreSQL's: `postgres::migrations_*` and
//! `prune::the_migration_partitions_a_database_of_schema_0001`.)

use rusqlite::Connection;

use crate::cli::{Env, s, samples};

/// The migrations before `schemas/0010_record_lists.sql`, in the order the store applies them.
const BEFORE_RECORD_LISTS: &[&str] = &[
    include_str!("../schemas/0001_initial.sql"),
    include_str!("../schemas/0002_imap.sql"),
    include_str!("../schemas/0003_failure_tls.sql"),
    include_str!("../schemas/0004_record_auth.sql"),
    include_str!("../schemas/0005_rdns.sql"),
    include_str!("../schemas/0006_dns_checks.sql"),
    include_str!("../schemas/0007_notify.sql"),
    include_str!("../schemas/0009_retention.sql"),
];

/// A database of the schema before records carried their lists (DKIM, SPF and override rows in
/// three tables), holding what `ingest` stores today of every sample report, is upgraded: each
/// record's lists are packed into exactly the text `ingest` writes, the three tables are gone, and
/// the listings answer as on the database `ingest` wrote.
#[test]
fn a_database_with_record_list_tables_is_packed_as_ingest_packs() {
    let env = Env::new();
    let out = env.run(&["ingest", s(&samples())]);
    assert!(out.code <= 1, "{}", out.stderr);

    // The old database: today's rows, the lists unpacked from `auth` into the old tables.
    let old = env.dir.path().join("old.db");
    let conn = Connection::open(&old).unwrap();
    for sql in BEFORE_RECORD_LISTS {
        conn.execute_batch(sql).unwrap();
    }
    conn.pragma_update(None, "user_version", BEFORE_RECORD_LISTS.len() as i64)
        .unwrap();
    conn.execute("ATTACH DATABASE ?1 AS new", [s(&env.db())])
        .unwrap();
    conn.execute_batch(
        "INSERT INTO reports SELECT * FROM new.reports;
         INSERT INTO records (id, report, source_ip, count, disposition, dkim, spf, header_from,
             envelope_from, envelope_to, auth_dkim_domain, auth_dkim_result, auth_spf_domain,
             auth_spf_result, forwarded)
         SELECT id, report, source_ip, count, disposition, dkim, spf, header_from, envelope_from,
             envelope_to, auth_dkim_domain, auth_dkim_result, auth_spf_domain, auth_spf_result,
             forwarded FROM new.records;
         INSERT INTO record_dkim (record, n, domain, selector, result, human_result)
         SELECT c.id, d.key, d.value ->> 0, d.value ->> 1, d.value ->> 2, d.value ->> 3
         FROM new.records c, json_each(c.auth, '$[0]') d;
         INSERT INTO record_spf (record, n, domain, scope, result)
         SELECT c.id, x.key, x.value ->> 0, x.value ->> 1, x.value ->> 2
         FROM new.records c, json_each(c.auth, '$[1]') x;
         INSERT INTO record_reasons (record, n, type, comment)
         SELECT c.id, x.key, x.value ->> 0, x.value ->> 1
         FROM new.records c, json_each(c.auth, '$[2]') x;",
    )
    .unwrap();
    let lists: i64 = conn
        .query_row(
            "SELECT (SELECT count(*) FROM record_dkim) + (SELECT count(*) FROM record_spf)
                 + (SELECT count(*) FROM record_reasons)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(lists > 100, "{lists}");
    conn.execute("DETACH DATABASE new", []).unwrap();
    drop(conn);

    // A listing refuses the old database; a writing command upgrades it.
    let listing = |db: &std::path::Path| {
        env.run(&["--db", s(db), "sources", "--days", "0", "--format", "json"])
    };
    assert_eq!(listing(&old).code, 2);
    let out = env.run(&["--db", s(&old), "reprocess"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(listing(&old).stdout, listing(&env.db()).stdout);

    let conn = Connection::open(&old).unwrap();
    conn.execute("ATTACH DATABASE ?1 AS new", [s(&env.db())])
        .unwrap();
    let (records, differ): (i64, i64) = conn
        .query_row(
            "SELECT count(*), count(*) FILTER (WHERE o.auth IS NOT n.auth)
             FROM main.records o JOIN new.records n ON n.id = o.id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(records > 50, "{records}");
    assert_eq!(differ, 0, "records whose packed lists differ from ingest's");
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM main.sqlite_schema WHERE name LIKE 'record\\_%' ESCAPE '\\'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0);
    // Rebuilt without a foreign key: records go with their report by the statements that delete
    // reports (cli::issue_2_…, prune::prune_keeps_exactly_…).
    let keys: i64 = conn
        .query_row(
            "SELECT count(*) FROM pragma_foreign_key_list('records')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(keys, 0);
}
