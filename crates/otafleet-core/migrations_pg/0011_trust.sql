-- Trust (issue 11), PostgreSQL: who may claim and serve a device, and what was refused
-- (migrations/0011_trust.sql says more).

-- Which protocol may claim and serve this device; NULL = the first protocol that checks in claims
-- it. Devices already in the table are pinned to the protocol they last checked in with.
ALTER TABLE devices ADD COLUMN expect_protocol TEXT;
UPDATE devices SET expect_protocol = protocol WHERE protocol IS NOT NULL;

-- Refused attempts at a known device, one row per device. Written only by the core's trust module.
CREATE TABLE refusals (
    mac           TEXT    PRIMARY KEY REFERENCES devices (mac) ON DELETE CASCADE,
    count         BIGINT  NOT NULL,
    first_at      TEXT    NOT NULL,
    last_at       TEXT    NOT NULL,
    last_from     TEXT,
    last_protocol TEXT    NOT NULL,
    last_code     TEXT    NOT NULL,
    last_reason   TEXT    NOT NULL
);

-- Server settings the admin changes at run time (GET/PATCH /api/v1/settings); one row per key.
-- open_enrolment: '1' (the default when absent) or '0' (text, as in SQLite).
CREATE TABLE server_settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
