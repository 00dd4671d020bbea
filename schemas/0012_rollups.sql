-- dmarc-warden SQLite schema, migration 12: the sender tier of the rollups (issue 20), the aggregate
-- records summed by what a record says of its sender without its source IP (model::EvidenceKey
-- less `domain` and `source_ip`), one row per policy domain and UTC day of the report's end
-- (`rollup_days`: `day`, days since the epoch; -9223372036854775808 when the report has no end)
-- and one per policy domain and UTC calendar month of it (`rollup_months`: `month` its first day,
-- `end_day` the first day of the next; a day outside the years 1970-9999 is a month of its own).
-- Kept in the unit of work that stores, replaces or prunes the reports
-- (src/store/sqlite/rollups.rs), so that `senders`, `advise` and the dashboard read months and
-- days, not records; back-filled from the records when this migration runs.
--
-- `sums`: every key's sums in one blob, encoded by rollups.rs: per key its messages, the earliest
-- begin and latest end of the reports that carried them, messages by day of the reports' begin,
-- the reporters (org_name) and the source IPs.
CREATE TABLE rollup_days (
    domain TEXT    NOT NULL,
    day    INTEGER NOT NULL,
    sums   BLOB    NOT NULL,
    PRIMARY KEY (domain, day)
) WITHOUT ROWID;

CREATE TABLE rollup_months (
    domain  TEXT    NOT NULL,
    month   INTEGER NOT NULL,
    end_day INTEGER NOT NULL,
    sums    BLOB    NOT NULL,
    PRIMARY KEY (domain, month)
) WITHOUT ROWID;

-- The months whose row is out of date (deleted when a unit of work adds to one of its days, and
-- summed again from its days a few units of work after the last that did: `touched` is that
-- one's number from `rollup_clock`, counted by every unit of work): readers read their days.
CREATE TABLE rollup_stale (
    domain  TEXT    NOT NULL,
    month   INTEGER NOT NULL,
    end_day INTEGER NOT NULL,
    touched INTEGER NOT NULL,
    PRIMARY KEY (domain, month)
) WITHOUT ROWID;

CREATE TABLE rollup_clock (n INTEGER NOT NULL);
INSERT INTO rollup_clock (n) VALUES (0);


-- What units of work added to a day since its row was last written, each a blob of the same form
-- (written without reading the day's row); folded into `rollup_days` once a day has 16, or when
-- its month settles. Readers read a day's row and its parts.
CREATE TABLE rollup_parts (
    id     INTEGER PRIMARY KEY,
    domain TEXT    NOT NULL,
    day    INTEGER NOT NULL,
    sums   BLOB    NOT NULL
);
CREATE INDEX rollup_parts_day ON rollup_parts (domain, day);
