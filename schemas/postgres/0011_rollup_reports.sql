-- dmarc-warden PostgreSQL schema, version 11: each rollup key's source IPs also keep the reports
-- they count, as SQLite's schemas/0020_rollup_reports.sql (src/store/rollups/codec.rs). No table
-- changes; the transaction that applies this migration sums the rollups again from the records.
SELECT 1;
