-- dmarc-warden schema, version 5: reverse DNS answers for `--resolve`, so each source IP is looked
-- up once a month at most. `name` is NULL for an address without a name.
CREATE TABLE rdns_cache (
    ip           TEXT    PRIMARY KEY,
    name         TEXT,
    looked_up_at INTEGER NOT NULL
) WITHOUT ROWID;
