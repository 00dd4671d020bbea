-- dmarc-warden schema, version 1. Applied by src/store/sqlite/mod.rs when PRAGMA user_version < 1.
-- Times are seconds since the Unix epoch, UTC. Enumerated values are lower-cased strings as reported.

-- One row per aggregate report; (org_name, report_id, domain) identifies it, which makes ingest
-- idempotent. Totals are denormalised at insert so listings never scan records.
CREATE TABLE reports (
    id                 INTEGER PRIMARY KEY,
    org_name           TEXT    NOT NULL,
    report_id          TEXT    NOT NULL,
    domain             TEXT    NOT NULL,          -- policy_published/domain
    email              TEXT,
    extra_contact_info TEXT,
    date_begin         INTEGER,                   -- NULL when the report has no date_range
    date_end           INTEGER,
    errors             TEXT,                      -- JSON array of report_metadata/error, NULL if none
    generator          TEXT,                      -- RFC 9990
    version            TEXT,
    namespace          TEXT,
    adkim              TEXT,
    aspf               TEXT,
    p                  TEXT,
    sp                 TEXT,
    np                 TEXT,                      -- RFC 9990
    pct                INTEGER,                   -- RFC 7489
    fo                 TEXT,
    testing            TEXT,                      -- RFC 9990
    discovery_method   TEXT,                      -- RFC 9990
    extensions         TEXT,                      -- RFC 9990, raw XML
    record_count       INTEGER NOT NULL,
    message_count      INTEGER NOT NULL,
    pass_count         INTEGER NOT NULL,          -- messages passing DMARC (aligned DKIM or SPF)
    origin             TEXT    NOT NULL,          -- file path, path#N for mbox messages, '-' for stdin
    location           TEXT    NOT NULL,          -- path inside the input's containers
    ingested_at        INTEGER NOT NULL,
    UNIQUE (org_name, report_id, domain)
);
CREATE INDEX reports_domain_end ON reports (domain, date_end);
CREATE INDEX reports_end ON reports (date_end);

CREATE TABLE records (
    id            INTEGER PRIMARY KEY,
    report        INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    source_ip     TEXT    NOT NULL,
    count         INTEGER NOT NULL,
    disposition   TEXT,
    dkim          TEXT,                           -- policy_evaluated (aligned) DKIM
    spf           TEXT,                           -- policy_evaluated (aligned) SPF
    header_from   TEXT,
    envelope_from TEXT,
    envelope_to   TEXT
);
CREATE INDEX records_report ON records (report);

-- Per-record lists, clustered on (record, n): rows of one record sit together and inserts append, so
-- no separate index is maintained. `n` is the position within the record, from 0.
CREATE TABLE record_reasons (
    record  INTEGER NOT NULL REFERENCES records (id) ON DELETE CASCADE,
    n       INTEGER NOT NULL,
    type    TEXT    NOT NULL,
    comment TEXT,
    PRIMARY KEY (record, n)
) WITHOUT ROWID;

CREATE TABLE record_dkim (
    record       INTEGER NOT NULL REFERENCES records (id) ON DELETE CASCADE,
    n            INTEGER NOT NULL,
    domain       TEXT    NOT NULL,
    selector     TEXT,
    result       TEXT    NOT NULL,
    human_result TEXT,
    PRIMARY KEY (record, n)
) WITHOUT ROWID;

CREATE TABLE record_spf (
    record INTEGER NOT NULL REFERENCES records (id) ON DELETE CASCADE,
    n      INTEGER NOT NULL,
    domain TEXT    NOT NULL,
    scope  TEXT,
    result TEXT    NOT NULL,
    PRIMARY KEY (record, n)
) WITHOUT ROWID;

-- Inputs that failed in whole or in part, kept so `dmarc-warden reprocess` can try them again.
-- `key` is the SHA-256 of the bytes, or 'origin:' || origin when they could not be read (too large,
-- unreadable), in which case reprocess reads the origin path again.
CREATE TABLE reject_inputs (
    key        TEXT    PRIMARY KEY,
    origin     TEXT    NOT NULL,
    data       BLOB,
    size       INTEGER,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 1
);

-- One row per failed part of a rejected input.
CREATE TABLE rejects (
    id       INTEGER PRIMARY KEY,
    input    TEXT    NOT NULL REFERENCES reject_inputs (key) ON DELETE CASCADE,
    location TEXT    NOT NULL,                    -- '' for the input as a whole
    reason   TEXT    NOT NULL
);
CREATE INDEX rejects_input ON rejects (input);
