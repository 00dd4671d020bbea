-- dmarc-warden PostgreSQL schema, version 8: the rollups' keys are stored shorter, as SQLite's
-- schemas/0018_rollup_keys.sql: a key's names as the row's own domain where they are, its
-- results and disposition by number (src/store/rollups/codec.rs). No table changes; the
-- transaction that applies this migration sums the rollups again from the records.
SELECT 1;
