-- dmarc-warden SQLite schema, migration 22: each aggregate report's records are stored as one
-- block of bytes (src/store/blocks.rs), read in SQL through `records_of(data)`
-- (src/store/sqlite/records_of.rs), instead of a row a record (issue 21: a record cost the single
-- writer two B-tree inserts and ~145 bytes; in a block it costs ~27). Applying it, the program
-- then packs the rows of `records` into blocks and drops that table with its index
-- (src/store/sqlite/copy.rs, `pack_records_table`). A report without records has no block.
-- Applied again (as a test does), it finds the blocks there and no `records`: nothing to do.
CREATE TABLE IF NOT EXISTS record_blocks (
    report INTEGER PRIMARY KEY,   -- reports.id
    data   BLOB    NOT NULL       -- its records, in order
);
