-- Replicas of other centres (issue 12, services/authz/replica.go). Version
-- 12 leaves room for the migrations of other work on this component
-- (versions apply by number, gaps allowed).

-- The version (sequence in the origin centre's CHANGES) of the last change
-- of another centre applied to each replicated object, and that centre: a
-- change not above it is not applied again. An object without a row here
-- was written at this centre.
CREATE TABLE authz_replica_versions (
	obj      TEXT   NOT NULL,
	id       TEXT   NOT NULL,
	origin   TEXT   NOT NULL,
	version  BIGINT NOT NULL,
	event_id TEXT   NOT NULL,
	PRIMARY KEY (obj, id)
);
