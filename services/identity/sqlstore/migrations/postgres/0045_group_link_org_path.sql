-- Group and account link listings of an org subtree (issue 10): see the
-- SQLite file of the same number. Paths compare bytewise (COLLATE "C") so
-- that a subtree is a range.
ALTER TABLE groups ADD COLUMN org_path TEXT COLLATE "C" NOT NULL DEFAULT '';
UPDATE groups SET org_path = COALESCE((SELECT path FROM orgs WHERE orgs.id = groups.org_id), '');
CREATE INDEX groups_org_path_idx ON groups (org_path, id);

ALTER TABLE account_links ADD COLUMN org_path TEXT COLLATE "C" NOT NULL DEFAULT '';
UPDATE account_links SET org_path = COALESCE((SELECT org_path FROM users WHERE users.id = account_links.user_id), '');
CREATE INDEX account_links_org_path_idx ON account_links (org_path, id);
