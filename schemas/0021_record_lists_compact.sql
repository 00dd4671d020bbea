-- dmarc-warden SQLite schema, migration 21: a record's lists (`records.auth`) are written in a
-- compact text of their own rather than as JSON (issue 21: the JSON was about a third of a
-- record's bytes, and of what the single writer spent on it). The format is described in
-- src/store/lists.rs, which reads both; rows written before keep their JSON. No table changes:
-- this migration marks the database as holding the new text, which earlier versions (reading
-- `auth` with SQL's JSON functions) cannot read.
SELECT 1;
