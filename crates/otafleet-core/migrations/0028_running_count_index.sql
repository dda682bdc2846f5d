-- What an image's `devices_running` counts (crate::firmware): the devices whose last check-in
-- reported its SHA-256, and those that reported no hash but its project, version and chip.
-- Without these indexes that count read every device once per image listed (100,000 devices
-- and 20 images: 2,000,000 rows read for one firmware list). Each half now searches its own
-- index and reads only the devices it counts. Partial: a device is in exactly one of them.
CREATE INDEX devices_sha256 ON devices (sha256) WHERE sha256 IS NOT NULL;
CREATE INDEX devices_unhashed ON devices (project, version, chip) WHERE sha256 IS NULL;
