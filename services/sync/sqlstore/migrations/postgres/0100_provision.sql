-- Provisioning into business systems (services/sync/provision).

-- Subscriptions: an application, its selection and its transport. The
-- secret (webhook key, SCIM token, LDAP bind password) is sealed with a key
-- derived from the deployment's key ring.
CREATE TABLE prov_subscriptions (
    id            TEXT    NOT NULL PRIMARY KEY,
    app           TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    selection     TEXT    NOT NULL,
    transport     TEXT    NOT NULL,
    endpoint      TEXT    NOT NULL,
    settings      TEXT    NOT NULL,
    secret_sealed TEXT    NOT NULL,
    strategy      TEXT    NOT NULL,
    batch_every_s BIGINT NOT NULL,
    enabled       BIGINT NOT NULL,
    created_ms    BIGINT NOT NULL,
    updated_ms    BIGINT NOT NULL,
    last_batch_ms BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX prov_subscriptions_app ON prov_subscriptions (app, id);

-- The projection of the local CHANGES stream that selections are matched
-- against and deliveries are built from.
CREATE TABLE prov_objects (
    kind    TEXT    NOT NULL,
    id      TEXT    NOT NULL,
    data    TEXT    NOT NULL,
    deleted BIGINT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE TABLE prov_members (
    group_id TEXT NOT NULL,
    user_id  TEXT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX prov_members_user ON prov_members (user_id, group_id);
CREATE TABLE prov_links (
    id      TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL,
    app_id  TEXT NOT NULL
);
CREATE INDEX prov_links_user ON prov_links (user_id, app_id);
CREATE TABLE prov_grants (
    id           TEXT NOT NULL PRIMARY KEY,
    role         TEXT NOT NULL,
    subject_kind TEXT NOT NULL,
    subject_id   TEXT NOT NULL
);
CREATE INDEX prov_grants_subject ON prov_grants (subject_kind, subject_id);

-- Deliveries: one object to one subscription; the queue, the dead letters
-- and the record the reports count.
CREATE TABLE prov_deliveries (
    seq          BIGSERIAL PRIMARY KEY,
    subscription TEXT    NOT NULL,
    app          TEXT    NOT NULL,
    event_id     TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    object_id    TEXT    NOT NULL,
    op           TEXT    NOT NULL,
    batch_id     TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    attempts     BIGINT NOT NULL,
    failures     BIGINT NOT NULL DEFAULT 0,
    last_error   TEXT    NOT NULL,
    next_ms      BIGINT NOT NULL,
    created_ms   BIGINT NOT NULL,
    delivered_ms BIGINT NOT NULL,
    latency_ms   BIGINT NOT NULL
);
CREATE UNIQUE INDEX prov_deliveries_once ON prov_deliveries (subscription, event_id, kind, object_id);
CREATE INDEX prov_deliveries_queue ON prov_deliveries (subscription, status, seq);
CREATE INDEX prov_deliveries_day ON prov_deliveries (created_ms, app);

-- How far the projection has read the local CHANGES stream (moved in the
-- transaction that projects the changes: each change is projected once).
CREATE TABLE prov_cursor (
    name TEXT    NOT NULL PRIMARY KEY,
    seq  BIGINT NOT NULL
);
