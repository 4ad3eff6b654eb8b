-- One row of tree hashes per record: the hashes tlog stores with record
-- seq (its leaf hash, then the hash of every subtree it completes, at
-- tlog.StoredHashIndex(0, seq) on), concatenated, 32 bytes each. This
-- halves the rows an append writes (tlog stores about two hashes per
-- record). The records before audit_log.tree_from keep their hashes one
-- per row, as they were written, in audit_hashes_v1: renamed so that an
-- older version still running cannot append in the old layout.
ALTER TABLE audit_hashes RENAME TO audit_hashes_v1;
CREATE TABLE audit_tree (
    seq    INTEGER PRIMARY KEY,
    hashes BLOB NOT NULL
);
ALTER TABLE audit_log ADD COLUMN tree_from INTEGER NOT NULL DEFAULT 0;
UPDATE audit_log SET tree_from = size;
