CREATE TABLE widgets (
	id   TEXT PRIMARY KEY,
	name TEXT NOT NULL UNIQUE
);
CREATE INDEX widgets_name_idx ON widgets (name);
