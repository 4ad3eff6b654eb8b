-- Retention: the records below audit_log.pruned were archived and removed;
-- their tree hashes stay, so the tree and its proofs remain verifiable.
ALTER TABLE audit_log ADD COLUMN pruned BIGINT NOT NULL DEFAULT 0;
