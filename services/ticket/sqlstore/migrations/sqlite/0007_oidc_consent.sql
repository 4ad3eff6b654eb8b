-- OpenID Connect consent (ADR 0036): a service may ask the person's
-- consent before its client gets an authorization code, remembered for
-- consent_ttl_seconds (0: the default, 90 days). A person's consent to a
-- client, and the moment they last revoked the client's access (grants
-- made before it are ended), are kept per person and client.
ALTER TABLE ticket_services ADD COLUMN consent_required INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ticket_services ADD COLUMN consent_ttl_seconds BIGINT NOT NULL DEFAULT 0;
CREATE TABLE ticket_oidc_consents (
    user_id     TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    scope       TEXT NOT NULL,
    granted_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
