-- dmarc-warden schema, migration 9 (after 0009_retention): a record's lists — its DKIM signatures,
-- SPF checks and policy overrides — packed into one JSON text in `records.auth`
-- (src/store/lists.rs describes it), instead of a row per item in record_dkim, record_spf and
-- record_reasons: a record costs the writer one row instead of about four. Records stored before
-- are packed here, in the same form, and the three tables go.
--
-- `records` is rebuilt for it (every row is rewritten anyway), without its foreign key to
-- `reports`: checking the report on every record inserted cost the writer as much again as the
-- packing saved of the lists (~1,000 instructions a record). Records go with their report where a
-- report is deleted, which two statements do, each deleting its records first in the same unit of
-- work (a replaced copy: src/store/sqlite/ingest.rs; prune: src/store/sqlite/prune.rs); tests check
-- that none is left behind. Nothing else points at a record any more.
CREATE TABLE records_packed (
    id               INTEGER PRIMARY KEY,
    report           INTEGER NOT NULL,   -- reports.id
    source_ip        TEXT    NOT NULL,
    count            INTEGER NOT NULL,
    disposition      TEXT,
    dkim             TEXT,               -- policy_evaluated (aligned) DKIM
    spf              TEXT,               -- policy_evaluated (aligned) SPF
    header_from      TEXT,
    envelope_from    TEXT,
    envelope_to      TEXT,
    auth_dkim_domain TEXT,
    auth_dkim_result TEXT,
    auth_spf_domain  TEXT,
    auth_spf_result  TEXT,
    forwarded        INTEGER NOT NULL DEFAULT 0,
    auth             TEXT                -- the lists (src/store/lists.rs)
);

INSERT INTO records_packed
SELECT id, report, source_ip, count, disposition, dkim, spf, header_from, envelope_from,
    envelope_to, auth_dkim_domain, auth_dkim_result, auth_spf_domain, auth_spf_result, forwarded,
    json_array(
        json((SELECT json_group_array(json_array(d.domain, d.selector, d.result, d.human_result)
                                      ORDER BY d.n)
              FROM record_dkim d WHERE d.record = records.id)),
        json((SELECT json_group_array(json_array(s.domain, s.scope, s.result) ORDER BY s.n)
              FROM record_spf s WHERE s.record = records.id)),
        json((SELECT json_group_array(json_array(x.type, x.comment) ORDER BY x.n)
              FROM record_reasons x WHERE x.record = records.id)))
FROM records;

DROP TABLE record_reasons;
DROP TABLE record_dkim;
DROP TABLE record_spf;
DROP TABLE records;
ALTER TABLE records_packed RENAME TO records;
CREATE INDEX records_report ON records (report);
