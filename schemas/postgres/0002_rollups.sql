-- dmarc-warden PostgreSQL schema, migration 2: rollups, the stored facts summed per policy domain
-- and report period, kept in the transaction that stores (or replaces) the reports; the twin of
-- schemas/0008_rollups.sql (see there). src/store/postgres/rollups.rs keeps them with these
-- back-fill statements, for the reports of a batch, as upserts (`n = n + EXCLUDED.n`, atomic
-- under concurrent writers).
--
-- Keys are NOT NULL: a NULL is stored as '' or 0 with its bit set in `nulls`: 1 header_from,
-- 2 auth_dkim_domain, 4 auth_dkim_result, 8 auth_spf_domain, 16 auth_spf_result, 32 envelope_from,
-- 64 dkim, 128 spf, 256 disposition, 512 date_begin, 1024 date_end. `day` is the UTC day of
-- date_end (days since the epoch; NULL without an end). Every key leads with the domain.

CREATE TABLE rollup_domains (
    domain     TEXT COLLATE "C" NOT NULL,
    date_end   BIGINT NOT NULL,
    date_begin BIGINT NOT NULL,
    nulls      INTEGER NOT NULL,
    day        BIGINT,
    reports    BIGINT NOT NULL,
    messages   BIGINT NOT NULL,
    pass       BIGINT NOT NULL,
    PRIMARY KEY (domain, date_end, date_begin, nulls)
);

CREATE TABLE rollup_evidence (
    domain           TEXT COLLATE "C" NOT NULL,
    date_end         BIGINT NOT NULL,
    date_begin       BIGINT NOT NULL,
    org_name         TEXT COLLATE "C" NOT NULL,
    source_ip        TEXT COLLATE "C" NOT NULL,
    header_from      TEXT COLLATE "C" NOT NULL,
    auth_dkim_domain TEXT COLLATE "C" NOT NULL,
    auth_dkim_result TEXT COLLATE "C" NOT NULL,
    auth_spf_domain  TEXT COLLATE "C" NOT NULL,
    auth_spf_result  TEXT COLLATE "C" NOT NULL,
    envelope_from    TEXT COLLATE "C" NOT NULL,
    dkim             TEXT COLLATE "C" NOT NULL,
    spf              TEXT COLLATE "C" NOT NULL,
    disposition      TEXT COLLATE "C" NOT NULL,
    forwarded        BOOLEAN NOT NULL,
    nulls            INTEGER NOT NULL,
    day              BIGINT,
    records          BIGINT NOT NULL,
    messages         BIGINT NOT NULL,
    PRIMARY KEY (domain, date_end, date_begin, org_name, source_ip, header_from,
        auth_dkim_domain, auth_dkim_result, auth_spf_domain, auth_spf_result, envelope_from, dkim,
        spf, disposition, forwarded, nulls)
);

CREATE TABLE rollup_sources (
    domain      TEXT COLLATE "C" NOT NULL,
    date_end    BIGINT NOT NULL,
    date_begin  BIGINT NOT NULL,
    source_ip   TEXT COLLATE "C" NOT NULL,
    header_from TEXT COLLATE "C" NOT NULL,
    nulls       INTEGER NOT NULL,
    day         BIGINT,
    reports     BIGINT NOT NULL,
    PRIMARY KEY (domain, date_end, date_begin, source_ip, header_from, nulls)
);

-- Back-fill: every stored report, as src/store/postgres/rollups.rs adds a batch's.
INSERT INTO rollup_domains (domain, date_end, date_begin, nulls, day, reports, messages, pass)
SELECT r.domain, coalesce(r.date_end, 0), coalesce(r.date_begin, 0),
    (r.date_begin IS NULL)::int * 512 + (r.date_end IS NULL)::int * 1024,
    (r.date_end - ((r.date_end % 86400) + 86400) % 86400) / 86400,
    count(*), sum(r.message_count)::int8, sum(r.pass_count)::int8
FROM reports r
WHERE true
GROUP BY r.domain, r.date_end, r.date_begin;

INSERT INTO rollup_evidence (domain, date_end, date_begin, org_name, source_ip, header_from,
    auth_dkim_domain, auth_dkim_result, auth_spf_domain, auth_spf_result, envelope_from, dkim, spf,
    disposition, forwarded, nulls, day, records, messages)
SELECT r.domain, coalesce(r.date_end, 0), coalesce(r.date_begin, 0), r.org_name, c.source_ip,
    coalesce(c.header_from, ''), coalesce(c.auth_dkim_domain, ''),
    coalesce(c.auth_dkim_result, ''), coalesce(c.auth_spf_domain, ''),
    coalesce(c.auth_spf_result, ''), coalesce(c.envelope_from, ''), coalesce(c.dkim, ''),
    coalesce(c.spf, ''), coalesce(c.disposition, ''), c.forwarded,
    (c.header_from IS NULL)::int + (c.auth_dkim_domain IS NULL)::int * 2
        + (c.auth_dkim_result IS NULL)::int * 4 + (c.auth_spf_domain IS NULL)::int * 8
        + (c.auth_spf_result IS NULL)::int * 16 + (c.envelope_from IS NULL)::int * 32
        + (c.dkim IS NULL)::int * 64 + (c.spf IS NULL)::int * 128
        + (c.disposition IS NULL)::int * 256 + (r.date_begin IS NULL)::int * 512
        + (r.date_end IS NULL)::int * 1024,
    (r.date_end - ((r.date_end % 86400) + 86400) % 86400) / 86400,
    count(*), sum(c.count)::int8
FROM reports r JOIN records c ON c.domain = r.domain AND c.report = r.id
WHERE true
GROUP BY r.domain, r.date_end, r.date_begin, r.org_name, c.source_ip, c.header_from,
    c.auth_dkim_domain, c.auth_dkim_result, c.auth_spf_domain, c.auth_spf_result,
    c.envelope_from, c.dkim, c.spf, c.disposition, c.forwarded;

INSERT INTO rollup_sources (domain, date_end, date_begin, source_ip, header_from, nulls, day,
    reports)
SELECT r.domain, coalesce(r.date_end, 0), coalesce(r.date_begin, 0), c.source_ip,
    coalesce(c.header_from, ''),
    (c.header_from IS NULL)::int + (r.date_begin IS NULL)::int * 512
        + (r.date_end IS NULL)::int * 1024,
    (r.date_end - ((r.date_end % 86400) + 86400) % 86400) / 86400,
    count(DISTINCT r.id)
FROM reports r JOIN records c ON c.domain = r.domain AND c.report = r.id
WHERE true
GROUP BY r.domain, r.date_end, r.date_begin, c.source_ip, c.header_from;
