-- An application's interface grants and access period (JR/T 0185-2020
-- 7.3.1, 9.3.2): granted_apis, a comma-separated list of interfaces
-- (pkg/caller APIs; empty: every interface, as before), and the period it
-- may call, access_from .. access_until (Unix ms; 0: open).
ALTER TABLE apps ADD COLUMN granted_apis TEXT NOT NULL DEFAULT '';
ALTER TABLE apps ADD COLUMN access_from BIGINT NOT NULL DEFAULT 0;
ALTER TABLE apps ADD COLUMN access_until BIGINT NOT NULL DEFAULT 0;
