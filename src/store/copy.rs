//! `dmarc-warden --db SRC migrate --to DEST`: a whole database copied to another, of either
//! backend, into an empty target, in one unit of work, with the row count of every table checked.
//!
//! The tables are described here once, in a shape both backends can read and write: the
//! PostgreSQL schema's, where a record is named by its report's `(domain, report, n)`; its lists
//! travel packed in its `auth` column (`crate::store::lists`). SQLite keeps a report's records
//! as one block (`crate::store::blocks`); its `copy.rs` reads a record's place in its block as
//! `n` and packs the rows of a report into its block. Every other id (reports, rejects,
//! failure and TLS reports, checks, the outbox) is kept as it is, so nothing that points at one
//! changes meaning.

use super::{Backend, Store, StoreError, TxBackend};

/// What a column holds, as the copy carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A 64-bit integer (SQLite INTEGER, PostgreSQL BIGINT).
    Int,
    /// A position in a list (PostgreSQL INTEGER).
    Int4,
    Text,
    Bytes,
    /// SQLite 0/1, PostgreSQL BOOLEAN.
    Bool,
}

/// One value of a row in transit.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
    Bool(bool),
}

/// A table as the copy reads and writes it: its columns in order, and the order rows are read in
/// (a key, so that the copy does not depend on how a backend scans).
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [(&'static str, Kind)],
    pub order: &'static str,
}

impl Table {
    pub fn names(&self) -> Vec<&'static str> {
        self.columns.iter().map(|(name, _)| *name).collect()
    }
}

use Kind::{Bool, Bytes, Int, Int4, Text};

/// Every table, parents before the rows that point at them.
pub const TABLES: &[Table] = &[
    Table {
        name: "reports",
        columns: &[
            ("id", Int),
            ("domain", Text),
            ("org_name", Text),
            ("report_id", Text),
            ("date_begin", Int),
            ("date_end", Int),
            ("record_count", Int),
            ("message_count", Int),
            ("pass_count", Int),
            ("pct", Int),
            ("ingested_at", Int),
            ("email", Text),
            ("extra_contact_info", Text),
            ("errors", Text),
            ("generator", Text),
            ("version", Text),
            ("namespace", Text),
            ("adkim", Text),
            ("aspf", Text),
            ("p", Text),
            ("sp", Text),
            ("np", Text),
            ("fo", Text),
            ("testing", Text),
            ("discovery_method", Text),
            ("extensions", Text),
            ("origin", Text),
            ("location", Text),
        ],
        order: "id",
    },
    Table {
        name: "records",
        columns: &[
            ("domain", Text),
            ("report", Int),
            ("n", Int4),
            ("count", Int),
            ("forwarded", Bool),
            ("source_ip", Text),
            ("disposition", Text),
            ("dkim", Text),
            ("spf", Text),
            ("header_from", Text),
            ("envelope_from", Text),
            ("envelope_to", Text),
            ("auth_dkim_domain", Text),
            ("auth_dkim_result", Text),
            ("auth_spf_domain", Text),
            ("auth_spf_result", Text),
            ("auth", Text),
        ],
        order: "report, n",
    },
    Table {
        name: "reject_inputs",
        columns: &[
            ("key", Text),
            ("origin", Text),
            ("data", Bytes),
            ("size", Int),
            ("first_seen", Int),
            ("last_seen", Int),
            ("attempts", Int),
        ],
        order: "key",
    },
    Table {
        name: "rejects",
        columns: &[
            ("id", Int),
            ("input", Text),
            ("location", Text),
            ("reason", Text),
        ],
        order: "id",
    },
    Table {
        name: "imap_folders",
        columns: &[
            ("account", Text),
            ("folder", Text),
            ("uidvalidity", Int),
            ("last_uid", Int),
        ],
        order: "account, folder",
    },
    Table {
        name: "imap_pending_moves",
        columns: &[
            ("account", Text),
            ("folder", Text),
            ("uidvalidity", Int),
            ("uid", Int),
            ("destination", Text),
        ],
        order: "account, folder, uidvalidity, uid",
    },
    Table {
        name: "failure_reports",
        columns: &[
            ("id", Int),
            ("arrival_date", Int),
            ("incidents", Int),
            ("ingested_at", Int),
            ("key", Text),
            ("feedback_type", Text),
            ("reporter", Text),
            ("report_id", Text),
            ("user_agent", Text),
            ("version", Text),
            ("auth_failure", Text),
            ("arrival_date_text", Text),
            ("source_ip", Text),
            ("reported_domain", Text),
            ("reported_domains", Text),
            ("reported_uris", Text),
            ("original_mail_from", Text),
            ("original_rcpt_to", Text),
            ("authentication_results", Text),
            ("dkim_domain", Text),
            ("dkim_identity", Text),
            ("dkim_selector", Text),
            ("spf_dns", Text),
            ("delivery_result", Text),
            ("identity_alignment", Text),
            ("other_fields", Text),
            ("original_from", Text),
            ("original_to", Text),
            ("original_subject", Text),
            ("original_date", Text),
            ("original_message_id", Text),
            ("original_auth_headers", Text),
            ("original_body", Text),
            ("origin", Text),
            ("location", Text),
        ],
        order: "id",
    },
    Table {
        name: "tls_reports",
        columns: &[
            ("id", Int),
            ("date_begin", Int),
            ("date_end", Int),
            ("ingested_at", Int),
            ("org_name", Text),
            ("report_id", Text),
            ("contact_info", Text),
            ("origin", Text),
            ("location", Text),
        ],
        order: "id",
    },
    Table {
        name: "tls_policies",
        columns: &[
            ("report", Int),
            ("successful", Int),
            ("failed", Int),
            ("n", Int4),
            ("policy_type", Text),
            ("policy_domain", Text),
            ("policy_strings", Text),
            ("mx_hosts", Text),
        ],
        order: "report, n",
    },
    Table {
        name: "tls_failures",
        columns: &[
            ("report", Int),
            ("failed_sessions", Int),
            ("policy", Int4),
            ("n", Int4),
            ("result_type", Text),
            ("sending_mta_ip", Text),
            ("receiving_mx_hostname", Text),
            ("receiving_mx_helo", Text),
            ("receiving_ip", Text),
            ("additional_information", Text),
            ("failure_reason_code", Text),
        ],
        order: "report, policy, n",
    },
    Table {
        name: "rdns_cache",
        columns: &[("ip", Text), ("looked_up_at", Int), ("name", Text)],
        order: "ip",
    },
    Table {
        name: "dns_checks",
        columns: &[
            ("id", Int),
            ("checked_at", Int),
            ("errors", Int),
            ("warnings", Int),
            ("domain", Text),
            ("worst", Text),
            ("published", Text),
            ("findings", Text),
        ],
        order: "id",
    },
    Table {
        name: "notify_state",
        columns: &[
            ("kind", Text),
            ("domain", Text),
            ("subject", Text),
            ("fingerprint", Text),
            ("notified_at", Int),
        ],
        order: "kind, domain, subject",
    },
    Table {
        name: "notify_outbox",
        columns: &[
            ("id", Int),
            ("created_at", Int),
            ("attempts", Int),
            ("channel", Text),
            ("event", Text),
            ("last_error", Text),
        ],
        order: "id",
    },
];

/// Rows of one table in transit, written a row at a time into the target's unit of work.
pub trait Sink {
    fn row(&mut self, row: Vec<Value>) -> Result<(), StoreError>;

    /// Every row is written.
    fn finish(self: Box<Self>) -> Result<(), StoreError>;
}

impl Store {
    /// Copies every table of this database into `target`, which must be empty, as one unit of
    /// work: after the rows, each table's count in the target is compared with the count here,
    /// and anything but equal rolls the whole copy back. Returns the count of each table.
    pub fn copy_to(&self, target: &Store) -> Result<Vec<(&'static str, u64)>, StoreError> {
        let stored = self.table_counts()?;
        if let Some((table, n)) = target.table_counts()?.into_iter().find(|(_, n)| *n > 0) {
            return Err(StoreError::CopyTarget {
                reason: format!("it is not empty ({table}: {n} rows)"),
            });
        }
        target.write(|tx| {
            for table in TABLES {
                let mut sink = tx.sink(table)?;
                self.export(table, &mut |row| sink.row(row))?;
                sink.finish()?;
                tx.copied(table)?;
            }
            let copied = tx.table_counts()?;
            for ((table, here), (_, there)) in stored.iter().zip(&copied) {
                if here != there {
                    return Err(StoreError::CopyTarget {
                        reason: format!("{table}: {here} rows here, {there} copied; nothing kept"),
                    });
                }
            }
            Ok(copied)
        })
    }

    /// The rows of every table, in [`TABLES`]'s order.
    pub fn table_counts(&self) -> Result<Vec<(&'static str, u64)>, StoreError> {
        TABLES
            .iter()
            .map(|t| {
                let n = match &self.backend {
                    Backend::Sqlite(db) => db.count(t.name)?,
                    Backend::Postgres(db) => db.count(t.name)?,
                };
                Ok((t.name, n))
            })
            .collect()
    }

    /// Hands each row of `table` to `each`, in the table's order.
    fn export(
        &self,
        table: &Table,
        each: &mut dyn FnMut(Vec<Value>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.export(table, each),
            Backend::Postgres(db) => db.export(table, each),
        }
    }
}

impl<'s> super::Tx<'s> {
    /// Where the rows of `table` go in this unit of work.
    fn sink<'t>(&'t mut self, table: &'static Table) -> Result<Box<dyn Sink + 't>, StoreError> {
        match &mut self.backend {
            TxBackend::Sqlite(t) => t.sink(table),
            TxBackend::Postgres(t) => t.sink(table),
        }
    }

    /// `table` is copied: what depends on its rows having come in is brought up to date
    /// (PostgreSQL: the identity's next value; both: the rollups, once the records are in).
    fn copied(&mut self, table: &Table) -> Result<(), StoreError> {
        match &mut self.backend {
            TxBackend::Sqlite(t) if table.name == "records" => t.rebuild_rollups(),
            TxBackend::Sqlite(_) => Ok(()),
            TxBackend::Postgres(t) => t.copied(table),
        }
    }

    fn table_counts(&mut self) -> Result<Vec<(&'static str, u64)>, StoreError> {
        TABLES
            .iter()
            .map(|t| {
                let n = match &mut self.backend {
                    TxBackend::Sqlite(tx) => tx.count(t.name)?,
                    TxBackend::Postgres(tx) => tx.count(t.name)?,
                };
                Ok((t.name, n))
            })
            .collect()
    }
}
