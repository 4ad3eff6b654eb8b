-- A registered service's access rule (CAS "access strategy"): the person
-- must have an active account link with the service's application
-- (require_account_link), and/or be allowed required_permission
-- ("resource:operation") in it by authz. Both unset: anyone signed in.
ALTER TABLE ticket_services ADD COLUMN require_account_link INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ticket_services ADD COLUMN required_permission TEXT NOT NULL DEFAULT '';
