-- The password was set by someone other than the person (an
-- administrator's create, set or reset; identity User.PasswordByOther):
-- an administrator's login requires a password of their own. Passwords
-- stored before count as their holders'.
ALTER TABLE users ADD COLUMN password_by_other INTEGER NOT NULL DEFAULT 0;
