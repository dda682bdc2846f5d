.timer on
.print == progress: token lookup (crate::devices::TOKEN_LOOKUP)
EXPLAIN QUERY PLAN SELECT mac FROM devices WHERE token_hash = '00000000000000000000000000000000000000000000000000000000000f4241' AND expect_protocol IS DISTINCT FROM 'esp-admin';
SELECT mac FROM devices WHERE token_hash = '00000000000000000000000000000000000000000000000000000000000f4241' AND expect_protocol IS DISTINCT FROM 'esp-admin';
.print == firmware list
EXPLAIN QUERY PLAN SELECT f.*, CAST((SELECT COUNT(*) FROM devices d WHERE d.sha256 = f.sha256) + (SELECT COUNT(*) FROM devices d WHERE d.sha256 IS NULL AND d.project = f.project AND d.version = f.version AND d.chip = f.chip) AS BIGINT) AS devices_running FROM firmware f ORDER BY f.id DESC;
SELECT count(*), sum(devices_running) FROM (SELECT f.*, CAST((SELECT COUNT(*) FROM devices d WHERE d.sha256 = f.sha256) + (SELECT COUNT(*) FROM devices d WHERE d.sha256 IS NULL AND d.project = f.project AND d.version = f.version AND d.chip = f.chip) AS BIGINT) AS devices_running FROM firmware f ORDER BY f.id DESC);
.print == device page
EXPLAIN QUERY PLAN SELECT * FROM devices WHERE mac > '' ORDER BY mac LIMIT 1001;
SELECT count(*) FROM (SELECT * FROM devices WHERE mac > '' ORDER BY mac LIMIT 1001);
SELECT count(*) FROM (SELECT * FROM devices WHERE mac > '24:0A:C4:01:00:00' ORDER BY mac LIMIT 1001);
.print == latest per device
EXPLAIN QUERY PLAN SELECT u.* FROM devices d JOIN updates u ON u.id = (SELECT x.id FROM updates x WHERE x.mac = d.mac ORDER BY x.id DESC LIMIT 1) WHERE d.mac > '24:0A:C4:01:00:00' AND d.mac <= '24:0A:C4:01:03:E7';
SELECT count(*) FROM (SELECT u.* FROM devices d JOIN updates u ON u.id = (SELECT x.id FROM updates x WHERE x.mac = d.mac ORDER BY x.id DESC LIMIT 1) WHERE d.mac > '24:0A:C4:01:00:00' AND d.mac <= '24:0A:C4:01:03:E7');
.print == refusals of a page
EXPLAIN QUERY PLAN SELECT * FROM refusals WHERE mac > '24:0A:C4:01:00:00' AND mac <= '24:0A:C4:01:03:E7';
