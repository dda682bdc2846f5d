-- otafleet schema v1. Never edit an applied migration: add a new file instead.
-- Timestamps are UTC text in one fixed format (YYYY-MM-DDTHH:MM:SS.mmmZ) so they sort as text.

CREATE TABLE firmware (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    sha256          TEXT    NOT NULL UNIQUE,
    md5             TEXT    NOT NULL,
    size            INTEGER NOT NULL,
    filename        TEXT    NOT NULL,
    chip            TEXT    NOT NULL,
    format          TEXT    NOT NULL,
    project         TEXT,
    project_source  TEXT    NOT NULL,
    version         TEXT,
    version_source  TEXT    NOT NULL,
    idf_version     TEXT,
    build_date      TEXT,
    build_time      TEXT,
    secure_version  INTEGER,
    elf_sha256      TEXT,
    appended_sha256 TEXT,
    source          TEXT    NOT NULL,
    source_path     TEXT,
    uploaded_at     TEXT    NOT NULL
);
CREATE INDEX firmware_project_chip ON firmware (project, chip);
CREATE INDEX firmware_md5 ON firmware (md5);
CREATE INDEX firmware_appended_sha256 ON firmware (appended_sha256);

CREATE TABLE devices (
    mac          TEXT PRIMARY KEY,
    name         TEXT,
    chip         TEXT,
    project      TEXT,
    version      TEXT,
    sha256       TEXT,
    ip           TEXT,
    rssi         INTEGER,
    free_space   INTEGER,
    uptime_s     INTEGER,
    token_hash   TEXT,
    protocol     TEXT,
    weak_auth    INTEGER NOT NULL DEFAULT 0,
    source       TEXT    NOT NULL,
    created_at   TEXT    NOT NULL,
    last_seen    TEXT
);
CREATE INDEX devices_project_chip ON devices (project, chip);

CREATE TABLE deployments (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    firmware_id INTEGER NOT NULL REFERENCES firmware (id) ON DELETE CASCADE,
    project     TEXT,
    chip        TEXT,
    rollback    INTEGER NOT NULL DEFAULT 0,
    active      INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT    NOT NULL
);

CREATE TABLE deployment_devices (
    deployment_id INTEGER NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    mac           TEXT    NOT NULL,
    PRIMARY KEY (deployment_id, mac)
);
CREATE INDEX deployment_devices_mac ON deployment_devices (mac);

-- One row per attempt to bring one device onto one image.
CREATE TABLE updates (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    mac           TEXT    NOT NULL REFERENCES devices (mac) ON DELETE CASCADE,
    firmware_id   INTEGER REFERENCES firmware (id) ON DELETE SET NULL,
    deployment_id INTEGER REFERENCES deployments (id) ON DELETE SET NULL,
    sha256        TEXT    NOT NULL,
    version       TEXT,
    from_version  TEXT,
    from_sha256   TEXT,
    state         TEXT    NOT NULL,
    progress      INTEGER NOT NULL DEFAULT 0,
    bytes_sent    INTEGER NOT NULL DEFAULT 0,
    error         TEXT,
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL,
    finished_at   TEXT
);
CREATE INDEX updates_mac ON updates (mac, id);
