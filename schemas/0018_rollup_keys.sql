-- dmarc-warden SQLite schema, migration 18: the rollups' blobs in a shorter form (issue 20): a
-- key's names as the row's own domain where they are, its results and disposition by number, and
-- each key's days of begin behind their length, so that readers that do not count days step
-- over them, and its IPv4 addresses four bytes each (src/store/rollups/codec.rs). No table changes; the rollups are summed again from
-- the records when this migration runs (their blobs were in the other form).
SELECT 1;
