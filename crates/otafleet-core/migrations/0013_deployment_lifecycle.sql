-- Deployments get a lifecycle (active -> completed, or stopped; a completed deployment goes back
-- to active when a device it covers needs it again) and an explicit consent to install another
-- project's image. Attempts started by an admin's Retry are marked: the attempt limit counts
-- failures only since the newest such attempt.
ALTER TABLE deployments ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
ALTER TABLE deployments ADD COLUMN allow_other_project INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deployments ADD COLUMN ended_at TEXT;
ALTER TABLE deployments ADD COLUMN end_reason TEXT;
UPDATE deployments SET status = 'stopped', end_reason = 'stopped before deployments had a lifecycle'
    WHERE active = 0;
ALTER TABLE deployments DROP COLUMN active;
ALTER TABLE updates ADD COLUMN retry INTEGER NOT NULL DEFAULT 0;
-- Attempts a stopped deployment left open are closed, as stopping does from now on.
UPDATE updates SET state = 'cancelled', finished_at = updated_at,
    error = 'its deployment was stopped'
    WHERE state IN ('offered', 'interrupted')
      AND deployment_id IN (SELECT id FROM deployments WHERE status = 'stopped');
CREATE INDEX updates_deployment ON updates (deployment_id);
