-- Organisations, PostgreSQL (migrations/0032_organisations.sql; docs/access.md). Kept in the
-- default organisation's database only: each other organisation has a data directory and a
-- database of its own, so nothing of one is in a table another can read.
CREATE TABLE organisations (
    -- Short and lower-case ([a-z0-9-], 2 to 32): it prefixes the organisation's token and
    -- session secrets and names its data directory.
    id            TEXT    NOT NULL PRIMARY KEY,
    name          TEXT    NOT NULL,
    -- The secret in the path its devices use (/o/<key>/...).
    enrolment_key TEXT    NOT NULL UNIQUE,
    created_at    TEXT    NOT NULL,
    created_by    TEXT    NOT NULL
);
