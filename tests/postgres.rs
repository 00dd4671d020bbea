//! The PostgreSQL backend's groundwork against a real server (`support/postgres.rs`: Debian's
//! PostgreSQL on 127.0.14.1, TLS from a test CA, a password-protected role): migrations applied
//! once when many start at once on an empty database; the password from a file or `.pgpass`, and a
//! wrong one refused in one line; `verify-full` with the right CA and the wrong one; reports stored
//! once, the most complete copy kept, under concurrent writers; the listings answering as SQLite's
//! over the sample reports and the shared corpus; every other concern round-tripped; and the bulk
//! insert's rate. Then the executable on PostgreSQL (`cli::Env::on(Backend::Postgres)`): four
//! `ingest`s at once over overlapping parts of the samples and the corpus store every report once
//! with exact counts; an `ingest` killed with SIGKILL and run again leaves exact counts; every
//! listing's JSON is SQLite's, also after `migrate --to` PostgreSQL and back; a role's password
//! comes from a file, and a URL that is not a database is refused.

#[path = "support/postgres.rs"]
#[allow(dead_code)]
pub(crate) mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::Instant;

use dmarc_warden::model::{AggregateReport, EvidenceKey, Extracted, Filter, IpEvidence, Located};
use dmarc_warden::store::postgres::{
    self as pg, Client, Connector, Location, PgError, PgUrl, resolve_password,
};
use dmarc_warden::store::{Detail, Inserted, RejectedInput, Store, StoreError};
use dmarc_warden::unpack::Limits;
use support::{PASSWORD, ROLE, TestDb, server};

use crate::cli::{Backend, Env, Out, s};

fn url(text: &str) -> PgUrl {
    match Location::parse(OsStr::new(text)).unwrap() {
        Location::Postgres(u) => u,
        other => panic!("{text}: {other:?}"),
    }
}

/// A connector whose environment is `env` (nothing else of the process's), with no home directory.
fn connector_with(text: &str, env: &[(&str, &Path)]) -> Result<(Connector, Vec<String>), PgError> {
    let u = url(text);
    let env: HashMap<String, OsString> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.as_os_str().to_owned()))
        .collect();
    let found = resolve_password(&u, &|name| env.get(name).cloned(), None)?;
    let warnings = found.warnings.clone();
    Ok((Connector::new(&u, found)?, warnings))
}

/// Why connecting failed.
fn refused(c: &Connector) -> String {
    match c.connect() {
        Ok(_) => panic!("{c:?} connected"),
        Err(e) => e.to_string(),
    }
}

/// A connection to `db` as the test role, over TLS checked against the test CA.
fn connect(db: &TestDb) -> Client {
    let (c, _) = connector_with(
        &db.url(),
        &[(pg::PASSWORD_FILE_VAR, &server().password_file)],
    )
    .unwrap();
    c.connect().unwrap()
}

fn migrated(db: &TestDb) -> Client {
    let mut client = connect(db);
    pg::migrate(&mut client).unwrap();
    client
}

#[test]
fn migrations_run_once_when_many_start_at_once() {
    let db = Arc::new(server().fresh_db());
    let n = 8;
    let barrier = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (db, barrier) = (db.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut client = connect(&db);
                barrier.wait();
                pg::migrate(&mut client).unwrap()
            })
        })
        .collect();
    let applied: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(
        applied,
        pg::MIGRATIONS.len(),
        "exactly one starter migrates"
    );

    let mut client = connect(&db);
    let rows = client
        .query(
            "SELECT version, name FROM schema_migrations ORDER BY version",
            &[],
        )
        .unwrap();
    let recorded: Vec<(i32, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let expected: Vec<(i32, String)> = pg::MIGRATIONS
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (i as i32 + 1, (*name).to_owned()))
        .collect();
    assert_eq!(recorded, expected);
    assert_eq!(
        pg::migrate(&mut client).unwrap(),
        0,
        "an upgraded database is left alone"
    );
    pg::check_schema(&mut client).unwrap();

    // A database from a newer dmarc-warden is refused, not migrated.
    client
        .execute(
            "INSERT INTO schema_migrations (version, name) VALUES (999, '0999_future')",
            &[],
        )
        .unwrap();
    let e = pg::migrate(&mut client).unwrap_err().to_string();
    assert!(e.contains("schema version 999, newer"), "{e}");

    // One that lacks migrations is refused by read-only use.
    let empty = server().fresh_db();
    let e = pg::check_schema(&mut connect(&empty))
        .unwrap_err()
        .to_string();
    assert!(e.contains("schema version 0, older"), "{e}");
}

#[test]
fn the_password_comes_from_a_file_and_a_wrong_one_fails_in_one_line() {
    let db = server().fresh_db();
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str, mode: u32| -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    };

    // DMARC_WARDEN_DB_PASSWORD_FILE.
    let good = file("good", &format!("{PASSWORD}\n"), 0o600);
    let (c, warnings) = connector_with(&db.url(), &[(pg::PASSWORD_FILE_VAR, &good)]).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let mut client = c.connect().unwrap();
    let user: String = client
        .query_one("SELECT current_user::text", &[])
        .unwrap()
        .get(0);
    assert_eq!(user, ROLE);

    let wrong = file("wrong", "not-the-password\n", 0o600);
    let (c, _) = connector_with(&db.url(), &[(pg::PASSWORD_FILE_VAR, &wrong)]).unwrap();
    let e = refused(&c);
    assert_eq!(
        e,
        format!(
            "database {}: password authentication failed for user \"{ROLE}\" (the password from {})",
            url(&db.url()),
            wrong.display()
        )
    );
    assert!(!e.contains("not-the-password") && !e.contains('\n'));

    let readable = file("readable", &format!("{PASSWORD}\n"), 0o644);
    let (c, warnings) = connector_with(&db.url(), &[(pg::PASSWORD_FILE_VAR, &readable)]).unwrap();
    assert!(
        warnings[0].contains("can be read by others (mode 644)"),
        "{warnings:?}"
    );
    c.connect().unwrap();

    let missing = dir.path().join("missing");
    let e = connector_with(&db.url(), &[(pg::PASSWORD_FILE_VAR, &missing)])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!("database password file {}: ", missing.display())),
        "{e}"
    );

    // PGPASSFILE, in libpq's format: the first matching line wins.
    let pgpass = file(
        "pgpass",
        &format!(
            "# tests\nother:*:*:*:nope\n{}:{}:{}:{ROLE}:{PASSWORD}\n*:*:*:*:fallback\n",
            support::HOST,
            db.port,
            db.name
        ),
        0o600,
    );
    let (c, _) = connector_with(&db.url(), &[("PGPASSFILE", &pgpass)]).unwrap();
    c.connect().unwrap();
    // A password file others can read is not used, as libpq does not use it.
    let open = file(
        "open-pgpass",
        &std::fs::read_to_string(&pgpass).unwrap(),
        0o644,
    );
    let (c, warnings) = connector_with(&db.url(), &[("PGPASSFILE", &open)]).unwrap();
    assert!(
        warnings[0].contains("has group or world access"),
        "{warnings:?}"
    );
    let e = refused(&c);
    assert_eq!(
        e,
        format!(
            "database {}: the server asks for a password; name a file holding it in \
             DMARC_WARDEN_DB_PASSWORD_FILE, or add a line to ~/.pgpass",
            url(&db.url())
        )
    );

    // A database that does not exist says so.
    let absent = db.url().replace(&db.name, "no_such_db");
    let (c, _) = connector_with(&absent, &[(pg::PASSWORD_FILE_VAR, &good)]).unwrap();
    let e = refused(&c);
    assert_eq!(e, format!("database {} does not exist", url(&absent)));
}

#[test]
fn verify_full_accepts_the_servers_ca_and_refuses_another_in_one_line() {
    let db = server().fresh_db();
    let password = [(pg::PASSWORD_FILE_VAR, server().password_file.as_path())];
    let (c, _) = connector_with(&db.url(), &password).unwrap();
    let mut client = c.connect().unwrap();
    let ssl: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(ssl, "verify-full connects over TLS");

    let wrong = server().wrong_ca.display().to_string();
    for mode in ["verify-full", "verify-ca"] {
        let text = db.url_with(&format!("sslmode={mode}&sslrootcert={wrong}"));
        let (c, _) = connector_with(&text, &password).unwrap();
        let e = refused(&c);
        assert_eq!(
            e,
            format!(
                "database server {}:{}: certificate refused: invalid peer certificate: \
                 UnknownIssuer (CA file {wrong})",
                support::HOST,
                db.port
            )
        );
    }
    // verify-ca checks the chain, not the name.
    let ca = server().ca.display().to_string();
    let (c, _) = connector_with(
        &db.url_with(&format!("sslmode=verify-ca&sslrootcert={ca}")),
        &password,
    )
    .unwrap();
    c.connect().unwrap();
    // `require` encrypts without checking; `disable` does not encrypt.
    for (mode, encrypted) in [("require", true), ("prefer", true), ("disable", false)] {
        let (c, _) = connector_with(&db.url_with(&format!("sslmode={mode}")), &password).unwrap();
        let ssl: bool = c
            .connect()
            .unwrap()
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(ssl, encrypted, "sslmode={mode}");
    }
    // verify-full without a CA file is refused before connecting.
    let e = connector_with(&db.url_with("sslmode=verify-full"), &password)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("sslmode=verify-full needs sslrootcert=FILE"),
        "{e}"
    );
}

/// Every input under `dir` (sorted), extracted as `ingest` does.
fn extract_dir(dir: &Path) -> Vec<(String, Extracted)> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            let bytes = std::fs::read(p).unwrap();
            (
                p.display().to_string(),
                dmarc_warden::pipeline::extract(&bytes, &Limits::default()),
            )
        })
        .collect()
}

type Copy = (String, Located<AggregateReport>);

/// The sample reports, each with copies that lack records (the first k, for every k), in an order
/// that differs per writer.
fn copies() -> (Vec<Copy>, Vec<Copy>) {
    let mut full = Vec::new();
    let mut all = Vec::new();
    for (origin, x) in extract_dir(&crate::cli::samples()) {
        for r in x.reports {
            for k in 1..r.item.records.len() {
                let mut copy = r.clone();
                copy.item.records.truncate(k);
                all.push((origin.clone(), copy));
            }
            all.push((origin.clone(), r.clone()));
            full.push((origin.clone(), r));
        }
    }
    (full, all)
}

/// A deterministic shuffle.
fn shuffled<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
    let mut rng = crate::imap::corpus::Rng::new(seed);
    let mut out = items.to_vec();
    for i in (1..out.len()).rev() {
        out.swap(i, rng.below(i as u64 + 1) as usize);
    }
    out
}

/// Runs `batch` in a transaction of its own, again when a concurrent writer made it fail in a way
/// that asks for that (a deadlock).
fn insert_batch(client: &mut Client, batch: &[Copy], now: i64) -> Vec<Inserted> {
    let items: Vec<(&str, &Located<AggregateReport>)> =
        batch.iter().map(|(o, r)| (o.as_str(), r)).collect();
    for _ in 0..20 {
        let mut tx = client.transaction().unwrap();
        match pg::insert_reports(&mut tx, &items, now) {
            Ok(out) => {
                tx.commit().unwrap();
                return out;
            }
            Err(e) if e.is_retryable() => continue,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("a batch kept deadlocking");
}

fn key(r: &AggregateReport) -> (String, String, String) {
    (
        r.policy.domain.clone(),
        r.metadata.org_name.clone(),
        r.metadata.report_id.clone(),
    )
}

#[test]
fn concurrent_writers_store_each_report_once_and_keep_the_most_complete_copy() {
    let db = Arc::new(server().fresh_db());
    migrated(&db);
    let (full, all) = copies();
    let all = Arc::new(all);
    let writers = 4;
    let barrier = Arc::new(Barrier::new(writers));
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let (db, all, barrier) = (db.clone(), all.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut client = connect(&db);
                let mine = shuffled(&all, w as u64 + 1);
                barrier.wait();
                let mut results = Vec::new();
                for batch in mine.chunks(7) {
                    let out = insert_batch(&mut client, batch, 1_800_000_000);
                    results.extend(batch.iter().map(|(_, r)| key(&r.item)).zip(out));
                }
                results
            })
        })
        .collect();
    let mut by_key: BTreeMap<(String, String, String), Vec<Inserted>> = BTreeMap::new();
    for t in threads {
        for (k, outcome) in t.join().unwrap() {
            by_key.entry(k).or_default().push(outcome);
        }
    }

    // The most complete copy of each report, as the samples have it (the last of equal ones
    // being no more complete than the first).
    let mut best: BTreeMap<(String, String, String), &Located<AggregateReport>> = BTreeMap::new();
    for (_, r) in &full {
        let better = |b: &&Located<AggregateReport>| {
            (r.item.records.len(), r.item.message_count())
                > (b.item.records.len(), b.item.message_count())
        };
        match best.get(&key(&r.item)) {
            Some(b) if !better(b) => {}
            _ => {
                best.insert(key(&r.item), r);
            }
        }
    }
    let mut client = connect(&db);
    let stored: BTreeMap<(String, String, String), (i64, i64)> = client
        .query(
            "SELECT domain, org_name, report_id, record_count, message_count FROM reports",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| ((r.get(0), r.get(1), r.get(2)), (r.get(3), r.get(4))))
        .collect();
    assert_eq!(stored.len(), best.len(), "each report stored once");
    for (k, r) in &best {
        let want = (r.item.records.len() as i64, r.item.message_count() as i64);
        assert_eq!(stored[k], want, "{k:?}: the most complete copy stays");
        // Exactly one writer stored it first, and the records added add up to what is stored.
        let outcomes = &by_key[k];
        let new = outcomes
            .iter()
            .filter(|o| matches!(o, Inserted::New { .. }))
            .count();
        assert_eq!(new, 1, "{k:?}: {outcomes:?}");
        let added: usize = outcomes
            .iter()
            .map(|o| match o {
                Inserted::New { records } | Inserted::Replaced { records } => *records,
                Inserted::Duplicate => 0,
            })
            .sum();
        assert_eq!(added as i64, want.0, "{k:?}: {outcomes:?}");
    }
    let records: i64 = client
        .query_one("SELECT count(*) FROM records", &[])
        .unwrap()
        .get(0);
    let want: i64 = stored.values().map(|v| v.0).sum();
    assert_eq!(records, want, "no record of a replaced copy is left behind");

    // What SQLite stores of the same reports, listed, is what PostgreSQL lists.
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open(&dir.path().join("warden.db")).unwrap();
    sqlite
        .write(|tx| {
            for (origin, r) in all.iter() {
                tx.insert_report(origin, r, 1_800_000_000)?;
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
    let f = Filter::default();
    assert_eq!(
        pg::domains(&mut client, &f).unwrap(),
        sqlite.domains(&f).unwrap()
    );
    assert_eq!(
        pg::reports(&mut client, &f).unwrap(),
        sqlite.reports(&f).unwrap()
    );
    assert_eq!(
        pg::sources(&mut client, &f).unwrap(),
        sqlite.sources(&f).unwrap()
    );
}

/// Two listings are equal; else the first row that differs, not the whole listings.
#[track_caller]
fn same<T: PartialEq + std::fmt::Debug>(pg: Vec<T>, sqlite: Vec<T>, what: &str) {
    if pg == sqlite {
        return;
    }
    let at = pg.iter().zip(&sqlite).position(|(a, b)| a != b);
    match at {
        Some(i) => panic!(
            "{what}: row {i} of {} differs:\n postgres: {:?}\n sqlite:   {:?}",
            pg.len(),
            pg[i],
            sqlite[i]
        ),
        None => panic!(
            "{what}: {} rows from postgres, {} from sqlite",
            pg.len(),
            sqlite.len()
        ),
    }
}

/// The same inputs stored in both backends, one report at a time and in order, as `ingest` does.
fn load_both(inputs: &[(String, Extracted)], client: &mut Client, sqlite: &Store) {
    let now = 1_800_000_000;
    let mut tx = client.transaction().unwrap();
    sqlite
        .write(|stx| {
            for (origin, x) in inputs {
                for r in &x.reports {
                    let a = stx.insert_report(origin, r, now)?;
                    let b = pg::insert_report(&mut tx, origin, r, now).unwrap();
                    assert_eq!(a, b, "{origin} {}", r.location);
                }
                for r in &x.failure_reports {
                    let a = stx.insert_failure(origin, r, now)?;
                    let b = pg::insert_failure(&mut tx, origin, r, now).unwrap();
                    assert_eq!(a, b, "{origin} {}", r.location);
                }
                for r in &x.tls_reports {
                    let a = stx.insert_tls(origin, r, now)?;
                    let b = pg::insert_tls(&mut tx, origin, r, now).unwrap();
                    assert_eq!(a, b, "{origin} {}", r.location);
                }
                if !x.failures.is_empty() {
                    let input = RejectedInput {
                        origin,
                        data: Some(origin.as_bytes()),
                        failures: &x.failures,
                    };
                    stx.keep_reject(&input, now)?;
                    pg::keep_reject(&mut tx, &input, now).unwrap();
                }
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
    tx.commit().unwrap();
}

/// A sender's page sums a key's records on the server: counts whose sum is beyond `bigint` (three
/// rows of 2⁶³−1 messages: beyond what the parser takes, as a database written by another
/// version or copied in might hold) read as SQLite's records added one by one give them,
/// saturated.
#[test]
fn a_sender_s_counts_beyond_bigint_sum_as_on_sqlite() {
    let record = "<record><row><source_ip>192.0.2.7</source_ip><count>5</count>\
        <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf>\
        </policy_evaluated></row><identifiers><header_from>huge.example</header_from>\
        </identifiers><auth_results><dkim><domain>huge.example</domain><result>pass</result>\
        </dkim><spf><domain>huge.example</domain><result>pass</result></spf></auth_results>\
        </record>";
    let xml = format!(
        "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>Receiver</org_name>\
         <email>r@receiver.example</email><report_id>huge-1</report_id><date_range>\
         <begin>1790000000</begin><end>1790086399</end></date_range></report_metadata>\
         <policy_published><domain>huge.example</domain><p>none</p></policy_published>\
         {record}{record}{record}</feedback>"
    );
    let mut x = dmarc_warden::pipeline::extract(xml.as_bytes(), &Limits::default());
    assert_eq!(x.reports.len(), 1, "{:?}", x.failures);
    for r in &mut x.reports[0].item.records {
        r.count = i64::MAX as u64;
    }
    let db = server().fresh_db();
    let mut client = migrated(&db);
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open(&dir.path().join("warden.db")).unwrap();
    load_both(&[("huge.xml".to_owned(), x)], &mut client, &sqlite);
    let (rows, _) = sqlite
        .evidence_per_ip(Some("huge.example"), None, None, Detail::Days)
        .unwrap();
    let keys: Vec<EvidenceKey> = rows
        .iter()
        .map(|e| EvidenceKey {
            source_ip: Default::default(),
            ..e.key.clone()
        })
        .collect();
    let pg = pg::evidence_of_keys(&mut client, "huge.example", None, None, &keys).unwrap();
    let lite = sqlite
        .evidence_of_keys("huge.example", None, None, &keys)
        .unwrap();
    assert_eq!(pg, lite);
    assert_eq!(pg.len(), 1);
    assert_eq!(pg[0].messages, u64::MAX);
}

#[test]
fn listings_answer_as_sqlite_over_the_samples_and_the_corpus() {
    let mut inputs = extract_dir(&crate::cli::samples());
    let corpus = crate::corpus::corpus_dir();
    if corpus.is_dir() {
        inputs.extend(extract_dir(&corpus));
    }
    let db = server().fresh_db();
    let mut client = migrated(&db);
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open(&dir.path().join("warden.db")).unwrap();
    load_both(&inputs, &mut client, &sqlite);
    // Storing everything again changes nothing.
    load_both(&inputs, &mut client, &sqlite);

    let domains = sqlite.domains(&Filter::default()).unwrap();
    assert!(!domains.is_empty());
    let mut filters = vec![
        Filter::default(),
        Filter {
            limit: Some(3),
            ..Filter::default()
        },
    ];
    for d in domains.iter().take(5) {
        filters.push(Filter {
            domain: Some(d.domain.clone()),
            since: d.first.map(|t| t.0 + 86_400),
            until: d.last.map(|t| t.0),
            limit: None,
        });
    }
    // A domain over all time (no window: each statement's open ends).
    filters.push(Filter {
        domain: Some(domains[0].domain.clone()),
        ..Filter::default()
    });
    for f in &filters {
        let w = |what: &str| format!("{what} {f:?}");
        same(
            pg::domains(&mut client, f).unwrap(),
            sqlite.domains(f).unwrap(),
            &w("domains"),
        );
        same(
            pg::sources(&mut client, f).unwrap(),
            sqlite.sources(f).unwrap(),
            &w("sources"),
        );
        same(
            pg::reports(&mut client, f).unwrap(),
            sqlite.reports(f).unwrap(),
            &w("reports"),
        );
        same(
            pg::failures(&mut client, f, None).unwrap(),
            sqlite.failures(f, None).unwrap(),
            &w("failures"),
        );
        same(
            pg::tls(&mut client, f).unwrap(),
            sqlite.tls(f).unwrap(),
            &w("tls"),
        );
        let (domain, since, until) = (f.domain.as_deref(), f.since, f.until);
        let (e1, d1) =
            pg::evidence_per_ip(&mut client, domain, since, until, Detail::Daily).unwrap();
        // The records' rows (SQLite's rollups are compared with them in tests/rollups.rs).
        let (e2, d2) = sqlite
            .evidence_per_ip(domain, since, until, Detail::Daily)
            .unwrap();
        same(e1.clone(), e2, &w("evidence"));
        same(d1, d2, &w("evidence by day"));
        if let Some(domain) = domain {
            // A sender's page: the records of a few keys (without the IP) per IP, read by
            // PostgreSQL's own statement, as SQLite reads them: every key at once, and the keys
            // of each DKIM domain (a sender's) alone.
            let mut keys: Vec<EvidenceKey> = e1
                .iter()
                .map(|e| EvidenceKey {
                    source_ip: Default::default(),
                    ..e.key.clone()
                })
                .collect();
            keys.sort();
            keys.dedup();
            let mut sets = vec![keys.clone()];
            let mut by_dkim: BTreeMap<&str, Vec<EvidenceKey>> = BTreeMap::new();
            for k in &keys {
                by_dkim.entry(&k.dkim_domain).or_default().push(k.clone());
            }
            sets.extend(by_dkim.into_values().take(8));
            sets.push(Vec::new());
            for set in &sets {
                let sorted = |mut v: Vec<IpEvidence>| {
                    v.sort_by(|a, b| (&a.ip, a.key).cmp(&(&b.ip, b.key)));
                    v
                };
                same(
                    sorted(pg::evidence_of_keys(&mut client, domain, since, until, set).unwrap()),
                    sorted(sqlite.evidence_of_keys(domain, since, until, set).unwrap()),
                    &w(&format!("evidence of {} keys", set.len())),
                );
            }
            assert_eq!(
                pg::latest_policies(&mut client, Some(domain)).unwrap(),
                sqlite.latest_policies(Some(domain)).unwrap()
            );
        }
    }
    assert_eq!(pg::rejects(&mut client).unwrap(), sqlite.rejects().unwrap());
    assert_eq!(
        pg::kept_keys(&mut client).unwrap(),
        sqlite.kept_keys().unwrap()
    );
    assert_eq!(
        pg::latest_policies(&mut client, None).unwrap(),
        sqlite.latest_policies(None).unwrap()
    );
    same(
        pg::report_spans(&mut client, 0).unwrap(),
        sqlite.report_spans(0).unwrap(),
        "report spans",
    );
    assert_eq!(
        pg::latest_ends(&mut client).unwrap(),
        sqlite.latest_ends().unwrap()
    );
    // The busiest domains, and a spread of the others.
    for d in domains.iter().take(20).chain(domains.iter().step_by(50)) {
        assert_eq!(
            pg::dkim_selectors(&mut client, &d.domain).unwrap(),
            sqlite.dkim_selectors(&d.domain).unwrap()
        );
        assert_eq!(
            pg::tls_report_count(&mut client, &d.domain).unwrap(),
            sqlite.tls_report_count(&d.domain).unwrap()
        );
        assert_eq!(
            pg::source_ips_between(&mut client, &d.domain, 0, i64::MAX).unwrap(),
            sqlite.source_ips_between(&d.domain, 0, i64::MAX).unwrap()
        );
    }
    let reports: usize = inputs.iter().map(|(_, x)| x.reports.len()).sum();
    println!(
        "postgres: {} inputs, {reports} aggregate reports, {} domains: listings as SQLite's",
        inputs.len(),
        domains.len()
    );
}

#[test]
fn rejects_imap_rdns_checks_and_notifications_round_trip() {
    use dmarc_warden::analyse::check::{Check, DomainCheck, Finding, PublishedRecords, Severity};
    use dmarc_warden::model::{Failure, Timestamp};
    use dmarc_warden::store::Notified;

    let db = server().fresh_db();
    let mut client = migrated(&db);

    // Kept rejects: the same bytes again count an attempt and replace the reasons.
    let failures = vec![Located {
        location: "attachment \"x.zip\"".into(),
        item: Failure {
            reason: "not a report".into(),
        },
    }];
    let input = RejectedInput {
        origin: "/in/x.eml",
        data: Some(b"\0bytes\xff"),
        failures: &failures,
    };
    pg::keep_reject(&mut client, &input, 100).unwrap();
    pg::keep_reject(&mut client, &input, 200).unwrap();
    let unread = RejectedInput {
        origin: "/in/huge.eml",
        data: None,
        failures: &failures,
    };
    pg::keep_reject(&mut client, &unread, 150).unwrap();
    let listed = pg::rejects(&mut client).unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!((listed[0].attempts, listed[0].size), (2, Some(7)));
    assert_eq!(
        (listed[0].first_seen, listed[0].last_seen),
        (Timestamp(100), Timestamp(200))
    );
    assert_eq!(listed[1].size, None);
    let keys = pg::kept_keys(&mut client).unwrap();
    assert_eq!(keys[1], Store::origin_key("/in/huge.eml"));
    let kept = pg::kept_input(&mut client, &keys[0]).unwrap().unwrap();
    assert_eq!(
        kept.data.as_deref(),
        Some(&b"\0bytes\xff"[..]),
        "bytes kept as they were"
    );
    pg::forget_reject(&mut client, &keys[0]).unwrap();
    assert_eq!(
        pg::rejects(&mut client).unwrap().len(),
        1,
        "its reasons go with it"
    );

    // IMAP state, pending moves, and the lease per account.
    let (acct, folder) = ("dmarc@imap.example:993", "INBOX");
    assert_eq!(pg::imap_folder(&mut client, acct, folder).unwrap(), None);
    pg::set_imap_folder(&mut client, acct, folder, 7, 41).unwrap();
    pg::set_imap_folder(&mut client, acct, folder, 7, u32::MAX).unwrap();
    assert_eq!(
        pg::imap_folder(&mut client, acct, folder).unwrap(),
        Some((7, u32::MAX))
    );
    for uid in [5, 3, 9] {
        pg::add_pending_move(&mut client, acct, folder, 7, uid, "Archive").unwrap();
    }
    pg::add_pending_move(&mut client, acct, folder, 6, 1, "Archive").unwrap();
    pg::add_pending_move(&mut client, acct, folder, 7, 9, "Invalid").unwrap();
    pg::clear_pending_moves(&mut client, acct, folder, 7, &[5]).unwrap();
    assert_eq!(
        pg::drop_stale_moves(&mut client, acct, folder, 7).unwrap(),
        1
    );
    assert_eq!(
        pg::pending_moves(&mut client, acct, folder, 7).unwrap(),
        vec![(3, "Archive".to_owned()), (9, "Invalid".to_owned())],
        "in UID order; another UIDVALIDITY's moves dropped"
    );
    let mut other = connect(&db);
    assert!(pg::try_lock_account(&mut client, acct).unwrap());
    assert!(
        !pg::try_lock_account(&mut other, acct).unwrap(),
        "one fetch per mailbox"
    );
    assert!(pg::try_lock_account(&mut other, "someone@else:993").unwrap());
    drop(client);
    // A connection that ends gives its leases back.
    let mut client = connect(&db);
    let mut taken = false;
    for _ in 0..100 {
        taken = pg::try_lock_account(&mut other, acct).unwrap();
        if taken {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(taken);
    pg::unlock_account(&mut other, acct).unwrap();
    assert!(pg::try_lock_account(&mut client, acct).unwrap());

    // The reverse DNS cache: fresh answers only, a newer one replacing an older.
    let answers: HashMap<String, Option<String>> = [
        ("192.0.2.1".to_owned(), Some("mail.example.".to_owned())),
        ("192.0.2.2".to_owned(), None),
    ]
    .into();
    pg::set_rdns(&mut client, &answers, 1000).unwrap();
    pg::set_rdns(
        &mut client,
        &[("192.0.2.2".to_owned(), Some("late.example.".to_owned()))].into(),
        2000,
    )
    .unwrap();
    let ips = ["192.0.2.1", "192.0.2.2", "192.0.2.3"].map(String::from);
    assert_eq!(
        pg::rdns(&mut client, &ips, 500).unwrap(),
        [
            ("192.0.2.1".to_owned(), Some("mail.example.".to_owned())),
            ("192.0.2.2".to_owned(), Some("late.example.".to_owned())),
        ]
        .into()
    );
    assert_eq!(
        pg::rdns(&mut client, &ips, 1500).unwrap().len(),
        1,
        "stale ones absent"
    );

    // Checks: the latest per domain.
    let check = |domain: &str, at: i64, severity: Severity| DomainCheck {
        domain: domain.into(),
        checked_at: Timestamp(at),
        published: PublishedRecords {
            dmarc: vec!["v=DMARC1; p=none".into()],
            ..PublishedRecords::default()
        },
        findings: vec![Finding {
            check: Check::Dmarc,
            severity,
            message: "p=none".into(),
            fix: None,
        }],
    };
    pg::save_check(&mut client, &check("a.example", 10, Severity::Warning)).unwrap();
    pg::save_check(&mut client, &check("a.example", 20, Severity::Ok)).unwrap();
    pg::save_check(&mut client, &check("b.example", 15, Severity::Error)).unwrap();
    assert_eq!(
        pg::last_checks(&mut client, None).unwrap(),
        vec![
            check("a.example", 20, Severity::Ok),
            check("b.example", 15, Severity::Error)
        ]
    );
    assert_eq!(
        pg::last_checks(&mut client, Some("b.example")).unwrap(),
        vec![check("b.example", 15, Severity::Error)]
    );

    // Notifications: state and outbox written together; requeue, delivery, failure.
    let state = |kind: &str| Notified {
        kind: kind.into(),
        domain: "a.example".into(),
        subject: String::new(),
        fingerprint: String::new(),
        notified_at: 5,
    };
    pg::record_notices::<PgError>(&mut client, 5, |before| {
        assert!(before.is_empty());
        Ok((
            vec![state("policy"), state("new_sender")],
            vec![
                ("mail".into(), "{\"e\":1}".into()),
                ("hook".into(), "{\"e\":2}".into()),
            ],
        ))
    })
    .unwrap();
    // A decision that fails writes nothing.
    let e = pg::record_notices::<PgError>(&mut client, 6, |before| {
        assert_eq!(before, [state("new_sender"), state("policy")]);
        Err(PgError::Url {
            reason: "refused".into(),
        })
    });
    assert!(e.is_err());
    assert_eq!(pg::notified(&mut client).unwrap().len(), 2);
    let pending = pg::pending_notices(&mut client, None).unwrap();
    assert_eq!(
        pending
            .iter()
            .map(|p| p.channel.as_str())
            .collect::<Vec<_>>(),
        ["mail", "hook"]
    );
    pg::requeue_notices(
        &mut client,
        &[(pending[0].id, vec!["m1".into(), "m2".into()])],
    )
    .unwrap();
    let moved = pg::pending_notices(&mut client, None).unwrap();
    assert_eq!(
        moved.iter().map(|p| p.channel.as_str()).collect::<Vec<_>>(),
        ["hook", "m1", "m2"]
    );
    pg::notices_failed(&mut client, &[moved[1].id], "smtp: 451").unwrap();
    pg::notices_delivered(&mut client, &[moved[0].id, moved[2].id]).unwrap();
    let left = pg::pending_notices(&mut client, Some("m1")).unwrap();
    assert_eq!((left.len(), left[0].attempts), (1, 1));
    assert_eq!(
        pg::pending_notices(&mut client, Some("hook")).unwrap(),
        vec![]
    );

    // Another connection's commit changes the data version; reading does not.
    let before = pg::data_version(&mut other).unwrap();
    assert_eq!(pg::data_version(&mut other).unwrap(), before);
    pg::set_rdns(&mut client, &answers, 3000).unwrap();
    assert_ne!(pg::data_version(&mut other).unwrap(), before);
}

#[test]
fn bulk_insert_rate() {
    // The benchmark corpus's shape: 20 records a report, 50 domains, five reporters.
    let reports = 2_500;
    let mut rng = crate::imap::corpus::Rng::new(7);
    let parsed: Vec<Located<AggregateReport>> = (0..reports)
        .map(|n| Located {
            location: String::new(),
            item: dmarc_warden::parse::parse_aggregate(&crate::imap::corpus::report_xml(
                &mut rng, n, 20,
            ))
            .unwrap(),
        })
        .collect();
    let records: usize = parsed.iter().map(|r| r.item.records.len()).sum();
    let db = server().fresh_db();
    let mut client = migrated(&db);
    let started = Instant::now();
    for batch in parsed.chunks(250) {
        let items: Vec<(&str, &Located<AggregateReport>)> =
            batch.iter().map(|r| ("bench", r)).collect();
        let mut tx = client.transaction().unwrap();
        pg::insert_reports(&mut tx, &items, 1_800_000_000).unwrap();
        tx.commit().unwrap();
    }
    let took = started.elapsed();
    let stored: i64 = client
        .query_one("SELECT count(*) FROM records", &[])
        .unwrap()
        .get(0);
    assert_eq!(stored as usize, records);
    println!(
        "postgres: {records} records in {reports} reports stored in {:.2} s: {:.0} records/s",
        took.as_secs_f64(),
        records as f64 / took.as_secs_f64()
    );
}

#[test]
fn a_lost_connection_fails_in_one_line_and_leaves_nothing_half_done() {
    let db = server().fresh_db();
    let mut client = migrated(&db);
    let (full, _) = copies();
    let items: Vec<(&str, &Located<AggregateReport>)> =
        full.iter().map(|(o, r)| (o.as_str(), r)).collect();
    let (first, rest) = items.split_at(items.len() / 2);
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let mut tx = client.transaction().unwrap();
    pg::insert_reports(&mut tx, first, 1).unwrap();
    // The server ends the session mid-transaction, as a restart or a network failure would.
    server()
        .admin()
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .unwrap();
    let e = pg::insert_reports(&mut tx, rest, 1).unwrap_err();
    assert!(e.is_disconnect(), "{e:?}");
    let line = e.to_string();
    assert!(
        !line.contains('\n') && line.starts_with("database: "),
        "{line}"
    );
    drop(tx);
    drop(client);

    // Nothing of the lost transaction is stored; the next run stores everything, once.
    let mut client = connect(&db);
    let count = |c: &mut Client, table: &str| -> i64 {
        c.query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .unwrap()
            .get(0)
    };
    assert_eq!(count(&mut client, "reports"), 0);
    assert_eq!(count(&mut client, "records"), 0);
    let out = pg::insert_reports(&mut client, &items, 2).unwrap();
    let again = pg::insert_reports(&mut client, &items, 3).unwrap();
    assert!(again.iter().all(|o| *o == Inserted::Duplicate));
    let stored = count(&mut client, "reports");
    let new = out
        .iter()
        .filter(|o| matches!(o, Inserted::New { .. }))
        .count();
    assert_eq!(stored as usize, new);
    let records: usize = out
        .iter()
        .map(|o| match o {
            Inserted::New { records } | Inserted::Replaced { records } => *records,
            Inserted::Duplicate => 0,
        })
        .sum();
    assert_eq!(count(&mut client, "records") as usize, records);
}

// The executable on PostgreSQL, as a team runs it: several writers at once, a writer killed,
// `migrate --to`, a role with a password from a file, and every listing as SQLite answers it.

/// Every file under the inputs of `tables::inputs` (the samples, the bad fixtures, the corpus
/// when present), sorted.
fn input_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = crate::tables::inputs()
        .iter()
        .flat_map(|dir| crate::golden::files_under(dir))
        .collect();
    files.sort();
    files
}

/// A superuser connection to a test's database.
fn admin(env: &Env) -> Client {
    server().admin_to(&env.pg().unwrap().name)
}

fn count(c: &mut Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).unwrap().get(0)
}

/// Rows stored by kind, and records whose report is gone (none may be); all 0 before the first
/// run has made the schema.
fn totals(env: &Env) -> [i64; 5] {
    let mut c = admin(env);
    if count(
        &mut c,
        "SELECT count(*) FROM pg_tables WHERE tablename = 'reports'",
    ) == 0
    {
        return [0; 5];
    }
    [
        count(&mut c, "SELECT count(*) FROM reports"),
        count(&mut c, "SELECT count(*) FROM failure_reports"),
        count(&mut c, "SELECT count(*) FROM tls_reports"),
        count(&mut c, "SELECT count(*) FROM records"),
        count(
            &mut c,
            "SELECT count(*) FROM records c LEFT JOIN reports r
             ON r.domain = c.domain AND r.id = c.report WHERE r.id IS NULL",
        ),
    ]
}

/// A stored report: org, report id, domain, records, messages.
type ReportKey = (String, String, String, u64, u64);

/// What the reference SQLite database (all inputs, one `ingest`) stores: reports by key with
/// their records and messages, and the records in all.
fn reference() -> (BTreeSet<ReportKey>, i64) {
    let keys = crate::imap::report_keys(&crate::tables::DB);
    let records = keys.iter().map(|k| k.3 as i64).sum();
    (keys, records)
}

/// The number before `word` in a summary line (`… 208 reports new, … 615 records …`).
fn summary_count(line: &str, word: &str) -> i64 {
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[1].trim_end_matches(',') == word)
        .and_then(|w| w[0].parse().ok())
        .unwrap_or_else(|| panic!("no count of {word} in {line}"))
}

#[test]
fn four_ingests_at_once_over_overlapping_inputs_store_every_report_once() {
    let files = input_files();
    let env = Env::on(Backend::Postgres);
    // Each process reads 60% of the inputs, starting at its own quarter and going round: every
    // input is read by two or three processes, each in its own order.
    let n = files.len();
    let children: Vec<_> = (0..4)
        .map(|k| {
            let mine: Vec<&str> = (0..n * 3 / 5)
                .map(|i| s(&files[(k * n / 4 + i) % n]))
                .collect();
            let mut args = vec!["ingest", "--threads", "1"];
            args.extend(mine);
            env.command(&args)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<Out> = children.into_iter().map(crate::cli::finish).collect();
    let mut new = 0;
    let mut records = 0;
    for out in &outs {
        assert!(out.code <= 1, "{}", out.stderr);
        let line = out.stdout.lines().last().unwrap();
        new += summary_count(line, "reports");
        records += summary_count(line, "records");
    }
    let [reports, failures, tls, stored_records, orphans] = totals(&env);
    let (keys, want_records) = reference();
    assert_eq!(
        crate::imap::report_keys(&env),
        keys,
        "every report stored once, whole"
    );
    assert_eq!((stored_records, orphans), (want_records, 0));
    assert_eq!(
        new,
        reports + failures + tls,
        "each report counted new by exactly one process"
    );
    assert_eq!(
        records, stored_records,
        "the records the processes added add up"
    );
    println!(
        "postgres: 4 ingests at once over {n} inputs: {reports} aggregate, {failures} failure, \
         {tls} TLS reports and {stored_records} records stored once"
    );
}

#[test]
fn an_ingest_killed_part_way_and_run_again_leaves_exact_counts() {
    let files = input_files();
    let env = Env::on(Backend::Postgres);
    let mut args = vec!["ingest", "--quiet", "--threads", "1"];
    args.extend(files.iter().map(|p| s(p)));
    let mut child = crate::imap::KillOnDrop(Some(
        env.command(&args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    ));
    // Killed (SIGKILL) once some units of work are committed, and before the last.
    let started = Instant::now();
    while totals(&env)[0] == 0 {
        assert!(started.elapsed().as_secs() < 60, "nothing stored in 60 s");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.0.as_mut().unwrap().kill().unwrap();
    let status = child.0.take().unwrap().wait().unwrap();
    assert!(!status.success(), "the ingest ended before it was killed");
    let part = totals(&env);
    assert_eq!(part[4], 0, "no record without its report");

    let again = env.run(&args);
    assert!(again.code <= 1, "{}", again.stderr);
    let [reports, _, _, records, orphans] = totals(&env);
    let (keys, want_records) = reference();
    assert_eq!(crate::imap::report_keys(&env), keys);
    assert_eq!((records, orphans), (want_records, 0));
    println!(
        "postgres: ingest killed with {} of {reports} reports stored; the next run stored the rest once",
        part[0]
    );
}

/// Every listing's JSON, as a user asks for it.
const LISTINGS: &[&[&str]] = &[
    &["domains"],
    &["sources"],
    &["reports"],
    &["failures"],
    &["tls"],
    &["rejects"],
    &["senders", "--days", "0"],
    &["advise", "--offline", "--days", "0"],
];

/// The JSON of every listing; of `rejects`, without when each run saw the input (the runs being
/// compared ran at different times).
fn listings(env: &Env) -> Vec<String> {
    LISTINGS
        .iter()
        .map(|args| {
            let mut args = args.to_vec();
            args.extend(["--format", "json"]);
            let out = env.run(&args);
            assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
            if args[0] != "rejects" {
                return out.stdout;
            }
            // A kept input's id is the database's own number, given in the order a unit of work
            // writes them (PostgreSQL in key order, batches of other sizes): compared without it,
            // in the order of what was kept.
            let mut rows = out.json();
            for row in &mut rows {
                let row = row.as_object_mut().unwrap();
                row.remove("first_seen");
                row.remove("last_seen");
                row.remove("id");
            }
            rows.sort_by_key(|r| r.to_string());
            serde_json::to_string(&rows).unwrap()
        })
        .collect()
}

#[track_caller]
fn same_listings(a: &[String], b: &[String], what: &str) {
    for ((x, y), args) in a.iter().zip(b).zip(LISTINGS) {
        if x != y {
            let (x, y): (serde_json::Value, serde_json::Value) = (
                serde_json::from_str(x).unwrap(),
                serde_json::from_str(y).unwrap(),
            );
            let (x, y) = (x.as_array().unwrap(), y.as_array().unwrap());
            let at = x.iter().zip(y).position(|(p, q)| p != q);
            panic!(
                "{what}: {args:?} differs ({} and {} rows), first at row {at:?}: {:?} / {:?}",
                x.len(),
                y.len(),
                at.map(|i| &x[i]),
                at.map(|i| &y[i])
            );
        }
    }
}

#[test]
fn every_listing_answers_alike_on_both_and_migrate_copies_between_them() {
    let files = input_files();
    let mut args = vec!["ingest", "--quiet", "--threads", "1"];
    args.extend(files.iter().map(|p| s(p)));
    let sqlite = Env::new();
    let postgres = Env::on(Backend::Postgres);
    for env in [&sqlite, &postgres] {
        let out = env.run(&args);
        assert!(out.code <= 1, "{}", out.stderr);
    }
    let want = listings(&sqlite);
    same_listings(&want, &listings(&postgres), "SQLite / PostgreSQL");

    // SQLite to PostgreSQL, and that back to a new SQLite file: the same listings, and each
    // table's count printed and equal.
    let copy = Env::on(Backend::Postgres);
    let password = [(pg::PASSWORD_FILE_VAR, s(&server().password_file))];
    let out = sqlite.run_with_env(&["migrate", "--to", &copy.location()], &password);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.starts_with("TABLE "), "{}", out.stdout);
    let reports = crate::imap::report_keys(&sqlite).len();
    assert!(
        out.stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["reports", &crate::cli::thousands(reports as u64)]),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("each table's count the same in both"),
        "{}",
        out.stdout
    );
    same_listings(&want, &listings(&copy), "copied to PostgreSQL");
    let back = Env::new();
    let out = copy.run(&["migrate", "--to", &back.location()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    same_listings(&want, &listings(&back), "copied back to SQLite");

    // Only into an empty database.
    let out = sqlite.run_with_env(&["migrate", "--to", &copy.location()], &password);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr.lines().collect::<Vec<_>>(),
        [format!(
            "dmarc-warden: error: cannot copy into the target database: it is not empty \
             (reports: {reports} rows)"
        )]
    );
}

#[test]
fn a_role_with_a_password_from_a_file_and_one_without_it() {
    let env = Env::on(Backend::Postgres);
    let out = env.run(&["ingest", s(&crate::cli::samples())]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Without the password file: one line that says where the password goes.
    let mut command = env.command(&["domains"]);
    command.env_remove("DMARC_WARDEN_DB_PASSWORD_FILE");
    command.env("HOME", env.dir.path());
    let out = crate::cli::output_of(&mut command);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        format!(
            "dmarc-warden: error: database {}: the server asks for a password; name a file \
             holding it in DMARC_WARDEN_DB_PASSWORD_FILE, or add a line to ~/.pgpass\n",
            url(&env.location())
        )
    );
    // A password in the URL is refused before anything else, and not shown.
    let with_password = env
        .location()
        .replace(&format!("{ROLE}@"), &format!("{ROLE}:{PASSWORD}@"));
    let out = env.run(&["--db", &with_password, "domains"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("the URL holds a password") && !out.stderr.contains(PASSWORD),
        "{}",
        out.stderr
    );
    // A URL that is not a database.
    let out = env.run(&["--db", "mysql://warden@localhost/dmarc", "domains"]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            2,
            "dmarc-warden: error: --db mysql://…: not a database dmarc-warden can use (a file \
             path for SQLite, or postgres://USER@HOST[:PORT]/DB)\n"
        )
    );
}

#[test]
fn the_other_commands_work_on_postgres_as_on_sqlite() {
    let sqlite = Env::new();
    let postgres = Env::on(Backend::Postgres);
    let samples = crate::cli::samples();
    let bad = crate::cli::bad_fixtures();
    let run = |env: &Env, args: &[&str]| {
        let out = env.run(args);
        (out.code, out.stdout)
    };
    for args in [
        &["ingest", "--quiet", "--threads", "1", s(&samples), s(&bad)][..],
        &["reprocess", "--quiet"],
        // Notices go to stdout without a channel; each once.
        &["notify"],
        &["notify"],
        &["digest", "--days", "7"],
        &["rejects", "--format", "csv"],
    ] {
        let (a, b) = (run(&sqlite, args), run(&postgres, args));
        if args[0] == "rejects" {
            // Alike but for when each run saw the input.
            assert_eq!(a.1.lines().count(), b.1.lines().count());
            continue;
        }
        assert_eq!(a, b, "{args:?}");
    }
    let report = postgres.dir.path().join("report.html");
    let out = postgres.run(&["report", "--html", s(&report)]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        std::fs::read_to_string(&report)
            .unwrap()
            .contains("example.org")
    );
}
