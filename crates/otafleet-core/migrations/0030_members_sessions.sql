-- People who sign in (docs/access.md): members with a role, their sessions, and sign-ins under
-- way. Sessions and sign-ins live in the database so that any instance of a cluster serves them.
CREATE TABLE members (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Lower-cased; a sign-in is matched by the verified e-mail its provider answers.
    email      TEXT    NOT NULL UNIQUE,
    role       TEXT    NOT NULL,
    name       TEXT,
    created_at TEXT    NOT NULL,
    created_by TEXT    NOT NULL,
    last_login_at TEXT
);

-- A removed member's sessions go with the member.
CREATE TABLE sessions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Hex SHA-256 of the cookie's secret; the secret itself is never stored.
    digest     TEXT    NOT NULL UNIQUE,
    member_id  INTEGER NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    -- Sent back in X-CSRF-Token with every change made with this session's cookie.
    csrf       TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    expires_at TEXT    NOT NULL
);
CREATE INDEX sessions_member ON sessions (member_id);

-- A sign-in between its redirect to the provider and the provider's answer: used once.
CREATE TABLE login_states (
    state         TEXT PRIMARY KEY,
    -- Hex SHA-256 of the browser-binding cookie set when the sign-in began.
    browser       TEXT NOT NULL,
    nonce         TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    return_to     TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL
);
