-- Import speed (issue 16): a new user's search rows (users_search_keys,
-- users_fts) are written by the store, once per statement that inserted
-- users (sqlstore.indexUsers: one pair of statements for a whole import
-- batch), instead of by an AFTER INSERT trigger. The trigger made every
-- INSERT INTO users a multi-write statement with a statement journal (each
-- page it touched copied once more) and an FTS5 savepoint (the pending
-- terms flushed to a new segment per statement). Updates and deletes keep
-- their triggers.
DROP TRIGGER users_search_ai;
