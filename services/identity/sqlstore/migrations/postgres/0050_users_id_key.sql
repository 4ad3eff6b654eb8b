-- One account per person (the provincial staff SSO standard: the resident
-- ID number is a person's unique identifier). id_key is a blind index of
-- the ID type and the upper-cased ID number (identity/admin.go idKey: a
-- keyed hash with a prefix of its own, never equal to a feature code), set
-- for the people of this centre who have an ID number while
-- identity.policy.unique_id_number is on; NULL for people without one,
-- replicas of other centres' people (uniqueness holds per centre), people
-- created while the setting was off, and the duplicates the start found
-- among existing data. NULLs are many; a value is one person's.
--
-- The column is filled for existing people at start, in batches
-- (identity.Service.BackfillIDKeys): it needs the key ring to open their
-- sealed ID numbers. users_id_key_pending_idx holds the people it has to
-- look at (an ID number and no key): at ten million people a start reads
-- those, not the whole table. It is empty in the common case (people
-- created with their key, or without an ID number: no entry), and the
-- backfill marks other centres' people (replicas) with a key of their own
-- ("replica:" and the person's id), so that they leave it too.
--
-- A partial index: the people without an ID key (most of a directory
-- imported without ID numbers, every replica) cost no index entry, and a
-- bulk import of people without ID numbers writes no more pages than
-- before. "id_key = ?" and "id_key IN (...)" imply id_key IS NOT NULL, so
-- look-ups use it.
ALTER TABLE users ADD COLUMN id_key TEXT NULL;
CREATE UNIQUE INDEX users_id_key_idx ON users (id_key) WHERE id_key IS NOT NULL;
CREATE INDEX users_id_key_pending_idx ON users (id) WHERE id_key IS NULL AND id_number_enc <> '';
