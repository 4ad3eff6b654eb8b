-- Provisioning: one deliverer per subscription (services/sync/provision).

-- A lease on a subscription's queue: only its owner (one sync process)
-- delivers the queue until until_ms, renewing it as it goes; another
-- process takes over once it has expired (the owner killed) or was given
-- up (the owner stopped). Several sync processes share one database.
CREATE TABLE prov_leases (
    subscription TEXT    NOT NULL PRIMARY KEY,
    owner        TEXT    NOT NULL,
    until_ms     INTEGER NOT NULL
);
