package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
)

// The bulk path of ImportBatch (issue 16: 1 M people in minutes). A batch
// of users (each with its optional account link) or of links is checked
// with a few set queries (keys this import wrote, orgs, existing login
// names, feature codes, accounts) and written in primary-key order (ids
// ascend with time, so the rows go to the end of each table):
//
//   - on SQLite, one prepared single-row INSERT per row and table, and the
//     users' search rows in two statements for the whole batch
//     (indexUsers). A single-row INSERT into a table without an insert
//     trigger needs no statement journal and opens no FTS5 savepoint; a
//     multi-row one (or one firing the old search trigger) does, because a
//     unique or foreign-key failure at its 300th row must undo the 299
//     before: every page the statement touched was copied to the journal
//     first, and the FTS5 index flushed its pending terms to a new segment
//     at every statement. With the users' indexes at random places
//     (feature codes, names, orgs) that was a page copy per index per row;
//   - on PostgreSQL, multi-row INSERTs of up to bulkRows rows (one round
//     trip each).
//
// The checks find every failure a row can have in a consistent batch and
// report it with the same error as the row-by-row path. Anything they do
// not foresee (a unique violation inside the batch, a row written by a
// concurrent writer on PostgreSQL) fails a statement: the transaction is
// rolled back and ImportBatch writes the batch row by row instead, each row
// in a savepoint of its own.

// bulkParams bounds the placeholders of one statement (SQLite's limit is
// 32766, PostgreSQL's 65535).
const bulkParams = 16000

// bulkRows is the most rows of one INSERT statement.
const bulkRows = 500

// The import's checks (bulkChecks), each a query ending in "IN " that
// queryIn completes with the values (and a key it takes first).
const (
	checkImported    = "SELECT ext_key FROM import_rows WHERE import_id = ? AND ext_key IN "
	checkFeatures    = "SELECT feature_code FROM users WHERE feature_code IN "
	checkIDKeys      = "SELECT id_key FROM users WHERE id_key IN "
	checkUserPaths   = "SELECT id, org_path FROM users WHERE id IN "
	checkApps        = "SELECT id FROM apps WHERE id IN "
	checkAccounts    = "SELECT app_account_id FROM account_links WHERE app_id = ? AND app_account_id IN "
	checkLinkedUsers = "SELECT user_id FROM account_links WHERE app_id = ? AND user_id IN "
	checkOrgPaths    = "SELECT id, path FROM orgs WHERE id IN "
)

// checkLogins is the import's check of login names, folded as the unique
// index folds them (loginFold); the file's are folded alike
// (identity.FoldLogin).
func (s *Store) checkLogins() string {
	return "SELECT " + s.loginFold("login_name") + " FROM users WHERE " + s.loginFold("login_name") + " IN "
}

// bulkable reports whether the bulk path can write items: users and links
// only (an org row may be the parent of the next one, so orgs go row by
// row; they are few).
func bulkable(items []identity.ImportItem) bool {
	for _, it := range items {
		if it.Org != nil || (it.User == nil && it.Link == nil) {
			return false
		}
	}
	return true
}

// importBulk writes items (bulkable) in one transaction as ImportBatch
// does, chunk items at a time (chunk <= 0: all at once); between two
// chunks it ends the transaction when s.cut says so (another write waits)
// and returns the results of the items written so far. errRowFailed when a
// statement failed (nothing is kept).
func (s *Store) importBulk(ctx context.Context, importID string, items []identity.ImportItem, dryRun bool, chunk int,
	evs func(written []identity.ImportItem) []events.Event) ([]identity.ImportResult, error) {
	if chunk <= 0 {
		chunk = len(items)
	}
	out := make([]identity.ImportResult, len(items))
	done := len(items)
	err := s.importTx(ctx, func(tx *sql.Tx) error {
		// Fresh results each attempt (InTx does not retry, but keep it
		// obviously right).
		clear(out)
		done = len(items)
		var (
			written []identity.ImportItem
			userIDs []string
		)
		for lo := 0; lo < len(items); lo += chunk {
			if lo > 0 && s.cut() {
				done = lo
				break
			}
			hi := min(lo+chunk, len(items))
			began := time.Now()
			w, ids, err := s.bulkChunk(ctx, tx, importID, items[lo:hi], out[lo:hi])
			if err != nil {
				return err
			}
			written, userIDs = append(written, w...), append(userIDs, ids...)
			// The importer may give way to logins here, the
			// transaction open, until another write waits.
			if identity.ImportChunkDone(ctx, time.Since(began), s.cut) && hi < len(items) {
				done = hi
				break
			}
		}
		// The search keys and queue entries of the whole transaction in
		// two statements, in key order (the search file's indexer writes
		// their FTS5 rows).
		slices.Sort(userIDs)
		if err := s.indexUsers(ctx, tx, userIDs); err != nil {
			return bulkFailure(ctx, err)
		}
		if len(written) > 0 {
			if err := s.addEvents(ctx, tx, evs(written)); err != nil {
				return err
			}
		}
		if dryRun {
			return errDryRun
		}
		return nil
	})
	if errors.Is(err, errRowFailed) {
		return nil, err
	}
	if err != nil && !errors.Is(err, errDryRun) {
		return nil, classify(err, "import", "")
	}
	return out[:done], nil
}

// cut reports whether an import transaction should end before its next
// chunk: on SQLite, when another write waits (for the write lock, or for
// its turn on the import's connection).
func (s *Store) cut() bool {
	if s.cutImport != nil {
		return s.cutImport()
	}
	return s.db.Dialect == store.SQLite && s.db.WritesWaiting() > 0
}

// bulkChunk checks and writes items (one chunk of a transaction), their
// results in out; it returns the items written (in the file's order, for
// the events and the audit record) and the ids of the users written.
func (s *Store) bulkChunk(ctx context.Context, tx *sql.Tx, importID string, items []identity.ImportItem,
	out []identity.ImportResult) ([]identity.ImportItem, []string, error) {
	todo, paths, err := s.bulkChecks(ctx, tx, importID, items, out)
	if err != nil {
		return nil, nil, err
	}
	written := make([]identity.ImportItem, 0, len(todo))
	var users, links []int
	for _, i := range todo {
		if items[i].User != nil {
			users = append(users, i)
		}
		if items[i].Link != nil {
			links = append(links, i)
		}
		written = append(written, items[i])
	}
	// Primary-key order.
	slices.SortFunc(users, func(a, b int) int { return strings.Compare(items[a].User.ID, items[b].User.ID) })
	slices.SortFunc(links, func(a, b int) int { return strings.Compare(items[a].Link.ID, items[b].Link.ID) })
	keyed := slices.Clone(todo)
	slices.SortFunc(keyed, func(a, b int) int { return strings.Compare(items[a].Key, items[b].Key) })
	if err := s.bulkInsertUsers(ctx, tx, items, users, paths); err != nil {
		return nil, nil, bulkFailure(ctx, err)
	}
	if err := s.bulkInsertLinks(ctx, tx, items, links, paths); err != nil {
		return nil, nil, bulkFailure(ctx, err)
	}
	if err := s.bulkInsertImportRows(ctx, tx, importID, items, keyed); err != nil {
		return nil, nil, bulkFailure(ctx, err)
	}
	userIDs := make([]string, len(users))
	for k, i := range users {
		userIDs[k] = items[i].User.ID
	}
	return written, userIDs, nil
}

// bulkFailure turns a failed bulk statement into errRowFailed (write the
// batch row by row) unless the database itself failed.
func bulkFailure(ctx context.Context, err error) error {
	c := classify(err, "import", "")
	if errors.Is(c, store.ErrUnavailable) || ctx.Err() != nil {
		return c
	}
	return errRowFailed
}

// bulkChecks marks the items this import wrote before (Skipped) and those
// that cannot be written (Err, as the row-by-row path would answer) in
// out, and returns the indexes of the others and the paths of their orgs
// (and of the orgs of the people already there that they link).
func (s *Store) bulkChecks(ctx context.Context, tx *sql.Tx, importID string, items []identity.ImportItem,
	out []identity.ImportResult) ([]int, importPaths, error) {
	keys := make([]string, len(items))
	for i, it := range items {
		keys[i] = it.Key
	}
	done, err := s.existingIn(ctx, tx, checkImported, []any{importID}, keys)
	if err != nil {
		return nil, importPaths{}, err
	}
	var orgIDs, logins, features, idKeys, userIDs, appIDs []string
	for i, it := range items {
		if done[it.Key] {
			out[i].Skipped = true
			continue
		}
		if u := it.User; u != nil {
			if u.OrgID != "" {
				orgIDs = append(orgIDs, u.OrgID)
			}
			logins = append(logins, identity.FoldLogin(u.LoginName))
			if u.FeatureCode != "" {
				features = append(features, u.FeatureCode)
			}
			if u.IDKey != "" {
				idKeys = append(idKeys, u.IDKey)
			}
		}
		if l := it.Link; l != nil {
			appIDs = append(appIDs, l.AppID)
			if it.User == nil {
				userIDs = append(userIDs, l.UserID)
			}
		}
	}
	var paths importPaths
	paths.orgs, err = s.orgPaths(ctx, tx, orgIDs)
	if err != nil {
		return nil, importPaths{}, err
	}
	loginTaken, err := s.existingIn(ctx, tx, s.checkLogins(), nil, logins)
	if err != nil {
		return nil, importPaths{}, err
	}
	featureTaken, err := s.existingIn(ctx, tx, checkFeatures, nil, features)
	if err != nil {
		return nil, importPaths{}, err
	}
	// One query per bulkRows ID keys, as for the login names (the
	// file's own duplicates the importer found before).
	idKeyTaken, err := s.existingIn(ctx, tx, checkIDKeys, nil, idKeys)
	if err != nil {
		return nil, importPaths{}, err
	}
	// The people linked, with their org paths (the links' own), locked
	// against a concurrent move on PostgreSQL as createLinkTx does.
	paths.users, err = s.idPaths(ctx, tx, checkUserPaths, userIDs)
	if err != nil {
		return nil, importPaths{}, err
	}
	appsThere, err := s.existingIn(ctx, tx, checkApps, nil, appIDs)
	if err != nil {
		return nil, importPaths{}, err
	}
	// Accounts and (app, user) pairs already linked, per application.
	accounts := map[string][]string{}
	linkedUsers := map[string][]string{}
	for i, it := range items {
		if l := it.Link; l != nil && !out[i].Skipped && appsThere[l.AppID] {
			accounts[l.AppID] = append(accounts[l.AppID], l.AppAccountID)
			if it.User == nil {
				linkedUsers[l.AppID] = append(linkedUsers[l.AppID], l.UserID)
			}
		}
	}
	accountTaken := map[string]map[string]bool{}
	userLinked := map[string]map[string]bool{}
	for app, accts := range accounts {
		if accountTaken[app], err = s.existingIn(ctx, tx, checkAccounts, []any{app}, accts); err != nil {
			return nil, importPaths{}, err
		}
		if userLinked[app], err = s.existingIn(ctx, tx, checkLinkedUsers, []any{app}, linkedUsers[app]); err != nil {
			return nil, importPaths{}, err
		}
	}
	var todo []int
	for i, it := range items {
		if out[i].Skipped {
			continue
		}
		var e error
		if u := it.User; u != nil {
			switch {
			case u.OrgID != "" && !paths.orgs.has(u.OrgID):
				e = store.NotFound("org")
			case loginTaken[identity.FoldLogin(u.LoginName)]:
				e = conflictIn("login_name", "login name already exists")
			case u.FeatureCode != "" && featureTaken[u.FeatureCode]:
				e = store.Conflict("feature code already exists")
			case u.IDKey != "" && idKeyTaken[u.IDKey]:
				e = identity.ErrIDNumberTaken
			}
		}
		if l := it.Link; l != nil && e == nil {
			switch {
			case it.User == nil && !paths.users.has(l.UserID):
				e = store.NotFound("user")
			case !appsThere[l.AppID]:
				e = store.NotFound("application")
			case accountTaken[l.AppID][l.AppAccountID]:
				e = conflictIn("app_account", "app account is already linked")
			case it.User == nil && userLinked[l.AppID][l.UserID]:
				e = conflictIn("app_code", "user is already linked to this app")
			}
		}
		if e != nil {
			out[i].Err = e
			continue
		}
		todo = append(todo, i)
	}
	return todo, paths, nil
}

// importPaths are the org paths of an import chunk's orgs and of the
// people already there that it links.
type importPaths struct {
	orgs  pathSet // org id -> path
	users pathSet // user id -> org path
}

// linkPath is the org path of the link of item it: its person's.
func (p importPaths) linkPath(it identity.ImportItem) string {
	if it.User != nil {
		return p.orgs[it.User.OrgID]
	}
	return p.users[it.Link.UserID]
}

// pathSet maps ids to paths.
type pathSet map[string]string

func (p pathSet) has(id string) bool { _, ok := p[id]; return ok }

// orgPaths returns the paths of the orgs ids (those that exist), locked
// against a concurrent delete or move on PostgreSQL as checkOrg does.
func (s *Store) orgPaths(ctx context.Context, tx *sql.Tx, ids []string) (pathSet, error) {
	return s.idPaths(ctx, tx, checkOrgPaths, ids)
}

// idPaths runs query (a SELECT of an id and a path ending in "IN ") for
// ids, bulkRows at a time, locking the rows on PostgreSQL, and returns the
// paths of the ids found.
func (s *Store) idPaths(ctx context.Context, tx *sql.Tx, query string, ids []string) (pathSet, error) {
	out := pathSet{}
	err := s.queryIn(ctx, tx, query, s.db.ForShare(), nil, ids, func(rows *sql.Rows) error {
		var id, path string
		if err := rows.Scan(&id, &path); err != nil {
			return err
		}
		out[id] = path
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// existingIn runs query (a SELECT of one text column ending in "IN ")
// with args and then the values of vals, and returns the set of values it
// found.
func (s *Store) existingIn(ctx context.Context, tx *sql.Tx, query string, args []any, vals []string) (map[string]bool, error) {
	found := map[string]bool{}
	err := s.queryIn(ctx, tx, query, "", args, vals, func(rows *sql.Rows) error {
		var v string
		if err := rows.Scan(&v); err != nil {
			return err
		}
		found[v] = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	return found, nil
}

// queryIn runs query (ending in "IN "), completed with the distinct
// values of vals and then tail, with args before the values, and calls
// row for each row. On SQLite the values are one JSON array (json_each),
// so that the statement's text is the same whatever their number and is
// prepared once per connection (s.stmts): an import prepared a statement
// of up to bulkRows placeholders for every check of every chunk, 5% of
// its CPU. On PostgreSQL they are placeholders, bulkRows at a time.
func (s *Store) queryIn(ctx context.Context, tx *sql.Tx, query, tail string, args []any, vals []string, row func(*sql.Rows) error) error {
	vals = distinct(vals)
	for len(vals) > 0 {
		var (
			rows *sql.Rows
			err  error
		)
		if s.db.Dialect == store.SQLite {
			list, jerr := json.Marshal(vals)
			if jerr != nil {
				return jerr
			}
			rows, err = s.stmts.InTx(tx).QueryContext(ctx, query+"(SELECT value FROM json_each(?))"+tail, append(slices.Clip(args), string(list))...)
			vals = nil
		} else {
			n := min(len(vals), bulkRows)
			a := make([]any, 0, len(args)+n)
			a = append(a, args...)
			for _, v := range vals[:n] {
				a = append(a, v)
			}
			rows, err = tx.QueryContext(ctx, s.q(query+"("+placeholders(n)+")"+tail), a...)
			vals = vals[n:]
		}
		if err != nil {
			return err
		}
		for rows.Next() {
			if err := row(rows); err != nil {
				_ = rows.Close()
				return err
			}
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

func distinct(vals []string) []string {
	if len(vals) < 2 {
		return vals
	}
	seen := make(map[string]bool, len(vals))
	out := make([]string, 0, len(vals))
	for _, v := range vals {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// placeholders is "?, ?, ..." (n of them).
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// bulkInsert inserts n rows into table (cols), row(i) giving the values of
// row i: on SQLite with one prepared single-row statement (no statement
// journal, see the top of this file), on PostgreSQL in statements of up to
// bulkRows rows, the statement for a full chunk prepared once.
func (s *Store) bulkInsert(ctx context.Context, tx *sql.Tx, table, cols string, ncols, n int, row func(i int, args []any) []any) error {
	if n == 0 {
		return nil
	}
	if s.db.Dialect == store.SQLite {
		return s.insertEach(ctx, tx, table, cols, ncols, n, row)
	}
	per := max(1, min(bulkRows, bulkParams/ncols))
	tuple := "(" + placeholders(ncols) + ")"
	stmtFor := func(k int) string {
		return s.q("INSERT INTO " + table + " (" + cols + ") VALUES " + strings.TrimSuffix(strings.Repeat(tuple+", ", k), ", "))
	}
	var full *sql.Stmt
	defer func() {
		if full != nil {
			_ = full.Close()
		}
	}()
	args := make([]any, 0, per*ncols)
	for lo := 0; lo < n; lo += per {
		hi := min(lo+per, n)
		args = args[:0]
		for i := lo; i < hi; i++ {
			args = row(i, args)
		}
		var err error
		if hi-lo == per {
			if full == nil {
				if full, err = tx.PrepareContext(ctx, stmtFor(per)); err != nil {
					return err
				}
			}
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, stmtFor(hi-lo), args...)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// insertEach inserts n rows into table (cols) with one prepared
// single-row INSERT. After each row it gives its processor to the
// goroutines waiting for one: a pure-Go password hash gives its own every
// 1-2 ms (ADR 0005), and without this an import's writer, preempted only
// every 10 ms, took the CPUs from the logins' hashes (issue 16). Not while
// another write waits for the database (a login's): then the import
// holds the write lock it waits for, and ends its transaction sooner
// without yielding.
func (s *Store) insertEach(ctx context.Context, tx *sql.Tx, table, cols string, ncols, n int, row func(i int, args []any) []any) error {
	st, err := tx.PrepareContext(ctx, "INSERT INTO "+table+" ("+cols+") VALUES ("+placeholders(ncols)+")")
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }()
	args := make([]any, 0, ncols)
	for i := range n {
		if _, err := st.ExecContext(ctx, row(i, args[:0])...); err != nil {
			return err
		}
		if s.db.WritesWaiting() == 0 {
			runtime.Gosched()
		}
	}
	return nil
}

const userInsertCols = userCols + ", org_path"

func (s *Store) bulkInsertUsers(ctx context.Context, tx *sql.Tx, items []identity.ImportItem, idx []int, paths importPaths) error {
	return s.bulkInsert(ctx, tx, "users", userInsertCols, 31, len(idx), func(k int, a []any) []any {
		u := items[idx[k]].User
		return append(a, u.ID, u.LoginName, u.DisplayName, int(u.IDType), u.IDNumberEnc, u.IDNumberMask, u.PhoneEnc,
			u.PhoneMask, u.Email, store.NullIfEmpty(u.OrgID), int(u.Status), store.NullIfEmpty(u.FeatureCode), u.IsAdmin,
			u.PasswordHash, store.UnixMS(u.PasswordChangedAt), u.MustChange, u.NeverExpires, u.CannotChange,
			u.FailedCount, store.UnixMS(u.LockedUntil), store.UnixMS(u.CreatedAt), store.UnixMS(u.UpdatedAt), u.PasswordOnly,
			store.UnixMS(u.NextAttemptAt), store.NullIfEmpty(u.IDKey), u.PasswordByOther, u.MinAuthLevel,
			store.NullIfEmpty(u.CentresKey), int(identity.StoredUserType(u.UserType)), store.UnixMS(u.StateChangedAt), paths.orgs[u.OrgID])
	})
}

func (s *Store) bulkInsertLinks(ctx context.Context, tx *sql.Tx, items []identity.ImportItem, idx []int, paths importPaths) error {
	return s.bulkInsert(ctx, tx, "account_links", linkCols+", org_path", 7, len(idx), func(k int, a []any) []any {
		it := items[idx[k]]
		l := it.Link
		return append(a, l.ID, l.UserID, l.AppID, l.AppAccountID, int(l.Status), store.UnixMS(l.CreatedAt), paths.linkPath(it))
	})
}

func (s *Store) bulkInsertImportRows(ctx context.Context, tx *sql.Tx, importID string, items []identity.ImportItem, idx []int) error {
	return s.bulkInsert(ctx, tx, "import_rows", "import_id, ext_key, kind, entity_id, created_at", 5, len(idx), func(k int, a []any) []any {
		it := items[idx[k]]
		kind, id := "user", ""
		switch {
		case it.User != nil:
			id = it.User.ID
		default:
			kind, id = "link", it.Link.ID
		}
		return append(a, importID, it.Key, kind, id, store.UnixMS(it.At))
	})
}

// conflictIn is a row's store conflict (ALREADY_EXISTS) naming the column
// of the row that collides (the import report's field), as the checks of
// the rows name theirs.
func conflictIn(field, msg string) error {
	return store.ErrConflict.WithMessage(msg).WithMeta(apierr.MetaField, field)
}
