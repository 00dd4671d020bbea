-- dmarc-warden SQLite schema, migration 20: each rollup key's source IPs also keep the reports
-- they count (issue 20): a report is counted, for each of its source IPs and header Froms
-- (lower case), by the first of its records from them, whatever that record's key, so that the
-- keys of a From add up to each IP's reports (src/store/rollups/codec.rs). `sources` and
-- `/api/sources` then read the rollups rather than every record of their window. No table
-- changes; the rollups are summed again from the records when this migration runs.
SELECT 1;
