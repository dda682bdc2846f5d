-- Resuming a rollout (crate::rollouts::resume), PostgreSQL (migrations/0026_rollout_resume.sql).
-- failures_accepted is a count, not a boolean.
ALTER TABLE rollout_members ADD COLUMN cleared_at TEXT;
ALTER TABLE deployments ADD COLUMN failures_accepted BIGINT NOT NULL DEFAULT 0;
