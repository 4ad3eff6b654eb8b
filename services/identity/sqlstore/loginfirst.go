package sqlstore

import (
	"context"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
)

// Login names first (SQLite). A search of users whose query could be the
// start of a login name (MinSearchLen characters or more, no white space)
// lists first the users whose login name starts with the query, in login
// name order through the login name's unique index (the exact match, if
// any, first), and only then the other substring matches from the trigram
// index. When the first phase finds someone its last page ends the phase:
// that page may hold fewer rows than asked, and its page token goes on
// with the substring matches. So typing a login name, or its start, is an
// index lookup at any size; the substring search through FTS5, whose cost
// at 10 M people grows with how common the query's trigrams are (every
// digit trigram is in hundreds of thousands of login names), runs only
// when the administrator pages on or when no login name starts with the
// query. The set of results is the substring search's, each row once (the
// substring phase leaves out the login names of the first); the prefix
// comparison is bytewise (case-sensitive), the substring match is not.
// PostgreSQL keeps one phase (pg_trgm finds a rare string's rows without
// walking common ones).

// loginIndex is the index of users' unique login names (the UNIQUE
// constraint users_login_name_key: SQLite names it by its place among the
// table's constraints; TestListingPlans fails if that changes).
const loginIndex = "sqlite_autoindex_users_2"

// Page token phases of a login-first search: the token's first byte.
const (
	phaseLogin = "L"
	phaseRest  = "S"
)

// cleanQuery drops control characters from a search query.
func cleanQuery(q string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, q)
}

// loginFirst reports whether a users search for q lists login names first.
func (s *Store) loginFirst(q string) bool {
	if s.db.Dialect != store.SQLite || utf8.RuneCountInString(q) < MinSearchLen {
		return false
	}
	return !strings.ContainsFunc(q, unicode.IsSpace)
}

// userLoginListing is the first phase of a login-first search for f: the
// users of f's other filters whose login name starts with f.Query.
func (s *Store) userLoginListing(ctx context.Context, f identity.UserFilter) (*listing, error) {
	q := cleanQuery(f.Query)
	f.Query = ""
	l, err := s.userListing(ctx, f)
	if err != nil {
		return nil, err
	}
	if l.first != "" {
		// The keys change: the first-page bound becomes a filter.
		l.w.Add(l.first, l.firstArgs...)
	}
	// Other filters are checked on the rows of the login range (SQLite
	// would rather walk an org or status index and sort).
	l.from = "users INDEXED BY " + loginIndex
	l.w.Add("users.login_name < ?", prefixEnd(q))
	l.first, l.firstArgs = "users.login_name >= ?", []any{q}
	l.keys = []keyCol{{expr: "users.login_name"}}
	return l, nil
}

// userRestListing is the second phase: f's substring matches whose login
// name does not start with f.Query.
func (s *Store) userRestListing(ctx context.Context, f identity.UserFilter) (*listing, error) {
	l, err := s.userListing(ctx, f)
	if err != nil {
		return nil, err
	}
	q := cleanQuery(f.Query)
	l.w.Add("NOT (users.login_name >= ? AND users.login_name < ?)", q, prefixEnd(q))
	return l, nil
}

// listUsersLoginFirst reads a page of a login-first search.
func (s *Store) listUsersLoginFirst(ctx context.Context, f identity.UserFilter, p identity.Page) ([]*identity.User, string, error) {
	phase, inner := phaseLogin, ""
	if p.Token != "" {
		phase, inner = p.Token[:1], p.Token[1:]
		if phase != phaseLogin && phase != phaseRest {
			return nil, "", store.ErrBadPageToken
		}
	}
	if phase == phaseLogin {
		l, err := s.userLoginListing(ctx, f)
		if err != nil {
			return nil, "", err
		}
		items, next, err := run(ctx, s, l, identity.Page{Size: p.Size, Token: inner}, scanUser)
		if err != nil {
			return nil, "", err
		}
		if next != "" {
			return items, phaseLogin + next, nil
		}
		if len(items) > 0 || inner != "" {
			return items, phaseRest, nil
		}
		// No login name starts with the query: the substring matches at
		// once.
		inner = ""
	}
	l, err := s.userRestListing(ctx, f)
	if err != nil {
		return nil, "", err
	}
	items, next, err := run(ctx, s, l, identity.Page{Size: p.Size, Token: inner}, scanUser)
	if err != nil || next == "" {
		return items, "", err
	}
	return items, phaseRest + next, nil
}
