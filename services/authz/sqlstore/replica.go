package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/authz"
)

var _ authz.ReplicaStore = (*Store)(nil)

// ApplyReplica implements authz.ReplicaStore.
func (s *Store) ApplyReplica(ctx context.Context, expect int64, ws []authz.ReplicaWrite,
	event func(authz.Change) events.Event) ([]authz.ReplicaOutcome, []authz.Change, error) {
	out := make([]authz.ReplicaOutcome, len(ws))
	var committed []authz.Change
	var fnErr error
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		fnErr = func() error {
			committed = committed[:0]
			var rev int64
			if err := tx.QueryRowContext(ctx, `SELECT rev FROM authz_revision WHERE id = 1`+s.db.ForUpdate()).Scan(&rev); err != nil {
				return err
			}
			if rev != expect {
				return authz.ErrStale
			}
			version, err := tx.PrepareContext(ctx, s.q(`SELECT version FROM authz_replica_versions WHERE obj = ? AND id = ?`))
			if err != nil {
				return err
			}
			defer func() { _ = version.Close() }()
			record, err := tx.PrepareContext(ctx, s.q(`INSERT INTO authz_replica_versions (obj, id, origin, version, event_id)
				VALUES (?, ?, ?, ?, ?) ON CONFLICT (obj, id) DO UPDATE SET origin = excluded.origin,
				version = excluded.version, event_id = excluded.event_id`))
			if err != nil {
				return err
			}
			defer func() { _ = record.Close() }()
			now := store.UnixMS(time.Now())
			for i := range ws {
				w := &ws[i]
				var cur int64
				err := version.QueryRowContext(ctx, w.Change.Obj, w.Change.ID).Scan(&cur)
				switch {
				case err == nil && uint64(cur) >= w.Version:
					out[i] = authz.ReplicaStale
					continue
				case err != nil && !errors.Is(err, sql.ErrNoRows):
					return err
				}
				out[i] = authz.ReplicaApplied
				if _, err := record.ExecContext(ctx, w.Change.Obj, w.Change.ID, w.Origin, int64(w.Version), w.EventID); err != nil {
					return err
				}
				ch := w.Change
				ch.Rev = rev + 1
				switch ch.Op {
				case authz.OpPut:
					if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO authz_objects (obj, id, data, rev) VALUES (?, ?, ?, ?)
						ON CONFLICT (obj, id) DO UPDATE SET data = excluded.data, rev = excluded.rev`),
						ch.Obj, ch.ID, string(ch.Data), ch.Rev); err != nil {
						return err
					}
				case authz.OpDelete:
					res, err := tx.ExecContext(ctx, s.q(`DELETE FROM authz_objects WHERE obj = ? AND id = ?`), ch.Obj, ch.ID)
					if err != nil {
						return err
					}
					if n, err := res.RowsAffected(); err != nil {
						return err
					} else if n == 0 {
						continue // not held: nothing to change, the version is kept
					}
					ch.Data = nil
				default:
					return fmt.Errorf("unknown change op %q", ch.Op)
				}
				var data any
				if ch.Data != nil {
					data = string(ch.Data)
				}
				if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO authz_changes (rev, obj, op, id, data, created_at) VALUES (?, ?, ?, ?, ?, ?)`),
					ch.Rev, ch.Obj, ch.Op, ch.ID, data, now); err != nil {
					return err
				}
				if event != nil {
					if err := addEvents(ctx, tx, s.db, []events.Event{event(ch)}); err != nil {
						return err
					}
				}
				rev = ch.Rev
				committed = append(committed, ch)
			}
			if rev == expect {
				return nil
			}
			res, err := tx.ExecContext(ctx, s.q(`UPDATE authz_revision SET rev = ? WHERE id = 1 AND rev = ?`), rev, expect)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				return authz.ErrStale
			}
			return nil
		}()
		return fnErr
	})
	if err != nil {
		if fnErr != nil {
			err = fnErr
		}
		return nil, nil, classify(err, "apply replica")
	}
	return out, committed, nil
}

// ReplicaOrigin implements authz.ReplicaStore.
func (s *Store) ReplicaOrigin(ctx context.Context, obj, id string) (string, bool, error) {
	var origin string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT origin FROM authz_replica_versions WHERE obj = ? AND id = ?`), obj, id).Scan(&origin)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, classify(err, "replica origin")
	}
	return origin, true, nil
}

// EachObject implements authz.ReplicaStore.
func (s *Store) EachObject(ctx context.Context, fn func(obj, id string, data []byte, origin string) error) error {
	rows, err := s.db.QueryContext(ctx, `SELECT o.obj, o.id, o.data, COALESCE(v.origin, '') FROM authz_objects o
		LEFT JOIN authz_replica_versions v ON v.obj = o.obj AND v.id = o.id ORDER BY o.obj, o.id`)
	if err != nil {
		return classify(err, "objects")
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var obj, id, origin string
		var data []byte
		if err := rows.Scan(&obj, &id, &data, &origin); err != nil {
			return classify(err, "objects")
		}
		if err := fn(obj, id, data, origin); err != nil {
			return err
		}
	}
	return classify(rows.Err(), "objects")
}
