-- dmarc-warden SQLite schema, migration 15: the rollup rows (migration 12) kept in tables with
-- rowids and found through an index of (domain, day) / (domain, month), as `rollup_parts` already
-- is. In a table WITHOUT ROWID the key is stored with the row, and each row here is a blob of
-- tens of kilobytes spilling onto overflow pages: every comparison of a lookup's binary search
-- read a whole row's blob (SQLite assembles a spilled key before comparing it), so a year of a
-- 10M-record estate read ~170 MB through 42,000 reads for 25 MB of rows. Same columns, same
-- rows; the index holds the keys alone.
CREATE TABLE rollup_days_by_id (
    domain TEXT    NOT NULL,
    day    INTEGER NOT NULL,
    sums   BLOB    NOT NULL,
    UNIQUE (domain, day)
);
INSERT INTO rollup_days_by_id (domain, day, sums)
    SELECT domain, day, sums FROM rollup_days ORDER BY domain, day;
DROP TABLE rollup_days;
ALTER TABLE rollup_days_by_id RENAME TO rollup_days;

CREATE TABLE rollup_months_by_id (
    domain  TEXT    NOT NULL,
    month   INTEGER NOT NULL,
    end_day INTEGER NOT NULL,
    sums    BLOB    NOT NULL,
    UNIQUE (domain, month)
);
INSERT INTO rollup_months_by_id (domain, month, end_day, sums)
    SELECT domain, month, end_day, sums FROM rollup_months ORDER BY domain, month;
DROP TABLE rollup_months;
ALTER TABLE rollup_months_by_id RENAME TO rollup_months;
