-- dmarc-warden SQLite schema, migration 19: each rollup key's source IPs with their own sums
-- (issue 20): after the set of IPs, each IP's messages and reporters, behind their length so
-- that readers of the set alone step over them (src/store/rollups/codec.rs). A sender's page
-- then reads its IPs from the rollups rather than from every record of its window. No table
-- changes; the rollups are summed again from the records when this migration runs.
SELECT 1;
