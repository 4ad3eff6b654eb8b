-- Unit (单位) accounts (ADR 0039): whom an account is for, 0 a person
-- (every account before, and the default) or 2 a unit (the proto's
-- USER_TYPE_UNIT; a person is stored 0, as a replica from an older
-- centre leaves it). ListUsers filters on it over the rows of its other
-- filters' order: no index.
ALTER TABLE users ADD COLUMN user_type INTEGER NOT NULL DEFAULT 0;
