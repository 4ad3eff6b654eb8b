-- App_ID + certificate: the SHA-256 fingerprint (hex) of the client
-- certificate an application must call with; '' when not bound.
ALTER TABLE apps ADD COLUMN client_cert_sha256 TEXT NOT NULL DEFAULT '';
