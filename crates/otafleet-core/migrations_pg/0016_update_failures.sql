-- Issue 14, PostgreSQL: a failed or cancelled attempt says why as a stable kind
-- (migrations/0016_update_failures.sql lists the kinds).
ALTER TABLE updates ADD COLUMN failure TEXT;

-- Attempts closed before this migration, by the texts the code wrote then (ILIKE: SQLite's LIKE
-- ignores ASCII case).
UPDATE updates SET failure = CASE
    WHEN state = 'failed' AND error = 'device still runs the previous image' THEN
        CASE WHEN (SELECT protocol FROM devices d WHERE d.mac = updates.mac) = 'native'
            THEN 'rolled_back' ELSE 'not_installed' END
    WHEN state = 'failed' THEN 'device_reported'
    WHEN state = 'interrupted' THEN 'download_cut'
    WHEN error = 'the image was deleted from the library' THEN 'image_deleted'
    WHEN error ILIKE 'replaced by deployment %' THEN 'superseded'
    WHEN (SELECT end_reason FROM deployments d WHERE d.id = updates.deployment_id)
        ILIKE 'superseded by %' THEN 'superseded'
    ELSE 'stopped'
END
WHERE state IN ('failed', 'cancelled', 'interrupted');
