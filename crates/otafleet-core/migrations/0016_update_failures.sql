-- Issue 14: a failed or cancelled attempt says why as a stable kind.

-- Why an attempt failed, was cancelled or (a stock client's download) was cut: one of
-- device_reported, rolled_back, not_installed, download_cut, superseded, stopped, image_deleted
-- (crate::updates::UpdateFailure). NULL for attempts under way or done. The human `error` text
-- stays as it was.
ALTER TABLE updates ADD COLUMN failure TEXT;

-- Attempts closed before this migration, by the texts the code wrote then (the only place these
-- texts are read: from now on the kind is written with the attempt's state).
UPDATE updates SET failure = CASE
    WHEN state = 'failed' AND error = 'device still runs the previous image' THEN
        CASE WHEN (SELECT protocol FROM devices d WHERE d.mac = updates.mac) = 'native'
            THEN 'rolled_back' ELSE 'not_installed' END
    WHEN state = 'failed' THEN 'device_reported'
    WHEN state = 'interrupted' THEN 'download_cut'
    WHEN error = 'the image was deleted from the library' THEN 'image_deleted'
    WHEN error LIKE 'replaced by deployment %' THEN 'superseded'
    WHEN (SELECT end_reason FROM deployments d WHERE d.id = updates.deployment_id)
        LIKE 'superseded by %' THEN 'superseded'
    ELSE 'stopped'
END
WHERE state IN ('failed', 'cancelled', 'interrupted');
