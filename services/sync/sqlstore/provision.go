package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/sync/provision"
)

// Provision is the SQL implementation of provision.Store, on the sync
// component's database (tables prov_*).
type Provision struct {
	db  *store.DB
	box provision.SecretBox
}

var _ provision.Store = (*Provision)(nil)

// NewProvision returns the provisioning store on db (run Migrate first);
// box seals the subscriptions' secrets.
func NewProvision(db *store.DB, box provision.SecretBox) *Provision {
	return &Provision{db: db, box: box}
}

func secretLabel(id string) []byte { return []byte("uias sync subscription " + id) }

// ---- subscriptions ----

type selectionJSON struct {
	Orgs   []string `json:"orgs,omitempty"`
	Roles  []string `json:"roles,omitempty"`
	Groups []string `json:"groups,omitempty"`
	Linked bool     `json:"linked,omitempty"`
}

func (p *Provision) sealed(s *provision.Subscription) (string, error) {
	if s.Secret == "" {
		return "", nil
	}
	return p.box.Seal([]byte(s.Secret), secretLabel(s.ID))
}

// CreateSubscription implements provision.Store.
func (p *Provision) CreateSubscription(ctx context.Context, s *provision.Subscription) error {
	sec, err := p.sealed(s)
	if err != nil {
		return err
	}
	sel, _ := json.Marshal(selectionJSON(s.Selection))
	set, _ := json.Marshal(s.Settings)
	_, err = p.db.ExecContext(ctx, p.db.Rebind(`INSERT INTO prov_subscriptions (id, app, name, selection, transport, endpoint,
		settings, secret_sealed, strategy, batch_every_s, enabled, created_ms, updated_ms, last_batch_ms, initial_batch,
		batch_at, batch_tz, deliver_roles)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, '', ?, ?, ?)`),
		s.ID, s.App, s.Name, string(sel), s.Transport, s.Endpoint, string(set), sec, s.Strategy,
		int64(s.BatchEvery/time.Second), boolInt(s.Enabled), store.UnixMS(s.CreatedAt), store.UnixMS(s.UpdatedAt),
		s.BatchAt, s.BatchTimeZone, boolInt(s.DeliverRoles))
	if store.IsUniqueViolation(err) {
		return store.Conflict("subscription " + s.ID + " exists")
	}
	return classify(err, "create subscription")
}

// UpdateSubscription implements provision.Store.
func (p *Provision) UpdateSubscription(ctx context.Context, s *provision.Subscription) error {
	return p.updateSub(ctx, p.db, s)
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (p *Provision) updateSub(ctx context.Context, ex execer, s *provision.Subscription) error {
	sel, _ := json.Marshal(selectionJSON(s.Selection))
	set, _ := json.Marshal(s.Settings)
	q := `UPDATE prov_subscriptions SET name = ?, selection = ?, transport = ?, endpoint = ?, settings = ?, strategy = ?,
		batch_every_s = ?, enabled = ?, updated_ms = ?, batch_at = ?, batch_tz = ?, deliver_roles = ?`
	args := []any{s.Name, string(sel), s.Transport, s.Endpoint, string(set), s.Strategy, int64(s.BatchEvery / time.Second),
		boolInt(s.Enabled), store.UnixMS(s.UpdatedAt), s.BatchAt, s.BatchTimeZone, boolInt(s.DeliverRoles)}
	if s.Secret != "" {
		sec, err := p.sealed(s)
		if err != nil {
			return err
		}
		q += ", secret_sealed = ?"
		args = append(args, sec)
	}
	res, err := ex.ExecContext(ctx, p.db.Rebind(q+" WHERE id = ?"), append(args, s.ID)...)
	if err != nil {
		return classify(err, "update subscription")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.NotFound("subscription " + s.ID)
	}
	return nil
}

// DeleteSubscription implements provision.Store: the subscription and its
// queue (the deliveries already made stay for the reports).
func (p *Provision) DeleteSubscription(ctx context.Context, id string) error {
	return classify(p.db.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, p.db.Rebind("DELETE FROM prov_subscriptions WHERE id = ?"), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.NotFound("subscription " + id)
		}
		if _, err := tx.ExecContext(ctx, p.db.Rebind("DELETE FROM prov_leases WHERE subscription = ?"), id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, p.db.Rebind("DELETE FROM prov_deliveries WHERE subscription = ? AND status = ?"), id, provision.Pending)
		return err
	}), "delete subscription")
}

const subCols = `id, app, name, selection, transport, endpoint, settings, secret_sealed, strategy, batch_every_s, enabled,
	created_ms, updated_ms, last_batch_ms, initial_batch, batch_at, batch_tz, deliver_roles`

func (p *Provision) scanSub(row interface{ Scan(...any) error }) (*provision.Subscription, error) {
	s := &provision.Subscription{}
	var sel, set, sec string
	var every, enabled, created, updated, last, roles int64
	if err := row.Scan(&s.ID, &s.App, &s.Name, &sel, &s.Transport, &s.Endpoint, &set, &sec, &s.Strategy, &every, &enabled,
		&created, &updated, &last, &s.InitialBatch, &s.BatchAt, &s.BatchTimeZone, &roles); err != nil {
		return nil, err
	}
	var sj selectionJSON
	_ = json.Unmarshal([]byte(sel), &sj)
	s.Selection = provision.Selection(sj)
	_ = json.Unmarshal([]byte(set), &s.Settings)
	if s.Settings == nil {
		s.Settings = map[string]string{}
	}
	if sec != "" {
		b, err := p.box.Open(sec, secretLabel(s.ID))
		if err != nil {
			return nil, errors.New("sync store: the secret of subscription " + s.ID + " does not open with the key ring")
		}
		s.Secret = string(b)
	}
	s.BatchEvery, s.Enabled, s.DeliverRoles = time.Duration(every)*time.Second, enabled != 0, roles != 0
	s.CreatedAt, s.UpdatedAt = store.FromUnixMS(created), store.FromUnixMS(updated)
	if last > 0 {
		s.LastBatchAt = store.FromUnixMS(last)
	}
	return s, nil
}

// GetSubscription implements provision.Store.
func (p *Provision) GetSubscription(ctx context.Context, id string) (*provision.Subscription, error) {
	s, err := p.scanSub(p.db.QueryRowContext(ctx, p.db.Rebind("SELECT "+subCols+" FROM prov_subscriptions WHERE id = ?"), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.NotFound("subscription " + id)
	}
	return s, classify(err, "read subscription")
}

// ListSubscriptions implements provision.Store.
func (p *Provision) ListSubscriptions(ctx context.Context, app string) ([]*provision.Subscription, error) {
	var w store.Where
	if app != "" {
		w.Add("app = ?", app)
	}
	rows, err := p.db.QueryContext(ctx, p.db.Rebind("SELECT "+subCols+" FROM prov_subscriptions"+w.SQL()+" ORDER BY id"), w.Args()...)
	if err != nil {
		return nil, classify(err, "list subscriptions")
	}
	defer rows.Close()
	var out []*provision.Subscription
	for rows.Next() {
		s, err := p.scanSub(rows)
		if err != nil {
			return nil, classify(err, "list subscriptions")
		}
		out = append(out, s)
	}
	return out, classify(rows.Err(), "list subscriptions")
}

// SetLastBatch implements provision.Store.
func (p *Provision) SetLastBatch(ctx context.Context, id string, at time.Time) error {
	_, err := p.db.ExecContext(ctx, p.db.Rebind("UPDATE prov_subscriptions SET last_batch_ms = ? WHERE id = ?"), store.UnixMS(at), id)
	return classify(err, "set last batch")
}

// ---- projection ----

// provTx is one transaction of the projection. A projected batch runs the
// same few statements for each change: q prepares each once per
// transaction; objs keeps the objects read or written in it (a change reads
// an object before and after its write to match it against the
// subscriptions, and an org path walk reads the same orgs for each person).
type provTx struct {
	ctx  context.Context
	db   *store.DB
	tx   *sql.Tx
	q    *store.TxStmts
	p    *Provision
	objs map[objKey]*provision.Object // nil value: known not to exist
}

type objKey struct{ kind, id string }

// InTx implements provision.Store.
func (p *Provision) InTx(ctx context.Context, fn func(provision.Tx) error) error {
	return classify(p.db.InTx(ctx, func(tx *sql.Tx) error {
		t := &provTx{ctx: ctx, db: p.db, tx: tx, q: store.NewTxStmts(tx), p: p, objs: map[objKey]*provision.Object{}}
		defer t.q.Close()
		return fn(t)
	}), "transaction")
}

type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func readObject(ctx context.Context, db *store.DB, q rowQuerier, kind, id string) (*provision.Object, error) {
	o := &provision.Object{Kind: kind, ID: id}
	var data string
	var deleted int64
	err := q.QueryRowContext(ctx, db.Rebind("SELECT data, deleted FROM prov_objects WHERE kind = ? AND id = ?"), kind, id).Scan(&data, &deleted)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, classify(err, "read projected object")
	}
	o.Data, o.Deleted = json.RawMessage(data), deleted != 0
	return o, nil
}

func strings1(ctx context.Context, db *store.DB, q rowQuerier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, db.Rebind(query), args...)
	if err != nil {
		return nil, classify(err, "read projection")
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, classify(err, "read projection")
		}
		out = append(out, s)
	}
	return out, classify(rows.Err(), "read projection")
}

func (t *provTx) Object(kind, id string) (*provision.Object, error) {
	k := objKey{kind, id}
	o, ok := t.objs[k]
	if !ok {
		var err error
		if o, err = readObject(t.ctx, t.db, t.q, kind, id); err != nil {
			return nil, err
		}
		t.objs[k] = o
	}
	if o == nil {
		return nil, nil
	}
	c := *o // the caller's copy
	return &c, nil
}

func (t *provTx) GroupsOf(user string) ([]string, error) {
	return strings1(t.ctx, t.db, t.q, "SELECT group_id FROM prov_members WHERE user_id = ? ORDER BY group_id", user)
}

func (t *provTx) Members(group string) ([]string, error) {
	return strings1(t.ctx, t.db, t.q, "SELECT user_id FROM prov_members WHERE group_id = ? ORDER BY user_id", group)
}

func (t *provTx) AppsLinked(user string) ([]string, error) {
	return strings1(t.ctx, t.db, t.q, "SELECT app_id FROM prov_links WHERE user_id = ? ORDER BY app_id", user)
}

// inForce is the condition of a grant in force at ms (0: unbounded ends).
const inForce = " AND (valid_from_ms = 0 OR valid_from_ms <= ?) AND (valid_until_ms = 0 OR valid_until_ms > ?)"

func (t *provTx) Grants(kind, id string, at time.Time) ([]string, error) {
	if at.IsZero() {
		return strings1(t.ctx, t.db, t.q, "SELECT role FROM prov_grants WHERE subject_kind = ? AND subject_id = ? ORDER BY role", kind, id)
	}
	ms := store.UnixMS(at)
	return strings1(t.ctx, t.db, t.q, "SELECT role FROM prov_grants WHERE subject_kind = ? AND subject_id = ?"+inForce+" ORDER BY role",
		kind, id, ms, ms)
}

func (t *provTx) exec(op, query string, args ...any) error {
	_, err := t.q.ExecContext(t.ctx, t.db.Rebind(query), args...)
	return classify(err, op)
}

func (t *provTx) PutObject(o provision.Object) error {
	parent := o.Field("org_id")
	if o.Kind == provision.KindOrg {
		parent = o.Field("parent_id")
	}
	if err := t.exec("write projected object", `INSERT INTO prov_objects (kind, id, data, deleted, parent) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (kind, id) DO UPDATE SET data = excluded.data, deleted = excluded.deleted, parent = excluded.parent`,
		o.Kind, o.ID, string(o.Data), boolInt(o.Deleted), parent); err != nil {
		return err
	}
	t.objs[objKey{o.Kind, o.ID}] = &o
	return nil
}

func (t *provTx) Children(parent string) ([]provision.Object, error) {
	rows, err := t.q.QueryContext(t.ctx, t.db.Rebind(`SELECT kind, id FROM prov_objects WHERE parent = ? AND deleted = 0
		ORDER BY kind, id`), parent)
	if err != nil {
		return nil, classify(err, "list children")
	}
	defer rows.Close()
	var out []provision.Object
	for rows.Next() {
		var o provision.Object
		if err := rows.Scan(&o.Kind, &o.ID); err != nil {
			return nil, classify(err, "list children")
		}
		out = append(out, o)
	}
	return out, classify(rows.Err(), "list children")
}

func (t *provTx) Lock() error {
	if t.db.Dialect != store.Postgres {
		return nil // SQLite transactions take the write lock up front (_txlock=immediate)
	}
	if err := t.exec("lock projection", "INSERT INTO prov_cursor (name, seq) VALUES (?, 0) ON CONFLICT (name) DO NOTHING",
		cursorName); err != nil {
		return err
	}
	var seq int64
	err := t.tx.QueryRowContext(t.ctx, t.db.Rebind("SELECT seq FROM prov_cursor WHERE name = ? FOR UPDATE"), cursorName).Scan(&seq)
	return classify(err, "lock projection")
}

func (t *provTx) Subscriptions() ([]*provision.Subscription, error) {
	rows, err := t.tx.QueryContext(t.ctx, strings.Replace("SELECT "+subCols+" FROM prov_subscriptions ORDER BY id",
		"secret_sealed", "'' AS secret_sealed", 1))
	if err != nil {
		return nil, classify(err, "list subscriptions")
	}
	defer rows.Close()
	var out []*provision.Subscription
	for rows.Next() {
		s, err := t.p.scanSub(rows)
		if err != nil {
			return nil, classify(err, "list subscriptions")
		}
		out = append(out, s)
	}
	return out, classify(rows.Err(), "list subscriptions")
}

// DeleteAppSubscriptions implements provision.Tx.
func (t *provTx) DeleteAppSubscriptions(app string) ([]string, error) {
	rows, err := t.tx.QueryContext(t.ctx, t.db.Rebind("SELECT id FROM prov_subscriptions WHERE app = ? ORDER BY id"), app)
	if err != nil {
		return nil, classify(err, "delete app subscriptions")
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			_ = rows.Close()
			return nil, classify(err, "delete app subscriptions")
		}
		ids = append(ids, id)
	}
	_ = rows.Close()
	if err := rows.Err(); err != nil {
		return nil, classify(err, "delete app subscriptions")
	}
	for _, id := range ids {
		if err := t.exec("delete app subscriptions", "DELETE FROM prov_subscriptions WHERE id = ?", id); err != nil {
			return nil, err
		}
		if err := t.exec("delete app subscriptions", "DELETE FROM prov_leases WHERE subscription = ?", id); err != nil {
			return nil, err
		}
		if err := t.exec("delete app subscriptions", "DELETE FROM prov_deliveries WHERE subscription = ? AND status = ?", id,
			provision.Pending); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

func (t *provTx) UpdateSubscription(s *provision.Subscription) error {
	return t.p.updateSub(t.ctx, t.tx, s)
}

func (t *provTx) StartInitial(sub, batch string, at time.Time) (bool, error) {
	res, err := t.tx.ExecContext(t.ctx, t.db.Rebind(`UPDATE prov_subscriptions SET initial_batch = ?, last_batch_ms = ?
		WHERE id = ? AND initial_batch = ''`), batch, store.UnixMS(at), sub)
	if err != nil {
		return false, classify(err, "start initial batch")
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

func (t *provTx) StartScheduled(sub string, last, at time.Time) (bool, error) {
	res, err := t.tx.ExecContext(t.ctx, t.db.Rebind(`UPDATE prov_subscriptions SET last_batch_ms = ?
		WHERE id = ? AND last_batch_ms = ?`), store.UnixMS(at), sub, store.UnixMS(last))
	if err != nil {
		return false, classify(err, "start scheduled batch")
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

func (t *provTx) SetMember(group, user string, in bool) error {
	if in {
		return t.exec("add member", "INSERT INTO prov_members (group_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING", group, user)
	}
	return t.exec("remove member", "DELETE FROM prov_members WHERE group_id = ? AND user_id = ?", group, user)
}

func (t *provTx) PutLink(id, user, app string) error {
	return t.exec("write link", `INSERT INTO prov_links (id, user_id, app_id) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, app_id = excluded.app_id`, id, user, app)
}

func (t *provTx) DeleteLink(id string) (string, error) {
	var user string
	err := t.q.QueryRowContext(t.ctx, t.db.Rebind("SELECT user_id FROM prov_links WHERE id = ?"), id).Scan(&user)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", classify(err, "read link")
	}
	return user, t.exec("delete link", "DELETE FROM prov_links WHERE id = ?", id)
}

func (t *provTx) PutGrant(id, role, kind, subject string, w provision.Window) error {
	return t.exec("write grant", `INSERT INTO prov_grants (id, role, subject_kind, subject_id, valid_from_ms, valid_until_ms)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET role = excluded.role, subject_kind = excluded.subject_kind, subject_id = excluded.subject_id,
		valid_from_ms = excluded.valid_from_ms, valid_until_ms = excluded.valid_until_ms`,
		id, role, kind, subject, windowMS(w.From), windowMS(w.Until))
}

// windowMS is a window's end in ms (0: unbounded).
func windowMS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return store.UnixMS(t)
}

func (t *provTx) GrantsCrossing(after, upTo time.Time) ([]provision.GrantWindow, error) {
	a, b := windowMS(after), store.UnixMS(upTo)
	rows, err := t.q.QueryContext(t.ctx, t.db.Rebind(`SELECT id, role, subject_kind, subject_id, valid_from_ms, valid_until_ms
		FROM prov_grants WHERE (valid_from_ms > ? AND valid_from_ms <= ?) OR (valid_until_ms > ? AND valid_until_ms <= ?) ORDER BY id`),
		a, b, a, b)
	if err != nil {
		return nil, classify(err, "read grant windows")
	}
	defer rows.Close()
	var out []provision.GrantWindow
	for rows.Next() {
		var g provision.GrantWindow
		var from, until int64
		if err := rows.Scan(&g.ID, &g.Role, &g.Kind, &g.Subject, &from, &until); err != nil {
			return nil, classify(err, "read grant windows")
		}
		for _, ms := range []int64{from, until} {
			if ms > a && ms <= b {
				g.At = time.UnixMilli(ms).UTC()
				out = append(out, g)
			}
		}
	}
	return out, classify(rows.Err(), "read grant windows")
}

// windowsCursor names the time up to which grant windows were swept.
const windowsCursor = "grant_windows"

func (t *provTx) SweptUntil() (time.Time, error) {
	var ms int64
	err := t.q.QueryRowContext(t.ctx, t.db.Rebind("SELECT seq FROM prov_cursor WHERE name = ?"), windowsCursor).Scan(&ms)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && ms == 0) {
		return time.Time{}, nil
	}
	return time.UnixMilli(ms).UTC(), classify(err, "read the grant windows' cursor")
}

func (t *provTx) SetSweptUntil(at time.Time) error {
	return t.exec("move the grant windows' cursor", `INSERT INTO prov_cursor (name, seq) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET seq = excluded.seq`, windowsCursor, store.UnixMS(at))
}

func (t *provTx) Grant(id string) (string, string, string, error) {
	var role, kind, subject string
	err := t.q.QueryRowContext(t.ctx, t.db.Rebind("SELECT role, subject_kind, subject_id FROM prov_grants WHERE id = ?"), id).
		Scan(&role, &kind, &subject)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", "", nil
	}
	return role, kind, subject, classify(err, "read grant")
}

func (t *provTx) DeleteGrant(id string) (string, string, error) {
	var kind, subject string
	err := t.q.QueryRowContext(t.ctx, t.db.Rebind("SELECT subject_kind, subject_id FROM prov_grants WHERE id = ?"), id).Scan(&kind, &subject)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", nil
	}
	if err != nil {
		return "", "", classify(err, "read grant")
	}
	return kind, subject, t.exec("delete grant", "DELETE FROM prov_grants WHERE id = ?", id)
}

func (t *provTx) GrantsOfRole(role string, at time.Time) ([]string, error) {
	if at.IsZero() {
		return strings1(t.ctx, t.db, t.q, "SELECT subject_kind || ':' || subject_id FROM prov_grants WHERE role = ? "+
			"ORDER BY subject_kind, subject_id", role)
	}
	ms := store.UnixMS(at)
	return strings1(t.ctx, t.db, t.q, "SELECT subject_kind || ':' || subject_id FROM prov_grants WHERE role = ?"+inForce+
		" ORDER BY subject_kind, subject_id", role, ms, ms)
}

func (t *provTx) Objects(kind, after string, limit int) ([]provision.Object, error) {
	rows, err := t.tx.QueryContext(t.ctx, t.db.Rebind(`SELECT id, data FROM prov_objects WHERE kind = ? AND deleted = 0 AND id > ?
		ORDER BY id LIMIT ?`), kind, after, limit)
	if err != nil {
		return nil, classify(err, "list projected objects")
	}
	defer rows.Close()
	var out []provision.Object
	for rows.Next() {
		o := provision.Object{Kind: kind}
		var data string
		if err := rows.Scan(&o.ID, &data); err != nil {
			return nil, classify(err, "list projected objects")
		}
		o.Data = json.RawMessage(data)
		out = append(out, o)
	}
	return out, classify(rows.Err(), "list projected objects")
}

func (t *provTx) Enqueue(d provision.Delivery) (bool, error) {
	res, err := t.q.ExecContext(t.ctx, t.db.Rebind(`INSERT INTO prov_deliveries (subscription, app, event_id, kind, object_id, op,
		batch_id, status, attempts, last_error, next_ms, created_ms, delivered_ms, latency_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, '', ?, ?, 0, 0)
		ON CONFLICT (subscription, event_id, kind, object_id) DO NOTHING`),
		d.Subscription, d.App, d.EventID, d.Kind, d.ObjectID, d.Op, d.BatchID, provision.Pending,
		store.UnixMS(d.CreatedAt), store.UnixMS(d.CreatedAt))
	if err != nil {
		return false, classify(err, "enqueue delivery")
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

const cursorName = "changes"

func (t *provTx) Cursor() (uint64, error) { return readCursor(t.ctx, t.db, t.tx) }

func (t *provTx) SetCursor(seq uint64) error {
	return t.exec("move cursor", `INSERT INTO prov_cursor (name, seq) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET seq = excluded.seq`, cursorName, int64(seq))
}

func readCursor(ctx context.Context, db *store.DB, q rowQuerier) (uint64, error) {
	var seq int64
	err := q.QueryRowContext(ctx, db.Rebind("SELECT seq FROM prov_cursor WHERE name = ?"), cursorName).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return uint64(seq), classify(err, "read cursor")
}

// Cursor implements provision.Store.
func (p *Provision) Cursor(ctx context.Context) (uint64, error) { return readCursor(ctx, p.db, p.db) }

// Object implements provision.Store.
func (p *Provision) Object(ctx context.Context, kind, id string) (*provision.Object, []string, error) {
	o, err := readObject(ctx, p.db, p.db, kind, id)
	if err != nil || o == nil || kind != provision.KindGroup {
		return o, nil, err
	}
	m, err := strings1(ctx, p.db, p.db, "SELECT user_id FROM prov_members WHERE group_id = ? ORDER BY user_id", id)
	return o, m, err
}

// ObjectsByID implements provision.Store.
func (p *Provision) ObjectsByID(ctx context.Context, kind string, ids []string) (map[string]*provision.Object, error) {
	out := make(map[string]*provision.Object, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, 0, len(ids)+1)
	args = append(args, kind)
	for _, id := range ids {
		args = append(args, id)
	}
	rows, err := p.db.QueryContext(ctx, p.db.Rebind("SELECT id, data, deleted FROM prov_objects WHERE kind = ? AND id IN (?"+
		strings.Repeat(", ?", len(ids)-1)+")"), args...)
	if err != nil {
		return nil, classify(err, "read projected objects")
	}
	defer rows.Close()
	for rows.Next() {
		o := &provision.Object{Kind: kind}
		var data string
		var deleted int64
		if err := rows.Scan(&o.ID, &data, &deleted); err != nil {
			return nil, classify(err, "read projected objects")
		}
		o.Data, o.Deleted = json.RawMessage(data), deleted != 0
		out[o.ID] = o
	}
	return out, classify(rows.Err(), "read projected objects")
}

// ---- deliveries ----

const delCols = `seq, subscription, app, event_id, kind, object_id, op, batch_id, status, attempts, last_error, next_ms,
	created_ms, delivered_ms, latency_ms`

func scanDelivery(row interface{ Scan(...any) error }) (provision.Delivery, error) {
	var d provision.Delivery
	var next, created, delivered int64
	err := row.Scan(&d.Seq, &d.Subscription, &d.App, &d.EventID, &d.Kind, &d.ObjectID, &d.Op, &d.BatchID, &d.Status, &d.Attempts,
		&d.LastError, &next, &created, &delivered, &d.LatencyMS)
	d.NextAt, d.CreatedAt = store.FromUnixMS(next), store.FromUnixMS(created)
	if delivered > 0 {
		d.DeliveredAt = store.FromUnixMS(delivered)
	}
	return d, err
}

// NextDue implements provision.Store.
func (p *Provision) NextDue(ctx context.Context, sub string) (*provision.Delivery, error) {
	ds, err := p.Due(ctx, sub, 1)
	if err != nil || len(ds) == 0 {
		return nil, err
	}
	return &ds[0], nil
}

// Due implements provision.Store.
func (p *Provision) Due(ctx context.Context, sub string, limit int) ([]provision.Delivery, error) {
	rows, err := p.db.QueryContext(ctx, p.db.Rebind("SELECT "+delCols+
		" FROM prov_deliveries WHERE subscription = ? AND status = ? ORDER BY seq LIMIT ?"), sub, provision.Pending, limit)
	if err != nil {
		return nil, classify(err, "due deliveries")
	}
	defer rows.Close()
	var out []provision.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, classify(err, "due deliveries")
		}
		out = append(out, d)
	}
	return out, classify(rows.Err(), "due deliveries")
}

// Record implements provision.Store: one transaction, two prepared
// statements.
func (p *Provision) Record(ctx context.Context, outs []provision.Outcome) error {
	if len(outs) == 0 {
		return nil
	}
	return classify(p.db.InTx(ctx, func(tx *sql.Tx) error {
		var ok, failed *sql.Stmt
		defer func() {
			for _, st := range []*sql.Stmt{ok, failed} {
				if st != nil {
					_ = st.Close()
				}
			}
		}()
		for _, o := range outs {
			var err error
			if o.OK {
				if ok == nil {
					if ok, err = tx.PrepareContext(ctx, p.db.Rebind(`UPDATE prov_deliveries SET status = ?, attempts = ?, delivered_ms = ?,
						latency_ms = ? WHERE seq = ? AND status = ?`)); err != nil {
						return err
					}
				}
				_, err = ok.ExecContext(ctx, provision.Delivered, o.Attempts, store.UnixMS(o.At), o.Latency.Milliseconds(), o.Seq,
					provision.Pending)
			} else {
				if failed == nil {
					if failed, err = tx.PrepareContext(ctx, p.db.Rebind(`UPDATE prov_deliveries SET status = ?, attempts = ?,
						failures = failures + 1, last_error = ?, next_ms = ? WHERE seq = ? AND status = ?`)); err != nil {
						return err
					}
				}
				st := provision.Pending
				if o.Dead {
					st = provision.Dead
				}
				_, err = failed.ExecContext(ctx, st, o.Attempts, o.LastError, store.UnixMS(o.Next), o.Seq, provision.Pending)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}), "record deliveries")
}

// Lease implements provision.Store: taken when there is none, when owner
// holds it, or when it expired before now.
func (p *Provision) Lease(ctx context.Context, sub, owner string, now, until time.Time) (bool, error) {
	res, err := p.db.ExecContext(ctx, p.db.Rebind(`INSERT INTO prov_leases (subscription, owner, until_ms) VALUES (?, ?, ?)
		ON CONFLICT (subscription) DO UPDATE SET owner = excluded.owner, until_ms = excluded.until_ms
		WHERE prov_leases.owner = excluded.owner OR prov_leases.until_ms < ?`), sub, owner, store.UnixMS(until), store.UnixMS(now))
	if err != nil {
		return false, classify(err, "lease")
	}
	n, err := res.RowsAffected()
	return n > 0, classify(err, "lease")
}

// Release implements provision.Store.
func (p *Provision) Release(ctx context.Context, sub, owner string) error {
	_, err := p.db.ExecContext(ctx, p.db.Rebind("UPDATE prov_leases SET until_ms = 0 WHERE subscription = ? AND owner = ?"), sub, owner)
	return classify(err, "release lease")
}

// Delivered implements provision.Store.
func (p *Provision) Delivered(ctx context.Context, seq int64, attempts int, at time.Time, latency time.Duration) error {
	return p.Record(ctx, []provision.Outcome{{Seq: seq, Attempts: attempts, OK: true, At: at, Latency: latency}})
}

// Failed implements provision.Store.
func (p *Provision) Failed(ctx context.Context, seq int64, attempts int, lastErr string, next time.Time, dead bool) error {
	return p.Record(ctx, []provision.Outcome{{Seq: seq, Attempts: attempts, LastError: lastErr, Next: next, Dead: dead}})
}

func deliveryWhere(f provision.DeliveryFilter) store.Where {
	var w store.Where
	if f.Subscription != "" {
		w.Add("subscription = ?", f.Subscription)
	}
	if f.App != "" {
		w.Add("app = ?", f.App)
	}
	if f.Status != "" {
		w.Add("status = ?", f.Status)
	}
	if f.Seq != 0 {
		w.Add("seq = ?", f.Seq)
	}
	if !f.DueBy.IsZero() {
		w.Add("next_ms <= ?", store.UnixMS(f.DueBy))
	}
	return w
}

// ListDeliveries implements provision.Store.
func (p *Provision) ListDeliveries(ctx context.Context, f provision.DeliveryFilter, size int, token string) ([]provision.Delivery, string, error) {
	if size <= 0 {
		size = 50
	}
	w := deliveryWhere(f)
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
	rows, err := p.db.QueryContext(ctx, p.db.Rebind("SELECT "+delCols+" FROM prov_deliveries"+w.SQL()+" ORDER BY seq DESC LIMIT ?"),
		append(w.Args(), size+1)...)
	if err != nil {
		return nil, "", classify(err, "list deliveries")
	}
	defer rows.Close()
	var out []provision.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, "", classify(err, "list deliveries")
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, "", classify(err, "list deliveries")
	}
	next := ""
	if len(out) > size {
		out = out[:size]
		next = store.PageToken(strconv.FormatInt(out[size-1].Seq, 10))
	}
	return out, next, nil
}

// Retry implements provision.Store.
func (p *Provision) Retry(ctx context.Context, f provision.DeliveryFilter, now time.Time, attempts int) (int64, error) {
	f.Status = provision.Dead
	w := deliveryWhere(f)
	res, err := p.db.ExecContext(ctx, p.db.Rebind("UPDATE prov_deliveries SET status = ?, attempts = ?, next_ms = ?"+w.SQL()),
		append([]any{provision.Pending, attempts, store.UnixMS(now)}, w.Args()...)...)
	if err != nil {
		return 0, classify(err, "retry deliveries")
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// Report implements provision.Store. Days are computed here (UTC) from the
// creation time, so SQLite and PostgreSQL agree.
func (p *Provision) Report(ctx context.Context, app string, from, to time.Time) ([]provision.ReportRow, error) {
	const day = int64(24 * time.Hour / time.Millisecond)
	var w store.Where
	w.Add("created_ms >= ?", store.UnixMS(from))
	w.Add("created_ms < ?", store.UnixMS(to))
	if app != "" {
		w.Add("app = ?", app)
	}
	rows, err := p.db.QueryContext(ctx, p.db.Rebind(`SELECT d, app, status, COUNT(*), SUM(failures), SUM(latency_ms)
		FROM (SELECT created_ms / ? AS d, app, status, failures, latency_ms FROM prov_deliveries`+w.SQL()+`) t
		GROUP BY d, app, status`), append([]any{day}, w.Args()...)...)
	if err != nil {
		return nil, classify(err, "report")
	}
	defer rows.Close()
	type key struct {
		day int64
		app string
	}
	acc := map[key]*provision.ReportRow{}
	latency := map[key]int64{}
	var keys []key
	for rows.Next() {
		var k key
		var status string
		var n, failures, lat int64
		if err := rows.Scan(&k.day, &k.app, &status, &n, &failures, &lat); err != nil {
			return nil, classify(err, "report")
		}
		r := acc[k]
		if r == nil {
			r = &provision.ReportRow{Day: time.UnixMilli(k.day * day).UTC().Format(time.DateOnly), App: k.app}
			acc[k] = r
			keys = append(keys, k)
		}
		r.Failed += failures
		switch status {
		case provision.Delivered:
			r.Delivered += n
			latency[k] += lat
		case provision.Dead:
			r.Dead += n
		default:
			r.Pending += n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, classify(err, "report")
	}
	out := make([]provision.ReportRow, 0, len(keys))
	for _, k := range keys {
		r := acc[k]
		if r.Delivered > 0 {
			r.AvgLatencyMS = latency[k] / r.Delivered
		}
		out = append(out, *r)
	}
	sortReport(out)
	return out, nil
}

func sortReport(rows []provision.ReportRow) {
	slices.SortFunc(rows, func(a, b provision.ReportRow) int {
		return cmp.Or(strings.Compare(a.Day, b.Day), strings.Compare(a.App, b.App))
	})
}

// Queues implements provision.Store.
func (p *Provision) Queues(ctx context.Context) (map[string]provision.SubStatus, error) {
	rows, err := p.db.QueryContext(ctx, p.db.Rebind(`SELECT subscription, status, COUNT(*), MIN(created_ms) FROM prov_deliveries
		WHERE status IN (?, ?) GROUP BY subscription, status`), provision.Pending, provision.Dead)
	if err != nil {
		return nil, classify(err, "queues")
	}
	defer rows.Close()
	out := map[string]provision.SubStatus{}
	for rows.Next() {
		var sub, status string
		var n, oldest int64
		if err := rows.Scan(&sub, &status, &n, &oldest); err != nil {
			return nil, classify(err, "queues")
		}
		s := out[sub]
		if status == provision.Pending {
			s.Pending, s.Oldest = n, store.FromUnixMS(oldest)
		} else {
			s.Dead = n
		}
		out[sub] = s
	}
	if err := rows.Err(); err != nil {
		return nil, classify(err, "queues")
	}
	for sub, s := range out {
		var msg string
		err := p.db.QueryRowContext(ctx, p.db.Rebind(`SELECT last_error FROM prov_deliveries WHERE subscription = ? AND last_error <> ''
			AND status <> ? ORDER BY seq DESC LIMIT 1`), sub, provision.Delivered).Scan(&msg)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, classify(err, "queues")
		}
		s.LastError = msg
		out[sub] = s
	}
	rows2, err := p.db.QueryContext(ctx, p.db.Rebind(`SELECT d.subscription, COUNT(*) FROM prov_deliveries d
		JOIN prov_subscriptions s ON s.id = d.subscription AND d.batch_id = s.initial_batch
		WHERE d.status = ? GROUP BY d.subscription`), provision.Pending)
	if err != nil {
		return nil, classify(err, "queues")
	}
	defer rows2.Close()
	for rows2.Next() {
		var sub string
		var n int64
		if err := rows2.Scan(&sub, &n); err != nil {
			return nil, classify(err, "queues")
		}
		s := out[sub]
		s.InitialPending = n
		out[sub] = s
	}
	return out, classify(rows2.Err(), "queues")
}
