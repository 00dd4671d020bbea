//! WAL checkpoints on a thread of their own, so that the writer never waits for them.
//!
//! In WAL mode every commit appends pages to `<db>-wal`; a checkpoint copies them into the database
//! file and waits for both files to reach the disk. SQLite's automatic checkpoint runs inside the
//! commit that crosses its threshold, on the writer's thread: during a large `ingest` the single
//! writer stopped for each copy and its two `fsync`s (issue 21: 25–40 ms in every 5,000 reports,
//! while the parsing threads waited for it). Here the connection's WAL hook (which replaces the
//! automatic checkpoint) only nudges a thread with a connection of its own, started when first
//! needed, which runs a `PASSIVE` checkpoint: it copies what is committed while the writer goes on
//! appending, and never blocks readers or the writer. Closing the database stops the thread first;
//! the last connection to close then checkpoints what remains, as SQLite always does.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use rusqlite::Connection;
use rusqlite::wal::CheckpointMode;

/// The WAL's size after which a commit asks for a checkpoint: 8 MiB (2,048 pages of 4 KiB, 512 of
/// 16 KiB), several copies in a large ingest. Measured in pages of 4 KiB (issue 21, `cargo bench
/// --bench floor`, 5,000 mixed / 400 large reports, wall): 1,000 pages 0.235 / 0.200 s, 4,096
/// pages 0.227 / 0.200 s, none until the close 0.247 / 0.219 s (the close then copies all of it:
/// 55 ms); in the writer's commit, as before, 0.261 / 0.239 s.
/// Stop 29, once the writer had less to do (alternating, load 2): 4,096 pages 0.290–0.293 /
/// 0.242–0.254 s, of which the close (which copies and syncs what is left, with nothing beside
/// it) 0.036–0.040 / 0.049–0.054 s; 2,048 pages 0.262–0.282 / 0.218–0.226 s, the close
/// 0.017–0.019 / 0.018–0.023 s; 1,024 pages 0.270–0.273 / 0.217–0.230 s; CPU alike.
const CHECKPOINT_BYTES: i64 = 8 << 20;

/// The checkpointing thread of one connection, once started.
#[derive(Default)]
struct Running {
    nudge: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
    /// The thread could not start or open the database: the close checkpoints instead.
    failed: bool,
}

/// Owned by the [`super::Db`] whose connection it checkpoints; dropping it stops the thread.
pub(super) struct Checkpointer {
    running: Arc<Mutex<Running>>,
}

impl Checkpointer {
    /// Installs the WAL hook on `conn` (the database at `path`).
    pub(super) fn install(conn: &mut Connection, path: &Path) -> rusqlite::Result<Checkpointer> {
        let running = Arc::new(Mutex::new(Running::default()));
        let shared = Arc::clone(&running);
        let path: PathBuf = path.to_owned();
        let page_size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
        let threshold = CHECKPOINT_BYTES / page_size.max(512);
        conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages: i32| {
            if i64::from(pages) >= threshold {
                let mut running = shared.lock().unwrap_or_else(PoisonError::into_inner);
                nudge(&mut running, &path);
            }
            Ok(())
        }))?;
        Ok(Checkpointer { running })
    }
}

/// Asks the thread for a checkpoint, starting it first if needed. A request already waiting is
/// enough; a thread that could not start leaves the work to the close.
fn nudge(running: &mut Running, path: &Path) {
    if running.failed {
        return;
    }
    if running.nudge.is_none() {
        let (nudge, nudged) = sync_channel::<()>(1);
        let path = path.to_owned();
        let thread = std::thread::Builder::new()
            .name("dmarc-warden-checkpoint".into())
            .spawn(move || {
                // A failed open or checkpoint loses nothing: the pages stay in the WAL, for the
                // next checkpoint or the close.
                let Ok(conn) = Connection::open(&path) else {
                    return;
                };
                // Reading the journal mode makes the connection open the file and see the WAL
                // (before that, a checkpoint on it does nothing).
                if conn
                    .pragma_query_value(None, "journal_mode", |r| r.get::<_, String>(0))
                    .is_err()
                {
                    return;
                }
                for () in nudged {
                    let _ = conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE);
                }
            });
        match thread {
            Ok(thread) => {
                running.nudge = Some(nudge);
                running.thread = Some(thread);
            }
            Err(_) => {
                running.failed = true;
                return;
            }
        }
    }
    if let Some(nudge) = &running.nudge {
        match nudge.try_send(()) {
            Ok(()) | Err(TrySendError::Full(())) => {}
            Err(TrySendError::Disconnected(())) => {
                running.nudge = None;
                running.failed = true;
            }
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        running.nudge = None;
        if let Some(thread) = running.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::super::Db;

    /// The pages committed past the threshold reach the database file while the writer's
    /// connection stays open (before, only SQLite's own checkpoint in a commit or the close did it).
    #[test]
    fn a_long_wal_is_copied_into_the_database_while_the_writer_stays_open() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("t.db");
        let db = Db::open(&path).expect("database");
        db.conn
            .execute_batch("CREATE TABLE filler (b BLOB)")
            .expect("table");
        let size = || std::fs::metadata(&path).expect("database file").len();
        let before = size();
        // 24 commits of 1 MB, past the 8 MiB that ask for a checkpoint.
        for _ in 0..24 {
            db.conn
                .execute("INSERT INTO filler VALUES (zeroblob(1000000))", [])
                .expect("insert");
        }
        let waited = Instant::now();
        while size() < before + 16_000_000 {
            assert!(
                waited.elapsed() < Duration::from_secs(60),
                "the database file stayed at {} bytes",
                size()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(db);
        assert!(
            !dir.path().join("t.db-wal").exists(),
            "the close checkpoints the rest and removes the WAL"
        );
    }
}
