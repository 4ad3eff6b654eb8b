-- Login gate (see identity/loginguard.go): the earliest start of the next
-- counted password check of an account, the counted checks running (and
-- when the last was admitted), and how many counted checks each source (a
-- client address or an application) made; one source counts at most
-- policy.source_failures of them.
ALTER TABLE users ADD COLUMN next_attempt_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN login_pending INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN login_pending_at BIGINT NOT NULL DEFAULT 0;
CREATE TABLE login_failure_sources (
	user_id  TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	source   TEXT    NOT NULL,
	failures INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (user_id, source)
);
-- Administrator tokens expire after admin_token_idle without use; a
-- password change, disable, lock or change of admin rights deletes every
-- token of the account.
ALTER TABLE admin_tokens ADD COLUMN last_used_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX admin_tokens_user_idx ON admin_tokens (user_id);
