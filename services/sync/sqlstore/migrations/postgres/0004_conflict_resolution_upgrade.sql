-- Conflicts recorded before 0003 (review sec17): a group's were
-- memberships, which a later change of the group does not settle: they
-- name no object (resolve them by hand); the others are resolved where a
-- later change of the same object was applied since (the owning component
-- took it: a refused change is not applied here).
UPDATE sync_skipped SET object = '', object_root = ''
    WHERE reason = 'CONFLICT' AND kind = 'identity.group' AND object = 'group:' || object_id AND resolved_ms = 0;
UPDATE sync_skipped SET resolved_by = 'upgrade', resolved_ms = (SELECT o.updated_ms FROM sync_objects o
        WHERE o.kind = sync_skipped.kind AND o.id = sync_skipped.object_id)
    WHERE reason = 'CONFLICT' AND resolved_ms = 0 AND object <> '' AND object = object_root
      AND EXISTS (SELECT 1 FROM sync_objects o
        WHERE o.kind = sync_skipped.kind AND o.id = sync_skipped.object_id AND o.version > sync_skipped.version);
-- A change refused before is found by its event id when copied again.
CREATE INDEX sync_skipped_conflict_event ON sync_skipped (event_id) WHERE reason = 'CONFLICT';
