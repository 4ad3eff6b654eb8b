-- Administrators identity still has to appoint in the authz component
-- (issue 10): the first start's security auditor until authz has granted
-- them security_auditor. Holders of the legacy users.is_admin flag are
-- pending too (role system_admin); the flag is cleared once granted.
-- Version 31 leaves room for other work's migrations.
CREATE TABLE admin_appointments (
	user_id    TEXT   NOT NULL,
	role       TEXT   NOT NULL,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (user_id, role)
);

-- The few is_admin holders, found without reading every user.
CREATE INDEX users_is_admin ON users (id) WHERE is_admin = TRUE;
