-- dmarc-warden SQLite schema, migration 17: the thirds of the rollups' months (issue 20), one row
-- per policy domain and third of a UTC calendar month (days 1-10, 11-20, 21 to the end; `third`
-- its first day, `end_day` the day after), each the sum of its day rows (`rollup_days`, same
-- blob form), summed with its month's row and deleted with it (src/store/rollups/upkeep.rs). A
-- window rarely begins on the first of a month: a year read the month it begins in as up to 30
-- day rows; now as the days up to the next third and the thirds after. Back-filled from the day
-- rows of every month with a row when this migration runs.
CREATE TABLE rollup_thirds (
    domain  TEXT    NOT NULL,
    third   INTEGER NOT NULL,
    end_day INTEGER NOT NULL,
    sums    BLOB    NOT NULL,
    UNIQUE (domain, third)
);
