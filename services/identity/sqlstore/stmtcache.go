package sqlstore

import (
	"context"
	"database/sql"
	"sync"
)

// stmtCache keeps prepared statements for the hot single-row reads
// (Authenticate, caller authentication, GetUser), so their SQL is parsed
// once per pooled connection instead of on every call: with SQLite, parsing
// the wide user SELECT cost more than running it. Only fixed query strings
// go through it, so it stays small; statements are closed with the DB.
type stmtCache struct {
	mu sync.RWMutex
	m  map[string]*sql.Stmt
}

// queryRow is s.db.QueryRowContext through the statement cache. If the
// statement cannot be prepared the query runs unprepared (and reports the
// same error, if any, through Scan).
func (s *Store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if st := s.stmts.get(ctx, s.db.DB, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return s.db.QueryRowContext(ctx, query, args...)
}

func (c *stmtCache) get(ctx context.Context, db *sql.DB, query string) *sql.Stmt {
	c.mu.RLock()
	st := c.m[query]
	c.mu.RUnlock()
	if st != nil {
		return st
	}
	st, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[query]; old != nil {
		_ = st.Close()
		return old
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[query] = st
	return st
}

// pooled is a querier on the pool whose single-row reads use the cache.
type pooled struct{ s *Store }

func (p pooled) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return p.s.queryRow(ctx, query, args...)
}

func (p pooled) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return p.s.db.QueryContext(ctx, query, args...)
}

func (p pooled) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return p.s.db.ExecContext(ctx, query, args...)
}
