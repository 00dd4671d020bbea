-- dmarc-warden schema, version 7: notifications (`notify`, `fetch --notify`).
-- Applied by src/store/sqlite/mod.rs when PRAGMA user_version < 7.

-- The conditions last notified, one row per (kind, domain, subject): an event is sent when its
-- condition is not here with the same fingerprint. A condition that no longer holds is deleted, so
-- the same problem coming back is notified again. `subject` is the sender, reporter or MX hosts
-- ('' for the domain as a whole); `fingerprint` is what makes a change (the advice's action and
-- record), '' for conditions that are simply on or off.
CREATE TABLE notify_state (
    kind        TEXT    NOT NULL,
    domain      TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    notified_at INTEGER NOT NULL,
    PRIMARY KEY (kind, domain, subject)
) WITHOUT ROWID;

-- Notices judged but not yet delivered, one row per channel and event, written in the same
-- transaction as notify_state: a notice is deleted only once its channel took it, so a channel that
-- is down gets it on a later run. `channel` identifies the channel without its secrets; `event` is
-- the event as JSON.
CREATE TABLE notify_outbox (
    id         INTEGER PRIMARY KEY,
    channel    TEXT    NOT NULL,
    event      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX notify_outbox_channel ON notify_outbox (channel, id);
