-- dmarc-warden PostgreSQL schema, version 6: the quarter rows of the rollups, as SQLite's
-- schemas/0016_rollup_quarters.sql: one per policy domain and UTC calendar quarter (`quarter` its
-- first day, `end_day` the first day of the next), each the sum of the quarter's month rows,
-- kept only while none of those months is stale; written under the advisory locks of all three
-- months (src/store/postgres/rollups.rs). Back-filled from the month rows by the transaction that
-- applies this migration.
CREATE TABLE rollup_quarters (
    domain  TEXT COLLATE "C" NOT NULL,
    quarter BIGINT NOT NULL,
    end_day BIGINT NOT NULL,
    sums    BYTEA NOT NULL,
    PRIMARY KEY (domain, quarter)
);
ALTER TABLE rollup_quarters ALTER COLUMN sums SET STORAGE EXTERNAL;
