//! What notifications need from the database: the conditions last notified (`notify_state`), the
//! outbox of notices not yet delivered (`notify_outbox`), and when each reporter sent its reports.

use rusqlite::params;

use super::{Store, StoreError};

/// A condition as last notified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notified {
    pub kind: String,
    pub domain: String,
    pub subject: String,
    pub fingerprint: String,
    pub notified_at: i64,
}

/// A notice waiting in the outbox for its channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub id: i64,
    pub channel: String,
    /// The event, as JSON.
    pub event: String,
    pub attempts: i64,
}

/// One aggregate report's reporter and period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSpan {
    pub domain: String,
    pub org_name: String,
    pub begin: i64,
    pub end: i64,
}

impl Store {
    /// The conditions last notified.
    pub fn notified(&self) -> Result<Vec<Notified>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT kind, domain, subject, fingerprint, notified_at FROM notify_state
             ORDER BY kind, domain, subject",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(Notified {
                kind: r.get(0)?,
                domain: r.get(1)?,
                subject: r.get(2)?,
                fingerprint: r.get(3)?,
                notified_at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// In one write transaction: `decide` is given the conditions last notified and returns the
    /// new set (those not in it are forgotten) and the notices — `(channel, event JSON)` — to queue.
    /// Both are written or neither: a notice is never marked as sent without being queued, and two
    /// runs at once cannot both queue the same event (the second waits, then sees the first's state).
    pub fn record_notices<E: From<StoreError>>(
        &self,
        now: i64,
        decide: impl FnOnce(&[Notified]) -> Result<(Vec<Notified>, Vec<(String, String)>), E>,
    ) -> Result<(), E> {
        self.begin()?;
        let done = (|| -> Result<(), E> {
            let (state, notices) = decide(&self.notified()?)?;
            self.conn
                .execute("DELETE FROM notify_state", [])
                .map_err(StoreError::from)?;
            let mut insert = self
                .conn
                .prepare_cached(
                    "INSERT INTO notify_state (kind, domain, subject, fingerprint, notified_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(StoreError::from)?;
            for n in &state {
                insert
                    .execute(params![
                        n.kind,
                        n.domain,
                        n.subject,
                        n.fingerprint,
                        n.notified_at
                    ])
                    .map_err(StoreError::from)?;
            }
            let mut queue = self
                .conn
                .prepare_cached(
                    "INSERT INTO notify_outbox (channel, event, created_at) VALUES (?1, ?2, ?3)",
                )
                .map_err(StoreError::from)?;
            for (channel, event) in &notices {
                queue
                    .execute(params![channel, event, now])
                    .map_err(StoreError::from)?;
            }
            Ok(())
        })();
        match done {
            Ok(()) => Ok(self.commit()?),
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Notices waiting in the outbox, oldest first; all channels when `channel` is `None`.
    pub fn pending_notices(&self, channel: Option<&str>) -> Result<Vec<Pending>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, channel, event, attempts FROM notify_outbox
             WHERE (?1 IS NULL OR channel = ?1) ORDER BY id",
        )?;
        let rows = stmt.query_map([channel], |r| {
            Ok(Pending {
                id: r.get(0)?,
                channel: r.get(1)?,
                event: r.get(2)?,
                attempts: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Moves queued notices to other channels: each `(id, channels)` is replaced by a copy for each
    /// of `channels` (none: it stays where it is).
    pub fn requeue_notices(&self, moves: &[(i64, Vec<String>)]) -> Result<(), StoreError> {
        self.begin()?;
        let done = (|| -> Result<(), StoreError> {
            let mut copy = self.conn.prepare_cached(
                "INSERT INTO notify_outbox (channel, event, created_at, attempts, last_error)
                 SELECT ?2, event, created_at, attempts, last_error FROM notify_outbox WHERE id = ?1",
            )?;
            let mut delete = self
                .conn
                .prepare_cached("DELETE FROM notify_outbox WHERE id = ?1")?;
            for (id, channels) in moves.iter().filter(|(_, c)| !c.is_empty()) {
                for channel in channels {
                    copy.execute(params![id, channel])?;
                }
                delete.execute([id])?;
            }
            Ok(())
        })();
        match done {
            Ok(()) => self.commit(),
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// The channel took these notices: they leave the outbox.
    pub fn notices_delivered(&self, ids: &[i64]) -> Result<(), StoreError> {
        self.begin()?;
        {
            let mut stmt = self
                .conn
                .prepare_cached("DELETE FROM notify_outbox WHERE id = ?1")?;
            for id in ids {
                stmt.execute([id])?;
            }
        }
        self.commit()
    }

    /// The channel did not take these notices: they stay, with the attempt counted.
    pub fn notices_failed(&self, ids: &[i64], error: &str) -> Result<(), StoreError> {
        self.begin()?;
        {
            let mut stmt = self.conn.prepare_cached(
                "UPDATE notify_outbox SET attempts = attempts + 1, last_error = ?2 WHERE id = ?1",
            )?;
            for id in ids {
                stmt.execute(params![id, error])?;
            }
        }
        self.commit()
    }

    /// Every aggregate report ending on or after `since`: who sent it, for which domain, when.
    pub fn report_spans(&self, since: i64) -> Result<Vec<ReportSpan>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT domain, org_name, date_begin, date_end FROM reports
             WHERE date_end >= ?1 AND date_begin IS NOT NULL
             ORDER BY domain, org_name, date_begin",
        )?;
        let rows = stmt.query_map([since], |r| {
            Ok(ReportSpan {
                domain: r.get(0)?,
                org_name: r.get(1)?,
                begin: r.get(2)?,
                end: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The source IPs of `domain`'s aggregate reports ending on or after `since` and before `until`.
    pub fn source_ips_between(
        &self,
        domain: &str,
        since: i64,
        until: i64,
    ) -> Result<std::collections::BTreeSet<String>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT DISTINCT c.source_ip FROM reports r CROSS JOIN records c ON c.report = r.id
             WHERE r.domain = ?1 AND r.date_end >= ?2 AND r.date_end < ?3",
        )?;
        let rows = stmt.query_map(params![domain, since, until], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The end of the latest aggregate report and of the latest SMTP TLS report.
    pub fn latest_ends(&self) -> Result<(Option<i64>, Option<i64>), StoreError> {
        Ok(self.conn.query_row(
            "SELECT (SELECT max(date_end) FROM reports), (SELECT max(date_end) FROM tls_reports)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }
}
