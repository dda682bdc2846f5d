-- The same rows as fill-sqlite.sql, for PostgreSQL.
INSERT INTO firmware (sha256, md5, size, filename, chip, format, project, project_source, version,
                      version_source, source, uploaded_at)
SELECT lpad(to_hex(i), 64, '0'), lpad(to_hex(i), 32, '0'), 1000000, 'fw.bin', 'esp32', 'esp32', 'blink',
       'app_desc', '1.0.' || i, 'app_desc', 'upload', '2026-01-01T00:00:00.000Z'
FROM generate_series(1, 20) AS i;
INSERT INTO devices (mac, chip, project, version, sha256, token_hash, protocol, source, created_at, last_seen)
SELECT upper('24:0A:C4:' || lpad(to_hex(i >> 16), 2, '0') || ':' || lpad(to_hex((i >> 8) & 255), 2, '0')
             || ':' || lpad(to_hex(i & 255), 2, '0')), 'esp32', 'blink', '1.0.' || (i % 20 + 1),
       CASE WHEN i % 10 < 7 THEN lpad(to_hex(i % 20 + 1), 64, '0') END,
       CASE WHEN i % 10 < 6 THEN lpad(to_hex(1000000 + i), 64, '0') END,
       'native', 'checkin', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z'
FROM generate_series(0, 99999) AS i;
INSERT INTO updates (mac, firmware_id, sha256, version, state, created_at, updated_at)
SELECT upper('24:0A:C4:' || lpad(to_hex((i % 100000) >> 16), 2, '0') || ':'
             || lpad(to_hex(((i % 100000) >> 8) & 255), 2, '0') || ':' || lpad(to_hex((i % 100000) & 255), 2, '0')),
       i % 20 + 1, lpad(to_hex(i % 20 + 1), 64, '0'), '1.0.' || (i % 20 + 1),
       CASE WHEN i >= 299000 THEN 'downloading' ELSE 'done' END,
       '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z'
FROM generate_series(0, 299999) AS i;
VACUUM ANALYZE; -- the steady state autovacuum keeps: index-only scans need the visibility map
