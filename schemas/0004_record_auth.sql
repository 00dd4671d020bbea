-- dmarc-warden schema, version 4: each record's deciding DKIM and SPF result and whether the
-- receiver called it forwarded, copied onto the record at insert (Record::deciding_dkim,
-- deciding_spf, forwarded in src/model.rs), so that `senders` and `advise` read the records of a
-- window without looking into record_dkim, record_spf and record_reasons for each.
ALTER TABLE records ADD COLUMN auth_dkim_domain TEXT;
ALTER TABLE records ADD COLUMN auth_dkim_result TEXT;
ALTER TABLE records ADD COLUMN auth_spf_domain TEXT;
ALTER TABLE records ADD COLUMN auth_spf_result TEXT;
ALTER TABLE records ADD COLUMN forwarded INTEGER NOT NULL DEFAULT 0;

-- Records stored before this version: the same choice, made in SQL.
UPDATE records SET
    auth_dkim_domain = (SELECT d.domain FROM record_dkim d WHERE d.record = records.id
                        ORDER BY d.result = 'pass' DESC, d.n LIMIT 1),
    auth_dkim_result = (SELECT d.result FROM record_dkim d WHERE d.record = records.id
                        ORDER BY d.result = 'pass' DESC, d.n LIMIT 1),
    auth_spf_domain = (SELECT s.domain FROM record_spf s WHERE s.record = records.id
                       ORDER BY coalesce(s.scope, 'mfrom') = 'mfrom' DESC, s.n LIMIT 1),
    auth_spf_result = (SELECT s.result FROM record_spf s WHERE s.record = records.id
                       ORDER BY coalesce(s.scope, 'mfrom') = 'mfrom' DESC, s.n LIMIT 1),
    forwarded = EXISTS (SELECT 1 FROM record_reasons x WHERE x.record = records.id
                        AND x.type IN ('forwarded', 'mailing_list', 'trusted_forwarder',
                                       'local_policy'));
