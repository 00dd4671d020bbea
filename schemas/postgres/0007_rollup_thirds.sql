-- dmarc-warden PostgreSQL schema, version 7: the thirds of the rollups' months, as SQLite's
-- schemas/0017_rollup_thirds.sql: one row per policy domain and third of a UTC calendar month
-- (days 1-10, 11-20, 21 to the end; `third` its first day, `end_day` the day after), each the
-- sum of its day rows, written with its month's row by whoever settles the month (under the
-- month's advisory lock) and deleted with the month's row (src/store/postgres/rollups.rs).
-- Back-filled from the day rows of every month with a row by the transaction that applies this
-- migration.
CREATE TABLE rollup_thirds (
    domain  TEXT COLLATE "C" NOT NULL,
    third   BIGINT NOT NULL,
    end_day BIGINT NOT NULL,
    sums    BYTEA NOT NULL,
    PRIMARY KEY (domain, third)
);
ALTER TABLE rollup_thirds ALTER COLUMN sums SET STORAGE EXTERNAL;
