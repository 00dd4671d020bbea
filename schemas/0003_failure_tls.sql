-- dmarc-warden schema, version 3: failure (forensic) reports and SMTP TLS reports.
-- Applied by src/store/sqlite/mod.rs when PRAGMA user_version < 3. Lists are JSON arrays of strings.

-- One row per ARF report (RFC 5965; DMARC failure reports RFC 6591 / RFC 9991, and other feedback
-- types, told apart by feedback_type). `key` (SHA-256 of the feedback fields and the reported
-- message's headers) makes storing idempotent.
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

-- SMTP TLS reports (RFC 8460): one row per report, per policy, per failure detail.
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
