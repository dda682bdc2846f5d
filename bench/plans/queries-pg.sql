SET plan_cache_mode = force_generic_plan;
\echo == progress: token lookup (crate::devices::TOKEN_LOOKUP)
PREPARE tok(text) AS SELECT mac FROM devices WHERE token_hash = $1 AND expect_protocol IS DISTINCT FROM 'esp-admin';
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) EXECUTE tok('00000000000000000000000000000000000000000000000000000000000f4241');
\echo == firmware list
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) SELECT f.*, CAST((SELECT COUNT(*) FROM devices d WHERE d.sha256 = f.sha256) + (SELECT COUNT(*) FROM devices d WHERE d.sha256 IS NULL AND d.project = f.project AND d.version = f.version AND d.chip = f.chip) AS BIGINT) AS devices_running FROM firmware f ORDER BY f.id DESC;
\echo == device page
PREPARE pg(text, bigint) AS SELECT * FROM devices WHERE mac > $1 ORDER BY mac LIMIT $2;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) EXECUTE pg('24:0A:C4:01:00:00', 1001);
\echo == latest per device
PREPARE lat(text, text) AS SELECT u.* FROM devices d JOIN updates u ON u.id = (SELECT x.id FROM updates x WHERE x.mac = d.mac ORDER BY x.id DESC LIMIT 1) WHERE d.mac > $1 AND d.mac <= $2;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) EXECUTE lat('24:0A:C4:01:00:00', '24:0A:C4:01:03:E7');
\echo == refusals of a page
PREPARE ref(text, text) AS SELECT * FROM refusals WHERE mac > $1 AND mac <= $2;
EXPLAIN (COSTS OFF) EXECUTE ref('24:0A:C4:01:00:00', '24:0A:C4:01:03:E7');
