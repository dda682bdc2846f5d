-- Progress reports find their device by token (the SHA-256 hex of the device token). Without an
-- index that lookup read every device row, so a report cost more the larger the fleet. Partial:
-- devices that never enrolled (stock clients, admin-added) have no token and need no entry; a
-- lookup `token_hash = ?` implies `token_hash IS NOT NULL`, so SQLite uses this index for it.
-- Numbered 0012 so it cannot collide with another branch's migration.
CREATE INDEX devices_token_hash ON devices (token_hash) WHERE token_hash IS NOT NULL;
