-- Enrolled fingers (issue 13): one template per finger position (1-10) of a
-- person, sealed with the data keys (template_enc); the plain columns are
-- what administrators may list. Version 13 leaves room for the migrations
-- of other work on this component (versions apply by number, gaps allowed).
CREATE TABLE user_fingers (
	user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	position     INTEGER NOT NULL,
	quality      INTEGER NOT NULL,
	format       TEXT    NOT NULL,
	minutiae     INTEGER NOT NULL,
	template_enc TEXT    NOT NULL,
	created_at   BIGINT  NOT NULL,
	updated_at   BIGINT  NOT NULL,
	PRIMARY KEY (user_id, position)
);

-- The per-application emergency fingerprint bypass (absent: off).
CREATE TABLE app_finger_bypass (
	app_id     TEXT    NOT NULL PRIMARY KEY REFERENCES apps (id) ON DELETE CASCADE,
	enabled    BOOLEAN NOT NULL,
	reason     TEXT    NOT NULL,
	set_by     TEXT    NOT NULL,
	updated_at BIGINT  NOT NULL
);
