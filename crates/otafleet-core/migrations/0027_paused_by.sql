-- Who paused a rollout (crate::rollouts): 'otafleet' (its error limit, or a wave finished that
-- waits for approval) or 'admin' (by hand); NULL while it is not paused. The desktop app notifies
-- only of the pauses nobody asked for.
ALTER TABLE deployments ADD COLUMN paused_by TEXT;
