//! The PostgreSQL schema's migrations, `schemas/postgres/NNNN_*.sql`, applied in order on first use
//! and on upgrade, each recorded in `schema_migrations` by the transaction that applies it.
//!
//! Two processes opening an empty (or older) database at once do not both migrate: the whole
//! check-and-apply runs in one transaction holding a transaction-level advisory lock, so the
//! second waits, then finds the migrations recorded and applies nothing. Advisory locks are per
//! database, so databases on one server do not wait for each other.

use postgres::GenericClient;

use super::PgError;
use crate::store::rollups::BackFill;

/// The migrations, numbered from 1 in this order; their names are recorded with them.
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_initial",
        include_str!("../../../schemas/postgres/0001_initial.sql"),
    ),
    (
        "0003_partitions",
        include_str!("../../../schemas/postgres/0003_partitions.sql"),
    ),
    (
        "0004_record_lists",
        include_str!("../../../schemas/postgres/0004_record_lists.sql"),
    ),
    (
        "0005_rollups",
        include_str!("../../../schemas/postgres/0005_rollups.sql"),
    ),
    (
        "0006_rollup_quarters",
        include_str!("../../../schemas/postgres/0006_rollup_quarters.sql"),
    ),
    (
        "0007_rollup_thirds",
        include_str!("../../../schemas/postgres/0007_rollup_thirds.sql"),
    ),
    (
        "0008_rollup_keys",
        include_str!("../../../schemas/postgres/0008_rollup_keys.sql"),
    ),
    (
        "0009_reports_listing",
        include_str!("../../../schemas/postgres/0009_reports_listing.sql"),
    ),
    (
        "0010_rollup_ips",
        include_str!("../../../schemas/postgres/0010_rollup_ips.sql"),
    ),
    (
        "0011_rollup_reports",
        include_str!("../../../schemas/postgres/0011_rollup_reports.sql"),
    ),
    (
        "0012_record_lists_compact",
        include_str!("../../../schemas/postgres/0012_record_lists_compact.sql"),
    ),
];

/// The advisory lock key that serialises migrations ("dmarcwm" + 1).
const MIGRATION_LOCK: i64 = 0x646d_6172_6377_6d01;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)";

/// The schema version of the database: the highest migration recorded, 0 when none.
pub fn schema_version(client: &mut impl GenericClient) -> Result<i64, PgError> {
    let row = client.query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])?;
    if !row.get::<_, bool>(0) {
        return Ok(0);
    }
    let row = client.query_one(
        "SELECT coalesce(max(version), 0)::bigint FROM schema_migrations",
        &[],
    )?;
    Ok(row.get(0))
}

/// Applies the migrations the database lacks, and returns how many this call applied (0 when it
/// was up to date, or when another process migrated while this one waited for the lock).
pub fn migrate(client: &mut impl GenericClient) -> Result<usize, PgError> {
    let known = MIGRATIONS.len() as i64;
    let version = schema_version(client)?;
    if version > known {
        return Err(PgError::TooNew {
            found: version,
            known,
        });
    }
    if version == known {
        return Ok(0);
    }
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(CREATE_TABLE)?;
    // Read again under the lock: another process may have migrated while this one waited.
    let version = schema_version(&mut tx)?;
    if version > known {
        return Err(PgError::TooNew {
            found: version,
            known,
        });
    }
    let mut applied = 0;
    // The most any migration applied here needs summed again.
    let mut need = None;
    for (i, (name, sql)) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        tx.batch_execute(sql)
            .map_err(|error| PgError::Migration { name, error })?;
        let this = match *name {
            "0005_rollups" | "0008_rollup_keys" | "0010_rollup_ips" | "0011_rollup_reports" => {
                Some(BackFill::Everything)
            }
            "0006_rollup_quarters" => Some(BackFill::Quarters),
            "0007_rollup_thirds" => Some(BackFill::Months),
            _ => None,
        };
        need = need.max(this);
        let number = i as i32 + 1;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&number, name],
        )?;
        applied += 1;
    }
    // The back-fill, once every table is made: the rollups of the reports already stored, or
    // the thirds and quarters of the months already summed.
    if let Some(need) = need {
        super::rollups::back_fill(&mut tx, need)?;
    }
    tx.commit()?;
    Ok(applied)
}

/// For read-only use (`serve`): the schema must be exactly the one this dmarc-warden knows;
/// nothing is migrated.
pub fn check_schema(client: &mut impl GenericClient) -> Result<(), PgError> {
    let known = MIGRATIONS.len() as i64;
    let version = schema_version(client)?;
    if version > known {
        return Err(PgError::TooNew {
            found: version,
            known,
        });
    }
    if version < known {
        return Err(PgError::TooOld {
            found: version,
            known,
        });
    }
    Ok(())
}
