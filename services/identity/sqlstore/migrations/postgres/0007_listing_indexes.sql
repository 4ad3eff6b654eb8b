-- Listings as index ranges (issue 16): see the SQLite file of the same
-- number. Search uses pg_trgm (a trusted extension shipped with the
-- postgresql-15 package; creating it needs the CREATE privilege on the
-- database) with one GIN index per table over its searched columns, joined
-- by chr(1) so that no match spans two columns. Paths compare bytewise
-- (COLLATE "C") so that a subtree is a range.
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;

ALTER TABLE orgs ALTER COLUMN path TYPE TEXT COLLATE "C";
DROP INDEX orgs_path_idx;
CREATE INDEX orgs_path_idx ON orgs (path);

ALTER TABLE users ADD COLUMN org_path TEXT COLLATE "C" NOT NULL DEFAULT '';
UPDATE users SET org_path = COALESCE((SELECT path FROM orgs WHERE orgs.id = users.org_id), '');

DROP INDEX users_org_idx;
CREATE INDEX users_org_id_idx ON users (org_id, id);
CREATE INDEX users_org_status_idx ON users (org_id, status, id);
CREATE INDEX users_status_idx ON users (status, id);
CREATE INDEX users_org_path_idx ON users (org_path, id);
CREATE INDEX users_status_path_idx ON users (status, org_path, id);
CREATE INDEX users_display_idx ON users ((display_name COLLATE "C"), id);

DROP INDEX orgs_parent_idx;
CREATE INDEX orgs_parent_id_idx ON orgs (parent_id, id);
CREATE INDEX orgs_parent_status_idx ON orgs (parent_id, status, id);
CREATE INDEX orgs_status_idx ON orgs (status, id);
CREATE INDEX orgs_status_path_idx ON orgs (status, path);
CREATE INDEX orgs_name_idx ON orgs ((name COLLATE "C"), id);

DROP INDEX groups_org_idx;
CREATE INDEX groups_org_id_idx ON groups (org_id, id);
CREATE INDEX groups_name_idx ON groups ((name COLLATE "C"), id);

CREATE INDEX apps_type_idx ON apps (app_type, id);
CREATE INDEX apps_type_status_idx ON apps (app_type, status, id);
CREATE INDEX apps_status_idx ON apps (status, id);
CREATE INDEX apps_name_idx ON apps ((name COLLATE "C"), id);

DROP INDEX account_links_user_idx;
CREATE INDEX account_links_user_id_idx ON account_links (user_id, id);
CREATE INDEX account_links_app_id_idx ON account_links (app_id, id);

CREATE INDEX users_search_idx ON users USING gin ((lower(login_name || chr(1) || display_name || chr(1) || email)) public.gin_trgm_ops);
CREATE INDEX orgs_search_idx ON orgs USING gin ((lower(code || chr(1) || name)) public.gin_trgm_ops);
CREATE INDEX groups_search_idx ON groups USING gin ((lower(code || chr(1) || name)) public.gin_trgm_ops);
CREATE INDEX apps_search_idx ON apps USING gin ((lower(app_code || chr(1) || name)) public.gin_trgm_ops);
