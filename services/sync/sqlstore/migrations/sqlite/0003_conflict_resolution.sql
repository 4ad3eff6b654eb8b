-- What the owning component refused (the object's key, e.g. user:<id> or
-- group:<id>/member:<id>), its object up to the first "/" (object_root,
-- to find the conflicts a change settles), and when and by which change
-- a conflict was resolved (0 and '': still open; trial10 L5).
ALTER TABLE sync_skipped ADD COLUMN object TEXT NOT NULL DEFAULT '';
ALTER TABLE sync_skipped ADD COLUMN object_root TEXT NOT NULL DEFAULT '';
ALTER TABLE sync_skipped ADD COLUMN resolved_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sync_skipped ADD COLUMN resolved_by TEXT NOT NULL DEFAULT '';
-- Conflicts recorded before: identity's and authz's objects by kind and id
-- (identity.user u1: user:u1; authz.grant g1: grant:g1).
UPDATE sync_skipped SET object = substr(kind, 10) || ':' || object_id, object_root = substr(kind, 10) || ':' || object_id
    WHERE reason = 'CONFLICT' AND kind LIKE 'identity.%';
UPDATE sync_skipped SET object = substr(kind, 7) || ':' || object_id, object_root = substr(kind, 7) || ':' || object_id
    WHERE reason = 'CONFLICT' AND kind LIKE 'authz.%';
CREATE INDEX sync_skipped_open ON sync_skipped (origin, object_root) WHERE reason = 'CONFLICT' AND resolved_ms = 0;
