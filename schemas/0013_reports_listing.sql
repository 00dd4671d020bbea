-- `reports` lists every report oldest period first: this index gives them in that order, so the
-- listing streams (nothing sorted, nothing held) and `--limit N` reads N rows.
CREATE INDEX IF NOT EXISTS reports_listing ON reports (date_begin, org_name, report_id, domain);
