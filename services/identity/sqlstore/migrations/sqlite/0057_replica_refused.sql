-- Whether the change recorded for a replicated object was refused (a
-- CONFLICT), so that the very change delivered again (a batch redelivered
-- after a failure) is answered with what it did then, not STALE alone
-- (review sec16 M2: what sync missed of it is recorded or resolved).
-- Rows recorded before are -1: not known, answered STALE alone as before
-- (review sec17 N2: a change refused before would replay as applied).
ALTER TABLE replica_versions ADD COLUMN refused INTEGER NOT NULL DEFAULT -1;
