-- Graded authentication (ADR 0020): the level a person must sign in with
-- everywhere (0 the policy's default, 1 any, 2 two factors or a
-- certificate, 3 a certificate only), and the lowest level an
-- application's Authenticate calls must reach (0 or 1 any, 2, 3).
ALTER TABLE users ADD COLUMN min_auth_level INTEGER NOT NULL DEFAULT 0;
ALTER TABLE apps ADD COLUMN min_auth_level INTEGER NOT NULL DEFAULT 0;
