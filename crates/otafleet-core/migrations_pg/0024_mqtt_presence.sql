-- MQTT presence (issue 16), PostgreSQL (migrations/0024_mqtt_presence.sql).
ALTER TABLE devices ADD COLUMN mqtt_connected_at TEXT;
ALTER TABLE devices ADD COLUMN mqtt_gone_at TEXT;
