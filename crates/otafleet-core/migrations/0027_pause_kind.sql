-- Why a rollout is paused (crate::rollouts::PauseKind): 'error_limit' (it paused itself at its
-- error limit), 'after_wave' (a wave finished and waits for approval) or 'admin' (by hand); NULL
-- while it is not paused. The desktop app notifies only of the pauses nobody asked for.
ALTER TABLE deployments ADD COLUMN pause_kind TEXT;
