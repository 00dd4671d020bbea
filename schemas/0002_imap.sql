-- dmarc-warden schema, version 2: what `dmarc-warden fetch` remembers of each IMAP folder.
-- Applied by src/store/sqlite/mod.rs when PRAGMA user_version < 2.

-- Per account ('user@host:port') and folder: the UIDVALIDITY seen, and the highest UID whose outcome
-- (reports stored, or the message kept as a reject) is committed. The next fetch asks only for newer
-- UIDs; a different UIDVALIDITY means the server renumbered the folder, and it is read again in full
-- (idempotent: stored reports are counted as duplicates).
CREATE TABLE imap_folders (
    account     TEXT    NOT NULL,
    folder      TEXT    NOT NULL,
    uidvalidity INTEGER NOT NULL,
    last_uid    INTEGER NOT NULL,
    PRIMARY KEY (account, folder)
) WITHOUT ROWID;

-- Messages whose outcome is committed but which are not yet moved to the archive or invalid folder.
-- Written in the same transaction as the reports, deleted once the server confirmed the move; a run
-- that was killed in between finishes the moves first thing next time.
CREATE TABLE imap_pending_moves (
    account     TEXT    NOT NULL,
    folder      TEXT    NOT NULL,
    uidvalidity INTEGER NOT NULL,
    uid         INTEGER NOT NULL,
    destination TEXT    NOT NULL,
    PRIMARY KEY (account, folder, uidvalidity, uid)
) WITHOUT ROWID;
