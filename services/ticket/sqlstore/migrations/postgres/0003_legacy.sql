-- The legacy ssoAuthService interface: a registered service may be an
-- application's ssoAuthService endpoint (scheme 1 or 2), and for scheme 1
-- the platform keeps the person's application password (sealed with a key
-- derived from the key ring) to hand over at ticket validation.
ALTER TABLE ticket_services ADD COLUMN legacy_scheme INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ticket_services ADD COLUMN legacy_require_secret INTEGER NOT NULL DEFAULT 0;
CREATE TABLE ticket_app_credentials (
    user_id     TEXT NOT NULL,
    app_id      TEXT NOT NULL,
    account     TEXT NOT NULL,
    secret_enc  TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, app_id)
);
