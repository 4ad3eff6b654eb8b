-- When the account last changed state at this centre (Unix ms): disabled,
-- enabled, locked (by an administrator or the login gate), unlocked (ADR
-- 0047). Identity answers it with every login; the ticket component keeps
-- it with the session, and a lock or disable event names the new value:
-- sessions whose login saw an older state end, a session opened after a
-- later unlock or enable stays however late the event arrives. 0: no
-- change since the account was made (or before this migration).
ALTER TABLE users ADD COLUMN state_changed_at INTEGER NOT NULL DEFAULT 0;
