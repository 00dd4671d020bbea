//! `check`: the facts it takes from stored reports (DKIM selectors seen, SMTP TLS reports), and its
//! results (`dns_checks`, one row per domain and run).

use super::records_of::JOIN;
use super::{Db, Tx};
use crate::analyse::check::{DomainCheck, SelectorSeen, Severity};
use crate::model::Timestamp;
use crate::store::StoreError;
use crate::store::lists::Selectors;

impl Db {
    pub fn dkim_selectors(&self, domain: &str) -> Result<Vec<SelectorSeen>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT c.auth, r.date_begin, r.date_end FROM reports r {JOIN}
             WHERE r.domain = ?1 AND c.auth IS NOT NULL"
        ))?;
        let mut rows = stmt.query([domain])?;
        let mut seen = Selectors::new(domain);
        while let Some(row) = rows.next()? {
            // Anything but text is lists this version cannot read, as unreadable text is.
            if let Ok(auth) = row.get_ref(0)?.as_str() {
                seen.add(auth, row.get(1)?, row.get(2)?);
            }
        }
        Ok(seen.into_seen())
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
    use crate::analyse::check::{Check, DomainCheck, Finding, SelectorSeen, Severity};
    use crate::model::{Located, Timestamp};
    use crate::store::blocks::{AUTH, Records, Writer};
    use crate::store::lists::Lists;
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

    /// Selectors are read from each record's lists, in the compact text `ingest` writes and in
    /// the JSON earlier versions wrote, alike: signing with the domain itself only, in lower
    /// case, with the first and last periods of the reports they appear in.
    #[test]
    fn dkim_selectors_are_read_from_compact_and_json_lists() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = Store::open(&dir.path().join("t.db")).expect("database");
        let report = |id: &str, begin: i64, dkim: &str| {
            let xml = format!(
                "<feedback><report_metadata><org_name>r</org_name><report_id>{id}</report_id>\
                 <date_range><begin>{begin}</begin><end>{}</end></date_range></report_metadata>\
                 <policy_published><domain>a.test</domain><p>none</p></policy_published>\
                 <record><row><source_ip>192.0.2.1</source_ip><count>1</count></row>\
                 <identifiers><header_from>a.test</header_from></identifiers>\
                 <auth_results>{dkim}<spf><domain>a.test</domain><result>pass</result></spf>\
                 </auth_results></record></feedback>",
                begin + 86_400
            );
            Located {
                location: String::new(),
                item: crate::parse::aggregate::parse_aggregate(&xml).expect("report"),
            }
        };
        let sig = |d: &str, s: &str| {
            format!(
                "<dkim><domain>{d}</domain><selector>{s}</selector><result>pass</result></dkim>"
            )
        };
        let reports = [
            report(
                "1",
                1_000_000,
                &(sig("other.test", "x") + &sig("a.test", "S1")),
            ),
            report(
                "2",
                2_000_000,
                &(sig("A.test", "s2") + &sig("a.test", "s1")),
            ),
            report("3", 3_000_000, &sig("a.test", "")),
        ];
        store
            .write(|tx| -> Result<(), StoreError> {
                for r in &reports {
                    tx.insert_report("t", r, 0)?;
                }
                Ok(())
            })
            .expect("write");
        let compact = store.dkim_selectors("a.test").expect("read");
        let seen = |s: &[SelectorSeen]| {
            s.iter()
                .map(|s| (s.selector.clone(), s.first, s.last))
                .collect::<Vec<_>>()
        };
        let want = [
            ("s1".to_owned(), Some(1_000_000), Some(2_086_400)),
            ("s2".to_owned(), Some(2_000_000), Some(2_086_400)),
        ];
        assert_eq!(seen(&compact), want);
        // The same lists as JSON, as an earlier version wrote them (and the migration that
        // packed its records into blocks kept).
        let conn = rusqlite::Connection::open(dir.path().join("t.db")).expect("open");
        let blocks: Vec<(i64, Vec<u8>)> = conn
            .prepare("SELECT report, data FROM record_blocks ORDER BY report")
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .expect("blocks");
        let json = [
            r#"[[["other.test","x","pass",null],["a.test","S1","pass",null]],[["a.test",null,"pass"]],[]]"#,
            r#"[[["a.test","s2","pass",null],["a.test","s1","pass",null]],[["a.test",null,"pass"]],[]]"#,
            r#"[[["a.test",null,"pass",null]],[["a.test",null,"pass"]],[]]"#,
        ];
        assert_eq!(blocks.len(), json.len());
        for ((report, data), json) in blocks.iter().zip(json) {
            let mut records = Records::new(data).expect("a block");
            let mut row = records.next().expect("a record").expect("readable");
            let compact = row.texts[AUTH].expect("lists");
            assert!(compact.starts_with('~'), "{compact}");
            assert_eq!(Lists::read(json), Lists::read(compact), "report {report}");
            row.texts[AUTH] = Some(json);
            let mut w = Writer::with_capacity(1);
            w.push(&row);
            conn.execute(
                "UPDATE record_blocks SET data = ?2 WHERE report = ?1",
                rusqlite::params![report, w.finish().data()],
            )
            .expect("update");
        }
        assert_eq!(seen(&store.dkim_selectors("a.test").expect("read")), want);
    }
}
