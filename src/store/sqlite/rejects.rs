//! Kept rejects: the inputs that failed, with their bytes and reasons, for `reprocess`.

use rusqlite::{OptionalExtension, params};

use super::{Db, Tx};
use crate::store::{KeptInput, RejectedInput, StoreError, reject_key};

impl Tx<'_> {
    /// [`crate::store::Tx::keep_reject`]: one `reject_inputs` row per key, its `rejects` replaced.
    pub fn keep_reject(&mut self, input: &RejectedInput<'_>, now: i64) -> Result<(), StoreError> {
        let key = reject_key(input);
        self.tx
            .prepare_cached(
                "INSERT INTO reject_inputs (key, origin, data, size, first_seen, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)
                 ON CONFLICT (key) DO UPDATE SET last_seen = excluded.last_seen,
                    attempts = attempts + 1, origin = excluded.origin",
            )?
            .execute(params![
                key,
                input.origin,
                input.data,
                input.data.map(|d| d.len() as i64),
                now
            ])?;
        self.tx
            .prepare_cached("DELETE FROM rejects WHERE input = ?1")?
            .execute([&key])?;
        let mut add = self
            .tx
            .prepare_cached("INSERT INTO rejects (input, location, reason) VALUES (?1, ?2, ?3)")?;
        for f in input.failures {
            add.execute(params![key, f.location, f.item.reason])?;
        }
        Ok(())
    }

    pub fn forget_reject(&mut self, key: &str) -> Result<(), StoreError> {
        self.tx
            .prepare_cached("DELETE FROM reject_inputs WHERE key = ?1")?
            .execute([key])?;
        Ok(())
    }
}

impl Db {
    pub fn kept_keys(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT key FROM reject_inputs ORDER BY first_seen, key")?;
        let keys = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(keys)
    }

    pub fn kept_input(&self, key: &str) -> Result<Option<KeptInput>, StoreError> {
        let kept = self
            .conn
            .query_row(
                "SELECT key, origin, data FROM reject_inputs WHERE key = ?1",
                [key],
                |r| {
                    Ok(KeptInput {
                        key: r.get(0)?,
                        origin: r.get(1)?,
                        data: r.get(2)?,
                    })
                },
            )
            .optional()?;
        Ok(kept)
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Failure, Located};
    use crate::store::{RejectedInput, Store};

    fn failure(reason: &str) -> Located<Failure> {
        Located {
            location: "part 1".into(),
            item: Failure {
                reason: reason.into(),
            },
        }
    }

    #[test]
    fn a_reject_kept_again_counts_the_attempt_and_takes_the_new_reasons() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = Store::open(&dir.path().join("t.db")).expect("database");
        let keep = |data: Option<&[u8]>, reason: &str, now| {
            store.write(|tx| {
                tx.keep_reject(
                    &RejectedInput {
                        origin: "a.xml",
                        data,
                        failures: &[failure(reason)],
                    },
                    now,
                )
            })
        };
        keep(Some(b"<broken"), "first reason", 100).expect("keep");
        keep(Some(b"<broken"), "second reason", 200).expect("keep again");
        keep(None, "unreadable", 300).expect("keep without bytes");
        let rejects = store.rejects().expect("rejects");
        assert_eq!(rejects.len(), 2, "{rejects:?}");
        assert_eq!(rejects[0].reason, "second reason");
        assert_eq!(rejects[0].attempts, 2);
        assert_eq!(
            (rejects[0].first_seen.0, rejects[0].last_seen.0),
            (100, 200)
        );
        assert_eq!(rejects[0].size, Some(7));
        assert_eq!(rejects[1].size, None);
        let keys = store.kept_keys().expect("keys");
        assert_eq!(keys[1], Store::origin_key("a.xml"));
        let kept = store.kept_input(&keys[0]).expect("read").expect("kept");
        assert_eq!(kept.data.as_deref(), Some(&b"<broken"[..]));
        store
            .write(|tx| tx.forget_reject(&keys[0]))
            .expect("forget");
        assert_eq!(
            store.kept_keys().expect("keys"),
            [Store::origin_key("a.xml")]
        );
        assert!(store.kept_input(&keys[0]).expect("read").is_none());
    }
}
