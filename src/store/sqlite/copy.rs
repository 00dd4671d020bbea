//! `migrate --to`: the tables read and written in the shape [`crate::store::copy`] describes.
//! SQLite numbers records globally: read, a record is named by its report and its place in it
//! (`row_number()` over the report's records in id order); written, records get consecutive ids
//! in that order.

use rusqlite::ToSql;
use rusqlite::types::{ToSqlOutput, ValueRef};

use super::{Db, Tx};
use crate::store::StoreError;
use crate::store::copy::{Kind, Sink, Table, Value};

/// Each record with its place in its report, from 0.
const PLACED: &str =
    "(SELECT *, row_number() OVER (PARTITION BY report ORDER BY id) - 1 AS place FROM records)";

/// The query that reads `table` as the copy describes it.
fn select(table: &Table) -> String {
    match table.name {
        "records" => format!(
            "SELECT r.domain, c.report, c.place, c.count, c.forwarded, c.source_ip,
                c.disposition, c.dkim, c.spf, c.header_from, c.envelope_from, c.envelope_to,
                c.auth_dkim_domain, c.auth_dkim_result, c.auth_spf_domain, c.auth_spf_result,
                c.auth
             FROM {PLACED} c JOIN reports r ON r.id = c.report ORDER BY c.report, c.place"
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
    Ok(conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?)
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
    /// Which of a row's values go into the statement, in its order.
    take: Vec<usize>,
    /// `records`: the id of the next record.
    next_record: Option<i64>,
}

impl Sink for Rows<'_, '_> {
    fn row(&mut self, row: Vec<Value>) -> Result<(), StoreError> {
        let mut values: Vec<&dyn ToSql> = Vec::with_capacity(self.take.len() + 1);
        let id;
        if let Some(next) = self.next_record.as_mut() {
            id = *next;
            *next += 1;
            values.push(&id);
        }
        values.extend(self.take.iter().map(|&i| &row[i] as &dyn ToSql));
        self.tx.prepare_cached(&self.sql)?.execute(&values[..])?;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<(), StoreError> {
        Ok(())
    }
}

impl<'c> Tx<'c> {
    pub fn count(&mut self, table: &str) -> Result<u64, StoreError> {
        count(&self.tx, table)
    }

    /// Where the rows of `table` go, in the copy's shape.
    pub fn sink<'t>(&'t mut self, table: &'static Table) -> Result<Box<dyn Sink + 't>, StoreError> {
        let names = table.names();
        let at = |name: &str| names.iter().position(|n| *n == name).unwrap_or(0);
        let (sql, take, next_record) = match table.name {
            "records" => {
                let columns = [
                    "report",
                    "count",
                    "forwarded",
                    "source_ip",
                    "disposition",
                    "dkim",
                    "spf",
                    "header_from",
                    "envelope_from",
                    "envelope_to",
                    "auth_dkim_domain",
                    "auth_dkim_result",
                    "auth_spf_domain",
                    "auth_spf_result",
                    "auth",
                ];
                let first: i64 =
                    self.tx
                        .query_row("SELECT ifnull(max(id), 0) + 1 FROM records", [], |r| {
                            r.get(0)
                        })?;
                let marks: Vec<String> = (1..=columns.len() + 1).map(|i| format!("?{i}")).collect();
                (
                    format!(
                        "INSERT INTO records (id, {}) VALUES ({})",
                        columns.join(", "),
                        marks.join(", ")
                    ),
                    columns.iter().map(|c| at(c)).collect(),
                    Some(first),
                )
            }
            name => {
                let marks: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
                (
                    format!(
                        "INSERT INTO {name} ({}) VALUES ({})",
                        names.join(", "),
                        marks.join(", ")
                    ),
                    (0..names.len()).collect(),
                    None,
                )
            }
        };
        Ok(Box::new(Rows {
            tx: &self.tx,
            sql,
            take,
            next_record,
        }))
    }
}
