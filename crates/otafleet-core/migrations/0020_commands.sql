-- Issue 15 (commands slice): what the admin asks a native device to do — restart, fetch its
-- config, switch logging, a custom key, abort an update — and how far each got
-- (crate::commands). Lifecycle: queued → sent → done | failed | rejected | expired | cancelled.
-- Bounded per device: crate::commands::KEEP_FINISHED_PER_DEVICE newest finished rows are kept
-- (older ones are deleted in the transaction that adds or finishes one), and at most
-- crate::commands::MAX_UNFINISHED_PER_DEVICE are queued or sent at once.
CREATE TABLE commands (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    mac         TEXT NOT NULL REFERENCES devices (mac) ON DELETE CASCADE,
    kind        TEXT NOT NULL,   -- restart, config, log, custom, update_abort
    key         TEXT,            -- custom only
    payload     TEXT,            -- JSON; NULL when none
    state       TEXT NOT NULL,   -- queued, sent, done, failed, rejected, expired, cancelled
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,   -- an unfinished command past this time is expired
    sent_at     TEXT,            -- first delivered to the device
    finished_at TEXT,
    actor       TEXT NOT NULL,   -- who queued it, as the audit log names them ("admin")
    result      TEXT             -- the device's answer (at most 4 KiB)
);
CREATE INDEX commands_mac_id ON commands (mac, id);
-- The expiry sweep and the pending count read only unfinished commands.
CREATE INDEX commands_unfinished ON commands (expires_at) WHERE state IN ('queued', 'sent');
