-- dmarc-warden schema, version 10: the sender tier of the rollups (issue 20), the aggregate records
-- summed per policy domain, UTC day of the report's end (`day`, days since the epoch;
-- -9223372036854775808 when the report has no end), UTC day of its begin (`begin_day`, the same
-- sentinel when none) and what a record says of its sender without its source IP
-- (model::EvidenceKey less `source_ip`, as its text). Kept in the unit of work that stores,
-- replaces or prunes the reports (src/store/sqlite/rollups.rs), so that `senders`, `advise` and the
-- dashboard read days × keys, not records; back-filled from the records when this migration runs.
--
-- `messages`: the messages; `first` / `last`: the earliest begin and latest end of the reports
-- that carried them (NULL when none had one); `reporters`: the reporters (org_name) of those
-- reports, and `ips`: their source IPs, each a set encoded by rollups.rs (a sorted list of texts,
-- and canonical IPv4 addresses as a roaring bitmap), merged on upsert by the functions
-- `rollup_texts` and `rollup_ips` that rollups.rs registers on every writing connection.
CREATE TABLE rollup_senders (
    domain       TEXT    NOT NULL,
    day          INTEGER NOT NULL,
    begin_day    INTEGER NOT NULL,
    header_from  TEXT    NOT NULL,
    dkim_domain  TEXT    NOT NULL,
    dkim_result  TEXT    NOT NULL,
    spf_domain   TEXT    NOT NULL,
    spf_result   TEXT    NOT NULL,
    dkim_aligned INTEGER NOT NULL,
    spf_aligned  INTEGER NOT NULL,
    disposition  TEXT    NOT NULL,
    forwarded    INTEGER NOT NULL,
    messages     INTEGER NOT NULL,
    first        INTEGER,
    last         INTEGER,
    reporters    BLOB    NOT NULL,
    ips          BLOB    NOT NULL,
    PRIMARY KEY (domain, day, begin_day, header_from, dkim_domain, dkim_result, spf_domain,
        spf_result, dkim_aligned, spf_aligned, disposition, forwarded)
) WITHOUT ROWID;
