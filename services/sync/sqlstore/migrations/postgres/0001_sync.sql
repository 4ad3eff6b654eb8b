-- The replica of the objects a centre holds: the merged state of the
-- changes applied, one row per object, homed at the centre that writes it.
CREATE TABLE sync_objects (
    kind       TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    home       TEXT    NOT NULL,
    version    BIGINT NOT NULL,
    event_id   TEXT    NOT NULL,
    op         TEXT    NOT NULL,
    deleted    BIGINT NOT NULL DEFAULT 0,
    data       TEXT    NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX sync_objects_home ON sync_objects (home, kind, id);

-- Every change applied, by event id: a replay is recognised here.
CREATE TABLE sync_applied (
    event_id   TEXT    NOT NULL PRIMARY KEY,
    origin     TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    object_id  TEXT    NOT NULL,
    version    BIGINT NOT NULL,
    applied_ms BIGINT NOT NULL
);
CREATE INDEX sync_applied_origin ON sync_applied (origin, event_id);

-- Changes received and not applied (DUPLICATE, STALE, INVALID).
CREATE TABLE sync_skipped (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        TEXT    NOT NULL,
    origin          TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    object_id       TEXT    NOT NULL,
    version         BIGINT NOT NULL,
    applied_version BIGINT NOT NULL,
    reason          TEXT    NOT NULL,
    at_ms           BIGINT NOT NULL
);

-- How far each link has applied its stream.
CREATE TABLE sync_cursors (
    link            TEXT    NOT NULL PRIMARY KEY,
    seq             BIGINT NOT NULL,
    applied         BIGINT NOT NULL,
    skipped         BIGINT NOT NULL,
    last_applied_ms BIGINT NOT NULL
);
