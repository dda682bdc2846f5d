-- Watch folders: build output folders whose new or rewritten .bin files are imported by themselves.
CREATE TABLE watch_folders (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    path         TEXT    NOT NULL UNIQUE,
    auto_deploy  INTEGER NOT NULL DEFAULT 0,
    created_at   TEXT    NOT NULL,
    -- The last thing that happened in this folder, for the UI.
    last_file    TEXT,
    last_result  TEXT,
    last_message TEXT,
    last_at      TEXT
);
