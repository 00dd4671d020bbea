//! IMAP state: each folder's UIDVALIDITY and last UID read, and the moves committed but not yet
//! confirmed by the server (`imap_pending_moves`).

use rusqlite::OptionalExtension;

use super::{Db, Tx};
use crate::store::StoreError;

impl Db {
    pub fn imap_folder(
        &self,
        account: &str,
        folder: &str,
    ) -> Result<Option<(u32, u32)>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT uidvalidity, last_uid FROM imap_folders WHERE account = ?1 AND folder = ?2",
            )?
            .query_row((account, folder), |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }
}

impl Tx<'_> {
    pub fn set_imap_folder(
        &mut self,
        account: &str,
        folder: &str,
        uidvalidity: u32,
        last_uid: u32,
    ) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "INSERT INTO imap_folders (account, folder, uidvalidity, last_uid) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (account, folder) DO UPDATE
                 SET uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid",
            )?
            .execute((account, folder, uidvalidity, last_uid))?;
        Ok(())
    }

    pub fn add_pending_move(
        &mut self,
        account: &str,
        folder: &str,
        uidvalidity: u32,
        uid: u32,
        destination: &str,
    ) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO imap_pending_moves (account, folder, uidvalidity, uid, destination)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute((account, folder, uidvalidity, uid, destination))?;
        Ok(())
    }

    pub fn drop_stale_moves(
        &mut self,
        account: &str,
        folder: &str,
        uidvalidity: u32,
    ) -> Result<usize, StoreError> {
        Ok(self
            .tx
            .prepare_cached(
                "DELETE FROM imap_pending_moves WHERE account = ?1 AND folder = ?2 AND uidvalidity != ?3",
            )?
            .execute((account, folder, uidvalidity))?)
    }

    pub fn pending_moves(
        &mut self,
        account: &str,
        folder: &str,
        uidvalidity: u32,
    ) -> Result<Vec<(u32, String)>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT uid, destination FROM imap_pending_moves
             WHERE account = ?1 AND folder = ?2 AND uidvalidity = ?3 ORDER BY uid",
        )?;
        let rows = stmt.query_map((account, folder, uidvalidity), |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn clear_pending_moves(
        &mut self,
        account: &str,
        folder: &str,
        uidvalidity: u32,
        uids: &[u32],
    ) -> Result<(), StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "DELETE FROM imap_pending_moves
             WHERE account = ?1 AND folder = ?2 AND uidvalidity = ?3 AND uid = ?4",
        )?;
        for uid in uids {
            stmt.execute((account, folder, uidvalidity, uid))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{Store, StoreError};

    #[test]
    fn pending_moves_of_another_uidvalidity_are_dropped_and_confirmed_ones_cleared() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = Store::open(&dir.path().join("t.db")).expect("database");
        store
            .write(|tx| -> Result<(), StoreError> {
                tx.add_pending_move("a", "INBOX", 1, 5, "Archive")?;
                tx.add_pending_move("a", "INBOX", 2, 9, "Invalid")?;
                tx.add_pending_move("a", "INBOX", 2, 3, "Archive")?;
                tx.add_pending_move("a", "Other", 1, 4, "Archive")?;
                tx.set_imap_folder("a", "INBOX", 2, 9)
            })
            .expect("write");
        assert_eq!(store.imap_folder("a", "INBOX").expect("read"), Some((2, 9)));
        let pending = store
            .write(|tx| {
                assert_eq!(tx.drop_stale_moves("a", "INBOX", 2)?, 1);
                tx.pending_moves("a", "INBOX", 2)
            })
            .expect("pending");
        assert_eq!(pending, [(3, "Archive".into()), (9, "Invalid".into())]);
        store
            .write(|tx| tx.clear_pending_moves("a", "INBOX", 2, &[3]))
            .expect("clear");
        let left = store
            .write(|tx| tx.pending_moves("a", "INBOX", 2))
            .expect("pending");
        assert_eq!(left, [(9, "Invalid".into())]);
        // Another folder's moves are its own.
        let other = store
            .write(|tx| tx.pending_moves("a", "Other", 1))
            .expect("pending");
        assert_eq!(other, [(4, "Archive".into())]);
    }
}
