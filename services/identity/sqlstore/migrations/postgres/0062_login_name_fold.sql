-- Login names are unique case aside: ZhangSan and zhangsan would be one
-- person's name (maritime design 004 2.1.2.4: the login name is not
-- repeated in the system), and sign-in finds an account whatever the case
-- typed. Login names are ASCII (uias.code), so lower() folds alike on
-- SQLite and PostgreSQL. The index fails to build when two accounts'
-- names differ only in case: rename one first (docs/operators.md,
-- "Login names and case").
CREATE UNIQUE INDEX users_login_name_fold_key ON users (lower(login_name));
