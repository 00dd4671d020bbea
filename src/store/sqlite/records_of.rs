//! `records_of(data)`: a report's block of records (`record_blocks.data`,
//! [`crate::store::blocks`]) as rows, for SQL to read the records as it read the `records`
//! table: `FROM reports r CROSS JOIN record_blocks b ON b.report = r.id CROSS JOIN
//! records_of(b.data) c` ([`JOIN`]). Its columns are the table's (`source_ip`, `count`, …,
//! `forwarded`, `auth`) and `place`, the record's place in its report from 0. A block this
//! version cannot read fails the query (`record_blocks.data … not in a form this version reads`)
//! rather than reading as no records.
//!
//! An eponymous table-valued function (SQLite's virtual tables, through rusqlite's `vtab`),
//! registered on every connection the store opens ([`register`]).

use std::borrow::Cow;
use std::ffi::{CStr, c_int};
use std::marker::PhantomData;

use rusqlite::vtab::{
    Context, Filters, IndexConstraintOp, IndexInfo, Module, VTab, VTabConfig, VTabConnection,
    VTabCursor,
};
use rusqlite::{Connection, ffi};

use crate::store::blocks::{Reader, TEXTS, Unreadable};

/// The records of a unit of reports `r`, as `c` (the table's alias before the blocks).
pub(super) const JOIN: &str =
    "CROSS JOIN record_blocks b ON b.report = r.id CROSS JOIN records_of(b.data) c";

const NAME: &CStr = c"records_of";

/// The columns after the [`TEXTS`]: the count, `forwarded`, the place, and the hidden argument.
const COUNT: c_int = TEXTS.len() as c_int;
const FORWARDED: c_int = COUNT + 1;
const PLACE: c_int = COUNT + 2;
const DATA: c_int = COUNT + 3;

/// Makes `records_of` known to `conn`.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    const MODULE: Module<'static, RecordsOf> = Module::eponymous_only_module();
    conn.create_module(NAME, &MODULE, None)
}

#[repr(C)]
struct RecordsOf {
    /// Base class; first.
    base: ffi::sqlite3_vtab,
}

unsafe impl<'vtab> VTab<'vtab> for RecordsOf {
    type Aux = ();
    type Cursor = Cursor<'vtab>;

    fn connect(
        db: &mut VTabConnection,
        _aux: Option<&()>,
        _module_name: &[u8],
        _database_name: &[u8],
        _table_name: &[u8],
        _args: &[&[u8]],
    ) -> rusqlite::Result<(Cow<'static, CStr>, Self)> {
        db.config(VTabConfig::Innocuous)?;
        let schema = format!(
            "CREATE TABLE x({}, count, forwarded, place, data HIDDEN)",
            TEXTS.join(", ")
        );
        let schema = std::ffi::CString::new(schema).map_err(|_| rusqlite::Error::InvalidQuery)?;
        Ok((
            Cow::Owned(schema),
            RecordsOf {
                base: ffi::sqlite3_vtab::default(),
            },
        ))
    }

    fn best_index(&self, info: &mut IndexInfo) -> rusqlite::Result<bool> {
        let mut given = false;
        for (constraint, mut usage) in info.constraints_and_usages() {
            if constraint.column() == DATA
                && constraint.is_usable()
                && constraint.operator() == IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_EQ
            {
                usage.set_argv_index(1);
                usage.set_omit(true);
                given = true;
            }
        }
        if given {
            info.set_estimated_cost(10.0);
            info.set_estimated_rows(20);
            info.set_idx_num(1);
        } else {
            // Without its block there is nothing to read: a plan to avoid.
            info.set_estimated_cost(f64::from(i32::MAX));
            info.set_estimated_rows(i64::from(i32::MAX));
            info.set_idx_num(0);
        }
        Ok(true)
    }

    fn open(&'vtab mut self) -> rusqlite::Result<Cursor<'vtab>> {
        Ok(Cursor {
            base: ffi::sqlite3_vtab_cursor::default(),
            data: Vec::new(),
            reader: Reader::default(),
            place: -1,
            done: true,
            phantom: PhantomData,
        })
    }
}

#[repr(C)]
struct Cursor<'vtab> {
    /// Base class; first.
    base: ffi::sqlite3_vtab_cursor,
    /// The block read.
    data: Vec<u8>,
    reader: Reader,
    /// The current record's place in its report.
    place: i64,
    done: bool,
    phantom: PhantomData<&'vtab RecordsOf>,
}

impl Cursor<'_> {
    fn advance(&mut self) -> rusqlite::Result<()> {
        match self.reader.next(&self.data) {
            Ok(more) => {
                self.done = !more;
                self.place += 1;
                Ok(())
            }
            Err(e @ Unreadable) => {
                self.done = true;
                Err(rusqlite::Error::ModuleError(e.to_string()))
            }
        }
    }
}

unsafe impl VTabCursor for Cursor<'_> {
    fn filter(
        &mut self,
        idx_num: c_int,
        _idx_str: Option<&str>,
        args: &Filters<'_>,
    ) -> rusqlite::Result<()> {
        self.place = -1;
        self.done = true;
        self.data = match idx_num {
            1 => args.get::<Option<Vec<u8>>>(0)?.unwrap_or_default(),
            _ => Vec::new(),
        };
        if self.data.is_empty() {
            return Ok(());
        }
        self.reader =
            Reader::new(&self.data).map_err(|e| rusqlite::Error::ModuleError(e.to_string()))?;
        self.advance()
    }

    fn next(&mut self) -> rusqlite::Result<()> {
        self.advance()
    }

    fn eof(&self) -> bool {
        self.done
    }

    fn column(&self, ctx: &mut Context, i: c_int) -> rusqlite::Result<()> {
        match i {
            COUNT => ctx.set_result(self.reader.count),
            FORWARDED => ctx.set_result(i64::from(self.reader.forwarded)),
            PLACE => ctx.set_result(self.place),
            DATA => ctx.set_result(rusqlite::types::Null),
            i => ctx.set_result(self.reader.text(&self.data, i as usize)),
        }
    }

    fn rowid(&self) -> rusqlite::Result<i64> {
        Ok(self.place)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::blocks::{Row, Writer};

    #[test]
    fn a_block_reads_as_its_records_and_a_bad_one_fails_the_query() {
        let conn = Connection::open_in_memory().expect("open");
        register(&conn).expect("register");
        let mut w = Writer::with_capacity(2);
        let mut row = Row {
            count: 7,
            forwarded: true,
            texts: [Some("192.0.2.1"); TEXTS.len()],
        };
        w.push(&row);
        row.count = 1;
        row.forwarded = false;
        row.texts[4] = None;
        w.push(&row);
        let block = w.finish();
        let rows: Vec<(i64, String, Option<String>, i64, i64)> = conn
            .prepare("SELECT place, source_ip, header_from, count, forwarded FROM records_of(?1)")
            .expect("prepare")
            .query_map([block.data()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(
            rows,
            [
                (0, "192.0.2.1".into(), Some("192.0.2.1".into()), 7, 1),
                (1, "192.0.2.1".into(), None, 1, 0)
            ]
        );
        let none: i64 = conn
            .query_row("SELECT count(*) FROM records_of(NULL)", [], |r| r.get(0))
            .expect("count");
        assert_eq!(none, 0);
        let err = conn
            .query_row("SELECT count(*) FROM records_of(x'02')", [], |r| {
                r.get::<_, i64>(0)
            })
            .expect_err("unreadable");
        assert!(err.to_string().contains("record_blocks.data"), "{err}");
    }
}
