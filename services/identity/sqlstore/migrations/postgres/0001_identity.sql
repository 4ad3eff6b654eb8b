-- Identity schema (PostgreSQL). Times are unix milliseconds (0 = unset),
-- booleans are BOOLEAN, ids are TEXT.

CREATE TABLE orgs (
	id         TEXT    NOT NULL PRIMARY KEY,
	code       TEXT    NOT NULL,
	name       TEXT    NOT NULL,
	parent_id  TEXT    NULL REFERENCES orgs (id),
	path       TEXT    NOT NULL,
	status     INTEGER NOT NULL,
	created_at BIGINT  NOT NULL DEFAULT 0,
	updated_at BIGINT  NOT NULL DEFAULT 0,
	CONSTRAINT orgs_code_key UNIQUE (code)
);
CREATE INDEX orgs_parent_idx ON orgs (parent_id);
CREATE INDEX orgs_path_idx ON orgs (path text_pattern_ops);

CREATE TABLE users (
	id                  TEXT    NOT NULL PRIMARY KEY,
	login_name          TEXT    NOT NULL,
	display_name        TEXT    NOT NULL DEFAULT '',
	id_type             INTEGER NOT NULL DEFAULT 0,
	id_number_enc       TEXT    NOT NULL DEFAULT '',
	id_number_mask      TEXT    NOT NULL DEFAULT '',
	phone_enc           TEXT    NOT NULL DEFAULT '',
	phone_mask          TEXT    NOT NULL DEFAULT '',
	email               TEXT    NOT NULL DEFAULT '',
	org_id              TEXT    NULL REFERENCES orgs (id),
	status              INTEGER NOT NULL,
	feature_code        TEXT    NULL,
	is_admin            BOOLEAN NOT NULL DEFAULT FALSE,
	password_hash       TEXT    NOT NULL DEFAULT '',
	password_changed_at BIGINT  NOT NULL DEFAULT 0,
	must_change         BOOLEAN NOT NULL DEFAULT FALSE,
	never_expires       BOOLEAN NOT NULL DEFAULT FALSE,
	cannot_change       BOOLEAN NOT NULL DEFAULT FALSE,
	failed_count        INTEGER NOT NULL DEFAULT 0,
	locked_until        BIGINT  NOT NULL DEFAULT 0,
	created_at          BIGINT  NOT NULL DEFAULT 0,
	updated_at          BIGINT  NOT NULL DEFAULT 0,
	CONSTRAINT users_login_name_key UNIQUE (login_name),
	CONSTRAINT users_feature_code_key UNIQUE (feature_code)
);
CREATE INDEX users_org_idx ON users (org_id);

CREATE TABLE password_history (
	seq        BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	hash       TEXT    NOT NULL,
	created_at BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX password_history_user_idx ON password_history (user_id, seq);

CREATE TABLE groups (
	id         TEXT   NOT NULL PRIMARY KEY,
	code       TEXT   NOT NULL,
	name       TEXT   NOT NULL,
	org_id     TEXT   NULL REFERENCES orgs (id),
	created_at BIGINT NOT NULL DEFAULT 0,
	CONSTRAINT groups_code_key UNIQUE (code)
);
CREATE INDEX groups_org_idx ON groups (org_id);

CREATE TABLE group_members (
	group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
	user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user_idx ON group_members (user_id);

CREATE TABLE apps (
	id                  TEXT    NOT NULL PRIMARY KEY,
	app_type            TEXT    NOT NULL,
	app_code            TEXT    NOT NULL,
	name                TEXT    NOT NULL DEFAULT '',
	status              INTEGER NOT NULL,
	ip_allow_list       TEXT    NOT NULL DEFAULT '[]',
	rate_limit          DOUBLE PRECISION NOT NULL DEFAULT 0,
	rate_burst          INTEGER NOT NULL DEFAULT 0,
	secret_hash         TEXT    NOT NULL DEFAULT '',
	prev_secret_hash    TEXT    NOT NULL DEFAULT '',
	prev_secret_expires BIGINT  NOT NULL DEFAULT 0,
	created_at          BIGINT  NOT NULL DEFAULT 0,
	updated_at          BIGINT  NOT NULL DEFAULT 0,
	CONSTRAINT apps_type_code_key UNIQUE (app_type, app_code)
);

CREATE TABLE account_links (
	id             TEXT    NOT NULL PRIMARY KEY,
	user_id        TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	app_id         TEXT    NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
	app_account_id TEXT    NOT NULL,
	status         INTEGER NOT NULL,
	created_at     BIGINT  NOT NULL DEFAULT 0,
	CONSTRAINT account_links_app_account_key UNIQUE (app_id, app_account_id),
	CONSTRAINT account_links_app_user_key UNIQUE (app_id, user_id)
);
CREATE INDEX account_links_user_idx ON account_links (user_id);

CREATE TABLE admin_tokens (
	hash       TEXT   NOT NULL PRIMARY KEY,
	user_id    TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	expires_at BIGINT NOT NULL DEFAULT 0,
	created_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX admin_tokens_expires_idx ON admin_tokens (expires_at);
