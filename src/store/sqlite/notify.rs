//! What notifications need from the database: the conditions last notified (`notify_state`), the
//! outbox of notices not yet delivered (`notify_outbox`), and when each reporter sent its reports.

use super::records_of::JOIN;
use std::collections::BTreeSet;

use rusqlite::{Connection, params};

use super::{Db, Tx};
use crate::store::{Notified, Pending, ReportSpan, StoreError};

fn notified(conn: &Connection) -> Result<Vec<Notified>, StoreError> {
    let mut stmt = conn.prepare(
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

impl Db {
    pub fn notified(&self) -> Result<Vec<Notified>, StoreError> {
        notified(&self.conn)
    }

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

    pub fn report_spans(&self, since: i64) -> Result<Vec<ReportSpan>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT domain, org_name, date_begin, date_end FROM reports
             WHERE date_end >= ?1 AND date_begin IS NOT NULL
             ORDER BY domain, org_name, date_begin, date_end, report_id",
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

    pub fn source_ips_between(
        &self,
        domain: &str,
        since: i64,
        until: i64,
    ) -> Result<BTreeSet<String>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT DISTINCT c.source_ip FROM reports r {JOIN}
             WHERE r.domain = ?1 AND r.date_end >= ?2 AND r.date_end < ?3"
        ))?;
        let rows = stmt.query_map(params![domain, since, until], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn latest_ends(&self) -> Result<(Option<i64>, Option<i64>), StoreError> {
        Ok(self.conn.query_row(
            "SELECT (SELECT max(date_end) FROM reports), (SELECT max(date_end) FROM tls_reports)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }
}

impl Tx<'_> {
    pub fn notified(&mut self) -> Result<Vec<Notified>, StoreError> {
        notified(&self.tx)
    }

    pub fn set_notified(&mut self, state: &[Notified]) -> Result<(), StoreError> {
        self.tx.execute("DELETE FROM notify_state", [])?;
        let mut insert = self.tx.prepare_cached(
            "INSERT INTO notify_state (kind, domain, subject, fingerprint, notified_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for n in state {
            insert.execute(params![
                n.kind,
                n.domain,
                n.subject,
                n.fingerprint,
                n.notified_at
            ])?;
        }
        Ok(())
    }

    pub fn queue_notices(
        &mut self,
        notices: &[(String, String)],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut queue = self.tx.prepare_cached(
            "INSERT INTO notify_outbox (channel, event, created_at) VALUES (?1, ?2, ?3)",
        )?;
        for (channel, event) in notices {
            queue.execute(params![channel, event, now])?;
        }
        Ok(())
    }

    pub fn requeue_notices(&mut self, moves: &[(i64, Vec<String>)]) -> Result<(), StoreError> {
        let mut copy = self.tx.prepare_cached(
            "INSERT INTO notify_outbox (channel, event, created_at, attempts, last_error)
             SELECT ?2, event, created_at, attempts, last_error FROM notify_outbox WHERE id = ?1",
        )?;
        let mut delete = self
            .tx
            .prepare_cached("DELETE FROM notify_outbox WHERE id = ?1")?;
        for (id, channels) in moves.iter().filter(|(_, c)| !c.is_empty()) {
            for channel in channels {
                copy.execute(params![id, channel])?;
            }
            delete.execute([id])?;
        }
        Ok(())
    }

    pub fn notices_delivered(&mut self, ids: &[i64]) -> Result<(), StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached("DELETE FROM notify_outbox WHERE id = ?1")?;
        for id in ids {
            stmt.execute([id])?;
        }
        Ok(())
    }

    pub fn notices_failed(&mut self, ids: &[i64], error: &str) -> Result<(), StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "UPDATE notify_outbox SET attempts = attempts + 1, last_error = ?2 WHERE id = ?1",
        )?;
        for id in ids {
            stmt.execute(params![id, error])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{Notified, Store, StoreError};

    fn notified(subject: &str) -> Notified {
        Notified {
            kind: "new_source".into(),
            domain: "example.org".into(),
            subject: subject.into(),
            fingerprint: "f".into(),
            notified_at: 1,
        }
    }

    #[test]
    fn state_and_outbox_are_written_together_or_not_at_all() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = Store::open(&dir.path().join("t.db")).expect("database");
        let queued = [("mail".to_owned(), "{}".to_owned())];
        store
            .write(|tx| -> Result<(), StoreError> {
                assert!(tx.notified()?.is_empty());
                tx.set_notified(&[notified("192.0.2.1")])?;
                tx.queue_notices(&queued, 10)
            })
            .expect("write");
        // A run that fails after queueing leaves neither behind.
        let failed: Result<(), StoreError> = store.write(|tx| {
            tx.set_notified(&[notified("192.0.2.2")])?;
            tx.queue_notices(&queued, 20)?;
            Err(StoreError::Busy { lock: "x".into() })
        });
        assert!(failed.is_err());
        assert_eq!(store.notified().expect("read"), [notified("192.0.2.1")]);
        let pending = store.pending_notices(None).expect("read");
        assert_eq!(pending.len(), 1);
        let id = pending[0].id;
        store
            .write(|tx| tx.notices_failed(&[id], "down"))
            .expect("write");
        assert_eq!(
            store.pending_notices(Some("mail")).expect("read")[0].attempts,
            1
        );
        store
            .write(|tx| tx.requeue_notices(&[(id, vec!["hook".into(), "mail2".into()])]))
            .expect("write");
        let moved = store.pending_notices(None).expect("read");
        let channels: Vec<&str> = moved.iter().map(|p| p.channel.as_str()).collect();
        assert_eq!(channels, ["hook", "mail2"]);
        assert!(moved.iter().all(|p| p.attempts == 1));
        let ids: Vec<i64> = moved.iter().map(|p| p.id).collect();
        store.write(|tx| tx.notices_delivered(&ids)).expect("write");
        assert!(store.pending_notices(None).expect("read").is_empty());
    }
}
