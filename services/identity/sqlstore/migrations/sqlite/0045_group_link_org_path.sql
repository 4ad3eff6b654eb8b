-- Group and account link listings of an org subtree (issue 10): a group
-- carries its org's path and an account link its person's org path in
-- org_path, kept by the store as users' org_path is (CreateGroup,
-- CreateLink, UpdateUser, MoveOrg, the replica's and the import's writes),
-- so that a unit administrator's listing of groups or links walks the
-- subtree's (org_path, id) range in order, with no sort. Existing rows are
-- filled from their org (group) or person (link).
ALTER TABLE groups ADD COLUMN org_path TEXT NOT NULL DEFAULT '';
UPDATE groups SET org_path = COALESCE((SELECT path FROM orgs WHERE orgs.id = groups.org_id), '');
CREATE INDEX groups_org_path_idx ON groups (org_path, id);

ALTER TABLE account_links ADD COLUMN org_path TEXT NOT NULL DEFAULT '';
UPDATE account_links SET org_path = COALESCE((SELECT org_path FROM users WHERE users.id = account_links.user_id), '');
CREATE INDEX account_links_org_path_idx ON account_links (org_path, id);
