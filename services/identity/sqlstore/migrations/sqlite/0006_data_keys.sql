-- Data keys: the keys that seal personal data, each wrapped (encrypted) by a
-- master key of the key ring, which is kept outside the database. The seal
-- key with the highest seq is the active one; "index" derives blind indexes.
CREATE TABLE data_keys (
	id         TEXT   NOT NULL PRIMARY KEY,
	purpose    TEXT   NOT NULL,
	seq        BIGINT NOT NULL,
	wrapped    TEXT   NOT NULL,
	created_at BIGINT NOT NULL DEFAULT 0,
	CONSTRAINT data_keys_seq_key UNIQUE (seq)
);

-- Key-check value of each master key id that protected data here: a start
-- with a key ring whose key of that id differs is refused.
CREATE TABLE key_checks (
	master_id   TEXT   NOT NULL PRIMARY KEY,
	check_value TEXT   NOT NULL,
	created_at  BIGINT NOT NULL DEFAULT 0
);
