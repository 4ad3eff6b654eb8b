-- Import beside logins (issue 16): an import whose transactions are cut
-- short by the logins' writes (one chunk of ~50 ms each) wrote its people's
-- FTS5 rows at every commit, and every commit flushes FTS5's pending terms
-- into a new segment that automerge then merges again: a CPU profile at
-- 100 k people showed 62 us a row in that flush against 4 alone. Those
-- people's search keys are listed here instead (an append at the end of
-- one small B-tree) and their FTS5 rows are written for thousands of them
-- at once (sqlstore.flushSearch), at the latest when the import ends, and
-- at startup for any left by a crash. A rename rewrites the person's FTS5
-- row at once and drops its line here (sqlstore.reindexUsers); a delete
-- drops it too (the trigger below).
CREATE TABLE users_search_pending (
	n INTEGER NOT NULL PRIMARY KEY
);
DROP TRIGGER users_search_ad;
CREATE TRIGGER users_search_ad AFTER DELETE ON users BEGIN
	DELETE FROM users_fts WHERE rowid = (SELECT n FROM users_search_keys WHERE row_id = old.id);
	DELETE FROM users_search_pending WHERE n = (SELECT n FROM users_search_keys WHERE row_id = old.id);
	DELETE FROM users_search_keys WHERE row_id = old.id;
END;
