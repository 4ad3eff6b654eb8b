-- A user who may authenticate by password only: a fingerprint Authenticate
-- answers -3 (REASON_PASSWORD_ONLY).
ALTER TABLE users ADD COLUMN password_only INTEGER NOT NULL DEFAULT 0;
