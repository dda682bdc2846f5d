-- Resuming a rollout (crate::rollouts::resume): with retry, the failed devices' outcomes are
-- cleared and only attempts made after that can fail them (`cleared_at`); without, the failures so far are
-- accepted and the error limit counts only new ones (`failures_accepted`).
ALTER TABLE rollout_members ADD COLUMN cleared_at TEXT;
ALTER TABLE deployments ADD COLUMN failures_accepted INTEGER NOT NULL DEFAULT 0;
