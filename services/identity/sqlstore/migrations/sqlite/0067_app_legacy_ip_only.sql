-- The fingerprint server design's IP-based interface security (002 3.4.2,
-- 4.3.1): an application may call the legacy Hessian/SOAP authenticate
-- identified by app_type and app_code alone, from its IP allow-list
-- (docs/adr/0035-legacy-ip-only.md).
ALTER TABLE apps ADD COLUMN legacy_ip_only INTEGER NOT NULL DEFAULT 0;
