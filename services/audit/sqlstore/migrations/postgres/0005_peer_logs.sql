-- Audit across centres (ADR 0029): the logs of peer centres (level 2),
-- received at level 1 through their AUDIT_LOG streams, kept per origin
-- apart from this centre's own log. A record keeps its seq in its origin's
-- tree; the origin's checkpoints (signed by its centre) are kept as
-- received. Rows are only ever inserted.
CREATE TABLE audit_peer_records (
    origin      TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    event_id    TEXT NOT NULL,
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
    detail      TEXT NOT NULL,
    PRIMARY KEY (origin, seq)
);
CREATE INDEX audit_peer_records_time ON audit_peer_records (time_ms, origin, seq);
CREATE INDEX audit_peer_records_actor ON audit_peer_records (actor, time_ms);
CREATE INDEX audit_peer_records_subject ON audit_peer_records (subject, time_ms);
CREATE INDEX audit_peer_records_api ON audit_peer_records (api, time_ms);

CREATE TABLE audit_peer_checkpoints (
    origin  TEXT NOT NULL,
    size    BIGINT NOT NULL,
    root    BYTEA NOT NULL,
    time_ms BIGINT NOT NULL,
    note    TEXT NOT NULL,
    PRIMARY KEY (origin, size)
);

-- One row per origin: the records held are [first_seq, size); stream_seq
-- is the last message of its AUDIT_<PEER> stream stored (the receiver's
-- cursor, written with the records).
CREATE TABLE audit_peers (
    origin         TEXT PRIMARY KEY,
    first_seq      BIGINT NOT NULL,
    size           BIGINT NOT NULL,
    stream_seq     BIGINT NOT NULL,
    last_record_ms BIGINT NOT NULL,
    received_ms    BIGINT NOT NULL
);
