-- Certificates an administrator unbound (review sec30a M2): a certificate
-- that finds its person by its subject (identity.policy.cert_auto_bind,
-- BindCertificates; ADR 0041) is not bound again by itself once an
-- administrator unbound it (a lost or replaced certificate); an
-- administrator's explicit binding of it clears the mark. Only the
-- thumbprint and the person it was unbound from are kept.
CREATE TABLE user_certs_unbound (
	sha256  TEXT NOT NULL PRIMARY KEY,
	user_id TEXT NOT NULL
);
