-- Bulk import (issue 16): the rows each import has written, by the row's
-- external key, so that sending the same file again under the same import
-- id skips them (an interrupted import resumes where it stopped).
CREATE TABLE import_rows (
	import_id  TEXT   NOT NULL,
	ext_key    TEXT   NOT NULL,
	kind       TEXT   NOT NULL,
	entity_id  TEXT   NOT NULL,
	created_at BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (import_id, ext_key)
);
