-- dmarc-warden SQLite schema, migration 16: the quarter rows of the rollups (issue 20), one per
-- policy domain and UTC calendar quarter (`quarter` its first day, `end_day` the first day of
-- the next), each the sum of the quarter's month rows (`rollup_months`, same blob form), kept
-- only while none of those months is stale (src/store/rollups/upkeep.rs). A domain's keys hardly
-- change from month to month, so a year read from eleven month rows summed each key eleven
-- times; readers now read a quarter row where one lies wholly in their window, and the months
-- of no such quarter. Back-filled from the month rows when this migration runs.
CREATE TABLE rollup_quarters (
    domain  TEXT    NOT NULL,
    quarter INTEGER NOT NULL,
    end_day INTEGER NOT NULL,
    sums    BLOB    NOT NULL,
    UNIQUE (domain, quarter)
);
