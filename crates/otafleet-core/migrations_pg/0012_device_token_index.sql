-- Progress reports find their device by token hash, PostgreSQL
-- (migrations/0012_device_token_index.sql). Partial: devices without a token need no entry.
CREATE INDEX devices_token_hash ON devices (token_hash) WHERE token_hash IS NOT NULL;
