package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
)

const orgCols = "id, code, name, parent_id, path, status, created_at, updated_at"

func scanOrg(sc store.Scanner) (*identity.Org, string, error) {
	var (
		o                identity.Org
		parent           sql.NullString
		created, updated int64
	)
	if err := sc.Scan(&o.ID, &o.Code, &o.Name, &parent, &o.Path, &o.Status, &created, &updated); err != nil {
		return nil, "", err
	}
	o.ParentID = parent.String
	o.CreatedAt, o.UpdatedAt = store.FromUnixMS(created), store.FromUnixMS(updated)
	return &o, o.ID, nil
}

func (s *Store) getOrg(ctx context.Context, qr store.Querier, id, lock string) (*identity.Org, error) {
	o, _, err := scanOrg(qr.QueryRowContext(ctx, s.q("SELECT "+orgCols+" FROM orgs WHERE id = ?"+lock), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.NotFound("org")
	}
	return o, err
}

// CreateOrg inserts o; it computes o.Path from the parent.
func (s *Store) CreateOrg(ctx context.Context, o *identity.Org, evs []events.Event) error {
	return s.inTx(ctx, "create org", "org", func(tx *sql.Tx) error {
		if err := s.createOrgTx(ctx, tx, o); err != nil {
			return err
		}
		return s.addEvents(ctx, tx, evs)
	})
}

// createOrgTx is CreateOrg within tx, without events; it sets o.Path.
func (s *Store) createOrgTx(ctx context.Context, tx *sql.Tx, o *identity.Org) error {
	p := "/" + o.ID + "/"
	if o.ParentID != "" {
		parent, err := s.getOrg(ctx, tx, o.ParentID, s.db.ForShare())
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return store.NotFound("parent org")
			}
			return err
		}
		p = parent.Path + o.ID + "/"
	}
	if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM orgs WHERE code = ?", o.Code); err != nil {
		return err
	} else if ok {
		return store.Conflict("org code already exists")
	}
	if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM orgs WHERE id = ?", o.ID); err != nil {
		return err
	} else if ok {
		return store.Conflict("org id already exists")
	}
	_, err := tx.ExecContext(ctx, s.q("INSERT INTO orgs ("+orgCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
		o.ID, o.Code, o.Name, store.NullIfEmpty(o.ParentID), p, int(o.Status), store.UnixMS(o.CreatedAt), store.UnixMS(o.UpdatedAt))
	if err != nil {
		return err
	}
	o.Path = p
	return nil
}

// GetOrgByCode returns the org whose code is code.
func (s *Store) GetOrgByCode(ctx context.Context, code string) (*identity.Org, error) {
	o, _, err := scanOrg(s.db.QueryRowContext(ctx, s.q("SELECT "+orgCols+" FROM orgs WHERE code = ?"), code))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.NotFound("org")
	}
	if err != nil {
		return nil, classify(err, "get org by code", "org")
	}
	return o, nil
}

// GetOrg returns the org id.
func (s *Store) GetOrg(ctx context.Context, id string) (*identity.Org, error) {
	o, err := s.getOrg(ctx, s.db, id, "")
	if err != nil {
		return nil, classify(err, "get org", "org")
	}
	return o, nil
}

// ListOrgs lists orgs: by id, or with f.Subtree (every org under
// f.ParentID) by path, or with a query in search order (see search).
func (s *Store) ListOrgs(ctx context.Context, f identity.OrgFilter, p identity.Page) ([]*identity.Org, string, error) {
	l, err := s.orgListing(ctx, f)
	if err != nil {
		return nil, "", err
	}
	return run(ctx, s, l, p, scanOrg)
}

func (s *Store) orgListing(ctx context.Context, f identity.OrgFilter) (*listing, error) {
	l := &listing{op: "list orgs", cols: qualified("orgs", orgCols), from: "orgs", keys: []keyCol{{expr: "orgs.id"}}}
	switch {
	case f.ParentID != "" && f.Subtree:
		o, err := s.getOrg(ctx, s.db, f.ParentID, "")
		if err != nil {
			return nil, classify(err, "list orgs", "org")
		}
		_, hi := subtreeRange(o.Path)
		l.w.Add("orgs.path < ?", hi)
		l.first, l.firstArgs = "orgs.path > ?", []any{o.Path}
		l.keys = []keyCol{{expr: "orgs.path"}}
	case f.ParentID != "":
		l.w.Add("orgs.parent_id = ?", f.ParentID)
	default:
		lo, hi, one, err := s.withinSubtree(ctx, f.Within)
		if err != nil {
			return nil, classify(err, "list orgs", "org")
		}
		if one {
			l.w.Add("orgs.path < ?", hi)
			l.first, l.firstArgs = "orgs.path >= ?", []any{lo}
			l.keys = []keyCol{{expr: "orgs.path"}}
			f.Within = nil
		}
	}
	if err := s.within(ctx, l, f.Within, "orgs.path"); err != nil {
		return nil, err
	}
	if f.Status != 0 {
		l.w.Add("orgs.status = ?", int(f.Status))
	}
	if f.Query != "" {
		s.search(l, "orgs", "name", []string{"code", "name"}, f.Query)
	}
	return l, nil
}

// DeleteOrg deletes org id when no org, person or group is under it.
func (s *Store) DeleteOrg(ctx context.Context, id string, evs []events.Event) error {
	return s.inTx(ctx, "delete org", "org", func(tx *sql.Tx) error {
		for _, c := range []struct{ what, q string }{
			{"orgs", "SELECT 1 FROM orgs WHERE parent_id = ?"},
			{"people", "SELECT 1 FROM users WHERE org_id = ?"},
			{"groups", "SELECT 1 FROM groups WHERE org_id = ?"},
		} {
			if ok, err := s.db.Exists(ctx, tx, c.q+s.db.ForShare(), id); err != nil {
				return err
			} else if ok {
				return identity.ErrOrgNotEmpty.WithMessage("the org still has " + c.what + " under it: move or delete them first")
			}
		}
		res, err := tx.ExecContext(ctx, s.q("DELETE FROM orgs WHERE id = ?"), id)
		if err != nil {
			return err
		}
		if err := mustAffect(res, "org"); err != nil {
			return err
		}
		return s.addEvents(ctx, tx, evs)
	})
}

// UpdateOrg writes name, status and updated_at.
func (s *Store) UpdateOrg(ctx context.Context, o *identity.Org, evs []events.Event) error {
	return s.inTx(ctx, "update org", "org", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q("UPDATE orgs SET name = ?, status = ?, updated_at = ? WHERE id = ?"),
			o.Name, int(o.Status), store.UnixMS(o.UpdatedAt), o.ID)
		if err != nil {
			return err
		}
		if err := mustAffect(res, "org"); err != nil {
			return err
		}
		return s.addEvents(ctx, tx, evs)
	})
}

// errOrgCycle is returned when a move would put an org under itself.
func errOrgCycle() error { return store.Conflict("cannot move an org under its own subtree") }

// MoveOrg re-parents id under newParentID ("" = make it a root) and rewrites
// the paths of its subtree.
func (s *Store) MoveOrg(ctx context.Context, id, newParentID string, now time.Time, evs []events.Event) (*identity.Org, error) {
	var moved *identity.Org
	err := s.inTx(ctx, "move org", "org", func(tx *sql.Tx) error {
		o, err := s.moveOrgTx(ctx, tx, id, newParentID, now)
		if err != nil {
			return err
		}
		moved = o
		return s.addEvents(ctx, tx, evs)
	})
	if err != nil {
		return nil, err
	}
	return moved, nil
}

// moveOrgTx is MoveOrg within tx, without events.
func (s *Store) moveOrgTx(ctx context.Context, tx *sql.Tx, id, newParentID string, now time.Time) (*identity.Org, error) {
	var moved *identity.Org
	err := func() error {
		if s.db.Dialect == store.Postgres {
			// Serialise moves so two concurrent moves cannot build a cycle.
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(7301200001)"); err != nil {
				return err
			}
		}
		o, err := s.getOrg(ctx, tx, id, s.db.ForUpdate())
		if err != nil {
			return err
		}
		newPath := "/" + id + "/"
		if newParentID != "" {
			if newParentID == id {
				return errOrgCycle()
			}
			parent, err := s.getOrg(ctx, tx, newParentID, s.db.ForShare())
			if err != nil {
				if errors.Is(err, store.ErrNotFound) {
					return store.NotFound("parent org")
				}
				return err
			}
			if strings.HasPrefix(parent.Path, o.Path) {
				return errOrgCycle()
			}
			newPath = parent.Path + id + "/"
		}
		prefix := likePrefix(o.Path)
		if s.db.Dialect == store.Postgres {
			// Lock the subtree (waits for creates under it to commit) so the
			// rewrite below sees every child.
			rows, err := tx.QueryContext(ctx, s.q(`SELECT id FROM orgs WHERE path LIKE ? ESCAPE '\' FOR UPDATE`), prefix)
			if err != nil {
				return err
			}
			var locked string
			for rows.Next() && err == nil {
				err = rows.Scan(&locked)
			}
			if err == nil {
				err = rows.Err()
			}
			rows.Close()
			if err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, s.q("UPDATE orgs SET parent_id = ?, updated_at = ? WHERE id = ?"),
			store.NullIfEmpty(newParentID), store.UnixMS(now), id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			s.q(`UPDATE orgs SET path = CAST(? AS TEXT) || SUBSTR(path, CAST(? AS INTEGER)) WHERE path LIKE ? ESCAPE '\'`),
			newPath, len(o.Path)+1, prefix); err != nil {
			return err
		}
		// The users, groups and account links of the subtree carry its
		// paths (a range of their org_path index). Users first: a link
		// being created holds its person's row (createLinkTx), so the
		// links' rewrite, a later statement, sees it.
		lo, hi := subtreeRange(o.Path)
		for _, table := range []string{"users", "groups", "account_links"} {
			if _, err := tx.ExecContext(ctx,
				s.q(`UPDATE `+table+` SET org_path = CAST(? AS TEXT) || SUBSTR(org_path, CAST(? AS INTEGER)) WHERE org_path >= ? AND org_path < ?`),
				newPath, len(o.Path)+1, lo, hi); err != nil {
				return err
			}
		}
		moved, err = s.getOrg(ctx, tx, id, "")
		return err
	}()
	return moved, err
}

// likePrefix is a LIKE pattern matching strings that start with p.
func likePrefix(p string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(p) + "%"
}

// preparedChainDepth is how many ancestors DisabledInOrgChain's second
// query may name and still be kept prepared (s.stmts): one statement shape
// per depth, so the cache stays small whatever the tree; deeper chains run
// unprepared.
const preparedChainDepth = 8

// DisabledInOrgChain returns a disabled org among id and its ancestors (read
// from id's path), or "" when they are all active. Every password check
// runs it, so its statements are prepared once per connection (s.stmts),
// not parsed on each call.
func (s *Store) DisabledInOrgChain(ctx context.Context, id string) (string, error) {
	o, err := s.getOrg(ctx, s.stmts, id, "")
	if err != nil {
		return "", classify(err, "check org chain", "org")
	}
	if o.Status != identity.StatusActive {
		return o.ID, nil
	}
	var ancestors []any
	for _, a := range strings.Split(strings.Trim(o.Path, "/"), "/") {
		if a != "" && a != o.ID {
			ancestors = append(ancestors, a)
		}
	}
	if len(ancestors) == 0 {
		return "", nil
	}
	args := append(ancestors, int(identity.StatusActive))
	var qr store.Querier = s.stmts
	if len(ancestors) > preparedChainDepth {
		qr = s.db
	}
	var disabled string
	err = qr.QueryRowContext(ctx, s.q("SELECT id FROM orgs WHERE id IN ("+store.Placeholders(len(ancestors))+
		") AND status <> ? ORDER BY path LIMIT 1"), args...).Scan(&disabled)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", classify(err, "check org chain", "org")
	}
	return disabled, nil
}

// CountOrgs returns the number of orgs.
func (s *Store) CountOrgs(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM orgs").Scan(&n); err != nil {
		return 0, classify(err, "count orgs", "")
	}
	return n, nil
}
