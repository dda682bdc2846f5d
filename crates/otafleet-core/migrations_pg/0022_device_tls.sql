-- Whether the device's last check-in came over TLS, PostgreSQL (migrations/0022_device_tls.sql):
-- TRUE = HTTPS, FALSE = plain HTTP, NULL = not known yet. A boolean here (SQLite: 1/0).
ALTER TABLE devices ADD COLUMN tls BOOLEAN;
