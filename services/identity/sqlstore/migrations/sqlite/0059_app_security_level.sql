-- An application's interface level (JR/T 0185-2020 6.2): 1 (A1) or 2 (A2:
-- its calls are signed with a registered key, and so are UIAS's answers).
ALTER TABLE apps ADD COLUMN security_level INTEGER NOT NULL DEFAULT 1;
