-- dmarc-warden PostgreSQL schema, version 5: the sender tier of the rollups (issue 20), as SQLite's
-- schemas/0012_rollups.sql: the aggregate records summed by what a record says of its sender
-- without its source IP, one row per policy domain and UTC day of the report's end (`rollup_days`:
-- `day`, days since the epoch; -9223372036854775808 when the report has no end) and one per policy
-- domain and UTC calendar month of it (`rollup_months`: `month` its first day, `end_day` the first
-- day of the next). Kept in the unit of work that stores, replaces or prunes the reports
-- (src/store/rollups/, its SQL in src/store/postgres/rollups.rs, where the locking between
-- concurrent writers is described); back-filled from the records by the transaction that applies
-- this migration (src/store/postgres/migrate.rs).
--
-- `sums`: every key's sums in one blob, encoded by src/store/rollups/codec.rs (the same bytes as
-- SQLite's). Keyed by `domain` first, like `reports` (distributable with it). The blobs are
-- dense varints already: stored uncompressed (EXTERNAL), so that neither writing nor reading one
-- spends time in pglz.
CREATE TABLE rollup_days (
    domain TEXT COLLATE "C" NOT NULL,
    day    BIGINT NOT NULL,
    sums   BYTEA NOT NULL,
    PRIMARY KEY (domain, day)
);
ALTER TABLE rollup_days ALTER COLUMN sums SET STORAGE EXTERNAL;

CREATE TABLE rollup_months (
    domain  TEXT COLLATE "C" NOT NULL,
    month   BIGINT NOT NULL,
    end_day BIGINT NOT NULL,
    sums    BYTEA NOT NULL,
    PRIMARY KEY (domain, month)
);
ALTER TABLE rollup_months ALTER COLUMN sums SET STORAGE EXTERNAL;

-- The months whose row is out of date (deleted when a unit of work adds to one of its days, and
-- summed again from its days a few units of work after the last that did: `touched` is that
-- one's number from `rollup_clock`): readers read their days.
CREATE TABLE rollup_stale (
    domain  TEXT COLLATE "C" NOT NULL,
    month   BIGINT NOT NULL,
    end_day BIGINT NOT NULL,
    touched BIGINT NOT NULL,
    PRIMARY KEY (domain, month)
);

-- Each unit of work that writes rollups takes the next number; a sequence, so that concurrent
-- writers do not wait for each other on one row.
CREATE SEQUENCE rollup_clock;

-- What units of work added to a day since its row was last written, each a blob of the same form
-- (appended without reading anything); folded into `rollup_days` once a day has 16, or when its
-- month settles, and deleted by `id`. Readers read a day's row and its parts.
CREATE TABLE rollup_parts (
    id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    domain TEXT COLLATE "C" NOT NULL,
    day    BIGINT NOT NULL,
    sums   BYTEA NOT NULL
);
ALTER TABLE rollup_parts ALTER COLUMN sums SET STORAGE EXTERNAL;
CREATE INDEX rollup_parts_day ON rollup_parts (domain, day);
