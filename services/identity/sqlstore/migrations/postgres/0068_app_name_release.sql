-- What Authenticate answers of the person's name to the application
-- (ADR 0037; JR/T 0185-2020 7.2.2): '' the name in clear (as before),
-- 'masked' its first character then '*' (张三 -> 张*), 'omitted' none.
ALTER TABLE apps ADD COLUMN name_release TEXT NOT NULL DEFAULT '';
