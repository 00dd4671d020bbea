//! The report enums as SQLite text: stored as the text the report carried (so the database keeps
//! exactly what was sent), read back through the same `parse` the XML parser uses.

use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::model::{Disposition, DkimResult, DmarcResult, SpfResult};

macro_rules! as_text {
    ($($t:ty),*) => {$(
        impl ToSql for $t {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $t {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                value.as_str().map(<$t>::parse)
            }
        }
    )*};
}

as_text!(DkimResult, SpfResult, DmarcResult, Disposition);
