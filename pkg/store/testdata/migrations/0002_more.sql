-- a second migration with two statements; '?' inside comments must survive
ALTER TABLE widgets ADD COLUMN color TEXT NOT NULL DEFAULT 'red';
INSERT INTO widgets (id, name) VALUES ('seed', 'seeded?');
