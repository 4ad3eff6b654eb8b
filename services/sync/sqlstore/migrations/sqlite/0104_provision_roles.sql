-- Provisioning: an application's roles delivered to its business systems
-- (design 004 2.1.5.3 (2): "根据"应用系统"选择对应的角色，完成角色的同步",
-- the roles of an application system synchronised; docs/adr/0024).
-- deliver_roles 1: the subscription gets the application's roles (kind
-- authz.role) and each person delivered carries the roles they hold; 0
-- (every existing subscription): nothing changes for it.
ALTER TABLE prov_subscriptions ADD COLUMN deliver_roles INTEGER NOT NULL DEFAULT 0;
-- The holders of a role (a role renamed, a role's delivery with its
-- holders) are found from its grants.
CREATE INDEX prov_grants_role ON prov_grants (role, subject_kind, subject_id);
