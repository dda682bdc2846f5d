-- Issue 15 (notifications slice): device reports fanned out by webhook and e-mail
-- (crate::notify, docs/notifications.md). One row per report and channel target: the webhook's
-- URL, or one e-mail recipient. A row is written in the transaction that stores its report, so a
-- report the device was told is stored is never left without its deliveries; a `pending` row is
-- sent (again) by the dispatcher after a restart. Bounded with the reports: a delivery is deleted
-- with its report (crate::reports::KEEP_PER_DEVICE per device).
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    report_id       INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    channel         TEXT    NOT NULL,  -- webhook, email
    recipient       TEXT    NOT NULL,  -- the webhook URL, or one e-mail address
    attempts        INTEGER NOT NULL DEFAULT 0,
    state           TEXT    NOT NULL,  -- pending, delivered, failed, rate_limited
    last_status     INTEGER,           -- the webhook's last HTTP status
    last_error      TEXT,              -- why the last attempt failed (or why it was not sent)
    next_attempt_at TEXT,              -- when a pending delivery is due (crate::time format)
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);
CREATE INDEX deliveries_report ON deliveries (report_id);
-- The dispatcher's question: which pending deliveries are due.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
-- The rate limit's question: how many mails went to this recipient in the last hour.
CREATE INDEX deliveries_recipient ON deliveries (channel, recipient, created_at);
