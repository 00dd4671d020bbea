//! `prune` on PostgreSQL, and the month partitions of the records it drops
//! (schemas/postgres/0003_partitions.sql): `records` (with their lists packed in them since
//! 0004_record_lists.sql), by RANGE over `report_end`, one partition per UTC month,
//! `records_yYYYYmMM`.
//!
//! Partitions are made when first needed ([`ensure_months`]): the unit of work that stores a
//! report ending in a month without one makes that month's (and those of the month before, this
//! month and the next two, so that they are there before the reports), under a transaction-level
//! advisory lock, as a new table attached with `ATTACH PARTITION`, which locks the parent only
//! against other DDL: readers and writers go on. Two writers needing one month wait for each
//! other on the lock, and the second finds the month made.
//!
//! Prune runs in three short transactions, each leaving the database consistent (queries reach
//! records only through their report): (1) the reports that ended before the cutoff are deleted,
//! with failure and TLS reports and kept rejects; their records are then unreachable; (2) the
//! month partitions wholly before the cutoff are dropped (a brief exclusive lock on the parents;
//! when other users hold them too long, their rows are deleted instead); (3) the boundary month's
//! records before the cutoff are deleted. An interrupted prune is
//! finished by the next, which deletes by `report_end`, whatever became of the reports.

use std::collections::BTreeSet;

use postgres::GenericClient;

use super::PgError;
use crate::store::{Cutoffs, Pruned};

/// The partitioned tables.
pub const PARTITIONED: [&str; 1] = ["records"];

/// The advisory lock key under which partitions are made and dropped ("dmarcwm" + 2).
const PARTITION_LOCK: i64 = 0x646d_6172_6377_6d02;

/// How long dropping partitions waits for the tables' other users before prune deletes rows
/// instead.
const LOCK_WAIT: &str = "10s";

/// Aggregate reports that ended before $1 (when stored, without a period).
const OLD_REPORT: &str = "(date_end < $1 OR (date_end IS NULL AND ingested_at < $1))";

/// Moments in the months whose partitions are made ahead: the month before `now`'s (late
/// reports about it arrive in the first days of this one), `now`'s, and the next two.
pub fn upcoming(now: i64) -> Vec<i64> {
    let Some((start, next)) = crate::time::month_of(now) else {
        return vec![];
    };
    let after = crate::time::month_of(next).map_or(next, |(_, n)| n);
    vec![start - 1, start, next, after]
}

/// The months (their first moments) that `records` has a partition for.
fn months(client: &mut impl GenericClient) -> Result<BTreeSet<i64>, PgError> {
    let rows = client.query(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'records'::regclass",
        &[],
    )?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let name: String = r.get(0);
            crate::time::parse_month_name(name.strip_prefix("records_")?)
        })
        .collect())
}

/// Makes the month partitions of [`PARTITIONED`] for the months of `moments` that have none (see
/// the module's doc), in the caller's transaction; moments outside 1970 to 9999 go to the
/// catch-all partitions. Cheap when every month has one: one look at the catalog.
pub fn ensure_months(
    client: &mut impl GenericClient,
    moments: impl IntoIterator<Item = i64>,
) -> Result<(), PgError> {
    let wanted: BTreeSet<(i64, i64)> = moments
        .into_iter()
        .filter_map(crate::time::month_of)
        .collect();
    let have = months(client)?;
    if wanted.iter().all(|(start, _)| have.contains(start)) {
        return Ok(());
    }
    client.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK])?;
    // Again under the lock: another writer may have made some while this one waited.
    let have = months(client)?;
    for (start, next) in wanted.into_iter().filter(|(s, _)| !have.contains(s)) {
        let Some(month) = crate::time::month_name(start) else {
            continue;
        };
        for table in PARTITIONED {
            client.batch_execute(&format!(
                "CREATE TABLE {table}_{month} (LIKE {table} INCLUDING DEFAULTS);
                 ALTER TABLE {table} ATTACH PARTITION {table}_{month}
                     FOR VALUES FROM ({start}) TO ({next})"
            ))?;
        }
    }
    Ok(())
}

/// The month partitions wholly before `cutoff`: their months' names.
fn months_before(client: &mut impl GenericClient, cutoff: i64) -> Result<Vec<String>, PgError> {
    Ok(months(client)?
        .into_iter()
        .filter(|&start| crate::time::month_of(start).is_some_and(|(_, next)| next <= cutoff))
        .filter_map(crate::time::month_name)
        .collect())
}

/// See [`crate::store::Store::prune`] and the module's doc.
pub fn prune(
    client: &mut postgres::Client,
    cutoffs: Cutoffs,
    dry_run: bool,
) -> Result<Pruned, PgError> {
    let others = [
        (
            "failure_reports",
            "coalesce(arrival_date, ingested_at) < $1",
            cutoffs.failures,
        ),
        (
            "tls_reports",
            "coalesce(date_end, ingested_at) < $1",
            cutoffs.reports,
        ),
        ("reject_inputs", "first_seen < $1", cutoffs.rejects()),
    ];
    let mut pruned = Pruned::default();
    let mut gone = [0u64; 3];
    let mut tx = client.transaction()?;
    let (reports, records): (i64, i64) = {
        let sql = if dry_run {
            format!(
                "SELECT count(*), coalesce(sum(record_count), 0)::bigint FROM reports
                 WHERE {OLD_REPORT}"
            )
        } else {
            format!(
                "WITH gone AS (DELETE FROM reports WHERE {OLD_REPORT} RETURNING record_count)
                 SELECT count(*), coalesce(sum(record_count), 0)::bigint FROM gone"
            )
        };
        let row = tx.query_one(&sql, &[&cutoffs.reports])?;
        (row.get(0), row.get(1))
    };
    pruned.aggregate_reports = super::count(reports);
    pruned.records = super::count(records);
    for ((table, old, cutoff), n) in others.iter().zip(gone.iter_mut()) {
        *n = if dry_run {
            let row = tx.query_one(
                &format!("SELECT count(*) FROM {table} WHERE {old}"),
                &[cutoff],
            )?;
            super::count(row.get(0))
        } else {
            tx.execute(&format!("DELETE FROM {table} WHERE {old}"), &[cutoff])?
        };
    }
    [
        pruned.failure_reports,
        pruned.tls_reports,
        pruned.reject_inputs,
    ] = gone;
    // rollups: rows of days before the cutoff's day go too, in this transaction.
    pruned.rollups = rollups(&mut tx, cutoffs.reports, dry_run)?;
    if dry_run {
        pruned.partitions =
            Some((months_before(&mut tx, cutoffs.reports)?.len() * PARTITIONED.len()) as u64);
        return Ok(pruned);
    }
    // The months ahead, but none that would be dropped at once.
    let ahead = upcoming(crate::time::now())
        .into_iter()
        .filter(|&t| crate::time::month_of(t).is_some_and(|(_, next)| next > cutoffs.reports));
    ensure_months(&mut tx, ahead)?;
    tx.commit()?;

    // The months wholly before the cutoff, dropped in one short transaction. Dropping waits for
    // the parents' readers and writers to finish, and those who come after wait for it: when
    // that takes longer than LOCK_WAIT (a long ingest), the rows are deleted below instead, and
    // the next prune drops the emptied months.
    let mut tx = client.transaction()?;
    tx.batch_execute(&format!("SET LOCAL lock_timeout = '{LOCK_WAIT}'"))?;
    let dropped = (|| {
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK])?;
        let mut dropped = 0;
        for month in months_before(&mut tx, cutoffs.reports)? {
            for table in PARTITIONED {
                tx.batch_execute(&format!("DROP TABLE {table}_{month}"))?;
                dropped += 1;
            }
        }
        Ok::<u64, PgError>(dropped)
    })();
    pruned.partitions = Some(match dropped {
        Ok(n) => {
            tx.commit()?;
            n
        }
        Err(PgError::Sql { error, .. })
            if error.code() == Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE) =>
        {
            drop(tx);
            0
        }
        Err(e) => return Err(e),
    });

    // The boundary month's rows before the cutoff, and the catch-all before 1970's.
    let mut tx = client.transaction()?;
    for table in PARTITIONED.iter().rev() {
        tx.execute(
            &format!("DELETE FROM {table} WHERE report_end < $1"),
            &[&cutoffs.reports],
        )?;
    }
    tx.commit()?;
    Ok(pruned)
}

/// Deletes (or, dry, counts) the rollup rows of days before the day `cutoff` starts, and sums
/// again what the cutoff splits ([`super::rollups::prune`]).
pub fn rollups(
    client: &mut impl GenericClient,
    cutoff: i64,
    dry_run: bool,
) -> Result<u64, PgError> {
    super::rollups::prune(client, cutoff, dry_run)
}
