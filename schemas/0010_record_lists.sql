-- dmarc-warden schema, migration 9 (after 0009_retention): a record's lists — its DKIM signatures,
-- SPF checks and policy overrides — packed into one JSON text in `records.auth`
-- (src/store/lists.rs describes it), instead of a row per item in record_dkim, record_spf and
-- record_reasons: a record costs the writer one row instead of about four. Records stored before
-- are packed here, in the same form, and the three tables go.
ALTER TABLE records ADD COLUMN auth TEXT;

UPDATE records SET auth = json_array(
    json((SELECT json_group_array(json_array(d.domain, d.selector, d.result, d.human_result)
                                  ORDER BY d.n)
          FROM record_dkim d WHERE d.record = records.id)),
    json((SELECT json_group_array(json_array(s.domain, s.scope, s.result) ORDER BY s.n)
          FROM record_spf s WHERE s.record = records.id)),
    json((SELECT json_group_array(json_array(x.type, x.comment) ORDER BY x.n)
          FROM record_reasons x WHERE x.record = records.id)));

DROP TABLE record_reasons;
DROP TABLE record_dkim;
DROP TABLE record_spf;
