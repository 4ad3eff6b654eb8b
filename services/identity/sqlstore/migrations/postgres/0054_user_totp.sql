-- Authenticator apps (TOTP, RFC 6238) enrolled by people (identity
-- totp.go): one per person. secret_enc is the shared secret sealed with the
-- data keys (associated data "user.totp:<user id>"); last_step is the last
-- 30-second time step whose code was accepted (no code of it or before is
-- accepted again: replay). Version 54, not 53: 0053 is taken by other work
-- on this component (versions apply by number, gaps allowed).
-- code_failures counts the codes checked since the last right one (each
-- counted as it is admitted, so parallel guesses count too), whatever the
-- address; past identity.MaxTOTPCodeFailures the person's codes are
-- refused until code_blocked_until (Unix ms), each block twice the last
-- (code_lockouts). Only a right code resets them: a right password never
-- does (knowing the password gives no fresh run of code guesses).
CREATE TABLE user_totp (
	user_id            TEXT    NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
	secret_enc         TEXT    NOT NULL,
	last_step          BIGINT  NOT NULL,
	created_at         BIGINT  NOT NULL,
	code_failures      INTEGER NOT NULL DEFAULT 0,
	code_lockouts      INTEGER NOT NULL DEFAULT 0,
	code_blocked_until BIGINT  NOT NULL DEFAULT 0
);
