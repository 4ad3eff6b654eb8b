-- A users listing of one org (no descendants) reads the (org_path, id) or
-- (status, org_path, id) range of the org's own path: an org's path ends
-- with its id, so it names that org alone, and users carry it in org_path
-- (migration 0007). The (org_id, id) and (org_id, status, id) indexes
-- served the same listings twice over; dropping them spares every user
-- write (a bulk import above all) two index entries.
DROP INDEX users_org_id_idx;
DROP INDEX users_org_status_idx;
