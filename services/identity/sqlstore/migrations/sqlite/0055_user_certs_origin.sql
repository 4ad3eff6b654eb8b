-- The centre whose replica change bound a certificate (identity
-- replica.go, kind "cert"): '' for a binding made here. A centre that
-- holds a person as a replica signs them in with a binding of their
-- current home only; its own bindings of a person homed elsewhere (their
-- org moved away) are orphaned.
ALTER TABLE user_certs ADD COLUMN origin TEXT NOT NULL DEFAULT '';
