-- Whether a deployment still has an attempt under way is asked after every finished attempt
-- (an active deployment with one cannot be completed, so nothing more is computed): this index
-- holds only the open attempts, so the answer does not grow with the attempts already finished.
CREATE INDEX updates_open_by_deployment ON updates (deployment_id)
    WHERE state NOT IN ('done', 'failed', 'cancelled');
