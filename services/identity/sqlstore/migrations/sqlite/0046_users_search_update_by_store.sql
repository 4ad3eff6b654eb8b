-- Replica catch-up speed (issue 12): a person's search rows (users_fts) are
-- rewritten by the store when their login name, display name or email
-- changes (sqlstore.reindexUsers: once per UpdateUser, once per replica
-- batch for all the people it renamed), instead of by an AFTER UPDATE
-- trigger. Every statement that writes the FTS5 table flushes its pending
-- terms to a new segment at the statement's savepoint, so a replica batch
-- that renamed 200 people wrote (and merged) 200 segments; the store writes
-- them in two statements per batch. Deletes keep their trigger; inserts
-- lost theirs in 0044.
DROP TRIGGER users_search_au;
