-- mDNS discovery (issue 4), PostgreSQL; migrations/0002_mdns.sql says what the columns mean.
-- Additive only: nullable columns on devices, one new table.

ALTER TABLE devices ADD COLUMN hostname      TEXT;    -- mDNS host name, e.g. esp32-kitchen.local
ALTER TABLE devices ADD COLUMN mdns_service  TEXT;    -- _arduino._tcp or _esphomelib._tcp
ALTER TABLE devices ADD COLUMN mdns_instance TEXT;    -- the service instance name
ALTER TABLE devices ADD COLUMN mdns_port     BIGINT;  -- the service port (ArduinoOTA UDP, ESPHome API)
ALTER TABLE devices ADD COLUMN mdns_txt      TEXT;    -- JSON object of the TXT record
ALTER TABLE devices ADD COLUMN mdns_seen     TEXT;
ALTER TABLE devices ADD COLUMN mdns_gone     TEXT;

-- Discovered services that carry no MAC address, keyed by service type + instance name.
CREATE TABLE mdns_hosts (
    service    TEXT    NOT NULL,
    instance   TEXT    NOT NULL,
    hostname   TEXT    NOT NULL,
    ip         TEXT,
    port       BIGINT  NOT NULL,
    txt        TEXT    NOT NULL,
    first_seen TEXT    NOT NULL,
    mdns_seen  TEXT    NOT NULL,
    mdns_gone  TEXT,
    PRIMARY KEY (service, instance)
);
