-- ESP Admin identity (issue 16), PostgreSQL (migrations/0023_esp_admin_identity.sql): the
-- device id compiled into ESP Admin firmware, unique among the devices that have one.
ALTER TABLE devices ADD COLUMN mqtt_id TEXT;
CREATE UNIQUE INDEX devices_mqtt_id ON devices (mqtt_id) WHERE mqtt_id IS NOT NULL;
