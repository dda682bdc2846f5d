-- Deployments get a lifecycle, PostgreSQL (migrations/0013_deployment_lifecycle.sql).
-- allow_other_project and updates.retry are booleans here (0001 lists every boolean column).
ALTER TABLE deployments ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
ALTER TABLE deployments ADD COLUMN allow_other_project BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE deployments ADD COLUMN ended_at TEXT;
ALTER TABLE deployments ADD COLUMN end_reason TEXT;
UPDATE deployments SET status = 'stopped', end_reason = 'stopped before deployments had a lifecycle'
    WHERE NOT active;
ALTER TABLE deployments DROP COLUMN active;
ALTER TABLE updates ADD COLUMN retry BOOLEAN NOT NULL DEFAULT FALSE;
-- Attempts a stopped deployment left open are closed, as stopping does from now on.
UPDATE updates SET state = 'cancelled', finished_at = updated_at,
    error = 'its deployment was stopped'
    WHERE state IN ('offered', 'interrupted')
      AND deployment_id IN (SELECT id FROM deployments WHERE status = 'stopped');
CREATE INDEX updates_deployment ON updates (deployment_id);
