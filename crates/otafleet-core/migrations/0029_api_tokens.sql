-- Named API tokens (docs/access.md): each with a role and an optional scope, kept only as the
-- SHA-256 of the secret, which is shown once when the token is made.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL UNIQUE,
    role         TEXT    NOT NULL,
    -- `upload:<project>`: the token may only upload images of that project (CI).
    scope        TEXT,
    -- Hex SHA-256 of the secret; the secret itself is never stored.
    digest       TEXT    NOT NULL UNIQUE,
    -- The secret's first characters, so that a person can tell tokens apart.
    prefix       TEXT    NOT NULL,
    created_at   TEXT    NOT NULL,
    created_by   TEXT    NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
);
