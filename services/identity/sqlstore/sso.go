package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
)

// ssoPersonQuery reads a person with their org's name and their link to an
// application (one row: a person has at most one link per application).
var ssoPersonQuery = "SELECT " + qualified("u", userReadCols) + ", COALESCE(o.name, ''), COALESCE(l.app_account_id, ''), " +
	"COALESCE(l.status, 0) FROM users u LEFT JOIN orgs o ON o.id = u.org_id " +
	"LEFT JOIN account_links l ON l.app_id = ? AND l.user_id = u.id WHERE u.id = ?"

// ssoGroupsQuery lists a person's group codes (UserGroups' order and limit).
const ssoGroupsQuery = "SELECT g.code FROM group_members m JOIN groups g ON g.id = m.group_id " +
	"WHERE m.user_id = ? ORDER BY g.code LIMIT ?"

// SSOAttributes implements identity.Store: two prepared statements (a
// ticket validation asks it every time).
func (s *Store) SSOAttributes(ctx context.Context, userID, appID string) (*identity.PersonAttributes, error) {
	var (
		out        identity.PersonAttributes
		linkStatus int64
	)
	u, _, err := scanUser(keyScanner{sc: s.stmts.QueryRowContext(ctx, s.q(ssoPersonQuery), appID, userID),
		keys: []any{&out.OrgName, &out.AppAccountID, &linkStatus}})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.NotFound("user")
	}
	if err != nil {
		return nil, classify(err, "sso attributes", "user")
	}
	out.User = u
	if identity.Status(linkStatus) != identity.StatusActive {
		out.AppAccountID = ""
	}
	rows, err := s.stmts.QueryPrepared(ctx, s.q(ssoGroupsQuery), userID, identity.MaxUserGroups)
	if err != nil {
		return nil, classify(err, "sso attributes", "group")
	}
	defer rows.Close()
	for rows.Next() {
		var code string
		if err := rows.Scan(&code); err != nil {
			return nil, classify(err, "sso attributes", "group")
		}
		out.Groups = append(out.Groups, code)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(err, "sso attributes", "group")
	}
	return &out, nil
}
