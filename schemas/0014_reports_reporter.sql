-- `/metrics` gives, per policy domain and reporter, the end of the latest report: with this index
-- each (domain, reporter) is found by a skip from the previous one and its latest end by one
-- lookup, instead of grouping every report.
CREATE INDEX IF NOT EXISTS reports_reporter ON reports (domain, org_name, date_end);
