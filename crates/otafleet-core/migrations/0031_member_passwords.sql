-- Local accounts (docs/access.md): a member may also sign in with a password, kept only as its
-- argon2id hash (PHC string, salt and parameters included).
ALTER TABLE members ADD COLUMN password_hash TEXT;
