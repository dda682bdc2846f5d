-- Trust (issue 11): who may claim and serve a device, and what was refused.
-- Numbered 0011 so it cannot collide with another branch's migrations.

-- Which protocol may claim and serve this device: native, arduino, esp8266, esp32fota, legacy or
-- any. NULL = not decided yet: the first protocol that checks in claims the device (and is written
-- here). Devices already in the table are pinned to the protocol they last checked in with.
ALTER TABLE devices ADD COLUMN expect_protocol TEXT;
UPDATE devices SET expect_protocol = protocol WHERE protocol IS NOT NULL;

-- Refused attempts at a known device (a stock client asking for a token-enrolled device, a
-- protocol the device does not expect, another project), one row per device, so the admin sees
-- them. Written only by the core's trust module.
CREATE TABLE refusals (
    mac           TEXT    PRIMARY KEY REFERENCES devices (mac) ON DELETE CASCADE,
    count         INTEGER NOT NULL,
    first_at      TEXT    NOT NULL,
    last_at       TEXT    NOT NULL,
    last_from     TEXT,
    last_protocol TEXT    NOT NULL,
    last_code     TEXT    NOT NULL,
    last_reason   TEXT    NOT NULL
);

-- Server settings the admin changes at run time (GET/PATCH /api/v1/settings); one row per key.
-- open_enrolment: '1' (the default when absent) or '0'.
CREATE TABLE server_settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
