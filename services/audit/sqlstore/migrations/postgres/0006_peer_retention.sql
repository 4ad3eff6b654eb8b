-- Retention of peer logs at level 1 (ADR 0029 amendment 2): records of a
-- peer's log past audit.retention are archived to a file and removed here
-- (first_seq moves up); frontier keeps the tree hashes of the removed
-- records [0, first_seq) (JSON: [{lo, hi, hash}]) so that the records
-- still held verify against the peer's later checkpoints.
ALTER TABLE audit_peers ADD COLUMN frontier TEXT NOT NULL DEFAULT '';
