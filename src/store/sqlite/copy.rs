//! `migrate --to`: the tables read and written in the shape [`crate::store::copy`] describes.
//! SQLite keeps a report's records as one block ([`crate::store::blocks`]): read, a record is
//! named by its report and its place in the block (`records_of`); written, the rows of a report,
//! which come in order, are packed into its block. Migration 22 packs an earlier version's
//! `records` table the same way (`pack_records_table`).

use rusqlite::ToSql;
use rusqlite::types::{ToSqlOutput, ValueRef};

use super::records_of::JOIN;
use super::{Db, Tx};
use crate::store::StoreError;
use crate::store::blocks::{Row, TEXTS, Writer};
use crate::store::copy::{Kind, Sink, TABLES, Table, Value};

/// The query that reads `table` as the copy describes it.
fn select(table: &Table) -> String {
    match table.name {
        "records" => format!(
            "SELECT r.domain, r.id, c.place, c.count, c.forwarded, c.source_ip,
                c.disposition, c.dkim, c.spf, c.header_from, c.envelope_from, c.envelope_to,
                c.auth_dkim_domain, c.auth_dkim_result, c.auth_spf_domain, c.auth_spf_result,
                c.auth
             FROM reports r {JOIN} ORDER BY r.id, c.place"
        ),
        name => format!(
            "SELECT {} FROM {name} ORDER BY {}",
            table.names().join(", "),
            table.order
        ),
    }
}

/// A stored value as the copy carries a column of `kind`.
fn value(v: ValueRef<'_>, kind: Kind) -> Value {
    match (v, kind) {
        (ValueRef::Null, _) => Value::Null,
        (ValueRef::Integer(n), Kind::Bool) => Value::Bool(n != 0),
        (ValueRef::Integer(n), Kind::Int | Kind::Int4) => Value::Int(n),
        (ValueRef::Real(x), Kind::Int | Kind::Int4) => Value::Int(x as i64),
        (ValueRef::Blob(b), Kind::Bytes) => Value::Bytes(b.to_vec()),
        (ValueRef::Text(t) | ValueRef::Blob(t), _) => {
            Value::Text(String::from_utf8_lossy(t).into_owned())
        }
        (ValueRef::Integer(n), _) => Value::Text(n.to_string()),
        (ValueRef::Real(x), _) => Value::Text(x.to_string()),
    }
}

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::from(rusqlite::types::Null),
            Value::Int(n) => ToSqlOutput::from(*n),
            Value::Text(t) => ToSqlOutput::from(t.as_str()),
            Value::Bytes(b) => ToSqlOutput::from(b.as_slice()),
            Value::Bool(b) => ToSqlOutput::from(i64::from(*b)),
        })
    }
}

fn count(conn: &rusqlite::Connection, table: &str) -> Result<u64, StoreError> {
    let from = match table {
        "records" => format!("reports r {JOIN}"),
        table => table.to_owned(),
    };
    Ok(conn.query_row(&format!("SELECT count(*) FROM {from}"), [], |r| r.get(0))?)
}

impl Db {
    /// The rows of `table` (one of the copy's).
    pub fn count(&self, table: &str) -> Result<u64, StoreError> {
        count(&self.conn, table)
    }

    /// Hands each row of `table` to `each`, in the copy's shape and order.
    pub fn export(
        &self,
        table: &Table,
        each: &mut dyn FnMut(Vec<Value>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare(&select(table))?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let row = table
                .columns
                .iter()
                .enumerate()
                .map(|(i, (_, kind))| Ok(value(r.get_ref(i)?, *kind)))
                .collect::<rusqlite::Result<Vec<Value>>>()?;
            each(row)?;
        }
        Ok(())
    }
}

/// Rows going into one table.
struct Rows<'t, 'c> {
    tx: &'t rusqlite::Transaction<'c>,
    sql: String,
}

impl Sink for Rows<'_, '_> {
    fn row(&mut self, row: Vec<Value>) -> Result<(), StoreError> {
        let values: Vec<&dyn ToSql> = row.iter().map(|v| v as &dyn ToSql).collect();
        self.tx.prepare_cached(&self.sql)?.execute(&values[..])?;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Records going into their reports' blocks, in the order of (report, place): a report's block
/// is written when the rows move on to the next report, and at the end.
struct Records<'t> {
    insert: rusqlite::CachedStatement<'t>,
    /// The report whose block is being filled.
    current: Option<(i64, Writer)>,
    /// Where a row's report, count, `forwarded` and [`TEXTS`] are.
    report: usize,
    count: usize,
    forwarded: usize,
    texts: [usize; TEXTS.len()],
}

impl<'t> Records<'t> {
    /// Rows whose columns are `names` (the copy's names), into `tx`'s `record_blocks`.
    fn new(tx: &'t rusqlite::Transaction<'_>, names: &[&str]) -> Result<Records<'t>, StoreError> {
        let at = |name: &str| names.iter().position(|n| *n == name).unwrap_or(usize::MAX);
        Ok(Records {
            insert: tx
                .prepare_cached("INSERT INTO record_blocks (report, data) VALUES (?1, ?2)")?,
            current: None,
            report: at("report"),
            count: at("count"),
            forwarded: at("forwarded"),
            texts: TEXTS.map(at),
        })
    }

    /// Writes the block being filled.
    fn flush(&mut self) -> Result<(), StoreError> {
        if let Some((report, writer)) = self.current.take() {
            self.insert
                .execute(rusqlite::params![report, writer.finish().data()])?;
        }
        Ok(())
    }
}

impl Sink for Records<'_> {
    fn row(&mut self, row: Vec<Value>) -> Result<(), StoreError> {
        let int = |i: usize| match row.get(i) {
            Some(Value::Int(n)) => *n,
            Some(Value::Bool(b)) => i64::from(*b),
            _ => 0,
        };
        let mut record = Row {
            count: int(self.count),
            forwarded: int(self.forwarded) != 0,
            ..Row::default()
        };
        for (to, &i) in record.texts.iter_mut().zip(&self.texts) {
            *to = match row.get(i) {
                Some(Value::Text(t)) => Some(t.as_str()),
                _ => None,
            };
        }
        let report = int(self.report);
        if self.current.as_ref().is_some_and(|(r, _)| *r != report) {
            self.flush()?;
        }
        let (_, writer) = self
            .current
            .get_or_insert_with(|| (report, Writer::with_capacity(16)));
        writer.push(&record);
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), StoreError> {
        self.flush()
    }
}

/// Migration 22 (`schemas/0022_record_blocks.sql`): the rows of an earlier version's `records`
/// table packed into blocks, in their order, as `migrate --to` packs the copy's rows (each value
/// read as the copy reads the column: a text stored as bytes that are not UTF-8 kept with U+FFFD
/// in their place), then the table dropped. Nothing to do where it is gone already.
pub(super) fn pack_records_table(tx: &rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    let packed_already: bool = tx.query_row(
        "SELECT NOT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'records')",
        [],
        |r| r.get(0),
    )?;
    if packed_already {
        return Ok(());
    }
    // The copy's columns of a record that the table had (not `domain`, `n`); were there none,
    // the SELECT below would fail, and the table stay.
    let table = TABLES.iter().find(|t| t.name == "records");
    let columns: Vec<(&str, Kind)> = (table.map_or(&[][..], |t| t.columns).iter())
        .filter(|(name, _)| !matches!(*name, "domain" | "n"))
        .copied()
        .collect();
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let mut read = tx.prepare(&format!(
        "SELECT {} FROM records ORDER BY report, id",
        names.join(", ")
    ))?;
    let mut records = Records::new(tx, &names)?;
    let mut rows = read.query([])?;
    while let Some(r) = rows.next()? {
        let row = (columns.iter().enumerate())
            .map(|(i, (_, kind))| Ok(value(r.get_ref(i)?, *kind)))
            .collect::<rusqlite::Result<Vec<Value>>>()?;
        records.row(row)?;
    }
    records.flush()?;
    drop((records, rows));
    drop(read);
    tx.execute_batch("DROP TABLE records")?;
    Ok(())
}

impl<'c> Tx<'c> {
    pub fn count(&mut self, table: &str) -> Result<u64, StoreError> {
        count(&self.tx, table)
    }

    /// Where the rows of `table` go, in the copy's shape.
    pub fn sink<'t>(&'t mut self, table: &'static Table) -> Result<Box<dyn Sink + 't>, StoreError> {
        let names = table.names();
        if table.name == "records" {
            return Ok(Box::new(Records::new(&self.tx, &names)?));
        }
        let marks: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
        Ok(Box::new(Rows {
            tx: &self.tx,
            sql: format!(
                "INSERT INTO {} ({}) VALUES ({})",
                table.name,
                names.join(", "),
                marks.join(", ")
            ),
        }))
    }
}
