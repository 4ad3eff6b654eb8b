-- A level-2 person disabled by the level-1 centre (ADR 0048): level 1
-- manages every user (004 §2.1.1). Kept apart from status, which is the
-- home centre's own: the person may sign in nowhere while either is set;
-- only level 1 clears this one (enable there), the home its status.
-- disabled_centre: the centre that disabled them ('' none); when (Unix
-- ms) and by whom (the administrator's id at that centre).
ALTER TABLE users ADD COLUMN disabled_centre TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN disabled_centre_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN disabled_centre_by TEXT NOT NULL DEFAULT '';
