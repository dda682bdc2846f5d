-- Issue 15 (reports slice): what a device tells the admin — info, warn, error or success, with a
-- subject and a body (crate::reports). Bounded per device: crate::reports::KEEP_PER_DEVICE newest
-- rows are kept; older ones are deleted in the transaction that adds a new one.
CREATE TABLE reports (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    mac         TEXT NOT NULL REFERENCES devices (mac) ON DELETE CASCADE,
    type        TEXT NOT NULL,   -- info, warn, error, success
    subject     TEXT NOT NULL,   -- at most 200 characters
    body        TEXT NOT NULL,   -- at most 8 KiB
    device_time TEXT,            -- the device's own clock, as it sent it (not trusted)
    received_at TEXT NOT NULL    -- when the server stored it (crate::time::now)
);
CREATE INDEX reports_mac_id ON reports (mac, id);
