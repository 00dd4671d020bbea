-- dmarc-warden SQLite schema, migration 11: `domains` (and every sum of reports by domain) reads
-- its totals from an index. It sums each domain's reports in a window; with the (domain,
-- date_end) index alone SQLite looked every report's row up for its counts (issue 20: 467,265
-- reports holding 10M records, 1.8 s). This index carries what those sums read, so they are one
-- scan of it (0.1 s). It replaces reports_domain_end, whose columns it starts with, so every
-- lookup by domain and period end uses it as before. `/metrics` reads it too: the records stored
-- (the sum of record_count, 0.74 s → 0.04 s as a count of records) and each domain's latest
-- report per reporter (0.72 s → 0.27 s).
DROP INDEX reports_domain_end;
CREATE INDEX reports_domain_end
    ON reports (domain, date_end, date_begin, message_count, pass_count, record_count, org_name);
