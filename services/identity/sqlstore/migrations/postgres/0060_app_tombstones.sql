-- The App_IDs of deleted applications and when they were deleted: their
-- calls are told the service ended (APP_TERMINATED, JR/T 0185-2020 11:
-- a notice that the application's service has been terminated), not
-- answered as unknown App_IDs. Told only to a caller presenting one of
-- its last secrets (their hashes, kept): a caller without one learns
-- nothing of it.
CREATE TABLE app_tombstones (
	id               TEXT   NOT NULL PRIMARY KEY,
	deleted_at       BIGINT NOT NULL,
	secret_hash      TEXT   NOT NULL DEFAULT '',
	prev_secret_hash TEXT   NOT NULL DEFAULT ''
);
