-- The separation-of-duty breaches reported and standing (review sec15 L4):
-- each is reported once while it stands, by whichever instance scans first,
-- and not again after a restart (services/authz/commands/sodwatch.go).
CREATE TABLE authz_sod_breaches (
	exclusion   TEXT   NOT NULL,
	person      TEXT   NOT NULL,
	reported_ms BIGINT NOT NULL,
	PRIMARY KEY (exclusion, person)
);
