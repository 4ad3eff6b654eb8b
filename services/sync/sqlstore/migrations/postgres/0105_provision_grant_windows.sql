-- Provisioning: a grant's validity window (authz's valid_from/valid_until)
-- kept with the projected grant, so the roles delivered to business systems
-- are those authz grants now, and a role is delivered again when a window
-- starts or ends (review sec27b M2; docs/adr/0024). 0: unbounded (every
-- grant projected before this version: it was delivered as unbounded; the
-- next change of the grant in authz brings its window).
ALTER TABLE prov_grants ADD COLUMN valid_from_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE prov_grants ADD COLUMN valid_until_ms BIGINT NOT NULL DEFAULT 0;
-- The sweep finds the grants whose window starts or ends in an interval.
CREATE INDEX prov_grants_from ON prov_grants (valid_from_ms);
CREATE INDEX prov_grants_until ON prov_grants (valid_until_ms);
