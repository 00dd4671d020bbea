-- dmarc-warden PostgreSQL schema, version 10: each rollup key's source IPs with their own sums,
-- as SQLite's schemas/0019_rollup_ips.sql: after the set of IPs, each IP's messages and
-- reporters (src/store/rollups/codec.rs). No table changes; the transaction that applies this
-- migration sums the rollups again from the records.
SELECT 1;
