-- The authorization component's objects, change log and revision counter.
CREATE TABLE authz_revision (
	id  INTEGER PRIMARY KEY,
	rev BIGINT  NOT NULL
);
INSERT INTO authz_revision (id, rev) VALUES (1, 0);

-- Every resource, role, grant and exclusion, as the JSON of its model type.
CREATE TABLE authz_objects (
	obj  TEXT   NOT NULL,
	id   TEXT   NOT NULL,
	data TEXT   NOT NULL,
	rev  BIGINT NOT NULL,
	PRIMARY KEY (obj, id)
);

-- One row per committed change, in revision order: replicas catch up from it.
CREATE TABLE authz_changes (
	rev        BIGINT PRIMARY KEY,
	obj        TEXT   NOT NULL,
	op         TEXT   NOT NULL,
	id         TEXT   NOT NULL,
	data       TEXT,
	created_at BIGINT NOT NULL
);
