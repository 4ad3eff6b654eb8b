-- Provisioning: initial deliveries and org subtrees (services/sync/provision).

-- initial_batch: the batch that delivered a subscription's whole selection
-- when it was created (or first enabled): '' while it is still to be
-- enqueued; 'before' for subscriptions created before initial deliveries.
ALTER TABLE prov_subscriptions ADD COLUMN initial_batch TEXT NOT NULL DEFAULT 'before';

-- parent: an org's parent org, a person's or a group's org; the subtree of
-- a moved org (or of an org granted a role) is found by it.
ALTER TABLE prov_objects ADD COLUMN parent TEXT NOT NULL DEFAULT '';
UPDATE prov_objects SET parent = COALESCE(json_extract(data, '$.parent_id'), '') WHERE kind = 'identity.org';
UPDATE prov_objects SET parent = COALESCE(json_extract(data, '$.org_id'), '') WHERE kind IN ('identity.user', 'identity.group');
CREATE INDEX prov_objects_parent ON prov_objects (parent, kind, id);
