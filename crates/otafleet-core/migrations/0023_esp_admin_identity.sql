-- ESP Admin identity (issue 16): devices that run the ESP Admin SDK are named by an id of ours
-- compiled into their firmware (`deviceId` in credentials.h), which is also their MQTT client id
-- and the <id> of their `device/<id>/…` topics. Their API key is kept like a native token: only
-- its SHA-256, in token_hash. NULL for every other device. Written only by crate::devices.
ALTER TABLE devices ADD COLUMN mqtt_id TEXT;
CREATE UNIQUE INDEX devices_mqtt_id ON devices (mqtt_id) WHERE mqtt_id IS NOT NULL;
