-- Replays of changes applied before (DUPLICATE) are counted apart from the
-- changes skipped as STALE or INVALID: a replay is no failure.
ALTER TABLE sync_cursors ADD COLUMN duplicates BIGINT NOT NULL DEFAULT 0;
