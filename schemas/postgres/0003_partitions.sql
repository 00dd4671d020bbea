-- dmarc-warden PostgreSQL schema, version 3: records and their lists partitioned by month, so that
-- `dmarc-warden prune` drops a month of them as a table rather than deleting it row by row
-- (src/store/postgres/prune.rs). Applied by src/store/postgres/migrate.rs; converts a database of
-- 0001 in place (new partitioned tables, rows copied, old tables dropped) in its transaction.
--
-- The partition key is `report_end`, a column added to each of the four tables: the end of the
-- report's period (`reports.date_end`), or, for a report without one, when it was stored
-- (`reports.ingested_at`), as written by the transaction that writes the report
-- (src/store/postgres/ingest.rs). Partitions are RANGE over whole UTC calendar months,
-- `<table>_yYYYYmMM` FROM (the month's first second) TO (the next month's); two more,
-- `<table>_before` (before 1970) and `<table>_after` (10000 and later), catch absurd dates.
-- Months are created when first needed: by the unit of work storing a report of a month without
-- one (and this month's neighbours with it), under an advisory lock, with ATTACH PARTITION, which
-- locks the parent only against other DDL, not against readers and writers. There is no default
-- partition, so creating a month never has to scan or lock one.
--
-- Keys: the record tables have none (0001: a report's rows are written and deleted by the
-- transaction holding the report's row), so partitioning needs no key to include `report_end`;
-- idempotency and "the more complete copy wins" stay the unique key of `reports`, which is not
-- partitioned (one row per report: small, and its key (domain, org_name, report_id) must not
-- depend on a period a corrected copy may change). A replacing copy's rows are deleted by
-- (domain, report) in whichever month they are, and written in the new copy's month.
--
-- Failure and TLS reports are not partitioned: a few rows per day, deleted by an index, and their
-- unique keys (key; org_name, report_id) would have to include the partition key, which would let
-- two copies of one report with different dates both be stored.
--
-- Citus: the four tables still lead their index with `domain` and are joined on (domain, report);
-- a partitioned table can be distributed on `domain` like a plain one (the partitions are
-- distributed with it), so 0001's plan holds.

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['records', 'record_reasons', 'record_dkim', 'record_spf'] LOOP
        EXECUTE format('ALTER TABLE %I RENAME TO %I', t, t || '_unpartitioned');
    END LOOP;
END $$;
ALTER INDEX records_report RENAME TO records_unpartitioned_report;
ALTER INDEX record_reasons_report RENAME TO record_reasons_unpartitioned_report;
ALTER INDEX record_dkim_report RENAME TO record_dkim_unpartitioned_report;
ALTER INDEX record_spf_report RENAME TO record_spf_unpartitioned_report;

-- As 0001, and `report_end` last.
CREATE TABLE records (
    domain           TEXT COLLATE "C" NOT NULL,
    report           BIGINT NOT NULL,
    count            BIGINT NOT NULL,
    n                INTEGER NOT NULL,
    forwarded        BOOLEAN NOT NULL,
    source_ip        TEXT COLLATE "C" NOT NULL,
    disposition      TEXT COLLATE "C",
    dkim             TEXT COLLATE "C",
    spf              TEXT COLLATE "C",
    header_from      TEXT COLLATE "C",
    envelope_from    TEXT COLLATE "C",
    envelope_to      TEXT COLLATE "C",
    auth_dkim_domain TEXT COLLATE "C",
    auth_dkim_result TEXT COLLATE "C",
    auth_spf_domain  TEXT COLLATE "C",
    auth_spf_result  TEXT COLLATE "C",
    report_end       BIGINT NOT NULL
) PARTITION BY RANGE (report_end);
CREATE INDEX records_report ON records (domain, report);

CREATE TABLE record_reasons (
    domain     TEXT COLLATE "C" NOT NULL,
    report     BIGINT NOT NULL,
    record     INTEGER NOT NULL,
    n          INTEGER NOT NULL,
    type       TEXT COLLATE "C" NOT NULL,
    comment    TEXT COLLATE "C",
    report_end BIGINT NOT NULL
) PARTITION BY RANGE (report_end);
CREATE INDEX record_reasons_report ON record_reasons USING brin (report) WITH (autosummarize = on);

CREATE TABLE record_dkim (
    domain       TEXT COLLATE "C" NOT NULL,
    report       BIGINT NOT NULL,
    record       INTEGER NOT NULL,
    n            INTEGER NOT NULL,
    dkim_domain  TEXT COLLATE "C" NOT NULL,
    selector     TEXT COLLATE "C",
    result       TEXT COLLATE "C" NOT NULL,
    human_result TEXT COLLATE "C",
    report_end   BIGINT NOT NULL
) PARTITION BY RANGE (report_end);
CREATE INDEX record_dkim_report ON record_dkim (domain, report);

CREATE TABLE record_spf (
    domain     TEXT COLLATE "C" NOT NULL,
    report     BIGINT NOT NULL,
    record     INTEGER NOT NULL,
    n          INTEGER NOT NULL,
    spf_domain TEXT COLLATE "C" NOT NULL,
    scope      TEXT COLLATE "C",
    result     TEXT COLLATE "C" NOT NULL,
    report_end BIGINT NOT NULL
) PARTITION BY RANGE (report_end);
CREATE INDEX record_spf_report ON record_spf USING brin (report) WITH (autosummarize = on);

-- The catch-alls, and a partition for each month that reports end in.
DO $$
DECLARE
    t text;
    m timestamp;
BEGIN
    FOREACH t IN ARRAY ARRAY['records', 'record_reasons', 'record_dkim', 'record_spf'] LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (MINVALUE) TO (0)',
            t || '_before', t);
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (253402300800) TO (MAXVALUE)',
            t || '_after', t);
    END LOOP;
    FOR m IN
        SELECT DISTINCT date_trunc('month', to_timestamp(e) AT TIME ZONE 'UTC')
        FROM (SELECT coalesce(date_end, ingested_at) AS e FROM reports) AS ends
        WHERE e >= 0 AND e < 253402300800
    LOOP
        FOREACH t IN ARRAY ARRAY['records', 'record_reasons', 'record_dkim', 'record_spf'] LOOP
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%s) TO (%s)',
                t || '_' || to_char(m, '"y"YYYY"m"MM'), t,
                extract(epoch FROM m)::bigint,
                extract(epoch FROM m + interval '1 month')::bigint);
        END LOOP;
    END LOOP;
END $$;

INSERT INTO records
SELECT o.*, coalesce(r.date_end, r.ingested_at)
FROM records_unpartitioned o JOIN reports r ON r.domain = o.domain AND r.id = o.report;
INSERT INTO record_reasons
SELECT o.*, coalesce(r.date_end, r.ingested_at)
FROM record_reasons_unpartitioned o JOIN reports r ON r.domain = o.domain AND r.id = o.report;
INSERT INTO record_dkim
SELECT o.*, coalesce(r.date_end, r.ingested_at)
FROM record_dkim_unpartitioned o JOIN reports r ON r.domain = o.domain AND r.id = o.report;
INSERT INTO record_spf
SELECT o.*, coalesce(r.date_end, r.ingested_at)
FROM record_spf_unpartitioned o JOIN reports r ON r.domain = o.domain AND r.id = o.report;

DROP TABLE records_unpartitioned, record_reasons_unpartitioned, record_dkim_unpartitioned,
    record_spf_unpartitioned;

-- Where prune looks for failure and TLS reports and kept rejects.
CREATE INDEX failure_reports_prune ON failure_reports ((coalesce(arrival_date, ingested_at)));
CREATE INDEX tls_reports_prune ON tls_reports ((coalesce(date_end, ingested_at)));
CREATE INDEX reject_inputs_first_seen ON reject_inputs (first_seen);
