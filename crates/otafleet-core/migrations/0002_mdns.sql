-- mDNS discovery (issue 4). Additive only: nullable columns on devices, one new table.
-- Presence is an event-driven state (announce / goodbye / TTL expiry), not a time window, so it is
-- kept as two timestamps: mdns_seen (last announcement or resolution) and mdns_gone (set when the
-- service left, cleared when it comes back). A device is "present" while mdns_seen is set and
-- mdns_gone is NULL; the server marks every entry gone when it starts, because nobody was listening
-- while it was down.

ALTER TABLE devices ADD COLUMN hostname      TEXT;    -- mDNS host name, e.g. esp32-kitchen.local
ALTER TABLE devices ADD COLUMN mdns_service  TEXT;    -- _arduino._tcp or _esphomelib._tcp
ALTER TABLE devices ADD COLUMN mdns_instance TEXT;    -- the service instance name
ALTER TABLE devices ADD COLUMN mdns_port     INTEGER; -- the service port (ArduinoOTA UDP, ESPHome API)
ALTER TABLE devices ADD COLUMN mdns_txt      TEXT;    -- JSON object of the TXT record
ALTER TABLE devices ADD COLUMN mdns_seen     TEXT;
ALTER TABLE devices ADD COLUMN mdns_gone     TEXT;

-- Discovered services that carry no MAC address (ArduinoOTA with a custom host name, ESP8266):
-- devices are keyed by MAC, so these wait here, keyed by service type + instance name, until
-- something tells us their MAC.
CREATE TABLE mdns_hosts (
    service    TEXT    NOT NULL,
    instance   TEXT    NOT NULL,
    hostname   TEXT    NOT NULL,
    ip         TEXT,
    port       INTEGER NOT NULL,
    txt        TEXT    NOT NULL,
    first_seen TEXT    NOT NULL,
    mdns_seen  TEXT    NOT NULL,
    mdns_gone  TEXT,
    PRIMARY KEY (service, instance)
);
