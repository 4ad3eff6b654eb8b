package sqlstore

import (
	"context"
	"database/sql"
	"errors"
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
	err := s.inTx(ctx, "apply replica", func(tx *sql.Tx) error {
		committed = committed[:0]
		if err := s.lockRevision(ctx, tx, expect); err != nil {
			return err
		}
		rev := expect
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
			held, err := s.applyChange(ctx, tx, &ch, now)
			if err != nil {
				return err
			}
			if !held {
				continue // not held: nothing to change, the version is kept
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
		return s.moveRevision(ctx, tx, expect, rev)
	})
	if err != nil {
		return nil, nil, err
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
