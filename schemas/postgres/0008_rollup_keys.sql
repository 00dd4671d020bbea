-- dmarc-warden PostgreSQL schema, version 8: the rollups' blobs in a shorter form, as SQLite's
-- schemas/0018_rollup_keys.sql: a key's names as the row's own domain where they are, its
-- results and disposition by number, its days of begin behind their length, its IPv4
-- addresses four bytes each (src/store/rollups/codec.rs). No table changes; the transaction that applies this migration
-- sums the rollups again from the records.
SELECT 1;
