-- Replicas of other centres (issue 12, services/identity/replica.go).
-- Version 21 leaves room for the migrations of other work on this
-- component (versions apply by number, gaps allowed).

-- The centre an application is homed at: '' for one created here, else the
-- peer centre whose replica it is.
ALTER TABLE apps ADD COLUMN home TEXT NOT NULL DEFAULT '';

-- The version (sequence in the origin centre's CHANGES) of the last change
-- of another centre applied to each replicated object: a change not above
-- it is not applied again.
CREATE TABLE replica_versions (
	kind       TEXT    NOT NULL,
	id         TEXT    NOT NULL,
	origin     TEXT    NOT NULL,
	version    BIGINT  NOT NULL,
	event_id   TEXT    NOT NULL,
	PRIMARY KEY (kind, id)
);
