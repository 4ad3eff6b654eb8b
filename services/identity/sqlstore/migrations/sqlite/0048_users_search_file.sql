-- Import beside logins (issue 16): the people's FTS5 index moves to a file
-- of its own (sqlstore/searchindex.go). FTS5 merges its segments inside
-- the transactions that write it; in this database that work held the one
-- write lock every login needs, and an import of 1 M people stalled logins
-- for 0.6-2.7 s at a time. Writes of the people now list what changed in
-- users_search_queue with the person's searched fields as the write left
-- them (none for a delete; seq is the order of the changes; fresh marks a
-- person new to the index), and the store's indexer writes the search file
-- from it, reading nothing else of this database. The indexer builds the search file from the people when it is
-- missing, as it is after this migration.
CREATE TABLE users_search_queue (
	seq          INTEGER PRIMARY KEY AUTOINCREMENT,
	n            INTEGER NOT NULL,
	fresh        INTEGER NOT NULL DEFAULT 0,
	login_name   TEXT,
	display_name TEXT,
	email        TEXT
);
DROP TRIGGER users_search_ad;
CREATE TRIGGER users_search_ad AFTER DELETE ON users BEGIN
	INSERT INTO users_search_queue (n) SELECT n FROM users_search_keys WHERE row_id = old.id;
	DELETE FROM users_search_keys WHERE row_id = old.id;
END;
DROP TABLE users_search_pending;
DROP TABLE users_fts;
