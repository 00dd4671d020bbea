-- dmarc-warden schema, version 8: rollups, the stored facts summed per policy domain and report
-- period, kept in the unit of work that stores (or replaces) the reports, so that `domains`,
-- `sources`, `senders`, `advise`, notifications and the dashboard read periods × keys, not records.
-- Applied by src/store/sqlite/mod.rs when PRAGMA user_version < 8; src/store/sqlite/rollups.rs
-- keeps them (the same statements, for the reports of a unit of work).
--
-- A row sums the reports of one period (date_begin, date_end), so each answer over a window is the
-- answer over the records. `day` is the UTC day of date_end (days since the epoch, NULL when the
-- report has no end): a row never mixes days, so `prune` deletes rows by day.
--
-- Keys are NOT NULL (a key with a NULL would never conflict): a NULL is stored as '' or 0 with its
-- bit set in `nulls`: 1 header_from, 2 auth_dkim_domain, 4 auth_dkim_result, 8 auth_spf_domain,
-- 16 auth_spf_result, 32 envelope_from, 64 dkim, 128 spf, 256 disposition, 512 date_begin,
-- 1024 date_end.

-- Per domain and period: the reports, their messages and the messages passing DMARC.
CREATE TABLE rollup_domains (
    domain     TEXT    NOT NULL,
    date_end   INTEGER NOT NULL,
    date_begin INTEGER NOT NULL,
    nulls      INTEGER NOT NULL,
    day        INTEGER,
    reports    INTEGER NOT NULL,
    messages   INTEGER NOT NULL,
    pass       INTEGER NOT NULL,
    PRIMARY KEY (domain, date_end, date_begin, nulls)
) WITHOUT ROWID;

-- Per domain, period, reporter and what a record says of its sender (the columns
-- StoredRecord::evidence_key reads): the records and their messages.
CREATE TABLE rollup_evidence (
    domain           TEXT    NOT NULL,
    date_end         INTEGER NOT NULL,
    date_begin       INTEGER NOT NULL,
    org_name         TEXT    NOT NULL,
    source_ip        TEXT    NOT NULL,
    header_from      TEXT    NOT NULL,
    auth_dkim_domain TEXT    NOT NULL,
    auth_dkim_result TEXT    NOT NULL,
    auth_spf_domain  TEXT    NOT NULL,
    auth_spf_result  TEXT    NOT NULL,
    envelope_from    TEXT    NOT NULL,
    dkim             TEXT    NOT NULL,
    spf              TEXT    NOT NULL,
    disposition      TEXT    NOT NULL,
    forwarded        INTEGER NOT NULL,
    nulls            INTEGER NOT NULL,
    day              INTEGER,
    records          INTEGER NOT NULL,
    messages         INTEGER NOT NULL,
    PRIMARY KEY (domain, date_end, date_begin, org_name, source_ip, header_from,
        auth_dkim_domain, auth_dkim_result, auth_spf_domain, auth_spf_result, envelope_from, dkim,
        spf, disposition, forwarded, nulls)
) WITHOUT ROWID;

-- Per domain, period, source IP and header From: the reports that name them (the `sources`
-- listing counts each report once).
CREATE TABLE rollup_sources (
    domain      TEXT    NOT NULL,
    date_end    INTEGER NOT NULL,
    date_begin  INTEGER NOT NULL,
    source_ip   TEXT    NOT NULL,
    header_from TEXT    NOT NULL,
    nulls       INTEGER NOT NULL,
    day         INTEGER,
    reports     INTEGER NOT NULL,
    PRIMARY KEY (domain, date_end, date_begin, source_ip, header_from, nulls)
) WITHOUT ROWID;

-- Back-fill: every stored report, as src/store/sqlite/rollups.rs adds a unit of work's.
INSERT INTO rollup_domains (domain, date_end, date_begin, nulls, day, reports, messages, pass)
SELECT r.domain, ifnull(r.date_end, 0), ifnull(r.date_begin, 0),
    (r.date_begin IS NULL) * 512 + (r.date_end IS NULL) * 1024,
    (r.date_end - ((r.date_end % 86400) + 86400) % 86400) / 86400,
    count(*), sum(r.message_count), sum(r.pass_count)
FROM reports r
WHERE true
GROUP BY r.domain, r.date_end, r.date_begin;

INSERT INTO rollup_evidence (domain, date_end, date_begin, org_name, source_ip, header_from,
    auth_dkim_domain, auth_dkim_result, auth_spf_domain, auth_spf_result, envelope_from, dkim, spf,
    disposition, forwarded, nulls, day, records, messages)
SELECT r.domain, ifnull(r.date_end, 0), ifnull(r.date_begin, 0), r.org_name, c.source_ip,
    ifnull(c.header_from, ''), ifnull(c.auth_dkim_domain, ''), ifnull(c.auth_dkim_result, ''),
    ifnull(c.auth_spf_domain, ''), ifnull(c.auth_spf_result, ''), ifnull(c.envelope_from, ''),
    ifnull(c.dkim, ''), ifnull(c.spf, ''), ifnull(c.disposition, ''), c.forwarded,
    (c.header_from IS NULL) + (c.auth_dkim_domain IS NULL) * 2
        + (c.auth_dkim_result IS NULL) * 4 + (c.auth_spf_domain IS NULL) * 8
        + (c.auth_spf_result IS NULL) * 16 + (c.envelope_from IS NULL) * 32
        + (c.dkim IS NULL) * 64 + (c.spf IS NULL) * 128 + (c.disposition IS NULL) * 256
        + (r.date_begin IS NULL) * 512 + (r.date_end IS NULL) * 1024,
    (r.date_end - ((r.date_end % 86400) + 86400) % 86400) / 86400,
    count(*), sum(c.count)
FROM reports r CROSS JOIN records c ON c.report = r.id
WHERE true
GROUP BY r.domain, r.date_end, r.date_begin, r.org_name, c.source_ip, c.header_from,
    c.auth_dkim_domain, c.auth_dkim_result, c.auth_spf_domain, c.auth_spf_result,
    c.envelope_from, c.dkim, c.spf, c.disposition, c.forwarded;

INSERT INTO rollup_sources (domain, date_end, date_begin, source_ip, header_from, nulls, day,
    reports)
SELECT r.domain, ifnull(r.date_end, 0), ifnull(r.date_begin, 0), c.source_ip,
    ifnull(c.header_from, ''),
    (c.header_from IS NULL) + (r.date_begin IS NULL) * 512 + (r.date_end IS NULL) * 1024,
    (r.date_end - ((r.date_end % 86400) + 86400) % 86400) / 86400,
    count(DISTINCT r.id)
FROM reports r CROSS JOIN records c ON c.report = r.id
WHERE true
GROUP BY r.domain, r.date_end, r.date_begin, c.source_ip, c.header_from;
