//! WAL checkpoints on a thread of their own, so that the writer seldom waits for them.
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
//!
//! The WAL starts again from its beginning only when a write transaction begins after a
//! checkpoint has copied all of it; a writer that begins its next unit of work while the copy is
//! still running appends instead, and during a long `ingest` it always was: the WAL grew to the
//! size of everything written (4.3 GB over a 4M-record estate). So a write transaction that would
//! begin while the WAL is past [`WAL_CAP_BYTES`] first waits for the checkpoint asked for
//! ([`Checkpointer::before_write`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::wal::CheckpointMode;

/// The WAL's size after which a commit asks for a checkpoint: 4 MiB (256 pages of 16 KiB), several
/// copies in a large ingest.
///
/// Stop 45: at 8 MiB, a run that wrote a little more than that (the floor bench's 400 large
/// reports: 10 MB of WAL) asked for its first checkpoint near its end; the close then waited
/// for that copy (11–13 ms) and made its own (the close 16–20 ms of a 0.158 s run). At 4 MiB the
/// copies are spread over the run and the close is 6–7 ms: ingest 0.157–0.159 → 0.148–0.149 s
/// (1.90–1.93 → 1.81–1.83× the floor; two alternating runs of 11 rounds); 5,000 mixed reports
/// and the four-times corpora the same within the noise (2 MiB: mixed at four times 1–2%
/// slower); a 1M-record estate, a month a run, 246–252k → 252k records/s.
///
/// Earlier, measured in pages of 4 KiB (issue 21, `cargo bench
/// --bench floor`, 5,000 mixed / 400 large reports, wall): 1,000 pages 0.235 / 0.200 s, 4,096
/// pages 0.227 / 0.200 s, none until the close 0.247 / 0.219 s (the close then copies all of it:
/// 55 ms); in the writer's commit, as before, 0.261 / 0.239 s.
/// Stop 29, once the writer had less to do (alternating, load 2): 4,096 pages 0.290–0.293 /
/// 0.242–0.254 s, of which the close (which copies and syncs what is left, with nothing beside
/// it) 0.036–0.040 / 0.049–0.054 s; 2,048 pages 0.262–0.282 / 0.218–0.226 s, the close
/// 0.017–0.019 / 0.018–0.023 s; 1,024 pages 0.270–0.273 / 0.217–0.230 s; CPU alike.
const CHECKPOINT_BYTES: i64 = 4 << 20;

/// The WAL's size past which a write transaction waits for the checkpoint asked for before it
/// begins, so that its commit starts the WAL again: 64 MiB, many times [`CHECKPOINT_BYTES`], so
/// that the writer seldom waits (each wait is a copy and two `fsync`s, while the parsing threads
/// go on). Measured (issue 21, `ingest` into a new database, 2 cores, a noisy machine): over a
/// 4M-record estate (`gen-estate`) the WAL peaked at 4.3 GB without the cap (more than the
/// database), 100 MB with it; the run took 23.7–25.7 s without it (CPU 38.5 s, of which 14.7 s
/// system time: appending to a file that only grows allocates pages and blocks, which a WAL
/// started again reuses), 21.3–23.0 s at 64 MiB (CPU 33.5–36.7 s), 22.8–24.5 s at 16 MiB (CPU
/// 31.7–33.5 s: less copied again, more waits). Over a 1M-record estate (647 MB of WAL without
/// the cap) and the floor bench's corpora (29–35 MB: no wait at 64 MiB) no change in wall time
/// beyond the noise.
const WAL_CAP_BYTES: i64 = 64 << 20;

/// How long a writer waits at most for a checkpoint before it begins anyway.
const CAP_WAIT: Duration = Duration::from_secs(10);

/// The checkpointing thread of one connection, once started.
#[derive(Default)]
struct Running {
    nudge: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
    /// The thread could not start or open the database: the close checkpoints instead.
    failed: bool,
}

/// What a writer about to begin needs to know of the checkpoints: shared by the WAL hook, the
/// thread and [`Checkpointer::before_write`].
#[derive(Default)]
struct Progress {
    /// Checkpoints asked for (counted by [`nudge`]), and how many of those the last finished
    /// checkpoint covers (`u64::MAX` once the thread is gone, so that nobody waits for it).
    counts: Mutex<Counts>,
    finished: Condvar,
    /// Pages in the WAL after the last commit, as the WAL hook was told.
    wal_pages: AtomicI64,
}

#[derive(Default, Clone, Copy)]
struct Counts {
    asked: u64,
    done: u64,
}

impl Progress {
    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        crate::lock(&self.counts)
    }

    /// The thread finished a checkpoint that covers `asked` requests.
    fn done(&self, asked: u64) {
        self.counts().done = asked;
        self.finished.notify_all();
    }
}

/// Owned by the [`super::Db`] whose connection it checkpoints; dropping it stops the thread.
pub(super) struct Checkpointer {
    running: Arc<Mutex<Running>>,
    progress: Arc<Progress>,
    /// [`WAL_CAP_BYTES`] in pages of this database.
    cap: i64,
}

impl Checkpointer {
    /// Installs the WAL hook on `conn` (the database at `path`).
    pub(super) fn install(conn: &mut Connection, path: &Path) -> rusqlite::Result<Checkpointer> {
        let running = Arc::new(Mutex::new(Running::default()));
        let progress = Arc::new(Progress::default());
        let (shared, shared_progress) = (Arc::clone(&running), Arc::clone(&progress));
        let path: PathBuf = path.to_owned();
        let page_size = conn
            .pragma_query_value(None, "page_size", |r| r.get::<_, i64>(0))?
            .max(512);
        let threshold = CHECKPOINT_BYTES / page_size;
        conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages: i32| {
            let pages = i64::from(pages);
            shared_progress.wal_pages.store(pages, Ordering::Relaxed);
            if pages >= threshold {
                let mut running = crate::lock(&shared);
                nudge(&mut running, &path, &shared_progress);
            }
            Ok(())
        }))?;
        Ok(Checkpointer {
            running,
            progress,
            cap: WAL_CAP_BYTES / page_size,
        })
    }

    /// Called before a write transaction begins: when the last commit left the WAL past its cap,
    /// waits (at most [`CAP_WAIT`]) for the checkpoints asked for until then, so that the next
    /// commit starts the WAL again from its beginning. Holds no lock of the database meanwhile.
    pub(super) fn before_write(&self) {
        if self.progress.wal_pages.load(Ordering::Relaxed) < self.cap {
            return;
        }
        let counts = self.progress.counts();
        let asked = counts.asked;
        let _ = (self.progress.finished).wait_timeout_while(counts, CAP_WAIT, |c| c.done < asked);
    }
}

/// Asks the thread for a checkpoint, starting it first if needed. A request already waiting is
/// enough; a thread that could not start leaves the work to the close.
fn nudge(running: &mut Running, path: &Path, progress: &Arc<Progress>) {
    if running.failed {
        return;
    }
    if running.nudge.is_none() {
        let (nudge, nudged) = sync_channel::<()>(1);
        let path = path.to_owned();
        let progress = Arc::clone(progress);
        let thread = std::thread::Builder::new()
            .name("dmarc-warden-checkpoint".into())
            .spawn(move || {
                // A failed open or checkpoint loses nothing: the pages stay in the WAL, for the
                // next checkpoint or the close. Whenever the thread ends, nobody waits for it.
                struct Gone(Arc<Progress>);
                impl Drop for Gone {
                    fn drop(&mut self) {
                        self.0.done(u64::MAX);
                    }
                }
                let gone = Gone(progress);
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
                    // Every request counted before the copy starts is covered by it.
                    let asked = gone.0.counts().asked;
                    let _ = conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE);
                    gone.0.done(asked);
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
        progress.counts().asked += 1;
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
        let mut running = crate::lock(&self.running);
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

    /// A new database in a temporary directory, with a table `filler (b BLOB)`.
    fn with_filler() -> (tempfile::TempDir, std::path::PathBuf, Db) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("t.db");
        let db = Db::open(&path).expect("database");
        db.conn
            .execute_batch("CREATE TABLE filler (b BLOB)")
            .expect("table");
        (dir, path, db)
    }

    /// The pages committed past the threshold reach the database file while the writer's
    /// connection stays open (before, only SQLite's own checkpoint in a commit or the close did it).
    #[test]
    fn a_long_wal_is_copied_into_the_database_while_the_writer_stays_open() {
        let (dir, path, db) = with_filler();
        let size = || std::fs::metadata(&path).expect("database file").len();
        let before = size();
        // 24 commits of 1 MB, past the 4 MiB that ask for a checkpoint.
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

    /// A writer that commits without pause (as `ingest` does) still finds the WAL started again:
    /// it stays near its cap rather than growing with everything written.
    #[test]
    fn the_wal_stays_near_its_cap_however_much_is_written() {
        let (dir, _, db) = with_filler();
        let wal = || std::fs::metadata(dir.path().join("t.db-wal")).map_or(0, |m| m.len());
        let mut largest = 0;
        // Units of work of 1 MB, three times the cap.
        for _ in 0..3 * (super::WAL_CAP_BYTES >> 20) {
            let tx = db.begin().expect("begin");
            tx.conn
                .execute("INSERT INTO filler VALUES (zeroblob(1000000))", [])
                .expect("insert");
            tx.commit().expect("commit");
            largest = largest.max(wal());
        }
        let bound = (super::WAL_CAP_BYTES + (2 << 20)) as u64;
        assert!(
            largest <= bound,
            "the WAL grew to {largest} bytes, past {bound}"
        );
    }
}
