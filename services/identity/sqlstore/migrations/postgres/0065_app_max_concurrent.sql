-- Flow control (JR/T 0185-2020 10.1.2): an application's bound on calls in
-- progress at once (0: none), shared by the instances that serve it.
ALTER TABLE apps ADD COLUMN max_concurrent INTEGER NOT NULL DEFAULT 0;
