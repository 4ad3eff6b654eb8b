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

// exportUserCols are the columns of users an export reads: what a row of
// the file shows (and the sealed ID number and phone, opened when the
// caller may see them in clear), not the whole row.
const exportUserCols = "users.id, users.login_name, users.display_name, users.id_type, users.id_number_enc, " +
	"users.id_number_mask, users.phone_enc, users.phone_mask, users.email, users.status, users.min_auth_level, users.password_only, " +
	"COALESCE(orgs.code, ''), users.user_type"

// ExportUsers returns up to n users with ids after after, in id order, with
// their org's code. Only the exported fields of each user are read: id,
// login name, display name, email, status, ID type, the ID number and
// phone (sealed and masked), the minimum level and password-only; the
// password hash is not.
func (s *Store) ExportUsers(ctx context.Context, after string, n int) ([]identity.ExportedUser, error) {
	rows, err := s.db.QueryContext(ctx, s.q("SELECT "+exportUserCols+" FROM users "+
		"LEFT JOIN orgs ON orgs.id = users.org_id WHERE users.id > ? ORDER BY users.id LIMIT ?"), after, n)
	if err != nil {
		return nil, classify(err, "export users", "")
	}
	defer rows.Close()
	out := make([]identity.ExportedUser, 0, n)
	users := make([]identity.User, n)
	for i := 0; rows.Next(); i++ {
		if i == len(users) {
			users = append(users, identity.User{})
		}
		u := &users[i]
		var idType, status, level, userType int64
		var passwordOnly bool
		e := identity.ExportedUser{User: u}
		if err := rows.Scan(&u.ID, &u.LoginName, &u.DisplayName, &idType, &u.IDNumberEnc, &u.IDNumberMask, &u.PhoneEnc,
			&u.PhoneMask, &u.Email, &status, &level, &passwordOnly, &e.OrgCode, &userType); err != nil {
			return nil, classify(err, "export users", "")
		}
		u.IDType, u.Status = identity.IDType(idType), identity.Status(status)
		u.MinAuthLevel, u.PasswordOnly, u.UserType = int(level), passwordOnly, identity.UserType(userType)
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
// application. Only the exported fields of each link are read: id,
// account and status. The page of links is chosen first (a subquery on the
// primary key) and then joined: with the joins in one query SQLite
// preferred to walk the application's links by (app_id, id) and sort them
// all for every page (quadratic: 8 k links a second at 100 k).
func (s *Store) ExportLinks(ctx context.Context, after string, n int) ([]identity.ExportedLink, error) {
	rows, err := s.db.QueryContext(ctx, s.q("SELECT l.id, l.app_account_id, l.status, users.login_name, apps.app_type, apps.app_code "+
		"FROM (SELECT id, user_id, app_id, app_account_id, status FROM account_links WHERE id > ? ORDER BY id LIMIT ?) l "+
		"JOIN users ON users.id = l.user_id JOIN apps ON apps.id = l.app_id ORDER BY l.id"), after, n)
	if err != nil {
		return nil, classify(err, "export links", "")
	}
	defer rows.Close()
	out := make([]identity.ExportedLink, 0, n)
	links := make([]identity.AccountLink, n)
	for i := 0; rows.Next(); i++ {
		if i == len(links) {
			links = append(links, identity.AccountLink{})
		}
		l := &links[i]
		var status int64
		e := identity.ExportedLink{Link: l}
		if err := rows.Scan(&l.ID, &l.AppAccountID, &status, &e.LoginName, &e.AppType, &e.AppCode); err != nil {
			return nil, classify(err, "export links", "")
		}
		l.Status = identity.Status(status)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(err, "export links", "")
	}
	return out, nil
}
