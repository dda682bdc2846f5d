-- MQTT presence (issue 16): since when a device has been connected to the MQTT broker, as its
-- retained `device/<id>/report/status` (or its last will) says; NULL while it is not, and for
-- every device that does not speak MQTT. A connected device is online however long ago it last
-- made an HTTP request (the ESP Admin SDK sends no heartbeat). Written only by crate::devices.
-- mqtt_gone_at: when its status last said disconnected (or its will was published); a device
-- that left MQTT after its last HTTP request is offline at once, not when its last request ages.
ALTER TABLE devices ADD COLUMN mqtt_connected_at TEXT;
ALTER TABLE devices ADD COLUMN mqtt_gone_at TEXT;
