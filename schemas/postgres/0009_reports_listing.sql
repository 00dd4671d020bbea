-- dmarc-warden PostgreSQL schema, version 9: `reports` lists every report oldest period first
-- (those without a period first), then by reporter, report ID and domain, each compared by its
-- bytes (the columns are COLLATE "C"): this index gives them in that order, so the listing streams
-- from the server as SQLite's does (schemas/0013_reports_listing.sql) and `--limit N` reads N rows.
-- Until now the client held and sorted them (half a million reports on a 10M-record estate: 270
-- MB), the server having spilled them to disk to sort them itself.
CREATE INDEX IF NOT EXISTS reports_listing
    ON reports (date_begin NULLS FIRST, org_name, report_id, domain);
