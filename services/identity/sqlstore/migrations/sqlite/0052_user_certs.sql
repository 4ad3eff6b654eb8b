-- Client certificates bound to people (X.509 certificate login at the CAS
-- page, authentication level 2): the SHA-256 thumbprint of the DER, 64 lower
-- case hex digits, names the certificate; one certificate is one person's
-- (the primary key). not_after is the certificate's expiry when it was
-- bound from the certificate itself (0: bound by thumbprint). Nothing else
-- of the certificate is kept: its subject names a person. Version 52, not
-- 51: 0051 is taken by other work on this component (versions apply by
-- number, gaps allowed).
CREATE TABLE user_certs (
	sha256     TEXT   NOT NULL PRIMARY KEY,
	user_id    TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	not_after  BIGINT NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE INDEX user_certs_user_idx ON user_certs (user_id);
