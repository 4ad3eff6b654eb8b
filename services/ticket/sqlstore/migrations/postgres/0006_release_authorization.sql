-- Attribute release of authorisation data (ADR 0019): a validation of the
-- service's tickets releases the person's roles and/or permissions in the
-- service's application. Off for every service registered before.
ALTER TABLE ticket_services ADD COLUMN release_roles INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ticket_services ADD COLUMN release_permissions INTEGER NOT NULL DEFAULT 0;
