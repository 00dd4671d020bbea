//! `check`: the facts it takes from stored reports (DKIM selectors seen, SMTP TLS reports), and its
//! results (`dns_checks`, one row per domain and run).

use super::{Db, Tx};
use crate::analyse::check::{DomainCheck, SelectorSeen, Severity};
use crate::model::Timestamp;
use crate::store::StoreError;

impl Db {
    pub fn dkim_selectors(&self, domain: &str) -> Result<Vec<SelectorSeen>, StoreError> {
        let mut stmt = self.conn.prepare(
            // Each record's DKIM signatures: `auth`'s first list (crate::store::lists).
            "SELECT lower(d.value ->> 1), min(r.date_begin), max(r.date_end)
             FROM reports r CROSS JOIN records c ON c.report = r.id
                  CROSS JOIN json_each(c.auth, '$[0]') d
             WHERE r.domain = ?1 AND lower(d.value ->> 0) = ?1
               AND d.value ->> 1 IS NOT NULL AND d.value ->> 1 != ''
             GROUP BY 1 ORDER BY 1",
        )?;
        let rows = stmt.query_map([domain], |r| {
            Ok(SelectorSeen {
                selector: r.get(0)?,
                first: r.get(1)?,
                last: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn tls_report_count(&self, domain: &str) -> Result<(u64, Option<i64>), StoreError> {
        Ok(self.conn.query_row(
            "SELECT count(DISTINCT p.report), max(t.date_end)
             FROM tls_policies p JOIN tls_reports t ON t.id = p.report
             WHERE p.policy_domain = ?1",
            [domain],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }

    pub fn last_checks(&self, domain: Option<&str>) -> Result<Vec<DomainCheck>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT domain, checked_at, published, findings FROM dns_checks c
             WHERE (?1 IS NULL OR domain = ?1)
               AND id = (SELECT id FROM dns_checks c2 WHERE c2.domain = c.domain
                         ORDER BY checked_at DESC, id DESC LIMIT 1)
             ORDER BY domain",
        )?;
        let rows = stmt.query_map([domain], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (domain, at, published, findings) = row?;
            // A row this version cannot read (written by a newer one) is skipped, not fatal.
            if let (Ok(published), Ok(findings)) = (
                serde_json::from_str(&published),
                serde_json::from_str(&findings),
            ) {
                out.push(DomainCheck {
                    domain,
                    checked_at: Timestamp(at),
                    published,
                    findings,
                });
            }
        }
        Ok(out)
    }
}

impl Tx<'_> {
    pub fn save_check(&mut self, check: &DomainCheck) -> Result<(), StoreError> {
        let json = |v: serde_json::Result<String>| v.unwrap_or_else(|_| "null".into());
        self.tx.execute(
            "INSERT INTO dns_checks (domain, checked_at, worst, errors, warnings, published, findings)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            (
                &check.domain,
                check.checked_at.0,
                check.worst().as_str(),
                check.count(Severity::Error),
                check.count(Severity::Warning),
                json(serde_json::to_string(&check.published)),
                json(serde_json::to_string(&check.findings)),
            ),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::analyse::check::{Check, DomainCheck, Finding, Severity};
    use crate::model::Timestamp;
    use crate::store::{Store, StoreError};

    fn check(domain: &str, at: i64, message: &str) -> DomainCheck {
        DomainCheck {
            domain: domain.into(),
            checked_at: Timestamp(at),
            published: Default::default(),
            findings: vec![Finding {
                check: Check::Dmarc,
                severity: Severity::Warning,
                message: message.into(),
                fix: None,
            }],
        }
    }

    #[test]
    fn the_last_check_of_each_domain_is_the_one_read() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = Store::open(&dir.path().join("t.db")).expect("database");
        store
            .write(|tx| -> Result<(), StoreError> {
                tx.save_check(&check("b.test", 200, "older"))?;
                tx.save_check(&check("b.test", 300, "newer"))?;
                tx.save_check(&check("a.test", 100, "only"))
            })
            .expect("write");
        let last = store.last_checks(None).expect("read");
        let seen: Vec<(&str, &str)> = last
            .iter()
            .map(|c| (c.domain.as_str(), c.findings[0].message.as_str()))
            .collect();
        assert_eq!(seen, [("a.test", "only"), ("b.test", "newer")]);
        assert_eq!(
            store.last_checks(Some("b.test")).expect("read")[0]
                .checked_at
                .0,
            300
        );
        assert!(store.dkim_selectors("a.test").expect("read").is_empty());
        assert_eq!(store.tls_report_count("a.test").expect("read"), (0, None));
    }
}
