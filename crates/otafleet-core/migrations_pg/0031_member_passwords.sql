-- Local accounts, PostgreSQL (migrations/0031_member_passwords.sql).
ALTER TABLE members ADD COLUMN password_hash TEXT;
