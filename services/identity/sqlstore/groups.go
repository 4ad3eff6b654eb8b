package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
)

const groupCols = "id, code, name, org_id, created_at"

func scanGroup(sc store.Scanner) (*identity.Group, string, error) {
	var (
		g       identity.Group
		org     sql.NullString
		created int64
	)
	if err := sc.Scan(&g.ID, &g.Code, &g.Name, &org, &created); err != nil {
		return nil, "", err
	}
	g.OrgID, g.CreatedAt = org.String, store.FromUnixMS(created)
	return &g, g.ID, nil
}

// DeleteGroup deletes group id; its memberships go with it (the schema's
// cascade).
func (s *Store) DeleteGroup(ctx context.Context, id string, evs []events.Event) error {
	return s.inTx(ctx, "delete group", "group", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q("DELETE FROM groups WHERE id = ?"), id)
		if err != nil {
			return err
		}
		if err := mustAffect(res, "group"); err != nil {
			return err
		}
		return s.addEvents(ctx, tx, evs)
	})
}

// UpdateGroup writes g's name.
func (s *Store) UpdateGroup(ctx context.Context, g *identity.Group, evs []events.Event) error {
	return s.inTx(ctx, "update group", "group", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q("UPDATE groups SET name = ? WHERE id = ?"), g.Name, g.ID)
		if err != nil {
			return err
		}
		if err := mustAffect(res, "group"); err != nil {
			return err
		}
		return s.addEvents(ctx, tx, evs)
	})
}

// CreateGroup inserts g (MemberIDs are ignored; use AddGroupMember).
func (s *Store) CreateGroup(ctx context.Context, g *identity.Group, evs []events.Event) error {
	return s.inTx(ctx, "create group", "group", func(tx *sql.Tx) error {
		orgPath, err := s.checkOrg(ctx, tx, g.OrgID)
		if err != nil {
			return err
		}
		if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM groups WHERE code = ?", g.Code); err != nil {
			return err
		} else if ok {
			return store.Conflict("group code already exists")
		}
		if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM groups WHERE id = ?", g.ID); err != nil {
			return err
		} else if ok {
			return store.Conflict("group id already exists")
		}
		if _, err := tx.ExecContext(ctx, s.q("INSERT INTO groups ("+groupCols+", org_path) VALUES (?, ?, ?, ?, ?, ?)"),
			g.ID, g.Code, g.Name, store.NullIfEmpty(g.OrgID), store.UnixMS(g.CreatedAt), orgPath); err != nil {
			return err
		}
		return s.addEvents(ctx, tx, evs)
	})
}

// GetGroup returns the group id with its MemberIDs sorted.
func (s *Store) GetGroup(ctx context.Context, id string) (*identity.Group, error) {
	g, _, err := scanGroup(s.db.QueryRowContext(ctx, s.q("SELECT "+groupCols+" FROM groups WHERE id = ?"), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.NotFound("group")
	}
	if err != nil {
		return nil, classify(err, "get group", "group")
	}
	rows, err := s.db.QueryContext(ctx, s.q("SELECT user_id FROM group_members WHERE group_id = ? ORDER BY user_id"), id)
	if err != nil {
		return nil, classify(err, "get group", "group")
	}
	defer rows.Close()
	for rows.Next() {
		var uid string
		if err := rows.Scan(&uid); err != nil {
			return nil, classify(err, "get group", "group")
		}
		g.MemberIDs = append(g.MemberIDs, uid)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(err, "get group", "group")
	}
	return g, nil
}

// ListGroups lists groups (without MemberIDs) by id, or with a query in
// search order (see search): code and name.
func (s *Store) ListGroups(ctx context.Context, f identity.GroupFilter, p identity.Page) ([]*identity.Group, string, error) {
	l, err := s.groupListing(ctx, f)
	if err != nil {
		return nil, "", err
	}
	return run(ctx, s, l, p, scanGroup)
}

func (s *Store) groupListing(ctx context.Context, f identity.GroupFilter) (*listing, error) {
	l := &listing{op: "list groups", cols: qualified("groups", groupCols), from: "groups", keys: []keyCol{{expr: "groups.id"}}}
	if f.OrgID != "" {
		l.w.Add("groups.org_id = ?", f.OrgID)
	}
	if f.OrgID == "" && f.Query == "" {
		// one subtree: its groups in (org path, id) order
		lo, hi, one, err := s.withinSubtree(ctx, f.Within)
		if err != nil {
			return nil, classify(err, "list groups", "org")
		}
		if one {
			l.w.Add("groups.org_path < ?", hi)
			l.first, l.firstArgs = "groups.org_path >= ?", []any{lo}
			l.keys = []keyCol{{expr: "groups.org_path"}, {expr: "groups.id"}}
			f.Within = nil
		}
	}
	if err := s.within(ctx, l, f.Within, "groups.org_path"); err != nil {
		return nil, err
	}
	if f.Query != "" {
		s.search(l, "groups", "name", []string{"code", "name"}, f.Query)
	}
	return l, nil
}

func (s *Store) checkGroupAndUser(ctx context.Context, tx *sql.Tx, groupID, userID string) error {
	if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM groups WHERE id = ?"+s.db.ForShare(), groupID); err != nil {
		return err
	} else if !ok {
		return store.NotFound("group")
	}
	if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM users WHERE id = ?"+s.db.ForShare(), userID); err != nil {
		return err
	} else if !ok {
		return store.NotFound("user")
	}
	return nil
}

// AddGroupMember adds userID to groupID; adding a member twice is a no-op
// (the events are still written).
func (s *Store) AddGroupMember(ctx context.Context, groupID, userID string, evs []events.Event) error {
	return s.inTx(ctx, "add group member", "group member", func(tx *sql.Tx) error {
		if err := s.checkGroupAndUser(ctx, tx, groupID, userID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q("INSERT INTO group_members (group_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING"),
			groupID, userID); err != nil {
			return err
		}
		return s.addEvents(ctx, tx, evs)
	})
}

// RemoveGroupMember removes userID from groupID; removing a non-member is a
// no-op. A missing group is ErrNotFound.
func (s *Store) RemoveGroupMember(ctx context.Context, groupID, userID string, evs []events.Event) error {
	return s.inTx(ctx, "remove group member", "group member", func(tx *sql.Tx) error {
		if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM groups WHERE id = ?"+s.db.ForShare(), groupID); err != nil {
			return err
		} else if !ok {
			return store.NotFound("group")
		}
		if _, err := tx.ExecContext(ctx, s.q("DELETE FROM group_members WHERE group_id = ? AND user_id = ?"),
			groupID, userID); err != nil {
			return err
		}
		return s.addEvents(ctx, tx, evs)
	})
}

// UserGroups implements identity.Store.
func (s *Store) UserGroups(ctx context.Context, userID string) ([]*identity.Group, error) {
	rows, err := s.db.QueryContext(ctx, s.q("SELECT "+qualified("g", groupCols)+" FROM group_members m JOIN groups g ON g.id = m.group_id "+
		"WHERE m.user_id = ? ORDER BY g.code LIMIT ?"), userID, identity.MaxUserGroups)
	if err != nil {
		return nil, classify(err, "user groups", "group")
	}
	defer rows.Close()
	var out []*identity.Group
	for rows.Next() {
		g, _, err := scanGroup(rows)
		if err != nil {
			return nil, classify(err, "user groups", "group")
		}
		out = append(out, g)
	}
	return out, classify(rows.Err(), "user groups", "group")
}
