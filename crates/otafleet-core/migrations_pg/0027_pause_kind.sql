-- Why a rollout is paused (crate::rollouts::PauseKind), PostgreSQL
-- (migrations/0027_pause_kind.sql): 'error_limit', 'after_wave' or 'admin'; NULL while not paused.
ALTER TABLE deployments ADD COLUMN pause_kind TEXT;
