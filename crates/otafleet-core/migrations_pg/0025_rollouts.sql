-- Staged rollouts (crate::rollouts), PostgreSQL (migrations/0025_rollouts.sql).
ALTER TABLE deployments ADD COLUMN plan TEXT;                      -- JSON RolloutPlan, or NULL
ALTER TABLE deployments ADD COLUMN wave BIGINT NOT NULL DEFAULT 1; -- the newest wave started
ALTER TABLE deployments ADD COLUMN wave_started_at TEXT;
ALTER TABLE deployments ADD COLUMN paused_at TEXT;
ALTER TABLE deployments ADD COLUMN pause_reason TEXT;

-- Which wave each device of a rollout belongs to, and its outcome once it is decided.
CREATE TABLE rollout_members (
    deployment_id BIGINT  NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    mac           TEXT    NOT NULL,
    wave          BIGINT  NOT NULL,
    joined_at     TEXT    NOT NULL,
    late          BOOLEAN NOT NULL DEFAULT FALSE,  -- joined after the rollout began
    outcome       TEXT,                            -- NULL, 'succeeded' or 'failed'
    reason        TEXT,
    decided_at    TEXT,
    PRIMARY KEY (deployment_id, mac)
);
CREATE INDEX rollout_members_mac ON rollout_members (mac);

-- When a device's uptime last went back without a restart otafleet asked for: a crash.
ALTER TABLE devices ADD COLUMN last_reset_at TEXT;
