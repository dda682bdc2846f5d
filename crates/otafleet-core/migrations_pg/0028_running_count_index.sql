-- The indexes behind an image's `devices_running`, PostgreSQL
-- (migrations/0028_running_count_index.sql).
CREATE INDEX devices_sha256 ON devices (sha256) WHERE sha256 IS NOT NULL;
CREATE INDEX devices_unhashed ON devices (project, version, chip) WHERE sha256 IS NULL;
