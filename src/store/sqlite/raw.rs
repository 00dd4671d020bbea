//! The INSERTs of `ingest` (the reports', the records' blocks' multi-row one), bound without
//! copying their text and bytes.
//!
//! rusqlite binds every text as `SQLITE_TRANSIENT`: SQLite copies the value into memory of its
//! own (a free of the previous copy, an allocation and a copy per value), which was a third of
//! the writer's time in `ingest` once a record was one row (callgrind, 100 reports of 250–349
//! records: 110M of 381M instructions). Here a statement is prepared through the C API on the
//! transaction's own connection and its text bound as `SQLITE_STATIC`: SQLite reads the caller's
//! bytes in place. That is sound because [`Insert::run`] binds every parameter, steps and resets
//! within one call, while it borrows the values: the pointers it leaves bound afterwards (not
//! cleared: `sqlite3_clear_bindings` was 2% of the writer) are never read. SQLite reads a bound
//! value only when the statement runs, which it does only in `run`, after every parameter was
//! bound again (a failed bind returns before the step); binding over one, resetting and
//! finalising only look at its flags (`MEM_Static`: nothing to free); and nothing here asks for
//! the statement's expanded SQL.
//!
//! With `records_of.rs`'s trait implementations, the only `unsafe` of the crate; each block states
//! what it relies on.

use std::ffi::{CStr, c_int};
use std::marker::PhantomData;
use std::ptr;

use rusqlite::ffi;

use crate::store::StoreError;

/// One value to bind.
#[derive(Debug, Clone, Copy)]
pub enum Value<'v> {
    Null,
    Int(i64),
    Text(&'v str),
    Blob(&'v [u8]),
}

impl<'v> From<Option<&'v str>> for Value<'v> {
    fn from(v: Option<&'v str>) -> Value<'v> {
        v.map_or(Value::Null, Value::Text)
    }
}

impl<'v> From<&'v str> for Value<'v> {
    fn from(v: &'v str) -> Value<'v> {
        Value::Text(v)
    }
}

impl From<i64> for Value<'_> {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<Option<i64>> for Value<'_> {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Value::Null, Value::Int)
    }
}

/// A prepared statement of the connection `'c` borrows, finalised when dropped.
pub struct Insert<'c> {
    db: *mut ffi::sqlite3,
    stmt: *mut ffi::sqlite3_stmt,
    parameters: usize,
    _connection: PhantomData<&'c rusqlite::Connection>,
}

impl<'c> Insert<'c> {
    /// Prepares `sql` on `conn`.
    pub fn prepare(conn: &'c rusqlite::Connection, sql: &str) -> Result<Insert<'c>, StoreError> {
        // SAFETY: the handle is the open connection `conn`, which outlives `'c`; rusqlite is not
        // using it concurrently (`Connection` is not `Sync`, and we hold a shared borrow on this
        // thread).
        let db = unsafe { conn.handle() };
        let mut stmt = ptr::null_mut();
        let len = c_int::try_from(sql.len()).map_err(|_| error(db, ffi::SQLITE_TOOBIG))?;
        // SAFETY: `sql` is valid for `len` bytes (no NUL terminator needed when a length is
        // given); `stmt` receives the statement or NULL.
        let rc = unsafe {
            ffi::sqlite3_prepare_v2(db, sql.as_ptr().cast(), len, &mut stmt, ptr::null_mut())
        };
        if rc != ffi::SQLITE_OK || stmt.is_null() {
            return Err(error(db, rc));
        }
        // SAFETY: `stmt` is the statement just prepared.
        let parameters = unsafe { ffi::sqlite3_bind_parameter_count(stmt) } as usize;
        Ok(Insert {
            db,
            stmt,
            parameters,
            _connection: PhantomData,
        })
    }

    /// Binds `values` to the statement's parameters in order, runs it to the end, and leaves it
    /// ready for the next `run` (which binds every parameter again). Returns the rows it inserted
    /// (0 when an `ON CONFLICT DO NOTHING` found the row there).
    pub fn run(&mut self, values: &[Value<'_>]) -> Result<u64, StoreError> {
        assert_eq!(values.len(), self.parameters, "one value per parameter");
        let outcome = self.bind_and_step(values);
        // SAFETY: `self.stmt` is a live statement. The pointers into `values` left bound are
        // never read once this call returns (the module's doc): the next step comes after
        // every parameter is bound again.
        unsafe {
            ffi::sqlite3_reset(self.stmt);
        }
        outcome
    }

    fn bind_and_step(&mut self, values: &[Value<'_>]) -> Result<u64, StoreError> {
        for (i, value) in values.iter().enumerate() {
            let at = (i + 1) as c_int;
            // SAFETY: `self.stmt` is live and `at` is within its parameters (checked above). A
            // text is bound as SQLITE_STATIC: SQLite reads it in place when the statement steps,
            // which it does only below, within this call that borrows `values` (the module's
            // docs: the pointers left bound afterwards are never read); so is a blob.
            let rc = unsafe {
                match *value {
                    Value::Null => ffi::sqlite3_bind_null(self.stmt, at),
                    Value::Int(n) => ffi::sqlite3_bind_int64(self.stmt, at, n),
                    Value::Text(t) => ffi::sqlite3_bind_text64(
                        self.stmt,
                        at,
                        t.as_ptr().cast(),
                        t.len() as u64,
                        ffi::SQLITE_STATIC(),
                        ffi::SQLITE_UTF8 as u8,
                    ),
                    Value::Blob(b) => ffi::sqlite3_bind_blob64(
                        self.stmt,
                        at,
                        b.as_ptr().cast(),
                        b.len() as u64,
                        ffi::SQLITE_STATIC(),
                    ),
                }
            };
            if rc != ffi::SQLITE_OK {
                return Err(error(self.db, rc));
            }
        }
        // SAFETY: a live statement with every parameter bound; then the connection it belongs
        // to, whose count of changes is that of the statement just finished.
        match unsafe { ffi::sqlite3_step(self.stmt) } {
            ffi::SQLITE_DONE => Ok(unsafe { ffi::sqlite3_changes64(self.db) } as u64),
            rc => Err(error(self.db, rc)),
        }
    }
}

impl Drop for Insert<'_> {
    fn drop(&mut self) {
        // SAFETY: the statement is live and finalised once, here.
        unsafe {
            ffi::sqlite3_finalize(self.stmt);
        }
    }
}

/// The connection's error for result code `rc`, as rusqlite reports one.
fn error(db: *mut ffi::sqlite3, rc: c_int) -> StoreError {
    // SAFETY: `db` is an open connection; its message is a NUL-terminated string that stays
    // valid until the next call on it, and is copied at once.
    let message = unsafe {
        let text = ffi::sqlite3_errmsg(db);
        (!text.is_null()).then(|| CStr::from_ptr(text).to_string_lossy().into_owned())
    };
    // SAFETY: as above.
    let extended = unsafe { ffi::sqlite3_extended_errcode(db) };
    let code = if extended & 0xff == rc & 0xff {
        extended
    } else {
        rc
    };
    StoreError::from(rusqlite::Error::SqliteFailure(
        ffi::Error::new(code),
        message,
    ))
}
