//! SQLite databases written by earlier versions of the schema, upgraded by the migrations the
//! next writing command applies. (PostgreSQL's: `postgres::migrations_*` and
//! `prune::the_migration_partitions_a_database_of_schema_0001`.)

use dmarc_warden::store::blocks::{AUTH, Records, Row, TEXTS};
use dmarc_warden::store::lists::Lists;
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
/// record's lists are packed into a text that reads back as exactly the lists `ingest` wrote (the
/// migration writes JSON, `ingest` the compact text of `src/store/lists.rs`), the three tables
/// are gone, and the listings answer as on the database `ingest` wrote.
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
    conn.execute_batch("INSERT INTO reports SELECT * FROM new.reports")
        .unwrap();
    // Today's records, read from their blocks, as rows (the texts in `TEXTS`' order, but `auth`).
    for (id, (report, row)) in (1..).zip(records_of(&conn, "new")) {
        let numbers = [id, report, row.count, i64::from(row.forwarded)];
        let values = (numbers.iter().map(|n| n as &dyn rusqlite::ToSql))
            .chain(row.texts[..AUTH].iter().map(|t| t as &dyn rusqlite::ToSql));
        conn.execute(
            &format!(
                "INSERT INTO records (id, report, count, forwarded, {}) VALUES ({})",
                TEXTS[..AUTH].join(", "),
                vec!["?"; 4 + AUTH].join(", ")
            ),
            rusqlite::params_from_iter(values),
        )
        .unwrap();
    }
    // Each record's lists, read as the store reads them, one row an item.
    for (id, auth) in auth_of(&conn, "new") {
        let lists = Lists::read(&auth).unwrap_or_else(|| panic!("record {id}: {auth:?}"));
        for (n, [domain, selector, result, human]) in lists.dkim.iter().enumerate() {
            conn.execute(
                "INSERT INTO record_dkim (record, n, domain, selector, result, human_result)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                rusqlite::params![id, n, domain, selector, result, human],
            )
            .unwrap();
        }
        for (n, [domain, scope, result]) in lists.spf.iter().enumerate() {
            conn.execute(
                "INSERT INTO record_spf (record, n, domain, scope, result)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![id, n, domain, scope, result],
            )
            .unwrap();
        }
        for (n, [kind, comment]) in lists.reasons.iter().enumerate() {
            conn.execute(
                "INSERT INTO record_reasons (record, n, type, comment) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![id, n, kind, comment],
            )
            .unwrap();
        }
    }
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
    // The migrations pack the lists as JSON, and then the records into blocks: the records read
    // back as what `ingest` wrote, their lists as the same lists.
    let (old_records, new_records) = (records_of(&conn, "main"), records_of(&conn, "new"));
    assert_eq!(old_records.len(), new_records.len());
    for ((old_report, o), (new_report, n)) in old_records.iter().zip(&new_records) {
        assert_eq!(old_report, new_report);
        assert_eq!(o.texts[..AUTH], n.texts[..AUTH]);
        assert_eq!((o.count, o.forwarded), (n.count, n.forwarded));
    }
    let (old_auth, new_auth) = (auth_of(&conn, "main"), auth_of(&conn, "new"));
    assert!(old_auth.len() > 50, "{}", old_auth.len());
    assert_eq!(old_auth.len(), new_auth.len());
    for ((id, o), (_, n)) in old_auth.iter().zip(&new_auth) {
        assert!(o.starts_with('['), "record {id}: {o:?}");
        assert!(n.starts_with('~'), "record {id}: {n:?}");
        assert_eq!(
            Lists::read(o),
            Lists::read(n),
            "record {id}: {o:?} and {n:?}"
        );
    }
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM main.sqlite_schema
             WHERE name IN ('record_dkim', 'record_spf', 'record_reasons', 'records')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0);
    // Without a foreign key: records go with their report by the statements that delete reports
    // (cli::issue_2_…, prune::prune_keeps_exactly_…).
    let keys: i64 = conn
        .query_row(
            "SELECT count(*) FROM pragma_foreign_key_list('record_blocks')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(keys, 0);
}

/// Each record's report and values, in order, of the database attached as `schema` (SQLite
/// keeps a report's records as one block: `src/store/blocks.rs`).
fn records_of(conn: &Connection, schema: &str) -> Vec<(i64, Row<'static>)> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT report, data FROM {schema}.record_blocks ORDER BY report"
        ))
        .unwrap();
    let blocks: Vec<(i64, Vec<u8>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut out = Vec::new();
    for (report, data) in blocks {
        let data: &'static [u8] = data.leak();
        for row in Records::new(data).unwrap() {
            out.push((report, row.unwrap()));
        }
    }
    out
}

/// Each record's place (from 1, over the whole database) and `auth`, in order, of the database
/// attached as `schema`.
fn auth_of(conn: &Connection, schema: &str) -> Vec<(i64, String)> {
    (1..)
        .zip(records_of(conn, schema))
        .map(|(id, (_, row))| (id, row.texts[AUTH].unwrap_or_default().to_owned()))
        .collect()
}
