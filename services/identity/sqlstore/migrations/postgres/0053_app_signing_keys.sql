-- Application request signatures (JR/T 0185-2020 A2 interfaces;
-- pkg/reqsig, identity/signing.go). signing_keys is a JSON list of the
-- application's signing public keys, [{"pem": "-----BEGIN PUBLIC KEY-----...",
-- "added_at": <Unix ms>}], at most two; require_signatures says its
-- AuthService calls must be signed. Existing applications have no key and
-- sign nothing: nothing changes at the upgrade.
ALTER TABLE apps ADD COLUMN signing_keys TEXT NOT NULL DEFAULT '[]';
ALTER TABLE apps ADD COLUMN require_signatures BOOLEAN NOT NULL DEFAULT FALSE;
