-- Issue 14, PostgreSQL: the admin owns a device's name, notes and tags
-- (migrations/0015_device_names.sql says how the existing names are decided).
ALTER TABLE devices ADD COLUMN admin_name    TEXT;
ALTER TABLE devices ADD COLUMN reported_name TEXT;
-- Free-form text for people; NULL when empty.
ALTER TABLE devices ADD COLUMN notes         TEXT;
-- JSON array of short labels (bench, rack, owner, ...), validated by the core.
ALTER TABLE devices ADD COLUMN tags          TEXT NOT NULL DEFAULT '[]';

UPDATE devices SET reported_name = name WHERE protocol = 'native';
-- SQLite's `IS NOT` is `IS DISTINCT FROM`; json_extract(mdns_txt, '$.friendly_name') is ->>.
UPDATE devices SET admin_name = name
    WHERE name IS NOT NULL AND protocol IS DISTINCT FROM 'native'
      AND name IS DISTINCT FROM TRIM(COALESCE(
          NULLIF(TRIM(mdns_txt::jsonb ->> 'friendly_name'), ''), mdns_instance));
ALTER TABLE devices DROP COLUMN name;
