-- Staged rollouts (crate::rollouts): a deployment may carry a plan of waves. A deployment without
-- one (every deployment made before) is a one-wave rollout: all its devices at once, as before.
ALTER TABLE deployments ADD COLUMN plan TEXT;                       -- JSON RolloutPlan, or NULL
ALTER TABLE deployments ADD COLUMN wave INTEGER NOT NULL DEFAULT 1; -- the newest wave started
ALTER TABLE deployments ADD COLUMN wave_started_at TEXT;
ALTER TABLE deployments ADD COLUMN paused_at TEXT;
ALTER TABLE deployments ADD COLUMN pause_reason TEXT;

-- Which wave each device of a rollout belongs to, and its outcome once it is decided: succeeded
-- (done, and healthy through the soak time) or failed (the update failed, or the device was not
-- healthy during the soak time), with the reason.
CREATE TABLE rollout_members (
    deployment_id INTEGER NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    mac           TEXT    NOT NULL,
    wave          INTEGER NOT NULL,
    joined_at     TEXT    NOT NULL,
    late          INTEGER NOT NULL DEFAULT 0,  -- joined after the rollout began
    outcome       TEXT,                        -- NULL, 'succeeded' or 'failed'
    reason        TEXT,
    decided_at    TEXT,
    PRIMARY KEY (deployment_id, mac)
);
CREATE INDEX rollout_members_mac ON rollout_members (mac);

-- When a device's uptime last went back (it restarted) without a restart otafleet asked for or an
-- update it was installing: a crash, for the rollouts' health gate.
ALTER TABLE devices ADD COLUMN last_reset_at TEXT;
