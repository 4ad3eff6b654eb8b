-- One account per person across centres (docs/adr/0032-uniqueness-across-centres.md).
-- centres_key is the ID type and upper-cased ID number keyed with the key
-- every centre shares for this purpose only (identity.uniqueness.key_file;
-- identity/uniq.go centresKey), unlike id_key, which is keyed with each
-- centre's own index key and so differs between centres. It is written for
-- the people created or given an ID number while that key is set, and for
-- replicas as their home sent it. Level 1 looks it up when a level-2 centre
-- asks whether an ID number is another person's. Not unique: a collision
-- found afterwards (a level-2 centre cut off from level 1) must not stop
-- the replica from being applied; level 1 reports them.
--
-- People stored before it get theirs at start (identity.Service
-- BackfillCentresKeys, with the key set), through
-- users_centres_key_pending_idx as id_key's backfill does (0050): other
-- centres' people are marked "replica:" and their id (never a real key,
-- 32 hex digits) so that they leave it; their home sends their real key.
ALTER TABLE users ADD COLUMN centres_key TEXT NULL;
CREATE INDEX users_centres_key_idx ON users (centres_key) WHERE centres_key IS NOT NULL;
CREATE INDEX users_centres_key_pending_idx ON users (id) WHERE centres_key IS NULL AND id_number_enc <> '';
