//! `migrate --to`: the tables read and written in the shape [`crate::store::copy`] describes,
//! which is this schema's own. Rows are read as a stream and written by binary `COPY`; after a
//! table with an identity, the identity goes on from the highest id copied.

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{ToSql, Type};

use super::{Db, PgError, PgUrl, Tx, text};
use crate::store::StoreError;
use crate::store::copy::{Kind, Sink, Table, Value};

fn pg_type(kind: Kind) -> Type {
    match kind {
        Kind::Int => Type::INT8,
        Kind::Int4 => Type::INT4,
        Kind::Text => Type::TEXT,
        Kind::Bytes => Type::BYTEA,
        Kind::Bool => Type::BOOL,
    }
}

/// A value as the driver writes a column of `kind`.
enum Typed {
    Int(Option<i64>),
    Int4(Option<i32>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
    Bool(Option<bool>),
}

impl Typed {
    fn of(value: Value, kind: Kind) -> Result<Typed, StoreError> {
        let bad = |v: &Value| StoreError::CopyTarget {
            reason: format!("a value {v:?} does not fit a {kind:?} column"),
        };
        Ok(match (value, kind) {
            (Value::Null, Kind::Int) => Typed::Int(None),
            (Value::Null, Kind::Int4) => Typed::Int4(None),
            (Value::Null, Kind::Text) => Typed::Text(None),
            (Value::Null, Kind::Bytes) => Typed::Bytes(None),
            (Value::Null, Kind::Bool) => Typed::Bool(None),
            (Value::Int(n), Kind::Int) => Typed::Int(Some(n)),
            (Value::Int(n), Kind::Int4) => {
                Typed::Int4(Some(i32::try_from(n).map_err(|_| bad(&Value::Int(n)))?))
            }
            (Value::Int(n), Kind::Bool) => Typed::Bool(Some(n != 0)),
            (Value::Bool(b), Kind::Bool) => Typed::Bool(Some(b)),
            // PostgreSQL refuses NUL in text, which SQLite keeps (see `text`).
            (Value::Text(t), Kind::Text) => Typed::Text(Some(text(&t).into_owned())),
            (Value::Bytes(b), Kind::Bytes) => Typed::Bytes(Some(b)),
            (Value::Text(t), Kind::Bytes) => Typed::Bytes(Some(t.into_bytes())),
            (v, _) => return Err(bad(&v)),
        })
    }

    fn sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Typed::Int(v) => v,
            Typed::Int4(v) => v,
            Typed::Text(v) => v,
            Typed::Bytes(v) => v,
            Typed::Bool(v) => v,
        }
    }
}

impl Db {
    /// The rows of `table` (one of the copy's).
    pub fn count(&self, table: &str) -> Result<u64, StoreError> {
        let n: i64 = self.read(|c| {
            Ok(c.query_one(&format!("SELECT count(*) FROM {table}"), &[])?
                .get(0))
        })?;
        Ok(super::count(n))
    }

    /// Hands each row of `table` to `each`, in the copy's order, as the server streams them.
    pub fn export(
        &self,
        table: &Table,
        each: &mut dyn FnMut(Vec<Value>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let url = self.url().clone();
        let at = |e: postgres::Error| StoreError::from(PgError::from(e).at(&url));
        let mut client = self.client()?;
        let sql = format!(
            "SELECT {} FROM {} ORDER BY {}",
            table.names().join(", "),
            table.name,
            table.order
        );
        let none: [&(dyn ToSql + Sync); 0] = [];
        let mut rows = client.query_raw(&sql, none).map_err(at)?;
        while let Some(r) = rows.next().map_err(at)? {
            let mut row = Vec::with_capacity(table.columns.len());
            for (i, (_, kind)) in table.columns.iter().enumerate() {
                let v = match kind {
                    Kind::Int => r.try_get::<_, Option<i64>>(i).map(|v| v.map(Value::Int)),
                    Kind::Int4 => r
                        .try_get::<_, Option<i32>>(i)
                        .map(|v| v.map(|n| Value::Int(i64::from(n)))),
                    Kind::Text => r
                        .try_get::<_, Option<String>>(i)
                        .map(|v| v.map(Value::Text)),
                    Kind::Bytes => r
                        .try_get::<_, Option<Vec<u8>>>(i)
                        .map(|v| v.map(Value::Bytes)),
                    Kind::Bool => r.try_get::<_, Option<bool>>(i).map(|v| v.map(Value::Bool)),
                }
                .map_err(at)?;
                row.push(v.unwrap_or(Value::Null));
            }
            each(row)?;
        }
        Ok(())
    }
}

/// Rows going into one table by binary `COPY`.
struct Rows<'t> {
    writer: BinaryCopyInWriter<'t>,
    table: &'static Table,
    url: PgUrl,
}

impl Sink for Rows<'_> {
    fn row(&mut self, row: Vec<Value>) -> Result<(), StoreError> {
        let typed = row
            .into_iter()
            .zip(self.table.columns)
            .map(|(v, (_, kind))| Typed::of(v, *kind))
            .collect::<Result<Vec<Typed>, StoreError>>()?;
        let values: Vec<&(dyn ToSql + Sync)> = typed.iter().map(Typed::sql).collect();
        self.writer
            .write(&values)
            .map_err(|e| StoreError::from(PgError::from(e).at(&self.url)))
    }

    fn finish(self: Box<Self>) -> Result<(), StoreError> {
        let url = self.url;
        self.writer
            .finish()
            .map(|_| ())
            .map_err(|e| StoreError::from(PgError::from(e).at(&url)))
    }
}

impl Tx<'_> {
    pub fn count(&mut self, table: &str) -> Result<u64, StoreError> {
        let n: i64 = self.run(|c| {
            Ok(c.query_one(&format!("SELECT count(*) FROM {table}"), &[])?
                .get(0))
        })?;
        Ok(super::count(n))
    }

    /// Where the rows of `table` go: a binary `COPY` in this transaction.
    pub fn sink<'t>(&'t mut self, table: &'static Table) -> Result<Box<dyn Sink + 't>, StoreError> {
        let url = self.url.clone();
        let types: Vec<Type> = table.columns.iter().map(|(_, k)| pg_type(*k)).collect();
        // The record tables' rows lack their partition key, `report_end`, which is their
        // report's: they wait in a table of their own until `copied` moves them in.
        let into = match super::prune::PARTITIONED.contains(&table.name) {
            true => {
                let staging = format!("copy_{}", table.name);
                self.run(|c| {
                    c.batch_execute(&format!(
                        "CREATE TEMPORARY TABLE {staging} ON COMMIT DROP AS
                         SELECT * FROM {} WITH NO DATA",
                        table.name
                    ))?;
                    Ok(())
                })?;
                staging
            }
            false => table.name.to_owned(),
        };
        let sql = format!(
            "COPY {into} ({}) FROM STDIN (FORMAT binary)",
            table.names().join(", ")
        );
        let copy = self
            .tx
            .copy_in(&sql)
            .map_err(|e| StoreError::from(PgError::from(e).at(&url)))?;
        Ok(Box::new(Rows {
            writer: BinaryCopyInWriter::new(copy, &types),
            table,
            url,
        }))
    }

    /// After a table with an identity (`id`), the identity goes on from the highest id copied.
    pub fn copied(&mut self, table: &Table) -> Result<(), StoreError> {
        if super::prune::PARTITIONED.contains(&table.name) {
            let name = table.name;
            let columns = table.names().join(", ");
            let from = table
                .names()
                .iter()
                .map(|c| format!("s.{c}"))
                .collect::<Vec<_>>()
                .join(", ");
            return self.run(|c| {
                let ends = c.query(
                    "SELECT DISTINCT coalesce(date_end, ingested_at) FROM reports",
                    &[],
                )?;
                super::prune::ensure_months(c, ends.iter().map(|r| r.get::<_, i64>(0)))?;
                c.batch_execute(&format!(
                    "INSERT INTO {name} ({columns}, report_end)
                     SELECT {from}, coalesce(r.date_end, r.ingested_at)
                     FROM copy_{name} s JOIN reports r ON r.domain = s.domain AND r.id = s.report;
                     DROP TABLE copy_{name}"
                ))?;
                // The rollups, once the records are in.
                if name == "records" {
                    super::rollups::rebuild(c)?;
                }
                Ok(())
            });
        }
        if !table.columns.iter().any(|(name, _)| *name == "id") {
            return Ok(());
        }
        let name = table.name;
        self.run(|c| {
            c.execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{name}', 'id'), max(id)) FROM {name}
                     HAVING max(id) IS NOT NULL"
                ),
                &[],
            )?;
            Ok(())
        })
    }
}
