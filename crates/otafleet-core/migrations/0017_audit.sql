-- Issue 15 (first slice): the audit log. One row per admin change, written before the change is
-- made (outcome 'pending') and given its result afterwards. Append-only: the triggers below
-- refuse every DELETE and every UPDATE other than setting a pending row's status and outcome,
-- once (crate::audit).
CREATE TABLE audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      TEXT NOT NULL,                 -- when the request came in (crate::time::now)
    actor   TEXT NOT NULL,                 -- 'admin' or 'legacy-admin-key'
    action  TEXT NOT NULL,                 -- the route's OpenAPI operation id
    method  TEXT NOT NULL,
    path    TEXT NOT NULL,                 -- the request path, without the query
    target  TEXT,                          -- the path parameters (mac, id, file name)
    status  INTEGER,                       -- the HTTP status answered; NULL while pending
    outcome TEXT NOT NULL DEFAULT 'pending', -- pending, ok, refused, failed
    detail  TEXT                           -- JSON: field names sent, a few safe values
);
CREATE INDEX audit_at ON audit (at);

CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TRIGGER audit_result_once BEFORE UPDATE ON audit
WHEN OLD.outcome <> 'pending'
    OR NEW.id IS NOT OLD.id OR NEW.at IS NOT OLD.at OR NEW.actor IS NOT OLD.actor
    OR NEW.action IS NOT OLD.action OR NEW.method IS NOT OLD.method OR NEW.path IS NOT OLD.path
    OR NEW.target IS NOT OLD.target OR NEW.detail IS NOT OLD.detail
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only: only a pending row''s result is set, once');
END;
