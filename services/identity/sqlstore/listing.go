package sqlstore

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
)

// Listings walk an index range in key order (keyset pages): every filter has
// an index whose leading columns are the filter's equality columns and whose
// last columns are the listing's order keys, so a page reads about page-size
// index entries however deep it is. TestListingPlans (explain_test.go) asks
// the database for the plan of every listing query and fails on a full scan
// or a sort.

// keyCol is one order key of a listing: an SQL expression, its value read
// back as text; num marks an integer key (an FTS rowid).
type keyCol struct {
	expr string
	num  bool
}

// listing is one listing query: "SELECT cols FROM from WHERE where ORDER BY
// keys LIMIT n".
type listing struct {
	op   string // for error messages: "list users"
	cols string
	from string
	// fromArgs are the arguments of placeholders in from.
	fromArgs []any
	w        store.Where
	// first is a condition of the first page only: the lower bound of a
	// range whose later pages start after their key (with both bounds a
	// database may walk the range from its start and filter).
	first     string
	firstArgs []any
	keys      []keyCol
	// indexed marks a listing that reads the people's search index (the
	// search file, SQLite): it runs on the index's pool once the index
	// holds the changes committed before it (searchIndex.await).
	indexed bool
}

// keyScanner scans a row's columns and then its order keys.
type keyScanner struct {
	sc   store.Scanner
	keys []any
}

func (k keyScanner) Scan(dest ...any) error { return k.sc.Scan(append(dest, k.keys...)...) }

// pageToken encodes the order keys of the last row of a page.
func pageToken(keys []string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strings.Join(keys, "\x00")))
}

// pageAfter decodes a token made by pageToken for n keys.
func pageAfter(token string, keys []keyCol) ([]any, error) {
	if token == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) == 0 || !utf8.Valid(b) {
		return nil, store.ErrBadPageToken
	}
	parts := strings.Split(string(b), "\x00")
	if len(parts) != len(keys) {
		return nil, store.ErrBadPageToken
	}
	out := make([]any, len(parts))
	for i, p := range parts {
		if keys[i].num {
			n, err := strconv.ParseInt(p, 10, 64)
			if err != nil {
				return nil, store.ErrBadPageToken
			}
			out[i] = n
			continue
		}
		out[i] = p
	}
	return out, nil
}

// run reads one page of l (after the token's keys); scan reads one row's
// columns (its returned key is ignored: the order keys are read apart).
func run[T any](ctx context.Context, s *Store, l *listing, p identity.Page, scan func(store.Scanner) (T, string, error)) ([]T, string, error) {
	size := p.Size
	if size <= 0 {
		size = DefaultPageSize
	}
	if size > MaxPageSize {
		size = MaxPageSize
	}
	after, err := pageAfter(p.Token, l.keys)
	if err != nil {
		return nil, "", err
	}
	query, args := l.sql(after, size+1)
	db := s.db
	if l.indexed && s.index != nil {
		if db, err = s.index.await(ctx); err != nil {
			return nil, "", classify(err, l.op, "")
		}
	}
	rows, err := db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, "", classify(err, l.op, "")
	}
	defer rows.Close()
	var (
		items []T
		last  []string
	)
	for rows.Next() {
		keys := make([]string, len(l.keys))
		dest := make([]any, len(keys))
		for i := range keys {
			dest[i] = &keys[i]
		}
		v, _, err := scan(keyScanner{sc: rows, keys: dest})
		if err != nil {
			return nil, "", classify(err, l.op, "")
		}
		if len(items) == size {
			return items, pageToken(last), nil
		}
		items, last = append(items, v), keys
	}
	if err := rows.Err(); err != nil {
		return nil, "", classify(err, l.op, "")
	}
	return items, "", nil
}

// sql is the query text ('?' placeholders) and arguments of l's page after
// the keys after (nil: the first page) with at most limit rows.
func (l *listing) sql(after []any, limit int) (string, []any) {
	w := l.w
	exprs := make([]string, len(l.keys))
	for i, k := range l.keys {
		exprs[i] = k.expr
	}
	if after == nil && l.first != "" {
		w.Add(l.first, l.firstArgs...)
	}
	if after != nil {
		if len(exprs) == 1 {
			w.Add(exprs[0]+" > ?", after...)
		} else {
			w.Add("("+strings.Join(exprs, ", ")+") > ("+store.Placeholders(len(exprs))+")", after...)
		}
	}
	order := strings.Join(exprs, ", ")
	q := "SELECT " + l.cols + ", " + order + " FROM " + l.from + w.SQL() + " ORDER BY " + order + " LIMIT ?"
	return q, append(append(append([]any{}, l.fromArgs...), w.Args()...), limit)
}

// qualified prefixes every column of the list cols with table.
func qualified(table, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = table + "." + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

// MinSearchLen is the number of characters from which a query is a
// substring search through the trigram index; a shorter query matches the
// names that start with it.
const MinSearchLen = 3

// subtreeRange is the range [lo, hi) of the paths under path (path itself
// included): paths are "/a/b/", and '0' follows '/'.
func subtreeRange(path string) (lo, hi string) {
	return path, path[:len(path)-1] + "0"
}

// prefixEnd is a string greater than every string that starts with p
// (compared bytewise).
func prefixEnd(p string) string { return p + "\U0010FFFF" }

// nameIndex names the (name, id) index of each searched table.
var nameIndex = map[string]string{
	"users": "users_display_idx", "orgs": "orgs_name_idx", "groups": "groups_name_idx", "apps": "apps_name_idx",
}

// search adds q to l, a listing of table whose searched columns are cols
// (the FTS columns on SQLite, the columns of the trigram index on
// PostgreSQL): a query of MinSearchLen characters or more matches any
// column containing it (case-insensitively), a shorter one the rows whose
// nameCol starts with it. It sets l's from and keys (with the row's id
// last); filters added before refer to columns as table.col.
func (s *Store) search(l *listing, table, nameCol string, cols []string, q string) {
	q = cleanQuery(q)
	if l.first != "" {
		// The listing's keys change: its first-page bound becomes a filter.
		l.w.Add(l.first, l.firstArgs...)
		l.first, l.firstArgs = "", nil
	}
	if utf8.RuneCountInString(q) < MinSearchLen {
		expr := table + "." + nameCol
		l.from = table
		if s.db.Dialect == store.Postgres {
			expr = "(" + expr + ` COLLATE "C")`
		} else {
			// Other filters are checked on the rows of the name range
			// (SQLite would rather walk a status index and sort).
			l.from = table + " INDEXED BY " + nameIndex[table]
		}
		l.w.Add(expr+" < ?", prefixEnd(q))
		l.first, l.firstArgs = expr+" >= ?", []any{q}
		l.keys = []keyCol{{expr: expr}, {expr: table + ".id"}}
		return
	}
	if s.db.Dialect == store.Postgres {
		// The subquery (OFFSET 0 keeps it apart) reads the matches through
		// the GIN index; the outer query filters and sorts those only.
		like := "lower(" + strings.Join(cols, " || chr(1) || ") + `) LIKE ? ESCAPE '\'`
		l.from = "(SELECT * FROM " + table + " WHERE " + like + " OFFSET 0) " + table
		l.fromArgs = []any{store.LikePattern(q)}
		l.keys = []keyCol{{expr: table + ".id"}}
		return
	}
	fts := table + "_fts"
	if table == "users" {
		// The people's index is in the search file (searchindex.go).
		fts, l.indexed = searchSchema+"."+fts, true
	}
	l.from = fts + " f JOIN " + table + "_search_keys k ON k.n = f.rowid JOIN " + table + " ON " + table + ".id = k.row_id"
	l.w.Add("f."+table+"_fts MATCH ?", `"`+strings.ReplaceAll(q, `"`, `""`)+`"`)
	l.keys = []keyCol{{expr: "f.rowid", num: true}}
}
