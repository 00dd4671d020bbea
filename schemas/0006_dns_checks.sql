-- dmarc-warden schema, version 6: results of `dmarc-warden check`, one row per domain per run, so
-- that `advise`, listings, the dashboard and notifications can show the last check without asking
-- DNS again. `published` is the JSON object of the raw records found, `findings` the JSON array of
-- findings (check, severity, message, fix), as `check --format json` prints them.
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
