-- Login names are unique case aside: ZhangSan and zhangsan would be one
-- person's name (maritime design 004 2.1.2.4: the login name is not
-- repeated in the system), and sign-in finds an account whatever the case
-- typed. Folded under the "C" collation: ASCII letters only, whatever the
-- database's locale (as SQLite's lower()); login names are ASCII
-- (uias.code). The index fails to build when two accounts' names differ
-- only in case: rename one first (docs/operators.md, "Login names and
-- case").
CREATE UNIQUE INDEX users_login_name_fold_key ON users (lower(login_name COLLATE "C"));
