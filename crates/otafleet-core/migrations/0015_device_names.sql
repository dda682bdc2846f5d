-- Issue 14: the admin owns a device's name, notes and tags.

-- Names. Until now one column held whatever wrote last: the admin (POST/PATCH, the legacy admin
-- API's device_id), a native check-in that reported a name (`COALESCE(reported, name)`: it
-- overwrote the admin's), or an mDNS announcement (only into an empty column). From now on:
--   admin_name    written only by the admin; shown first when set;
--   reported_name written only by a native check-in that reports a name;
--   the mDNS name is not stored: it is read from the announcement (TXT friendly_name, else the
--   instance name; `mdns_txt`, `mdns_instance`) and shown when neither of the others is set.
--
-- Existing names, decided from the columns a device row has (its `source` says only how it became
-- known, not who named it, so it is not used):
--   1. protocol = 'native': reported. A native check-in rewrites the name whenever the device
--      reports one, so the value is the device's own, or an admin's name the device never
--      contradicted. Kept as reported, it is still shown, and only the device's own next report
--      replaces it, exactly as before.
--   2. otherwise, the name equals what the device announces over mDNS: dropped, because it is
--      read from the announcement from now on (and shown as before).
--   3. otherwise (stock updaters and legacy devices, which never report a name; devices added by
--      the admin or only heard over mDNS, named differently from their announcement): only the
--      admin can have written it, so it is the admin's.
ALTER TABLE devices ADD COLUMN admin_name    TEXT;
ALTER TABLE devices ADD COLUMN reported_name TEXT;
-- Free-form text for people (what is on the bench, what was tried); NULL when empty.
ALTER TABLE devices ADD COLUMN notes         TEXT;
-- JSON array of short labels (bench, rack, owner, ...), validated by the core.
ALTER TABLE devices ADD COLUMN tags          TEXT NOT NULL DEFAULT '[]';

UPDATE devices SET reported_name = name WHERE protocol = 'native';
UPDATE devices SET admin_name = name
    WHERE name IS NOT NULL AND protocol IS NOT 'native'
      AND name IS NOT TRIM(COALESCE(
          NULLIF(TRIM(json_extract(mdns_txt, '$.friendly_name')), ''), mdns_instance));
ALTER TABLE devices DROP COLUMN name;
