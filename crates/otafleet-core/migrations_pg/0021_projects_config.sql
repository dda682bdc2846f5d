-- Issue 15 (projects and per-device config), PostgreSQL (migrations/0021_projects_config.sql).
CREATE TABLE projects (
    name        TEXT PRIMARY KEY,         -- as devices.project and firmware.project spell it
    description TEXT NOT NULL DEFAULT '',
    enrolment   TEXT,                     -- JSON array of protocols allowed to enrol; NULL = any
    created_at  TEXT NOT NULL,
    changed_at  TEXT NOT NULL
);

-- Every project a device or image names has its row: the existing ones now, later ones as they
-- are first named, by the triggers below (the one place that adds such rows; crate::projects
-- writes all others). Timestamps in crate::time's format, as SQLite's
-- strftime('%Y-%m-%dT%H:%M:%fZ', 'now') writes them.
INSERT INTO projects (name, created_at, changed_at)
    SELECT DISTINCT project,
        to_char(statement_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        to_char(statement_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
    FROM (SELECT project FROM devices UNION SELECT project FROM firmware) AS named
    WHERE project IS NOT NULL AND project <> ''
    ON CONFLICT (name) DO NOTHING;

-- ON CONFLICT DO NOTHING, not SQLite's NOT EXISTS: two transactions naming the same new project
-- at once must not fail on the primary key (SQLite has one writer at a time; PostgreSQL does not).
CREATE FUNCTION project_named() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO projects (name, created_at, changed_at)
        VALUES (NEW.project,
            to_char(statement_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
            to_char(statement_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
        ON CONFLICT (name) DO NOTHING;
    RETURN NULL;
END;
$$;
CREATE TRIGGER devices_project_insert AFTER INSERT ON devices
    FOR EACH ROW WHEN (NEW.project IS NOT NULL AND NEW.project <> '')
    EXECUTE FUNCTION project_named();
CREATE TRIGGER devices_project_update AFTER UPDATE OF project ON devices
    FOR EACH ROW
    WHEN (NEW.project IS NOT NULL AND NEW.project <> '' AND NEW.project IS DISTINCT FROM OLD.project)
    EXECUTE FUNCTION project_named();
CREATE TRIGGER firmware_project_insert AFTER INSERT ON firmware
    FOR EACH ROW WHEN (NEW.project IS NOT NULL AND NEW.project <> '')
    EXECUTE FUNCTION project_named();
CREATE TRIGGER firmware_project_update AFTER UPDATE OF project ON firmware
    FOR EACH ROW
    WHEN (NEW.project IS NOT NULL AND NEW.project <> '' AND NEW.project IS DISTINCT FROM OLD.project)
    EXECUTE FUNCTION project_named();

-- A project's config variables, in the admin's order.
CREATE TABLE project_variables (
    project       TEXT NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    type          TEXT NOT NULL,          -- string, int, bool, secret
    default_value TEXT,                   -- JSON of the typed value; NULL = no default
    position      BIGINT NOT NULL,
    PRIMARY KEY (project, key)
);

-- A project's commands, offered on its devices' pages, in the admin's order.
CREATE TABLE project_commands (
    project      TEXT NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    label        TEXT NOT NULL,
    payload      TEXT,                    -- JSON sent with the command; NULL = none
    confirmation TEXT,                    -- asked before sending; NULL = send at once
    position     BIGINT NOT NULL,
    PRIMARY KEY (project, key)
);

-- Per device: its config version, and which version it was given and confirmed.
CREATE TABLE device_config (
    mac               TEXT PRIMARY KEY REFERENCES devices (mac) ON DELETE CASCADE,
    project           TEXT,               -- the project this version was made for
    version           BIGINT NOT NULL,    -- bumped by every change of its effective config
    given_version     BIGINT,             -- the newest version GET /api/v1/device/config answered
    applied_version   BIGINT,             -- the version the device confirmed
    applied_at        TEXT,
    pending_since     TEXT,               -- when `version` became newer than `applied_version`
    changed_at        TEXT NOT NULL
);

-- Per device: the values the admin set for its project's variables (JSON of the typed value).
CREATE TABLE device_config_values (
    mac   TEXT NOT NULL REFERENCES devices (mac) ON DELETE CASCADE,
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (mac, key)
);
