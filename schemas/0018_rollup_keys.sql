-- dmarc-warden SQLite schema, migration 18: the rollups' keys are stored shorter (issue 20): a
-- key's names as the row's own domain where they are, its results and disposition by number
-- (src/store/rollups/codec.rs). No table changes; the rollups are summed again from the records
-- when this migration runs (their blobs' keys were the other form).
SELECT 1;
