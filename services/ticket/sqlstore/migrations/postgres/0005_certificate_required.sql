-- A service that only a certificate login reaches (graded authentication:
-- a session of level 2 by another method is not enough).
ALTER TABLE ticket_services ADD COLUMN certificate_required INTEGER NOT NULL DEFAULT 0;
