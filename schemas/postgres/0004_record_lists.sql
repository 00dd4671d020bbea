-- dmarc-warden PostgreSQL schema, migration 3 (after 0003_partitions): a record's lists — its DKIM
-- signatures, SPF checks and policy overrides — packed into one JSON text in `records.auth`
-- (src/store/lists.rs describes it), instead of a row per item in record_dkim, record_spf and
-- record_reasons: a bulk load copies one table instead of four, and a record costs one row
-- instead of about four. As SQLite's schemas/0010_record_lists.sql. Records stored before are
-- packed here (the same JSON; PostgreSQL writes it with a space after each comma), and the three
-- tables go with their month partitions.
ALTER TABLE records ADD COLUMN auth TEXT COLLATE "C";

CREATE TEMPORARY TABLE packed_lists ON COMMIT DROP AS
SELECT domain, report, record, kind, json_agg(item ORDER BY n) AS items
FROM (
    SELECT domain, report, record, n, 0 AS kind,
           json_build_array(dkim_domain, selector, result, human_result) AS item
    FROM record_dkim
    UNION ALL
    SELECT domain, report, record, n, 1, json_build_array(spf_domain, scope, result)
    FROM record_spf
    UNION ALL
    SELECT domain, report, record, n, 2, json_build_array(type, comment)
    FROM record_reasons
) AS items
GROUP BY domain, report, record, kind;

UPDATE records c SET auth = p.auth
FROM (
    SELECT r.domain, r.report, r.n, json_build_array(
            coalesce(d.items, '[]'::json), coalesce(s.items, '[]'::json),
            coalesce(x.items, '[]'::json))::text AS auth
    FROM records r
    LEFT JOIN packed_lists d ON d.kind = 0 AND (d.domain, d.report, d.record) = (r.domain, r.report, r.n)
    LEFT JOIN packed_lists s ON s.kind = 1 AND (s.domain, s.report, s.record) = (r.domain, r.report, r.n)
    LEFT JOIN packed_lists x ON x.kind = 2 AND (x.domain, x.report, x.record) = (r.domain, r.report, r.n)
) AS p
WHERE (p.domain, p.report, p.n) = (c.domain, c.report, c.n);

DROP TABLE record_reasons, record_dkim, record_spf;
