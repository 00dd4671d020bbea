-- The SQLite schema every migration (schemas/0*.sql) applied to an empty database
-- leaves, in the order its parts were made: what a new database is made from
-- (src/store/sqlite/mod.rs, SCHEMA). Written by the test that checks it:
-- UPDATE_GOLDEN=1 cargo test --lib sqlite_schema; not to be edited.

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

CREATE INDEX reports_end ON reports (date_end);

CREATE TABLE reject_inputs (
    key        TEXT    PRIMARY KEY,
    origin     TEXT    NOT NULL,
    data       BLOB,
    size       INTEGER,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE rejects (
    id       INTEGER PRIMARY KEY,
    input    TEXT    NOT NULL REFERENCES reject_inputs (key) ON DELETE CASCADE,
    location TEXT    NOT NULL,                    -- '' for the input as a whole
    reason   TEXT    NOT NULL
);

CREATE INDEX rejects_input ON rejects (input);

CREATE TABLE imap_folders (
    account     TEXT    NOT NULL,
    folder      TEXT    NOT NULL,
    uidvalidity INTEGER NOT NULL,
    last_uid    INTEGER NOT NULL,
    PRIMARY KEY (account, folder)
) WITHOUT ROWID;

CREATE TABLE imap_pending_moves (
    account     TEXT    NOT NULL,
    folder      TEXT    NOT NULL,
    uidvalidity INTEGER NOT NULL,
    uid         INTEGER NOT NULL,
    destination TEXT    NOT NULL,
    PRIMARY KEY (account, folder, uidvalidity, uid)
) WITHOUT ROWID;

CREATE TABLE failure_reports (
    id                     INTEGER PRIMARY KEY,
    key                    TEXT    NOT NULL UNIQUE,
    feedback_type          TEXT    NOT NULL,
    reporter               TEXT,              -- From of the report message
    report_id              TEXT,              -- Message-ID of the report message
    user_agent             TEXT,
    version                TEXT,
    auth_failure           TEXT,
    arrival_date           INTEGER,           -- NULL when absent or not a date
    arrival_date_text      TEXT,
    source_ip              TEXT,
    reported_domain        TEXT,              -- the first Reported-Domain
    reported_domains       TEXT    NOT NULL,  -- JSON, all of them
    reported_uris          TEXT    NOT NULL,  -- JSON
    original_mail_from     TEXT,
    original_rcpt_to       TEXT    NOT NULL,  -- JSON
    authentication_results TEXT    NOT NULL,  -- JSON
    dkim_domain            TEXT,
    dkim_identity          TEXT,
    dkim_selector          TEXT,
    spf_dns                TEXT,
    delivery_result        TEXT,
    identity_alignment     TEXT,
    incidents              INTEGER,
    other_fields           TEXT    NOT NULL,  -- JSON array of [name, value]
    original_from          TEXT,
    original_to            TEXT,
    original_subject       TEXT,
    original_date          TEXT,
    original_message_id    TEXT,
    original_auth_headers  TEXT,              -- JSON; NULL when the report had no third part
    original_body          TEXT,              -- only with --keep-failure-bodies
    origin                 TEXT    NOT NULL,
    location               TEXT    NOT NULL,
    ingested_at            INTEGER NOT NULL
);

CREATE INDEX failure_reports_domain ON failure_reports (reported_domain, arrival_date);

CREATE INDEX failure_reports_source ON failure_reports (source_ip);

CREATE TABLE tls_reports (
    id           INTEGER PRIMARY KEY,
    org_name     TEXT    NOT NULL,
    report_id    TEXT    NOT NULL,
    contact_info TEXT,
    date_begin   INTEGER,
    date_end     INTEGER,
    origin       TEXT    NOT NULL,
    location     TEXT    NOT NULL,
    ingested_at  INTEGER NOT NULL,
    UNIQUE (org_name, report_id)
);

CREATE TABLE tls_policies (
    report         INTEGER NOT NULL REFERENCES tls_reports (id) ON DELETE CASCADE,
    n              INTEGER NOT NULL,
    policy_type    TEXT    NOT NULL,
    policy_domain  TEXT    NOT NULL,      -- '' when the reporter left it out
    policy_strings TEXT    NOT NULL,      -- JSON
    mx_hosts       TEXT    NOT NULL,      -- JSON
    successful     INTEGER NOT NULL,
    failed         INTEGER NOT NULL,
    PRIMARY KEY (report, n)
) WITHOUT ROWID;

CREATE INDEX tls_policies_domain ON tls_policies (policy_domain);

CREATE TABLE tls_failures (
    report                 INTEGER NOT NULL,
    policy                 INTEGER NOT NULL,  -- tls_policies.n
    n                      INTEGER NOT NULL,
    result_type            TEXT    NOT NULL,
    sending_mta_ip         TEXT,
    receiving_mx_hostname  TEXT,
    receiving_mx_helo      TEXT,
    receiving_ip           TEXT,
    failed_sessions        INTEGER NOT NULL,
    additional_information TEXT,
    failure_reason_code    TEXT,
    PRIMARY KEY (report, policy, n),
    FOREIGN KEY (report, policy) REFERENCES tls_policies (report, n) ON DELETE CASCADE
) WITHOUT ROWID;

CREATE TABLE rdns_cache (
    ip           TEXT    PRIMARY KEY,
    name         TEXT,
    looked_up_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE dns_checks (
    id         INTEGER PRIMARY KEY,
    domain     TEXT    NOT NULL,
    checked_at INTEGER NOT NULL,
    worst      TEXT    NOT NULL,              -- ok, info, warning or error
    errors     INTEGER NOT NULL,
    warnings   INTEGER NOT NULL,
    published  TEXT    NOT NULL,
    findings   TEXT    NOT NULL
);

CREATE INDEX dns_checks_domain ON dns_checks (domain, checked_at);

CREATE TABLE notify_state (
    kind        TEXT    NOT NULL,
    domain      TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    notified_at INTEGER NOT NULL,
    PRIMARY KEY (kind, domain, subject)
) WITHOUT ROWID;

CREATE TABLE notify_outbox (
    id         INTEGER PRIMARY KEY,
    channel    TEXT    NOT NULL,
    event      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);

CREATE INDEX notify_outbox_channel ON notify_outbox (channel, id);

CREATE INDEX failure_reports_prune ON failure_reports (coalesce(arrival_date, ingested_at));

CREATE INDEX tls_reports_prune ON tls_reports (coalesce(date_end, ingested_at));

CREATE INDEX reject_inputs_first_seen ON reject_inputs (first_seen);

CREATE INDEX reports_domain_end
    ON reports (domain, date_end, date_begin, message_count, pass_count, record_count, org_name);

CREATE TABLE rollup_stale (
    domain  TEXT    NOT NULL,
    month   INTEGER NOT NULL,
    end_day INTEGER NOT NULL,
    touched INTEGER NOT NULL,
    PRIMARY KEY (domain, month)
) WITHOUT ROWID;

CREATE TABLE rollup_clock (n INTEGER NOT NULL);

CREATE TABLE rollup_parts (
    id     INTEGER PRIMARY KEY,
    domain TEXT    NOT NULL,
    day    INTEGER NOT NULL,
    sums   BLOB    NOT NULL
);

CREATE INDEX rollup_parts_day ON rollup_parts (domain, day);

CREATE INDEX reports_listing ON reports (date_begin, org_name, report_id, domain);

CREATE INDEX reports_reporter ON reports (domain, org_name, date_end);

CREATE TABLE "rollup_days" (
    domain TEXT    NOT NULL,
    day    INTEGER NOT NULL,
    sums   BLOB    NOT NULL,
    UNIQUE (domain, day)
);

CREATE TABLE "rollup_months" (
    domain  TEXT    NOT NULL,
    month   INTEGER NOT NULL,
    end_day INTEGER NOT NULL,
    sums    BLOB    NOT NULL,
    UNIQUE (domain, month)
);

CREATE TABLE rollup_quarters (
    domain  TEXT    NOT NULL,
    quarter INTEGER NOT NULL,
    end_day INTEGER NOT NULL,
    sums    BLOB    NOT NULL,
    UNIQUE (domain, quarter)
);

CREATE TABLE rollup_thirds (
    domain  TEXT    NOT NULL,
    third   INTEGER NOT NULL,
    end_day INTEGER NOT NULL,
    sums    BLOB    NOT NULL,
    UNIQUE (domain, third)
);

CREATE TABLE record_blocks (
    report INTEGER PRIMARY KEY,   -- reports.id
    data   BLOB    NOT NULL       -- its records, in order
);

INSERT INTO "rollup_clock" VALUES (0);
