-- dmarc-warden schema, version 9: what `dmarc-warden prune` looks for, indexed (src/store/sqlite/
-- prune.rs). Aggregate reports go by the end of their period (reports_end, 0001), else when they
-- were stored; failure reports by their arrival date, else when stored; SMTP TLS reports by the
-- end of their period, else when stored; kept rejects by when they were first kept.
CREATE INDEX failure_reports_prune ON failure_reports (coalesce(arrival_date, ingested_at));
CREATE INDEX tls_reports_prune ON tls_reports (coalesce(date_end, ingested_at));
CREATE INDEX reject_inputs_first_seen ON reject_inputs (first_seen);
