-- Listings as index ranges (issue 16). Every listing walks an index in
-- key order (keyset pages): users by (org_id, id), (status, id), ...; a
-- subtree of orgs by its path prefix (users carry their org's path in
-- org_path, kept by the store and by MoveOrg); a substring search through
-- FTS5 trigram indexes kept in step with writes by the triggers below.

ALTER TABLE users ADD COLUMN org_path TEXT NOT NULL DEFAULT '';
UPDATE users SET org_path = COALESCE((SELECT path FROM orgs WHERE orgs.id = users.org_id), '');

DROP INDEX users_org_idx;
CREATE INDEX users_org_id_idx ON users (org_id, id);
CREATE INDEX users_org_status_idx ON users (org_id, status, id);
CREATE INDEX users_status_idx ON users (status, id);
CREATE INDEX users_org_path_idx ON users (org_path, id);
CREATE INDEX users_status_path_idx ON users (status, org_path, id);
CREATE INDEX users_display_idx ON users (display_name, id);

DROP INDEX orgs_parent_idx;
CREATE INDEX orgs_parent_id_idx ON orgs (parent_id, id);
CREATE INDEX orgs_parent_status_idx ON orgs (parent_id, status, id);
CREATE INDEX orgs_status_idx ON orgs (status, id);
CREATE INDEX orgs_status_path_idx ON orgs (status, path);
CREATE INDEX orgs_name_idx ON orgs (name, id);

DROP INDEX groups_org_idx;
CREATE INDEX groups_org_id_idx ON groups (org_id, id);
CREATE INDEX groups_name_idx ON groups (name, id);

CREATE INDEX apps_type_idx ON apps (app_type, id);
CREATE INDEX apps_type_status_idx ON apps (app_type, status, id);
CREATE INDEX apps_status_idx ON apps (status, id);
CREATE INDEX apps_name_idx ON apps (name, id);

DROP INDEX account_links_user_idx;
CREATE INDEX account_links_user_id_idx ON account_links (user_id, id);
CREATE INDEX account_links_app_id_idx ON account_links (app_id, id);

-- Search: <table>_fts is a contentless FTS5 trigram index over the searched
-- columns; its rowid is <table>_search_keys.n, a stable number per row (the
-- implicit rowid of a table with a TEXT key may change on VACUUM).

CREATE TABLE users_search_keys (
	n       INTEGER NOT NULL PRIMARY KEY,
	row_id  TEXT    NOT NULL UNIQUE
);
CREATE VIRTUAL TABLE users_fts USING fts5(login_name, display_name, email, content='', contentless_delete=1, tokenize='trigram');
INSERT INTO users_search_keys (row_id) SELECT id FROM users ORDER BY id;
INSERT INTO users_fts (rowid, login_name, display_name, email) SELECT k.n, t.login_name, t.display_name, t.email FROM users t JOIN users_search_keys k ON k.row_id = t.id;
CREATE TRIGGER users_search_ai AFTER INSERT ON users BEGIN
	INSERT INTO users_search_keys (row_id) VALUES (new.id);
	INSERT INTO users_fts (rowid, login_name, display_name, email) VALUES ((SELECT n FROM users_search_keys WHERE row_id = new.id), new.login_name, new.display_name, new.email);
END;
CREATE TRIGGER users_search_au AFTER UPDATE OF login_name, display_name, email ON users WHEN old.login_name IS NOT new.login_name OR old.display_name IS NOT new.display_name OR old.email IS NOT new.email BEGIN
	DELETE FROM users_fts WHERE rowid = (SELECT n FROM users_search_keys WHERE row_id = old.id);
	INSERT INTO users_fts (rowid, login_name, display_name, email) VALUES ((SELECT n FROM users_search_keys WHERE row_id = old.id), new.login_name, new.display_name, new.email);
END;
CREATE TRIGGER users_search_ad AFTER DELETE ON users BEGIN
	DELETE FROM users_fts WHERE rowid = (SELECT n FROM users_search_keys WHERE row_id = old.id);
	DELETE FROM users_search_keys WHERE row_id = old.id;
END;

CREATE TABLE orgs_search_keys (
	n       INTEGER NOT NULL PRIMARY KEY,
	row_id  TEXT    NOT NULL UNIQUE
);
CREATE VIRTUAL TABLE orgs_fts USING fts5(code, name, content='', contentless_delete=1, tokenize='trigram');
INSERT INTO orgs_search_keys (row_id) SELECT id FROM orgs ORDER BY id;
INSERT INTO orgs_fts (rowid, code, name) SELECT k.n, t.code, t.name FROM orgs t JOIN orgs_search_keys k ON k.row_id = t.id;
CREATE TRIGGER orgs_search_ai AFTER INSERT ON orgs BEGIN
	INSERT INTO orgs_search_keys (row_id) VALUES (new.id);
	INSERT INTO orgs_fts (rowid, code, name) VALUES ((SELECT n FROM orgs_search_keys WHERE row_id = new.id), new.code, new.name);
END;
CREATE TRIGGER orgs_search_au AFTER UPDATE OF code, name ON orgs WHEN old.code IS NOT new.code OR old.name IS NOT new.name BEGIN
	DELETE FROM orgs_fts WHERE rowid = (SELECT n FROM orgs_search_keys WHERE row_id = old.id);
	INSERT INTO orgs_fts (rowid, code, name) VALUES ((SELECT n FROM orgs_search_keys WHERE row_id = old.id), new.code, new.name);
END;
CREATE TRIGGER orgs_search_ad AFTER DELETE ON orgs BEGIN
	DELETE FROM orgs_fts WHERE rowid = (SELECT n FROM orgs_search_keys WHERE row_id = old.id);
	DELETE FROM orgs_search_keys WHERE row_id = old.id;
END;

CREATE TABLE groups_search_keys (
	n       INTEGER NOT NULL PRIMARY KEY,
	row_id  TEXT    NOT NULL UNIQUE
);
CREATE VIRTUAL TABLE groups_fts USING fts5(code, name, content='', contentless_delete=1, tokenize='trigram');
INSERT INTO groups_search_keys (row_id) SELECT id FROM groups ORDER BY id;
INSERT INTO groups_fts (rowid, code, name) SELECT k.n, t.code, t.name FROM groups t JOIN groups_search_keys k ON k.row_id = t.id;
CREATE TRIGGER groups_search_ai AFTER INSERT ON groups BEGIN
	INSERT INTO groups_search_keys (row_id) VALUES (new.id);
	INSERT INTO groups_fts (rowid, code, name) VALUES ((SELECT n FROM groups_search_keys WHERE row_id = new.id), new.code, new.name);
END;
CREATE TRIGGER groups_search_au AFTER UPDATE OF code, name ON groups WHEN old.code IS NOT new.code OR old.name IS NOT new.name BEGIN
	DELETE FROM groups_fts WHERE rowid = (SELECT n FROM groups_search_keys WHERE row_id = old.id);
	INSERT INTO groups_fts (rowid, code, name) VALUES ((SELECT n FROM groups_search_keys WHERE row_id = old.id), new.code, new.name);
END;
CREATE TRIGGER groups_search_ad AFTER DELETE ON groups BEGIN
	DELETE FROM groups_fts WHERE rowid = (SELECT n FROM groups_search_keys WHERE row_id = old.id);
	DELETE FROM groups_search_keys WHERE row_id = old.id;
END;

CREATE TABLE apps_search_keys (
	n       INTEGER NOT NULL PRIMARY KEY,
	row_id  TEXT    NOT NULL UNIQUE
);
CREATE VIRTUAL TABLE apps_fts USING fts5(app_code, name, content='', contentless_delete=1, tokenize='trigram');
INSERT INTO apps_search_keys (row_id) SELECT id FROM apps ORDER BY id;
INSERT INTO apps_fts (rowid, app_code, name) SELECT k.n, t.app_code, t.name FROM apps t JOIN apps_search_keys k ON k.row_id = t.id;
CREATE TRIGGER apps_search_ai AFTER INSERT ON apps BEGIN
	INSERT INTO apps_search_keys (row_id) VALUES (new.id);
	INSERT INTO apps_fts (rowid, app_code, name) VALUES ((SELECT n FROM apps_search_keys WHERE row_id = new.id), new.app_code, new.name);
END;
CREATE TRIGGER apps_search_au AFTER UPDATE OF app_code, name ON apps WHEN old.app_code IS NOT new.app_code OR old.name IS NOT new.name BEGIN
	DELETE FROM apps_fts WHERE rowid = (SELECT n FROM apps_search_keys WHERE row_id = old.id);
	INSERT INTO apps_fts (rowid, app_code, name) VALUES ((SELECT n FROM apps_search_keys WHERE row_id = old.id), new.app_code, new.name);
END;
CREATE TRIGGER apps_search_ad AFTER DELETE ON apps BEGIN
	DELETE FROM apps_fts WHERE rowid = (SELECT n FROM apps_search_keys WHERE row_id = old.id);
	DELETE FROM apps_search_keys WHERE row_id = old.id;
END;
