// Package sqlstore implements sync.Store on SQL databases (SQLite and
// PostgreSQL) through pkg/store.
package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
	usync "github.com/uias/uias/services/sync"
)

// Component is the name under which the sync migrations are recorded.
const Component = "sync"

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

// Store is the SQL implementation of sync.Store.
type Store struct {
	db *store.DB
}

var _ usync.Store = (*Store)(nil)

// New returns a Store on db. Run Migrate first.
func New(db *store.DB) *Store { return &Store{db: db} }

// outboxMigration is the migration that creates sync's events outbox
// (the audit records of administrators' changes, sent by the relay).
const outboxMigration = "0005_events_outbox.sql"

// Migrate brings the sync schema (and its events outbox) up to date.
func Migrate(ctx context.Context, db *store.DB) error {
	return events.MigrateWithOutbox(ctx, db, Component, migrationFiles, outboxMigration)
}

func classify(err error, op string) error {
	if err == nil {
		return nil
	}
	err = store.Classify(err)
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("sync store: %s: %w", op, err)
}

// Ping implements sync.Store.
func (s *Store) Ping(ctx context.Context) error { return classify(s.db.PingContext(ctx), "ping") }

// Apply implements sync.Store. The cursor row is locked first (PostgreSQL:
// SELECT ... FOR UPDATE; SQLite transactions take the write lock when they
// begin), so two replicas applying the same link apply each item once.
//
// A batch costs a few statements whatever its size (a catch-up applies
// thousands of changes per second): the applied event ids and the objects
// the batch names are read in one query each, the changes are decided in
// memory in order (each sees the ones before it in the batch), and the
// objects' last states, the applied ids and the skipped changes are written
// in multi-row statements.
func (s *Store) Apply(ctx context.Context, link string, items []usync.Item, now time.Time) ([]usync.Outcome, error) {
	out := make([]usync.Outcome, len(items))
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		clear(out)
		q := func(query string) string { return s.db.Rebind(query) }
		if _, err := tx.ExecContext(ctx, q(`INSERT INTO sync_cursors (link, seq, applied, skipped, last_applied_ms)
			VALUES (?, 0, 0, 0, 0) ON CONFLICT (link) DO NOTHING`), link); err != nil {
			return classify(err, "create cursor")
		}
		var cur usync.Cursor
		var lastMS int64
		if err := tx.QueryRowContext(ctx, q("SELECT seq, applied, skipped, duplicates, last_applied_ms FROM sync_cursors WHERE link = ?"+
			s.db.ForUpdate()), link).Scan(&cur.Seq, &cur.Applied, &cur.Skipped, &cur.Duplicates, &lastMS); err != nil {
			return classify(err, "lock cursor")
		}
		// The items past the cursor that carry a change.
		var todo []int
		for i, it := range items {
			if it.Seq <= cur.Seq {
				continue
			}
			cur.Seq = it.Seq
			if it.Change != nil {
				todo = append(todo, i)
			}
		}
		b, err := s.readBatch(ctx, tx, items, todo)
		if err != nil {
			return err
		}
		nowMS := store.UnixMS(now)
		for _, i := range todo {
			c := *items[i].Change
			oc, rows := b.decide(c, nowMS)
			out[i] = oc
			switch oc {
			case usync.Applied:
				cur.Applied++
				lastMS = nowMS
				cur.Skipped += int64(rows) // objects of it refused
			case usync.Duplicate:
				cur.Duplicates++
			default:
				cur.Skipped += int64(rows)
			}
		}
		if err := s.resolveSettled(ctx, tx, b.settles, nowMS); err != nil {
			return err
		}
		if err := s.writeBatch(ctx, tx, b, nowMS); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, q(`UPDATE sync_cursors SET seq = ?, applied = ?, skipped = ?, duplicates = ?, last_applied_ms = ?
			WHERE link = ?`), int64(cur.Seq), cur.Applied, cur.Skipped, cur.Duplicates, lastMS, link)
		return classify(err, "move cursor")
	})
	if err != nil {
		return nil, classify(err, "apply")
	}
	return out, nil
}

// objectKey names an object of the replica.
type objectKey struct{ kind, id string }

// applyBatch is what one Apply transaction reads and will write.
type applyBatch struct {
	// seen: event ids applied before or earlier in the batch.
	seen map[string]bool
	// refusedBefore: event ids recorded as refused before (a stream copied
	// again brings them once more: a replay, review sec17 N1).
	refusedBefore map[string]bool
	// objects: the objects the batch names, as the batch leaves them (nil:
	// none yet); dirty the keys to write, in the order first changed.
	objects map[objectKey]*usync.Object
	dirty   []objectKey
	isDirty map[objectKey]bool
	applied []any // rows of sync_applied (appliedCols values each)
	skipped []skippedRow
	// openAt: the rows of skipped that are conflicts, by origin and
	// object root (objectRoot), for settled to find without a scan
	openAt map[[2]string][]int
	// settles: the keys of the objects applied, in order, with the event
	// that applied each: the open conflicts of earlier batches they settle
	// are resolved (resolveSettled); those of this batch at once.
	settles []settle
}

// skippedRow is a row of sync_skipped to write.
type skippedRow struct {
	c          usync.Change
	have       uint64
	reason     usync.Outcome
	object     string
	resolvedBy string
	resolvedMS int64
	atMS       int64
}

// settle is an object applied: its key and the change's event id.
type settle struct{ key, origin, eventID string }

const (
	appliedCols = 6
	skippedCols = 12
	objectCols  = 9
	// rowsPerStatement bounds the rows of one multi-row statement (under
	// SQLite's and PostgreSQL's limits on bound values).
	rowsPerStatement = 500
)

// objectRoot is a key's object: up to its first "/".
func objectRoot(key string) string {
	root, _, _ := strings.Cut(key, "/")
	return root
}

// conflicts records the CONFLICT objects of c (one row for c itself,
// naming no object, when c is refused and names none); it returns how
// many rows it recorded.
func (b *applyBatch) conflicts(c usync.Change, have uint64, nowMS int64) int {
	n := 0
	for _, o := range c.Objects {
		if o.Outcome == usync.Conflict {
			if b.openAt == nil {
				b.openAt = map[[2]string][]int{}
			}
			at := [2]string{c.Origin, objectRoot(o.Key)}
			b.openAt[at] = append(b.openAt[at], len(b.skipped))
			b.skipped = append(b.skipped, skippedRow{c: c, have: have, reason: usync.Conflict, object: o.Key, atMS: nowMS})
			n++
		}
	}
	if n == 0 && c.Refused != "" {
		b.skipped = append(b.skipped, skippedRow{c: c, have: have, reason: c.Refused, atMS: nowMS})
		n++
	}
	return n
}

// settled resolves the open conflicts of this batch that the APPLIED
// objects of c settle, and keeps their keys for those of earlier batches.
func (b *applyBatch) settled(c usync.Change, nowMS int64) {
	for _, o := range c.Objects {
		if o.Outcome != usync.Applied || o.Key == "" {
			continue
		}
		b.settles = append(b.settles, settle{key: o.Key, origin: c.Origin, eventID: c.EventID})
		for _, i := range b.openAt[[2]string{c.Origin, objectRoot(o.Key)}] {
			if k := &b.skipped[i]; k.resolvedMS == 0 && usync.Settles(o.Key, k.object) {
				k.resolvedMS, k.resolvedBy = nowMS, c.EventID
			}
		}
	}
}

// decide decides change c against the batch so far and records its rows;
// it returns the outcome and the number of skipped rows it recorded.
func (b *applyBatch) decide(c usync.Change, nowMS int64) (usync.Outcome, int) {
	skip := func(reason usync.Outcome, have uint64) (usync.Outcome, int) {
		b.skipped = append(b.skipped, skippedRow{c: c, have: have, reason: reason, atMS: nowMS})
		return reason, 1
	}
	if c.ObjectID == "" || c.Kind == "" || c.EventID == "" {
		return skip(usync.Invalid, 0)
	}
	k := objectKey{c.Kind, c.ObjectID}
	cur := b.objects[k]
	var have uint64
	if cur != nil {
		have = cur.Version
	}
	if c.Refused != "" {
		if b.refusedBefore[c.EventID] {
			return skip(usync.Duplicate, have)
		}
		b.refusedBefore[c.EventID] = true
		return c.Refused, b.conflicts(c, have, nowMS)
	}
	oc, next := usync.Decide(cur, b.seen[c.EventID], c)
	if oc != usync.Applied {
		return skip(oc, have)
	}
	// the objects it applied settle earlier conflicts; those of an
	// import or resend the owning component refused are conflicts of
	// their own (after: a group of a resend applied whole with a member
	// left out leaves that membership open)
	b.settled(c, nowMS)
	n := b.conflicts(c, have, nowMS)
	if !b.isDirty[k] {
		b.isDirty[k] = true
		b.dirty = append(b.dirty, k)
	}
	b.objects[k] = next
	b.seen[c.EventID] = true
	b.applied = append(b.applied, c.EventID, c.Origin, c.Kind, c.ObjectID, int64(c.Version), nowMS)
	return usync.Applied, n
}

// readIDs runs query (its "%s" the placeholders) over ids, a chunk at a
// time, and sets into[id] for each id it answers.
func (s *Store) readIDs(ctx context.Context, tx *sql.Tx, query string, ids []any, into map[string]bool, op string) error {
	for part := range slices.Chunk(ids, rowsPerStatement) {
		rows, err := tx.QueryContext(ctx, s.db.Rebind(fmt.Sprintf(query, store.Placeholders(len(part)))), part...)
		if err != nil {
			return classify(err, op)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return classify(err, op)
			}
			into[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return classify(err, op)
		}
	}
	return nil
}

// readBatch reads, for the changes of items at todo, which event ids were
// applied (or refused) before and the current replica of each object they
// name.
func (s *Store) readBatch(ctx context.Context, tx *sql.Tx, items []usync.Item, todo []int) (*applyBatch, error) {
	b := &applyBatch{seen: map[string]bool{}, refusedBefore: map[string]bool{}, objects: map[objectKey]*usync.Object{},
		isDirty: map[objectKey]bool{}}
	var evs, refused []any
	byKind := map[string][]any{}
	want := map[objectKey]bool{}
	for _, i := range todo {
		c := items[i].Change
		if c.EventID != "" {
			evs = append(evs, c.EventID)
			if c.Refused != "" {
				refused = append(refused, c.EventID)
			}
		}
		k := objectKey{c.Kind, c.ObjectID}
		if c.Kind != "" && c.ObjectID != "" && !want[k] {
			want[k] = true
			byKind[c.Kind] = append(byKind[c.Kind], c.ObjectID)
		}
	}
	if err := s.readIDs(ctx, tx, "SELECT event_id FROM sync_applied WHERE event_id IN (%s)", evs, b.seen, "read applied"); err != nil {
		return nil, err
	}
	if err := s.readIDs(ctx, tx, "SELECT DISTINCT event_id FROM sync_skipped WHERE reason = 'CONFLICT' AND event_id IN (%s)",
		refused, b.refusedBefore, "read refused"); err != nil {
		return nil, err
	}
	kinds := make([]string, 0, len(byKind))
	for k := range byKind {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, kind := range kinds {
		for part := range slices.Chunk(byKind[kind], rowsPerStatement) {
			rows, err := tx.QueryContext(ctx, s.db.Rebind("SELECT id, home, version, event_id, op, deleted, data FROM sync_objects "+
				"WHERE kind = ? AND id IN ("+store.Placeholders(len(part))+")"), append([]any{kind}, part...)...)
			if err != nil {
				return nil, classify(err, "read objects")
			}
			for rows.Next() {
				o := &usync.Object{Kind: kind}
				var version int64
				var deleted int
				var data string
				if err := rows.Scan(&o.ID, &o.Home, &version, &o.EventID, &o.Op, &deleted, &data); err != nil {
					rows.Close()
					return nil, classify(err, "read objects")
				}
				o.Version, o.Deleted, o.Data = uint64(version), deleted != 0, []byte(data)
				b.objects[objectKey{kind, o.ID}] = o
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, classify(err, "read objects")
			}
		}
	}
	return b, nil
}

// resolveSettled marks the open conflicts of earlier batches that the
// objects applied settle as resolved by the first change settling each.
// Open conflicts are few (each is a collision an operator mends): they
// are read by the objects' roots, and matched here.
func (s *Store) resolveSettled(ctx context.Context, tx *sql.Tx, settles []settle, nowMS int64) error {
	if len(settles) == 0 {
		return nil
	}
	// mostly there are none (a catch-up applies thousands of changes a
	// second): one look at the index of open conflicts
	var one int
	err := tx.QueryRowContext(ctx, "SELECT 1 FROM sync_skipped WHERE reason = 'CONFLICT' AND resolved_ms = 0 LIMIT 1").Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return classify(err, "look for open conflicts")
	}
	roots := map[string][]any{} // origin -> roots
	seen := map[[2]string]bool{}
	for _, st := range settles {
		k := [2]string{st.origin, objectRoot(st.key)}
		if !seen[k] {
			seen[k] = true
			roots[st.origin] = append(roots[st.origin], k[1])
		}
	}
	type open struct {
		seq            int64
		origin, object string
	}
	var opens []open
	for origin, rs := range roots {
		for part := range slices.Chunk(rs, rowsPerStatement) {
			rows, err := tx.QueryContext(ctx, s.db.Rebind(`SELECT seq, object FROM sync_skipped
				WHERE reason = 'CONFLICT' AND resolved_ms = 0 AND origin = ? AND object_root IN (`+store.Placeholders(len(part))+`)
				ORDER BY seq`), append([]any{origin}, part...)...)
			if err != nil {
				return classify(err, "read open conflicts")
			}
			for rows.Next() {
				o := open{origin: origin}
				if err := rows.Scan(&o.seq, &o.object); err != nil {
					rows.Close()
					return classify(err, "read open conflicts")
				}
				opens = append(opens, o)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return classify(err, "read open conflicts")
			}
		}
	}
	for _, o := range opens {
		for _, st := range settles {
			if st.origin != o.origin || !usync.Settles(st.key, o.object) {
				continue
			}
			if _, err := tx.ExecContext(ctx, s.db.Rebind("UPDATE sync_skipped SET resolved_ms = ?, resolved_by = ? WHERE seq = ?"),
				nowMS, st.eventID, o.seq); err != nil {
				return classify(err, "resolve conflict")
			}
			break
		}
	}
	return nil
}

// writeBatch writes what decide recorded: each changed object's last
// state, the applied event ids and the skipped changes.
func (s *Store) writeBatch(ctx context.Context, tx *sql.Tx, b *applyBatch, nowMS int64) error {
	skipped := make([]any, 0, skippedCols*len(b.skipped))
	for _, k := range b.skipped {
		skipped = append(skipped, k.c.EventID, k.c.Origin, k.c.Kind, k.c.ObjectID, int64(k.c.Version), int64(k.have),
			string(k.reason), k.atMS, k.object, objectRoot(k.object), k.resolvedMS, k.resolvedBy)
	}
	objs := make([]any, 0, objectCols*len(b.dirty))
	for _, k := range b.dirty {
		o := b.objects[k]
		objs = append(objs, o.Kind, o.ID, o.Home, int64(o.Version), o.EventID, o.Op, boolInt(o.Deleted), string(o.Data), nowMS)
	}
	for _, w := range []struct {
		op, head, tail string
		cols           int
		vals           []any
	}{
		{"write objects", "INSERT INTO sync_objects (kind, id, home, version, event_id, op, deleted, data, updated_ms) VALUES ",
			` ON CONFLICT (kind, id) DO UPDATE SET home = excluded.home, version = excluded.version, event_id = excluded.event_id,
			op = excluded.op, deleted = excluded.deleted, data = excluded.data, updated_ms = excluded.updated_ms`, objectCols, objs},
		{"record applied", "INSERT INTO sync_applied (event_id, origin, kind, object_id, version, applied_ms) VALUES ", "",
			appliedCols, b.applied},
		{"record skipped", `INSERT INTO sync_skipped (event_id, origin, kind, object_id, version, applied_version, reason, at_ms,
			object, object_root, resolved_ms, resolved_by) VALUES `, "", skippedCols, skipped},
	} {
		for part := range slices.Chunk(w.vals, w.cols*rowsPerStatement) {
			row := "(" + store.Placeholders(w.cols) + ")"
			query := w.head + strings.Repeat(row+", ", len(part)/w.cols-1) + row + w.tail
			if _, err := tx.ExecContext(ctx, s.db.Rebind(query), part...); err != nil {
				return classify(err, w.op)
			}
		}
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) object(ctx context.Context, q querier, kind, id string) (*usync.Object, error) {
	o := &usync.Object{Kind: kind, ID: id}
	var version int64
	var deleted int
	var data string
	err := q.QueryRowContext(ctx, s.db.Rebind("SELECT home, version, event_id, op, deleted, data FROM sync_objects WHERE kind = ? AND id = ?"),
		kind, id).Scan(&o.Home, &version, &o.EventID, &o.Op, &deleted, &data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.NotFound("replica of " + kind + " " + id)
	}
	if err != nil {
		return nil, classify(err, "read object")
	}
	o.Version, o.Deleted, o.Data = uint64(version), deleted != 0, []byte(data)
	return o, nil
}

// Object implements sync.Store.
func (s *Store) Object(ctx context.Context, kind, id string) (*usync.Object, error) {
	return s.object(ctx, s.db, kind, id)
}

// Cursor implements sync.Store.
func (s *Store) Cursor(ctx context.Context, link string) (usync.Cursor, error) {
	c := usync.Cursor{Link: link}
	var seq, lastMS int64
	err := s.db.QueryRowContext(ctx, s.db.Rebind("SELECT seq, applied, skipped, duplicates, last_applied_ms FROM sync_cursors WHERE link = ?"),
		link).Scan(&seq, &c.Applied, &c.Skipped, &c.Duplicates, &lastMS)
	if errors.Is(err, sql.ErrNoRows) {
		return c, nil
	}
	if err != nil {
		return c, classify(err, "read cursor")
	}
	c.Seq = uint64(seq)
	if lastMS > 0 {
		c.LastApplied = store.FromUnixMS(lastMS)
	}
	return c, nil
}

// Cursors implements sync.Store.
func (s *Store) Cursors(ctx context.Context) ([]usync.Cursor, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT link, seq, applied, skipped, duplicates, last_applied_ms FROM sync_cursors ORDER BY link")
	if err != nil {
		return nil, classify(err, "read cursors")
	}
	defer rows.Close()
	var out []usync.Cursor
	for rows.Next() {
		var c usync.Cursor
		var seq, lastMS int64
		if err := rows.Scan(&c.Link, &seq, &c.Applied, &c.Skipped, &c.Duplicates, &lastMS); err != nil {
			return nil, classify(err, "read cursors")
		}
		c.Seq = uint64(seq)
		if lastMS > 0 {
			c.LastApplied = store.FromUnixMS(lastMS)
		}
		out = append(out, c)
	}
	return out, classify(rows.Err(), "read cursors")
}

// ListSkipped implements sync.Store.
func (s *Store) ListSkipped(ctx context.Context, f usync.SkippedFilter, size int, token string) ([]usync.Skipped, string, error) {
	if size <= 0 {
		size = 50
	}
	var w store.Where
	if f.Open {
		w.Add("reason = 'CONFLICT' AND resolved_ms = 0")
	}
	if token != "" {
		after, err := store.PageAfter(token)
		if err != nil {
			return nil, "", err
		}
		n, err := strconv.ParseInt(after, 10, 64)
		if err != nil {
			return nil, "", store.ErrBadPageToken
		}
		w.Add("seq < ?", n)
	}
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT seq, event_id, origin, kind, object_id, version, applied_version, reason, at_ms,
		object, resolved_ms, resolved_by FROM sync_skipped`+w.SQL()+" ORDER BY seq DESC LIMIT ?"), append(w.Args(), size+1)...)
	if err != nil {
		return nil, "", classify(err, "list skipped")
	}
	defer rows.Close()
	var out []usync.Skipped
	var seqs []int64
	for rows.Next() {
		var k usync.Skipped
		var seq, v, av, at, resolved int64
		var reason string
		if err := rows.Scan(&seq, &k.EventID, &k.Origin, &k.Kind, &k.ObjectID, &v, &av, &reason, &at,
			&k.Object, &resolved, &k.ResolvedBy); err != nil {
			return nil, "", classify(err, "list skipped")
		}
		k.Version, k.AppliedVersion, k.Reason, k.Time = uint64(v), uint64(av), usync.Outcome(reason), store.FromUnixMS(at)
		if resolved != 0 {
			k.Resolved = store.FromUnixMS(resolved)
		}
		out = append(out, k)
		seqs = append(seqs, seq)
	}
	if err := rows.Err(); err != nil {
		return nil, "", classify(err, "list skipped")
	}
	next := ""
	if len(out) > size {
		out = out[:size]
		next = store.PageToken(strconv.FormatInt(seqs[size-1], 10))
	}
	return out, next, nil
}

// ResolveConflicts implements sync.Store.
func (s *Store) ResolveConflicts(ctx context.Context, eventID, object, by string, at time.Time, record usync.ResolveRecord) (int64, error) {
	var w store.Where
	w.Add("reason = 'CONFLICT' AND resolved_ms = 0")
	w.Add("event_id = ?", eventID)
	if object != "" {
		w.Add("object = ?", object)
	}
	var n int64
	var none error
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.db.Rebind("UPDATE sync_skipped SET resolved_ms = ?, resolved_by = ?"+w.SQL()),
			append([]any{store.UnixMS(at), by}, w.Args()...)...)
		if err != nil {
			return classify(err, "resolve conflicts")
		}
		if n, err = res.RowsAffected(); err != nil {
			return classify(err, "resolve conflicts")
		}
		if n == 0 {
			none = store.NotFound("open conflict of change " + eventID)
		}
		if record == nil {
			return nil
		}
		// the record of what was done (or refused), with it
		return classify(events.AddAllToOutbox(ctx, tx, s.db, []events.Event{record(n, none)}), "record the resolution")
	})
	if err != nil {
		return 0, err
	}
	return n, none
}

// OpenConflicts implements sync.Store.
func (s *Store) OpenConflicts(ctx context.Context) (map[string]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT origin, COUNT(*) FROM sync_skipped WHERE reason = 'CONFLICT' AND resolved_ms = 0
		GROUP BY origin`)
	if err != nil {
		return nil, classify(err, "count open conflicts")
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var origin string
		var n int64
		if err := rows.Scan(&origin, &n); err != nil {
			return nil, classify(err, "count open conflicts")
		}
		out[origin] = n
	}
	return out, classify(rows.Err(), "count open conflicts")
}

// Digest implements sync.Store: SHA-256 over the rows of each table in
// key order (sorted by bytes here, so SQLite and PostgreSQL collations
// agree), leaving out what differs between centres by nature (when a row
// was applied).
func (s *Store) Digest(ctx context.Context, f usync.DigestFilter) ([]usync.TableDigest, error) {
	objects, err := s.digest(ctx, "objects", "SELECT kind, id, home, version, event_id, op, deleted, data FROM sync_objects", "home", "kind", f)
	if err != nil {
		return nil, err
	}
	applied, err := s.digest(ctx, "applied", "SELECT event_id, origin, kind, object_id, version FROM sync_applied", "origin", "kind", f)
	if err != nil {
		return nil, err
	}
	return []usync.TableDigest{objects, applied}, nil
}

func (s *Store) digest(ctx context.Context, table, base, homeCol, kindCol string, f usync.DigestFilter) (usync.TableDigest, error) {
	var w store.Where
	if len(f.Homes) > 0 {
		args := make([]any, len(f.Homes))
		for i, h := range f.Homes {
			args[i] = h
		}
		w.Add(homeCol+" IN ("+store.Placeholders(len(f.Homes))+")", args...)
	}
	if len(f.KindPrefixes) > 0 {
		conds := make([]string, len(f.KindPrefixes))
		args := make([]any, 0, 2*len(f.KindPrefixes))
		for i, p := range f.KindPrefixes {
			conds[i] = "substr(" + kindCol + ", 1, ?) = ?"
			args = append(args, len(p), p)
		}
		w.Add("("+strings.Join(conds, " OR ")+")", args...)
	}
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(base+w.SQL()), w.Args()...)
	if err != nil {
		return usync.TableDigest{}, classify(err, "digest "+table)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return usync.TableDigest{}, classify(err, "digest "+table)
	}
	var lines []string
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return usync.TableDigest{}, classify(err, "digest "+table)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = strconv.Quote(v.String)
		}
		lines = append(lines, strings.Join(parts, "\t"))
	}
	if err := rows.Err(); err != nil {
		return usync.TableDigest{}, classify(err, "digest "+table)
	}
	slices.Sort(lines)
	h := sha256.New()
	for _, l := range lines {
		h.Write([]byte(l))
		h.Write([]byte{'\n'})
	}
	return usync.TableDigest{Table: table, Rows: int64(len(lines)), SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}
