-- 20 images, 100,000 devices (60 % enrolled with a token, 70 % reporting a SHA-256), 300,000
-- attempts (3 per device), for bench/plans/explain.sh.
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20)
INSERT INTO firmware (sha256, md5, size, filename, chip, format, project, project_source, version,
                      version_source, source, uploaded_at)
SELECT printf('%064x', i), printf('%032x', i), 1000000, 'fw.bin', 'esp32', 'esp32', 'blink', 'app_desc',
       '1.0.' || i, 'app_desc', 'upload', '2026-01-01T00:00:00.000Z' FROM n;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99999)
INSERT INTO devices (mac, chip, project, version, sha256, token_hash, protocol, source, created_at, last_seen)
SELECT printf('24:0A:C4:%02X:%02X:%02X', i >> 16, (i >> 8) & 255, i & 255), 'esp32', 'blink',
       '1.0.' || (i % 20 + 1),
       CASE WHEN i % 10 < 7 THEN printf('%064x', i % 20 + 1) END,
       CASE WHEN i % 10 < 6 THEN printf('%064x', 1000000 + i) END,
       'native', 'checkin', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z' FROM n;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 299999)
INSERT INTO updates (mac, firmware_id, sha256, version, state, created_at, updated_at)
SELECT printf('24:0A:C4:%02X:%02X:%02X', (i % 100000) >> 16, ((i % 100000) >> 8) & 255, (i % 100000) & 255),
       i % 20 + 1, printf('%064x', i % 20 + 1), '1.0.' || (i % 20 + 1),
       CASE WHEN i >= 299000 THEN 'downloading' ELSE 'done' END,
       '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z' FROM n;
ANALYZE;
