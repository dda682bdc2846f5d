-- Why a device that asked for an update was not offered one, PostgreSQL
-- (migrations/0010_device_hold.sql).
ALTER TABLE devices ADD COLUMN hold TEXT;
