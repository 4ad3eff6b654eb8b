-- The audit log: records (the leaves of the Merkle tree, in log order),
-- the stored tree hashes (golang.org/x/mod/sumdb/tlog storage order) and
-- the signed checkpoints. Rows are only ever inserted.
CREATE TABLE audit_records (
    seq         BIGINT PRIMARY KEY,
    event_id    TEXT NOT NULL UNIQUE,
    event_type  TEXT NOT NULL,
    component   TEXT NOT NULL,
    time_ms     BIGINT NOT NULL,
    serial      TEXT NOT NULL,
    trace_id    TEXT NOT NULL,
    app_id      TEXT NOT NULL,
    api         TEXT NOT NULL,
    actor       TEXT NOT NULL,
    subject     TEXT NOT NULL,
    org         TEXT NOT NULL,
    result      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    duration_ms DOUBLE PRECISION NOT NULL,
    client_ip   TEXT NOT NULL,
    detail      TEXT NOT NULL
);

CREATE TABLE audit_hashes (
    idx  BIGINT PRIMARY KEY,
    hash BYTEA NOT NULL
);

CREATE TABLE audit_checkpoints (
    size    BIGINT PRIMARY KEY,
    root    BYTEA NOT NULL,
    time_ms BIGINT NOT NULL,
    note    TEXT NOT NULL
);

-- One row: the number of records in the log. Appends lock it.
CREATE TABLE audit_log (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    size BIGINT NOT NULL
);
INSERT INTO audit_log (id, size) VALUES (1, 0);
