-- The open attempts of each deployment, PostgreSQL
-- (migrations/0014_open_attempts_by_deployment.sql): a partial index of open attempts only.
CREATE INDEX updates_open_by_deployment ON updates (deployment_id)
    WHERE state NOT IN ('done', 'failed', 'cancelled');
