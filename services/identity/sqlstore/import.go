package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
)

// errDryRun rolls a dry run's transaction back.
var errDryRun = errors.New("dry run")

// errRowFailed ends a batch's first attempt: an item failed.
var errRowFailed = errors.New("an import row failed")

// importYieldMax bounds how long an import lets waiting writes go first
// before its next transaction (a steady stream of logins cannot stop it).
const importYieldMax = 200 * time.Millisecond

// YieldWrites implements identity.Store: on SQLite it waits (at most
// importYieldMax) until no transaction waits for the write lock; on
// PostgreSQL it returns at once.
func (s *Store) YieldWrites(ctx context.Context) error {
	return s.db.YieldWrites(ctx, importYieldMax)
}

// ImportBatch writes items in one transaction; rows whose key this import
// already wrote are skipped. evs gets the items written and returns the
// events to write with them. A dry run checks everything and rolls back.
//
// Users and links go through the bulk path (importbulk.go), chunk rows at
// a time (chunk > 0): on SQLite the transaction ends after the chunk
// during which another write began to wait for the database (a login's),
// and the results cover the items written so far. Orgs are
// first tried without savepoints: a savepoint per row makes
// SQLite's FTS5 search index flush its pending terms at every row, which
// makes each row slower the more there are. If any item fails, that
// attempt is rolled back and the batch is written again with each item in
// a savepoint of its own, so a failing row leaves the others.
func (s *Store) ImportBatch(ctx context.Context, importID string, items []identity.ImportItem, dryRun bool, chunk int,
	evs func(written []identity.ImportItem) []events.Event) ([]identity.ImportResult, error) {
	var (
		out []identity.ImportResult
		err error
	)
	if bulkable(items) {
		out, err = s.importBulk(ctx, importID, items, dryRun, chunk, evs)
	} else {
		out, err = s.importBatch(ctx, importID, items, dryRun, evs, false)
	}
	if errors.Is(err, errRowFailed) {
		out, err = s.importBatch(ctx, importID, items, dryRun, evs, true)
	}
	return out, err
}

func (s *Store) importBatch(ctx context.Context, importID string, items []identity.ImportItem, dryRun bool,
	evs func(written []identity.ImportItem) []events.Event, savepoints bool) ([]identity.ImportResult, error) {
	out := make([]identity.ImportResult, len(items))
	err := s.importTx(ctx, func(tx *sql.Tx) error {
		var written []identity.ImportItem
		for i, it := range items {
			if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM import_rows WHERE import_id = ? AND ext_key = ?", importID, it.Key); err != nil {
				return err
			} else if ok {
				out[i].Skipped = true
				continue
			}
			if !savepoints {
				if err := s.importItem(ctx, tx, importID, it); err != nil {
					c := classify(err, "import", "")
					if errors.Is(c, store.ErrUnavailable) || ctx.Err() != nil {
						return c
					}
					return errRowFailed
				}
				written = append(written, it)
				continue
			}
			sp := fmt.Sprintf("import_row_%d", i)
			if _, err := tx.ExecContext(ctx, "SAVEPOINT "+sp); err != nil {
				return err
			}
			err := s.importItem(ctx, tx, importID, it)
			if err != nil {
				if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+sp); rerr != nil {
					return rerr
				}
				c := classify(err, "import", "")
				if errors.Is(c, store.ErrUnavailable) || ctx.Err() != nil {
					return c
				}
				out[i].Err = c
				continue
			}
			if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT "+sp); err != nil {
				return err
			}
			written = append(written, it)
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
	return out, nil
}

func (s *Store) importItem(ctx context.Context, tx *sql.Tx, importID string, it identity.ImportItem) error {
	var kind, id string
	switch {
	case it.Org != nil:
		kind, id = "org", it.Org.ID
		if err := s.createOrgTx(ctx, tx, it.Org); err != nil {
			return err
		}
	case it.User != nil:
		kind, id = "user", it.User.ID
		if err := s.createUserTx(ctx, tx, it.User); err != nil {
			return err
		}
	}
	if it.Link != nil {
		if kind == "" {
			kind, id = "link", it.Link.ID
		}
		if err := s.createLinkTx(ctx, tx, it.Link); err != nil {
			return err
		}
	}
	if kind == "" {
		return errors.New("empty import item")
	}
	_, err := tx.ExecContext(ctx, s.q("INSERT INTO import_rows (import_id, ext_key, kind, entity_id, created_at) VALUES (?, ?, ?, ?, ?)"),
		importID, it.Key, kind, id, store.UnixMS(it.At))
	return err
}
