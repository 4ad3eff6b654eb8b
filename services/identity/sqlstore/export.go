package sqlstore

import (
	"context"

	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
)

// Reads for bulk export: pages in key order with what a row of the file
// names by code (an org's parent, a user's org, a link's user and
// application), one query per page.

// withExtra scans a row whose columns are those of an entity followed by
// extra ones.
type withExtra struct {
	sc    store.Scanner
	extra []any
}

func (w withExtra) Scan(dest ...any) error { return w.sc.Scan(append(dest, w.extra...)...) }

// ExportUsers returns up to n users with ids after after, in id order, with
// their org's code.
func (s *Store) ExportUsers(ctx context.Context, after string, n int) ([]identity.ExportedUser, error) {
	rows, err := s.db.QueryContext(ctx, s.q("SELECT "+qualified("users", userCols)+", COALESCE(orgs.code, '') FROM users "+
		"LEFT JOIN orgs ON orgs.id = users.org_id WHERE users.id > ? ORDER BY users.id LIMIT ?"), after, n)
	if err != nil {
		return nil, classify(err, "export users", "")
	}
	defer rows.Close()
	var out []identity.ExportedUser
	for rows.Next() {
		var e identity.ExportedUser
		u, _, err := scanUser(withExtra{rows, []any{&e.OrgCode}})
		if err != nil {
			return nil, classify(err, "export users", "")
		}
		e.User = u
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(err, "export users", "")
	}
	return out, nil
}

// ExportOrgs returns up to n orgs with paths after after, in path order (a
// parent before its children; byte order on both databases), with their
// parent's code.
func (s *Store) ExportOrgs(ctx context.Context, after string, n int) ([]identity.ExportedOrg, error) {
	path := "orgs.path"
	if s.db.Dialect == store.Postgres {
		path = `orgs.path COLLATE "C"`
	}
	rows, err := s.db.QueryContext(ctx, s.q("SELECT "+qualified("orgs", orgCols)+", COALESCE(parent.code, '') FROM orgs "+
		"LEFT JOIN orgs parent ON parent.id = orgs.parent_id WHERE "+path+" > ? ORDER BY "+path+" LIMIT ?"), after, n)
	if err != nil {
		return nil, classify(err, "export orgs", "")
	}
	defer rows.Close()
	var out []identity.ExportedOrg
	for rows.Next() {
		var e identity.ExportedOrg
		o, _, err := scanOrg(withExtra{rows, []any{&e.ParentCode}})
		if err != nil {
			return nil, classify(err, "export orgs", "")
		}
		e.Org = o
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(err, "export orgs", "")
	}
	return out, nil
}

// ExportLinks returns up to n account links with ids after after, in id
// order, with the login name of their user and the type and code of their
// application.
func (s *Store) ExportLinks(ctx context.Context, after string, n int) ([]identity.ExportedLink, error) {
	rows, err := s.db.QueryContext(ctx, s.q("SELECT "+qualified("account_links", linkCols)+", users.login_name, apps.app_type, apps.app_code "+
		"FROM account_links JOIN users ON users.id = account_links.user_id JOIN apps ON apps.id = account_links.app_id "+
		"WHERE account_links.id > ? ORDER BY account_links.id LIMIT ?"), after, n)
	if err != nil {
		return nil, classify(err, "export links", "")
	}
	defer rows.Close()
	var out []identity.ExportedLink
	for rows.Next() {
		var e identity.ExportedLink
		l, _, err := scanLink(withExtra{rows, []any{&e.LoginName, &e.AppType, &e.AppCode}})
		if err != nil {
			return nil, classify(err, "export links", "")
		}
		e.Link = l
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(err, "export links", "")
	}
	return out, nil
}
