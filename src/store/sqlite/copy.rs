//! `migrate --to`: the tables read and written in the shape [`crate::store::copy`] describes.
//! SQLite keeps a report's records as one block ([`crate::store::blocks`]): read, a record is
//! named by its report and its place in the block (`records_of`); written, the rows of a report,
//! which come in order, are packed into its block.

use rusqlite::ToSql;
use rusqlite::types::{ToSqlOutput, ValueRef};

use super::ingest::Packer;
use super::records_of::JOIN;
use super::{Db, Tx};
use crate::store::StoreError;
use crate::store::blocks::{Row, TEXTS};
use crate::store::copy::{Kind, Sink, Table, Value};

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

/// Records going into their reports' blocks, in the order of (report, place).
struct Records<'t> {
    packer: Packer<'t>,
    /// Where a row's report, count, `forwarded` and [`TEXTS`] are.
    report: usize,
    count: usize,
    forwarded: usize,
    texts: [usize; TEXTS.len()],
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
        self.packer.push(int(self.report), &record)
    }

    fn finish(mut self: Box<Self>) -> Result<(), StoreError> {
        self.packer.flush()
    }
}

impl<'c> Tx<'c> {
    pub fn count(&mut self, table: &str) -> Result<u64, StoreError> {
        count(&self.tx, table)
    }

    /// Where the rows of `table` go, in the copy's shape.
    pub fn sink<'t>(&'t mut self, table: &'static Table) -> Result<Box<dyn Sink + 't>, StoreError> {
        let names = table.names();
        let at = |name: &str| names.iter().position(|n| *n == name).unwrap_or(usize::MAX);
        if table.name == "records" {
            return Ok(Box::new(Records {
                packer: Packer::new(&self.tx)?,
                report: at("report"),
                count: at("count"),
                forwarded: at("forwarded"),
                texts: TEXTS.map(at),
            }));
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
