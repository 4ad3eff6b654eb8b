-- A registered service's attribute release policy (ADR 0037): the
-- attributes its validations and OpenID Connect claims release
-- (comma-separated names; empty: all, as for every service registered
-- before) and those released masked (empty: none).
ALTER TABLE ticket_services ADD COLUMN release_attributes TEXT NOT NULL DEFAULT '';
ALTER TABLE ticket_services ADD COLUMN masked_attributes TEXT NOT NULL DEFAULT '';
