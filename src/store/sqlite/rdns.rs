//! The reverse DNS cache (`rdns_cache`) behind `--resolve`.

use std::collections::HashMap;

use rusqlite::OptionalExtension;

use super::{Db, Tx};
use crate::store::StoreError;

impl Db {
    pub fn rdns(
        &self,
        ips: &[String],
        fresh_since: i64,
    ) -> Result<HashMap<String, Option<String>>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name FROM rdns_cache WHERE ip = ?1 AND looked_up_at >= ?2")?;
        let mut out = HashMap::new();
        for ip in ips {
            if let Some(name) = stmt
                .query_row((ip, fresh_since), |r| r.get::<_, Option<String>>(0))
                .optional()?
            {
                out.insert(ip.clone(), name);
            }
        }
        Ok(out)
    }
}

impl Tx<'_> {
    pub fn set_rdns(
        &mut self,
        answers: &HashMap<String, Option<String>>,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT OR REPLACE INTO rdns_cache (ip, name, looked_up_at) VALUES (?1, ?2, ?3)",
        )?;
        for (ip, name) in answers {
            stmt.execute((ip, name, now))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use crate::store::Store;

    #[test]
    fn cached_names_are_fresh_or_absent() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = Store::open(&dir.path().join("t.db")).expect("database");
        let answers = HashMap::from([
            ("192.0.2.1".to_owned(), Some("mail.example.com".to_owned())),
            ("192.0.2.2".to_owned(), None),
        ]);
        store
            .write(|tx| tx.set_rdns(&answers, 1000))
            .expect("write");
        let ips = ["192.0.2.1", "192.0.2.2", "192.0.2.3"].map(String::from);
        let fresh = store.rdns(&ips, 1000).expect("read");
        assert_eq!(fresh.len(), 2);
        assert_eq!(fresh["192.0.2.1"].as_deref(), Some("mail.example.com"));
        assert_eq!(fresh["192.0.2.2"], None, "a cached \"no name\"");
        assert!(store.rdns(&ips, 1001).expect("read").is_empty(), "stale");
    }
}
