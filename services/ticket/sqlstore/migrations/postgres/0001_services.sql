-- The service registry: which application may receive tickets at which
-- service URLs (a normalised prefix, or an anchored pattern).
CREATE TABLE ticket_services (
    id             TEXT PRIMARY KEY,
    app_id         TEXT NOT NULL,
    name           TEXT NOT NULL,
    url            TEXT NOT NULL,
    pattern        TEXT NOT NULL,
    logout_url     TEXT NOT NULL,
    min_auth_level INTEGER NOT NULL,
    allow_proxy    INTEGER NOT NULL,
    enabled        INTEGER NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX ticket_services_app ON ticket_services (app_id, id);
