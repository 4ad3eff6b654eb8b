-- App_Secret validity periods (JR/T 0185-2020 7.3.4; identity/secretlife.go).
-- secret_lifetime_s is the application's own lifetime in seconds (0: the
-- server default, identity.app_secret_lifetime); secret_issued_at (Unix
-- ms) is when the current secret was issued; secret_expires (Unix ms, 0:
-- never) when it stops working: fixed when it is issued from the lifetime
-- in force then.
--
-- Existing secrets were issued at an unknown time: they count as issued
-- now, at the upgrade, and keep no expiry, so nothing stops working at the
-- upgrade. A lifetime given to such an application later (UpdateApp
-- secret_lifetime_seconds) runs from this time; the server default
-- applies to the secrets issued after it is set (docs/operators.md).
ALTER TABLE apps ADD COLUMN secret_lifetime_s BIGINT NOT NULL DEFAULT 0;
ALTER TABLE apps ADD COLUMN secret_issued_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE apps ADD COLUMN secret_expires BIGINT NOT NULL DEFAULT 0;
UPDATE apps SET secret_issued_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000;
-- ListApps secret_expires_within and the daily warning read the secrets
-- that expire, in expiry order.
CREATE INDEX apps_secret_expires_idx ON apps (secret_expires, id) WHERE secret_expires <> 0;
