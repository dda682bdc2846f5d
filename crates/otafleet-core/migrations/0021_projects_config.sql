-- Issue 15 (projects and per-device config). A project was only a string on devices and images;
-- now it is an entity with a description, the protocols that may enrol its devices, its config
-- variables and its commands (crate::projects), and each device has versioned config values
-- (crate::config). Devices and images keep naming their project by text: `projects.name` is that
-- text.
CREATE TABLE projects (
    name        TEXT PRIMARY KEY,         -- as devices.project and firmware.project spell it
    description TEXT NOT NULL DEFAULT '',
    enrolment   TEXT,                     -- JSON array of protocols allowed to enrol; NULL = any
    created_at  TEXT NOT NULL,
    changed_at  TEXT NOT NULL
);

-- Every project a device or image names has its row: the existing ones now, later ones as they
-- are first named (by a check-in, an import, the admin). The triggers are the one place that
-- adds such rows; crate::projects writes all others. (Not `INSERT OR IGNORE`: inside a trigger
-- the firing statement's conflict policy wins, and an upsert's would fail on an existing name.)
INSERT OR IGNORE INTO projects (name, created_at, changed_at)
    SELECT DISTINCT project, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
    FROM (SELECT project FROM devices UNION SELECT project FROM firmware)
    WHERE project IS NOT NULL AND project <> '';

CREATE TRIGGER devices_project_insert AFTER INSERT ON devices
    WHEN NEW.project IS NOT NULL AND NEW.project <> ''
BEGIN
    INSERT INTO projects (name, created_at, changed_at)
        SELECT NEW.project, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
        WHERE NOT EXISTS (SELECT 1 FROM projects WHERE name = NEW.project);
END;
CREATE TRIGGER devices_project_update AFTER UPDATE OF project ON devices
    WHEN NEW.project IS NOT NULL AND NEW.project <> '' AND NEW.project IS NOT OLD.project
BEGIN
    INSERT INTO projects (name, created_at, changed_at)
        SELECT NEW.project, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
        WHERE NOT EXISTS (SELECT 1 FROM projects WHERE name = NEW.project);
END;
CREATE TRIGGER firmware_project_insert AFTER INSERT ON firmware
    WHEN NEW.project IS NOT NULL AND NEW.project <> ''
BEGIN
    INSERT INTO projects (name, created_at, changed_at)
        SELECT NEW.project, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
        WHERE NOT EXISTS (SELECT 1 FROM projects WHERE name = NEW.project);
END;
CREATE TRIGGER firmware_project_update AFTER UPDATE OF project ON firmware
    WHEN NEW.project IS NOT NULL AND NEW.project <> '' AND NEW.project IS NOT OLD.project
BEGIN
    INSERT INTO projects (name, created_at, changed_at)
        SELECT NEW.project, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
        WHERE NOT EXISTS (SELECT 1 FROM projects WHERE name = NEW.project);
END;

-- A project's config variables, in the admin's order.
CREATE TABLE project_variables (
    project       TEXT NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    type          TEXT NOT NULL,          -- string, int, bool, secret
    default_value TEXT,                   -- JSON of the typed value; NULL = no default
    position      INTEGER NOT NULL,
    PRIMARY KEY (project, key)
);

-- A project's commands, offered on its devices' pages, in the admin's order.
CREATE TABLE project_commands (
    project      TEXT NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    label        TEXT NOT NULL,
    payload      TEXT,                    -- JSON sent with the command; NULL = none
    confirmation TEXT,                    -- asked before sending; NULL = send at once
    position     INTEGER NOT NULL,
    PRIMARY KEY (project, key)
);

-- Per device: its config version, and which version it was given and confirmed. A device of a
-- project with variables but no row is at version 1 (its project's defaults), never given.
CREATE TABLE device_config (
    mac               TEXT PRIMARY KEY REFERENCES devices (mac) ON DELETE CASCADE,
    project           TEXT,               -- the project this version was made for (a device that
                                          -- moves to another project gets a new version)
    version           INTEGER NOT NULL,   -- bumped by every change of its effective config
    given_version     INTEGER,            -- the newest version GET /api/v1/device/config answered
    applied_version   INTEGER,            -- the version the device confirmed
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
