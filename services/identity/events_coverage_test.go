package identity_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/events"
	ulog "github.com/uias/uias/pkg/log"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/sqlstore"
)

// Test data. The ID number is a valid 18-character resident ID.
const (
	evIDNumber  = "110101199003071233"
	evPhone     = "13812345678"
	evPhone2    = "13987654321"
	evAdminPass = "Boot-Strap-Pass1" // set by setupOn
	evUserPass  = "First-Pass-1"     // set by setupOn
)

// evEnv is the real service on a SQLite file whose path and *store.DB the
// test can reach (newInstances hides both).
type evEnv struct {
	svc    *identity.Service
	clk    *clock
	db     *store.DB
	dbPath string
	sealer *crypto.Sealer
}

// newEvEnv builds a service on a fresh SQLite database; keyFile may be ""
// for a fresh key ring. Its clock advances 1ms on every reading, so audit
// durations are deterministic and positive.
func newEvEnv(t *testing.T, keyFile string) *evEnv {
	t.Helper()
	return newEvEnvWith(t, keyFile, nil)
}

// newEvEnvWith is newEvEnv with the service's dependencies changed by
// change (its config, its logger) when not nil.
func newEvEnvWith(t *testing.T, keyFile string, change func(*identity.Deps)) *evEnv {
	t.Helper()
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "identity.db")
	db, err := store.Open(ctx, "sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := sqlstore.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	if keyFile == "" {
		keyFile = filepath.Join(t.TempDir(), "keys.json")
	}
	keys, active, err := crypto.LoadOrCreateKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := crypto.NewSealer(keys, active)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
	tick := func() time.Time {
		clk.mu.Lock()
		defer clk.mu.Unlock()
		clk.t = clk.t.Add(time.Millisecond)
		return clk.t
	}
	deps := identity.Deps{Store: sqlstore.New(db), Sealer: sealer, Logger: zap.NewNop(), Now: tick, Sleep: clk.sleep,
		Hasher: crypto.NewHasher(crypto.HasherConfig{Params: crypto.Argon2Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}})}
	if change != nil {
		change(&deps)
	}
	svc, err := identity.New(deps)
	if err != nil {
		t.Fatal(err)
	}
	return &evEnv{svc: svc, clk: clk, db: db, dbPath: dbPath, sealer: sealer}
}

type outboxRow struct {
	Seq       int64
	ID        string
	Subject   string
	Type      string
	Payload   []byte
	CreatedAt string
}

// outbox returns the outbox rows with seq > after, in seq order.
func (e *evEnv) outbox(t *testing.T, after int64) []outboxRow {
	t.Helper()
	rows, err := e.db.QueryContext(context.Background(),
		`SELECT seq, id, subject, type, payload, created_at FROM events_outbox WHERE seq > ? ORDER BY seq`, after)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []outboxRow
	for rows.Next() {
		var r outboxRow
		if err := rows.Scan(&r.Seq, &r.ID, &r.Subject, &r.Type, &r.Payload, &r.CreatedAt); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// mark is the last outbox seq, to read only what a step wrote.
func (e *evEnv) mark(t *testing.T) int64 {
	t.Helper()
	var seq int64
	if err := e.db.QueryRowContext(context.Background(), `SELECT COALESCE(MAX(seq), 0) FROM events_outbox`).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	return seq
}

// oneRow returns the single row with subject; it fails unless exactly one.
func oneRow(t *testing.T, rows []outboxRow, subject string) outboxRow {
	t.Helper()
	var found []outboxRow
	for _, r := range rows {
		if r.Subject == subject {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		var subs []string
		for _, r := range rows {
			subs = append(subs, r.Subject)
		}
		t.Fatalf("want exactly one %s event, got %d among %v", subject, len(found), subs)
	}
	return found[0]
}

func countPrefix(rows []outboxRow, prefix string) int {
	n := 0
	for _, r := range rows {
		if strings.HasPrefix(r.Subject, prefix) {
			n++
		}
	}
	return n
}

type changePayload struct {
	Entity string          `json:"entity"`
	Op     string          `json:"op"`
	ID     string          `json:"id"`
	Actor  string          `json:"actor"`
	Time   time.Time       `json:"time"`
	Data   json.RawMessage `json:"data"`
}

// wantChange checks rows hold exactly one CHANGES event for entity/op on id
// by actor, with its type and envelope, and returns its data.
func wantChange(t *testing.T, rows []outboxRow, entity, op, id, actor string) map[string]any {
	t.Helper()
	r := oneRow(t, rows, "uias.changes.identity."+entity+"."+op)
	if r.Type != "identity."+entity+"."+op {
		t.Errorf("%s: type %q", r.Subject, r.Type)
	}
	if r.ID == "" || r.CreatedAt == "" {
		t.Errorf("%s: id %q created_at %q", r.Subject, r.ID, r.CreatedAt)
	}
	var p changePayload
	if err := json.Unmarshal(r.Payload, &p); err != nil {
		t.Fatalf("%s: payload %s: %v", r.Subject, r.Payload, err)
	}
	if p.Entity != entity || p.Op != op || p.ID != id || p.Actor != actor || p.Time.IsZero() {
		t.Errorf("%s: envelope %+v, want entity %s op %s id %s actor %s", r.Subject, p, entity, op, id, actor)
	}
	data := map[string]any{}
	if err := json.Unmarshal(p.Data, &data); err != nil {
		t.Fatalf("%s: data %s: %v", r.Subject, p.Data, err)
	}
	return data
}

// audit decodes the single AUDIT event of api in rows, checking its
// subject, type and that every standard field is present in the JSON.
func audit(t *testing.T, rows []outboxRow, api string) events.AuditRecord {
	t.Helper()
	r := oneRow(t, rows, "uias.audit.identity."+api)
	if r.Type != "audit."+api {
		t.Errorf("%s: type %q", r.Subject, r.Type)
	}
	var keys map[string]any
	if err := json.Unmarshal(r.Payload, &keys); err != nil {
		t.Fatalf("%s: payload %s: %v", r.Subject, r.Payload, err)
	}
	for _, k := range []string{"serial", "trace_id", "app_id", "api", "actor", "subject", "org", "result", "reason", "duration_ms", "client_ip", "time"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("%s: audit record lacks %q: %s", r.Subject, k, r.Payload)
		}
	}
	var rec events.AuditRecord
	if err := json.Unmarshal(r.Payload, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.API != api {
		t.Errorf("%s: api %q", r.Subject, rec.API)
	}
	return rec
}

// wantAudit checks the common fields of an audit record made between
// before and after (readings of the test clock).
func wantAudit(t *testing.T, rec events.AuditRecord, want events.AuditRecord, before, after time.Time) {
	t.Helper()
	if rec.Serial != want.Serial || rec.TraceID != want.Serial || rec.AppID != want.AppID || rec.Actor != want.Actor ||
		rec.Subject != want.Subject || rec.Org != want.Org || rec.Result != want.Result || rec.Reason != want.Reason ||
		rec.ClientIP != want.ClientIP {
		t.Errorf("%s audit:\n got %+v\nwant %+v", rec.API, rec, want)
	}
	if rec.DurationMS <= 0 {
		t.Errorf("%s audit: duration_ms %v, want > 0 (the test clock ticks)", rec.API, rec.DurationMS)
	}
	if rec.Time.Before(before) || rec.Time.After(after) || rec.Time.Location() != time.UTC {
		t.Errorf("%s audit: time %v not within [%v, %v] UTC", rec.API, rec.Time, before, after)
	}
}

// noneContain fails if any outbox row (subject, type or payload) contains s.
func (e *evEnv) noneContain(t *testing.T, what string, secrets ...string) {
	t.Helper()
	for _, r := range e.outbox(t, 0) {
		for _, s := range secrets {
			if s == "" {
				continue
			}
			if strings.Contains(r.Subject, s) || strings.Contains(r.Type, s) || bytes.Contains(r.Payload, []byte(s)) {
				t.Errorf("outbox row %d (%s) contains the %s: %s", r.Seq, r.Subject, what, r.Payload)
			}
		}
	}
}

func evRoot(t *testing.T, svc *identity.Service) *identity.Org {
	t.Helper()
	orgs, _, err := svc.ListOrgs(context.Background(), identity.OrgFilter{}, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range orgs {
		if o.ParentID == "" {
			return o
		}
	}
	t.Fatal("no root org")
	return nil
}

// adminCtx logs the bootstrap administrator in and returns an
// administrator caller context.
func adminCtx(t *testing.T, svc *identity.Service, ip, requestID string) (context.Context, *identity.User) {
	t.Helper()
	_, _, admin, err := svc.AdminLogin(context.Background(), "admin", evAdminPass)
	if err != nil {
		t.Fatal(err)
	}
	return caller.With(context.Background(), &caller.Caller{Principal: admin.ID, ClientIP: netip.MustParseAddr(ip), RequestID: requestID}), admin
}

// TestChangeEventsCoverEveryChange makes every kind of change through an
// administrator (and the self-service password change through an app) and
// checks each wrote one CHANGES event with the right subject, type, entity
// id and actor, plus its AUDIT event, and that personal data is masked.
func TestChangeEventsCoverEveryChange(t *testing.T) {
	e := newEvEnv(t, "")
	w := setupOn(t, e.svc, e.clk)
	ctx, admin := adminCtx(t, e.svc, "10.0.0.9", "req-admin")
	actor := "user:" + admin.ID
	root := evRoot(t, e.svc)

	// step runs fn and returns what it wrote to the outbox; it also checks
	// the step's audit record (admin actor, success).
	step := func(t *testing.T, api, subject string, fn func() (org string)) []outboxRow {
		t.Helper()
		m := e.mark(t)
		org := fn()
		rows := e.outbox(t, m)
		if n := countPrefix(rows, "uias.changes."); n != 1 {
			t.Errorf("%s: %d CHANGES events, want 1", api, n)
		}
		rec := audit(t, rows, api)
		if rec.Actor != actor || rec.Result != "success" || rec.Serial != "req-admin" || rec.ClientIP != "10.0.0.9" ||
			(subject != "" && rec.Subject != subject) || rec.Org != org {
			t.Errorf("%s audit: %+v (want subject %s org %q)", api, rec, subject, org)
		}
		return rows
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	var east, west *identity.Org
	t.Run("org", func(t *testing.T) {
		rows := step(t, "org.create", "", func() string {
			var err error
			east, err = e.svc.CreateOrg(ctx, "east", "East", root.ID)
			must(err)
			return east.ID
		})
		d := wantChange(t, rows, "org", "created", east.ID, actor)
		if d["code"] != "east" || d["parent_id"] != root.ID {
			t.Errorf("org.created data %v", d)
		}
		west, _ = e.svc.CreateOrg(ctx, "west", "West", root.ID)

		rows = step(t, "org.update", "org:"+east.ID, func() string {
			_, err := e.svc.UpdateOrg(ctx, east.ID, "East Region")
			must(err)
			return east.ID
		})
		wantChange(t, rows, "org", "updated", east.ID, actor)

		rows = step(t, "org.move", "org:"+east.ID, func() string {
			_, err := e.svc.MoveOrg(ctx, east.ID, west.ID)
			must(err)
			return east.ID
		})
		if d := wantChange(t, rows, "org", "moved", east.ID, actor); d["parent_id"] != west.ID {
			t.Errorf("org.moved data %v", d)
		}

		for _, st := range []identity.Status{identity.StatusDisabled, identity.StatusActive} {
			rows = step(t, "org.set_status", "org:"+east.ID, func() string {
				_, err := e.svc.SetOrgStatus(ctx, east.ID, st)
				must(err)
				return east.ID
			})
			if d := wantChange(t, rows, "org", "status_changed", east.ID, actor); d["status"] != float64(st) {
				t.Errorf("org.status_changed data %v, want status %d", d, st)
			}
		}

		// Deleting: only an empty org (east has nothing under it); the
		// root org never.
		busy, err := e.svc.CreateOrg(ctx, "busy", "Busy", root.ID)
		must(err)
		_, err = e.svc.CreateOrg(ctx, "busy-sub", "Busy sub", busy.ID)
		must(err)
		if err := e.svc.DeleteOrg(ctx, busy.ID); !errors.Is(err, identity.ErrOrgNotEmpty) || !strings.Contains(err.Error(), "orgs under it") {
			t.Errorf("deleting an org with an org under it: %v", err)
		}
		if err := e.svc.DeleteOrg(ctx, root.ID); reasonOf(err) != "ROOT_ORG" {
			t.Errorf("deleting the root org: %v", err)
		}
		rows = step(t, "org.delete", "org:"+east.ID, func() string {
			must(e.svc.DeleteOrg(ctx, east.ID))
			return west.ID // its parent
		})
		wantChange(t, rows, "org", "deleted", east.ID, actor)
		if _, err := e.svc.GetOrg(ctx, east.ID); !errors.Is(err, identity.ErrNotFound) {
			t.Errorf("a deleted org read back: %v", err)
		}
	})

	var user *identity.User
	t.Run("user", func(t *testing.T) {
		rows := step(t, "user.create", "", func() string {
			var err error
			user, err = e.svc.CreateUser(ctx, identity.NewUser{LoginName: "zoe", DisplayName: "Zoe", OrgID: root.ID,
				IDType: identity.IDTypeResidentID, IDNumber: evIDNumber, Phone: evPhone, Email: "zoe@example.org", Password: "Kite-Pass-123"})
			must(err)
			return root.ID
		})
		d := wantChange(t, rows, "user", "created", user.ID, actor)
		if d["login_name"] != "zoe" || d["id_number"] != ulog.MaskIDNumber(evIDNumber) || d["phone"] != ulog.MaskPhone(evPhone) ||
			d["feature_code"] != user.FeatureCode {
			t.Errorf("user.created data %v", d)
		}
		if _, ok := d["password_hash"]; ok {
			t.Errorf("user.created carries the password hash: %v", d)
		}

		rows = step(t, "user.update", "user:"+user.ID, func() string {
			_, err := e.svc.UpdateUser(ctx, user.ID, identity.UserUpdate{Mask: []string{"display_name", "phone"}, DisplayName: "Zoe Q", Phone: evPhone2})
			must(err)
			return root.ID
		})
		if d := wantChange(t, rows, "user", "updated", user.ID, actor); d["display_name"] != "Zoe Q" || d["phone"] != ulog.MaskPhone(evPhone2) {
			t.Errorf("user.updated data %v", d)
		}

		rows = step(t, "user.status_changed", "user:"+user.ID, func() string {
			_, err := e.svc.SetUserStatus(ctx, user.ID, identity.StatusDisabled)
			must(err)
			return root.ID
		})
		wantChange(t, rows, "user", "status_changed", user.ID, actor)
		_, err := e.svc.SetUserStatus(ctx, user.ID, identity.StatusActive)
		must(err)

		rows = step(t, "user.locked", "user:"+user.ID, func() string {
			_, err := e.svc.LockUser(ctx, user.ID, 0)
			must(err)
			return root.ID
		})
		wantChange(t, rows, "user", "locked", user.ID, actor)

		rows = step(t, "user.unlocked", "user:"+user.ID, func() string {
			_, err := e.svc.UnlockUser(ctx, user.ID)
			must(err)
			return root.ID
		})
		wantChange(t, rows, "user", "unlocked", user.ID, actor)

		rows = step(t, "user.set_password", "user:"+user.ID, func() string {
			_, err := e.svc.SetPassword(ctx, user.ID, "Reset-Pass-456", true)
			must(err)
			return root.ID
		})
		if d := wantChange(t, rows, "user", "password_changed", user.ID, actor); d["must_change_password"] != true {
			t.Errorf("user.password_changed data %v", d)
		} else if at, _ := d["password_changed_at"].(string); at == "" {
			// the time the sign-in pages' logins answer (ticket keeps the
			// sessions opened with the new password)
			t.Errorf("user.password_changed without password_changed_at: %v", d)
		} else if u, err := e.svc.GetUser(context.Background(), user.ID); err != nil || u.PasswordChangedAt.UTC().Format(time.RFC3339Nano) != at {
			t.Errorf("password_changed_at %s, stored %v (%v)", at, u.PasswordChangedAt, err)
		}

		var temporary string
		rows = step(t, "user.reset_password", "user:"+user.ID, func() string {
			_, pw, err := e.svc.ResetPassword(ctx, user.ID, nil)
			must(err)
			temporary = pw
			return root.ID
		})
		for _, r := range rows {
			if temporary == "" || strings.Contains(string(r.Payload), temporary) {
				t.Errorf("the temporary password is in the outbox: %s %s", r.Subject, r.Payload)
			}
		}
		if d := wantChange(t, rows, "user", "password_changed", user.ID, actor); d["must_change_password"] != true {
			t.Errorf("user.password_changed data after a reset %v", d)
		}
	})

	t.Run("self-service password change", func(t *testing.T) {
		appActor := "app:" + caller.From(w.ctx).App.ID
		m := e.mark(t)
		must(e.svc.ChangePassword(w.ctx, "m001", evUserPass, "Second-Pass-2"))
		rows := e.outbox(t, m)
		wantChange(t, rows, "user", "password_changed", w.user.ID, appActor)
		for _, api := range []string{"password.change.verify", "password.change"} {
			if rec := audit(t, rows, api); rec.Actor != appActor || rec.Result != "success" || rec.Subject != "user:"+w.user.ID {
				t.Errorf("%s audit %+v", api, rec)
			}
		}
	})

	t.Run("group", func(t *testing.T) {
		var g *identity.Group
		rows := step(t, "group.create", "", func() string {
			var err error
			g, err = e.svc.CreateGroup(ctx, "ops", "Ops", root.ID)
			must(err)
			return root.ID
		})
		wantChange(t, rows, "group", "created", g.ID, actor)
		for _, add := range []bool{true, false} {
			op := map[bool]string{true: "member_added", false: "member_removed"}[add]
			rows = step(t, "group."+op, "group:"+g.ID, func() string {
				_, err := e.svc.SetGroupMember(ctx, g.ID, user.ID, add)
				must(err)
				return root.ID
			})
			if d := wantChange(t, rows, "group", op, g.ID, actor); d["user_id"] != user.ID {
				t.Errorf("group.%s data %v", op, d)
			}
		}
		rows = step(t, "group.update", "group:"+g.ID, func() string {
			_, err := e.svc.UpdateGroup(ctx, g.ID, "Operations")
			must(err)
			return root.ID
		})
		if d := wantChange(t, rows, "group", "updated", g.ID, actor); d["name"] != "Operations" || d["code"] != "ops" {
			t.Errorf("group.updated data %v", d)
		}
		_, err := e.svc.SetGroupMember(ctx, g.ID, user.ID, true)
		must(err)
		rows = step(t, "group.delete", "group:"+g.ID, func() string {
			must(e.svc.DeleteGroup(ctx, g.ID))
			return root.ID
		})
		wantChange(t, rows, "group", "deleted", g.ID, actor)
		if _, err := e.svc.GetUser(ctx, user.ID); err != nil {
			t.Errorf("a member of a deleted group: %v", err)
		}
	})

	t.Run("app and link", func(t *testing.T) {
		var app *identity.App
		var secrets []string
		rows := step(t, "app.create", "", func() string {
			a, secret, err := e.svc.CreateApp(ctx, identity.NewApp{Type: "HR", Code: "hr", Name: "HR"})
			must(err)
			app, secrets = a, append(secrets, secret)
			return ""
		})
		wantChange(t, rows, "app", "created", app.ID, actor)

		rows = step(t, "app.update", "app:"+app.ID, func() string {
			_, err := e.svc.UpdateApp(ctx, app.ID, identity.AppUpdate{Mask: []string{"status"}, Status: identity.AppSuspended})
			must(err)
			return ""
		})
		if d := wantChange(t, rows, "app", "updated", app.ID, actor); d["status"] != float64(identity.AppSuspended) {
			t.Errorf("app.updated data %v", d)
		}

		rows = step(t, "app.rotate_secret", "app:"+app.ID, func() string {
			_, secret, err := e.svc.RotateAppSecret(ctx, app.ID, nil, nil)
			must(err)
			secrets = append(secrets, secret)
			return ""
		})
		wantChange(t, rows, "app", "secret_rotated", app.ID, actor)
		e.noneContain(t, "application secret", secrets...)

		var link *identity.AccountLink
		rows = step(t, "link.create", "user:"+user.ID, func() string {
			var err error
			link, err = e.svc.CreateLink(ctx, user.ID, app.ID, "z-007")
			must(err)
			return root.ID
		})
		if d := wantChange(t, rows, "link", "created", link.ID, actor); d["user_id"] != user.ID || d["app_id"] != app.ID {
			t.Errorf("link.created data %v", d)
		}
		rows = step(t, "link.delete", "user:"+user.ID, func() string {
			must(e.svc.DeleteLink(ctx, link.ID))
			return "" // DeleteLink audits without an org
		})
		wantChange(t, rows, "link", "deleted", link.ID, actor)
		// The person removes their own link (their profile page): they
		// are the actor.
		link, err := e.svc.CreateLink(ctx, user.ID, app.ID, "z-008")
		must(err)
		self := *caller.From(ctx)
		self.Principal = user.ID
		m := e.mark(t)
		must(e.svc.UnlinkAccount(caller.With(ctx, &self), user.ID, app.ID))
		rows = e.outbox(t, m)
		if rec := audit(t, rows, "link.unlink"); rec.Actor != "user:"+user.ID || rec.Subject != "user:"+user.ID || rec.Result != "success" {
			t.Errorf("link.unlink audit: %+v (want the person as actor and subject)", rec)
		}
		wantChange(t, rows, "link", "deleted", link.ID, "user:"+user.ID)
		if err := e.svc.UnlinkAccount(caller.With(ctx, &self), user.ID, app.ID); !errors.Is(err, identity.ErrNotFound) {
			t.Errorf("unlink without a link: %v", err)
		}

		// Deleting a person: one CHANGES event (ticket ends their
		// sessions, sync tells the business systems), audited; gone
		// for Authenticate (no such user, -2) with their link.
		gone, err := e.svc.CreateUser(ctx, identity.NewUser{LoginName: "gone", DisplayName: "Gone", OrgID: root.ID, Password: "Vanish-Pass-123"})
		must(err)
		_, err = e.svc.CreateLink(ctx, gone.ID, app.ID, "z-gone")
		must(err)
		rows = step(t, "user.delete", "user:"+gone.ID, func() string {
			must(e.svc.DeleteUser(ctx, gone.ID))
			return root.ID
		})
		if d := wantChange(t, rows, "user", "deleted", gone.ID, actor); d["org_id"] != root.ID {
			t.Errorf("user.deleted data %v", d)
		}
		if _, err := e.svc.GetUser(ctx, gone.ID); !errors.Is(err, identity.ErrNotFound) {
			t.Errorf("a deleted person read back: %v", err)
		}
		res, err := e.svc.Authenticate(w.ctx, identity.AuthRequest{AppUserID: "z-gone", Password: "Vanish-Pass-123", AuthType: identity.AuthPassword})
		if err != nil || res.Reason.LegacyCode() != -2 {
			t.Errorf("Authenticate of a deleted person's account: %+v %v, want -2", res, err)
		}
		if err := e.svc.DeleteUser(ctx, gone.ID); !errors.Is(err, identity.ErrNotFound) {
			t.Errorf("deleting again: %v, want not found", err)
		}
		if err := e.svc.DeleteUser(ctx, admin.ID); reasonOf(err) != "OWN_ACCOUNT" {
			t.Errorf("an administrator deleting themselves: %v", err)
		}

		// Deleting an application: only once suspended (APP_ACTIVE);
		// then one CHANGES event (ticket, authz and sync drop what is
		// theirs), audited; its links go, its credentials are refused at
		// once (no longer APP_SUSPENDED: unknown).
		old, oldSecret, err := e.svc.CreateApp(ctx, identity.NewApp{Type: "OLD", Code: "old", Name: "Old"})
		must(err)
		oldLink, err := e.svc.CreateLink(ctx, user.ID, old.ID, "z-old")
		must(err)
		if err := e.svc.DeleteApp(ctx, old.ID); reasonOf(err) != "APP_ACTIVE" {
			t.Errorf("deleting an active application: %v", err)
		}
		_, err = e.svc.UpdateApp(ctx, old.ID, identity.AppUpdate{Mask: []string{"status"}, Status: identity.AppSuspended})
		must(err)
		if _, err := e.svc.AuthenticateApp(ctx, old.ID, oldSecret, netip.Addr{}); reasonOf(err) != "APP_SUSPENDED" {
			t.Errorf("a suspended application's credentials: %v", err)
		}
		rows = step(t, "app.delete", "app:"+old.ID, func() string {
			must(e.svc.DeleteApp(ctx, old.ID))
			return ""
		})
		if d := wantChange(t, rows, "app", "deleted", old.ID, actor); d["app_type"] != "OLD" || d["app_code"] != "old" {
			t.Errorf("app.deleted data %v", d)
		}
		if _, err := e.svc.GetApp(ctx, old.ID); !errors.Is(err, identity.ErrNotFound) {
			t.Errorf("a deleted application read back: %v", err)
		}
		if _, err := e.svc.GetLink(ctx, oldLink.ID); !errors.Is(err, identity.ErrNotFound) {
			t.Errorf("the link of a deleted application: %v", err)
		}
		if _, err := e.svc.AuthenticateApp(ctx, old.ID, oldSecret, netip.Addr{}); reasonOf(err) != "APP_TERMINATED" {
			t.Errorf("a deleted application's credentials: %v", err)
		}
		if err := e.svc.DeleteApp(ctx, old.ID); !errors.Is(err, identity.ErrNotFound) {
			t.Errorf("deleting an application again: %v, want not found", err)
		}
	})

	// Nothing in the outbox holds personal data in clear or a password.
	e.noneContain(t, "ID number", evIDNumber)
	e.noneContain(t, "phone number", evPhone, evPhone2)
	e.noneContain(t, "password", evAdminPass, evUserPass, "Kite-Pass-123", "Reset-Pass-456", "Second-Pass-2")
}

// TestAuditEventsForAuthentication checks the AUDIT records of a login
// success, a wrong password, a lockout, an unknown account, an
// administrator change and a refused application caller, field by field.
func TestAuditEventsForAuthentication(t *testing.T) {
	e := newEvEnv(t, "")
	w := setupOn(t, e.svc, e.clk)
	app := caller.From(w.ctx).App
	c := caller.Caller{App: app, ClientIP: netip.MustParseAddr("192.0.2.10"), RequestID: "req-auth-1"}
	ctx := caller.With(context.Background(), &c)
	u := w.user
	base := events.AuditRecord{Serial: "req-auth-1", AppID: app.ID, Actor: "app:" + app.ID,
		Subject: "user:" + u.ID, Org: u.OrgID, ClientIP: "192.0.2.10"}
	// Each call reports another client address (extend_info client_ip):
	// only failures from several sources lock an account.
	n := 0
	authn := func(pw string) identity.Reason {
		t.Helper()
		n++
		r, err := e.svc.Authenticate(ctx, identity.AuthRequest{AppUserID: "m001", Password: pw, AuthType: identity.AuthPassword,
			Extend: map[string]string{identity.ClientIPExtend: fmt.Sprintf("198.51.100.%d", n)}})
		if err != nil {
			t.Fatal(err)
		}
		return r.Reason
	}
	wrong := []string{"Wrong-Pass-1", "Wrong-Pass-2", "Wrong-Pass-3", "Wrong-Pass-4", "Wrong-Pass-5"}
	// The records carry the person's address the application reported as
	// their client_ip, the application's own as app_ip.
	reported := func(r events.AuditRecord) events.AuditRecord {
		r.ClientIP = fmt.Sprintf("198.51.100.%d", n)
		return r
	}

	t.Run("login success", func(t *testing.T) {
		m, before := e.mark(t), e.clk.t
		if r := authn(evUserPass); r != identity.ReasonOK {
			t.Fatalf("reason %v", r)
		}
		rows := e.outbox(t, m)
		want := reported(base)
		want.Result, want.Reason = "success", "OK"
		rec := audit(t, rows, "authenticate")
		wantAudit(t, rec, want, before, e.clk.t)
		if rec.Detail["app_ip"] != "192.0.2.10" {
			t.Errorf("the application's address: %v", rec.Detail)
		}
		if len(rows) != 1 {
			t.Errorf("%d events for one login, want 1", len(rows))
		}
	})

	t.Run("login failure", func(t *testing.T) {
		m, before := e.mark(t), e.clk.t
		if r := authn(wrong[0]); r != identity.ReasonBadCredentials {
			t.Fatalf("reason %v", r)
		}
		want := reported(base)
		want.Result, want.Reason = "failure", "BAD_CREDENTIALS"
		wantAudit(t, audit(t, e.outbox(t, m), "authenticate"), want, before, e.clk.t)
	})

	t.Run("lockout", func(t *testing.T) {
		max := e.svc.Policy().MaxFailures
		if max != len(wrong) {
			t.Fatalf("policy MaxFailures %d, test assumes %d", max, len(wrong))
		}
		for i := 1; i < max-1; i++ {
			if r := authn(wrong[i]); r != identity.ReasonBadCredentials {
				t.Fatalf("failure %d: %v", i+1, r)
			}
		}
		m, before := e.mark(t), e.clk.t
		if r := authn(wrong[max-1]); r != identity.ReasonAccountLocked {
			t.Fatalf("failure %d: %v, want locked", max, r)
		}
		rows := e.outbox(t, m)
		// The last failure is audited, then the lockout itself.
		fail := reported(base)
		fail.Result, fail.Reason = "failure", "BAD_CREDENTIALS"
		wantAudit(t, audit(t, rows, "authenticate"), fail, before, e.clk.t)
		lock := reported(base)
		lock.Result, lock.Reason = "locked", "TOO_MANY_FAILURES"
		rec := audit(t, rows, "account.lockout")
		wantAudit(t, rec, lock, before, e.clk.t)
		until, err := time.Parse(time.RFC3339, rec.Detail["locked_until"])
		if err != nil || until.Sub(rec.Time) < e.svc.Policy().LockDuration-2*time.Second || until.Sub(rec.Time) > e.svc.Policy().LockDuration {
			t.Errorf("locked_until %q (audit time %v): %v", rec.Detail["locked_until"], rec.Time, err)
		}
		// The lock is a change of the user too (other instances and data
		// centres learn of it), written with the failure that caused it.
		data := wantChange(t, rows, "user", "locked", u.ID, "app:"+app.ID)
		if data["locked_until"] != rec.Detail["locked_until"] || data["reason"] != "TOO_MANY_FAILURES" {
			t.Errorf("user.locked change data %v", data)
		}
		if len(rows) != 3 {
			t.Errorf("the locking failure wrote %d events, want 3 (failure audit, lockout audit, user.locked)", len(rows))
		}
		// While locked even the right password is refused, and audited.
		m, before = e.mark(t), e.clk.t
		if r := authn(evUserPass); r != identity.ReasonAccountLocked {
			t.Fatalf("right password while locked: %v", r)
		}
		locked := reported(base)
		locked.Result, locked.Reason = "failure", "ACCOUNT_LOCKED"
		wantAudit(t, audit(t, e.outbox(t, m), "authenticate"), locked, before, e.clk.t)
	})

	t.Run("unknown account", func(t *testing.T) {
		// No hash is computed, but the attempt is audited: the claimed
		// account is the subject (there is no user), phone- and ID-shaped
		// values masked as everywhere else.
		for _, tc := range []struct{ claimed, subject string }{
			{"nobody-42", "account:nobody-42"},
			{evPhone, "account:" + ulog.MaskPhone(evPhone)},
		} {
			m, before := e.mark(t), e.clk.t
			r, err := e.svc.Authenticate(ctx, identity.AuthRequest{AppUserID: tc.claimed, Password: "Any-Pass-1", AuthType: identity.AuthPassword})
			if err != nil || r.Reason != identity.ReasonNoSuchUser || r.User != nil {
				t.Fatalf("unknown account %q: %v %v", tc.claimed, r, err)
			}
			rows := e.outbox(t, m)
			if len(rows) != 1 {
				t.Errorf("%d events for an unknown account, want 1", len(rows))
			}
			want := base // no address reported: the application's
			want.Subject, want.Org, want.Result, want.Reason = tc.subject, "", "failure", "NO_SUCH_USER"
			wantAudit(t, audit(t, rows, "authenticate"), want, before, e.clk.t)
		}
	})

	t.Run("account whose user is gone", func(t *testing.T) {
		// The link is found but its user is not (deleted meanwhile): the
		// same answer and the same audit as an unknown account.
		tick := func() time.Time { e.clk.t = e.clk.t.Add(time.Millisecond); return e.clk.t } // as newEvEnv's
		gone, err := identity.New(identity.Deps{Store: goneUserStore{sqlstore.New(e.db)}, Sealer: e.sealer, Logger: zap.NewNop(),
			Now: tick, Hasher: crypto.NewHasher(crypto.HasherConfig{Params: crypto.Argon2Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}})})
		if err != nil {
			t.Fatal(err)
		}
		m, before := e.mark(t), e.clk.t
		r, err := gone.Authenticate(ctx, identity.AuthRequest{AppUserID: "m001", Password: evUserPass, AuthType: identity.AuthPassword})
		if err != nil || r.Reason != identity.ReasonNoSuchUser {
			t.Fatalf("gone user: %v %v", r, err)
		}
		want := base
		want.Subject, want.Org, want.Result, want.Reason = "account:m001", "", "failure", "NO_SUCH_USER"
		wantAudit(t, audit(t, e.outbox(t, m), "authenticate"), want, before, e.clk.t)
	})

	t.Run("administrator change", func(t *testing.T) {
		before := e.clk.t
		_, _, admin, err := e.svc.AdminLogin(caller.With(context.Background(),
			&caller.Caller{ClientIP: netip.MustParseAddr("2001:db8::7"), RequestID: "req-adm-login"}), "admin", evAdminPass)
		if err != nil {
			t.Fatal(err)
		}
		// The administrator login is audited too (no application).
		lrows := e.outbox(t, 0)
		var login *events.AuditRecord
		for _, r := range lrows {
			var rec events.AuditRecord
			if r.Subject == "uias.audit.identity.admin.login" && json.Unmarshal(r.Payload, &rec) == nil && rec.Serial == "req-adm-login" {
				login = &rec
			}
		}
		if login == nil {
			t.Fatal("no admin.login audit")
		}
		wantAudit(t, *login, events.AuditRecord{Serial: "req-adm-login", Actor: "anonymous", Subject: "user:" + admin.ID,
			Org: admin.OrgID, Result: "success", Reason: "OK", ClientIP: "2001:db8::7"}, before, e.clk.t)

		actx := caller.With(context.Background(), &caller.Caller{Principal: admin.ID, ClientIP: netip.MustParseAddr("2001:db8::7"), RequestID: "req-adm-1"})
		m, before := e.mark(t), e.clk.t
		nu, err := e.svc.CreateUser(actx, identity.NewUser{LoginName: "ann", DisplayName: "Ann", OrgID: u.OrgID,
			IDType: identity.IDTypeResidentID, IDNumber: evIDNumber, Phone: evPhone, Password: "Lark-Pass-789"})
		if err != nil {
			t.Fatal(err)
		}
		wantAudit(t, audit(t, e.outbox(t, m), "user.create"), events.AuditRecord{Serial: "req-adm-1", Actor: "user:" + admin.ID,
			Subject: "user:" + nu.ID, Org: u.OrgID, Result: "success", Reason: "OK", ClientIP: "2001:db8::7"}, before, e.clk.t)
	})

	t.Run("refused caller", func(t *testing.T) {
		// As the transport does: the caller (IP, request id) is in ctx
		// before the application is known.
		cctx := caller.With(context.Background(), &caller.Caller{ClientIP: netip.MustParseAddr("198.51.100.4"), RequestID: "req-bad-app"})
		m, before := e.mark(t), e.clk.t
		_, err := e.svc.AuthenticateApp(cctx, app.ID, "not-the-secret-xyz", netip.MustParseAddr("198.51.100.4"))
		if reasonOf(err) != "BAD_APP_CREDENTIALS" {
			t.Fatalf("bad secret: %v", err)
		}
		var ae *apierr.Error
		if !errors.As(err, &ae) || ae.Code != apierr.Unauthenticated {
			t.Errorf("bad secret error %v", err)
		}
		rec := audit(t, e.outbox(t, m), "caller.denied")
		// The application is not authenticated: its claimed id is in the
		// subject and detail, not in app_id, and the actor is anonymous.
		wantAudit(t, rec, events.AuditRecord{Serial: "req-bad-app", Actor: "anonymous", Subject: "app:" + app.ID,
			Result: "denied", Reason: "BAD_APP_CREDENTIALS", ClientIP: "198.51.100.4"}, before, e.clk.t)
		if rec.Detail["app_id"] != app.ID {
			t.Errorf("caller.denied detail %v", rec.Detail)
		}
		e.noneContain(t, "refused application secret", "not-the-secret-xyz")
	})

	e.noneContain(t, "password", append([]string{evAdminPass, evUserPass, "Lark-Pass-789"}, wrong...)...)
	e.noneContain(t, "ID number", evIDNumber)
	e.noneContain(t, "phone number", evPhone)
	var hash string
	if err := e.db.QueryRowContext(context.Background(), `SELECT password_hash FROM users WHERE id = ?`, u.ID).Scan(&hash); err != nil || hash == "" {
		t.Fatalf("password hash: %q %v", hash, err)
	}
	// The hash travels only in the replica part of the change events that
	// set it (for the other centres' identity, replica.go): never in an
	// audit record nor in a change's data.
	for _, r := range e.outbox(t, 0) {
		if !bytes.Contains(r.Payload, []byte(hash)) {
			continue
		}
		var p map[string]json.RawMessage
		if err := json.Unmarshal(r.Payload, &p); err != nil {
			t.Fatal(err)
		}
		delete(p, "replica")
		rest, _ := json.Marshal(p)
		if !strings.HasPrefix(r.Subject, "uias.changes.identity.user.") || bytes.Contains(rest, []byte(hash)) {
			t.Errorf("outbox row %d (%s) holds the password hash outside a change's replica part", r.Seq, r.Subject)
		}
	}
}

// TestOrgDisableRules checks the org status rules: the root can be neither
// disabled nor moved, a disabled org disables its whole subtree (nothing new
// goes into it, nothing moves into it, its people cannot log in), and
// refused calls write no event.
func TestOrgDisableRules(t *testing.T) {
	e := newEvEnv(t, "")
	w := setupOn(t, e.svc, e.clk)
	ctx, _ := adminCtx(t, e.svc, "10.0.0.9", "req-org")
	root := evRoot(t, e.svc)
	east, err := e.svc.CreateOrg(ctx, "east", "East", root.ID)
	if err != nil {
		t.Fatal(err)
	}
	east1, err := e.svc.CreateOrg(ctx, "east-1", "East 1", east.ID)
	if err != nil {
		t.Fatal(err)
	}
	west, err := e.svc.CreateOrg(ctx, "west", "West", root.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Mia (linked to the app as m001) works in East 1.
	if _, err := e.svc.UpdateUser(ctx, w.user.ID, identity.UserUpdate{Mask: []string{"org_id"}, OrgID: east1.ID}); err != nil {
		t.Fatal(err)
	}
	refused := func(t *testing.T, reason string, err error) {
		t.Helper()
		var ae *apierr.Error
		if !errors.As(err, &ae) || ae.Reason != reason || ae.Code != apierr.FailedPrecondition {
			t.Fatalf("want FAILED_PRECONDITION %s, got %v", reason, err)
		}
	}
	quiet := func(t *testing.T, fn func() error, reason string) {
		t.Helper()
		m := e.mark(t)
		refused(t, reason, fn())
		if rows := e.outbox(t, m); len(rows) != 0 {
			t.Errorf("a refused call wrote %d events: %v", len(rows), rows[0].Subject)
		}
	}

	t.Run("root cannot be disabled or moved", func(t *testing.T) {
		quiet(t, func() error { _, err := e.svc.SetOrgStatus(ctx, root.ID, identity.StatusDisabled); return err }, "ROOT_ORG")
		quiet(t, func() error { _, err := e.svc.MoveOrg(ctx, root.ID, east.ID); return err }, "ROOT_ORG")
		if o, _ := e.svc.GetOrg(ctx, root.ID); o.Status != identity.StatusActive {
			t.Fatalf("root status %v", o.Status)
		}
		// Re-enabling the (active) root is allowed.
		if _, err := e.svc.SetOrgStatus(ctx, root.ID, identity.StatusActive); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("no cycles", func(t *testing.T) {
		quiet(t, func() error { _, err := e.svc.MoveOrg(ctx, east.ID, east.ID); return err }, "ORG_CYCLE")
		quiet(t, func() error { _, err := e.svc.MoveOrg(ctx, east.ID, east1.ID); return err }, "ORG_CYCLE")
	})

	if got := w.auth(t, "First-Pass-1"); got.Reason != identity.ReasonOK {
		t.Fatalf("login before disabling: %v", got.Reason)
	}
	if _, err := e.svc.SetOrgStatus(ctx, east.ID, identity.StatusDisabled); err != nil {
		t.Fatal(err)
	}

	t.Run("nothing new in a disabled subtree", func(t *testing.T) {
		for _, o := range []*identity.Org{east, east1} {
			quiet(t, func() error { _, err := e.svc.CreateOrg(ctx, "east-2", "East 2", o.ID); return err }, "PARENT_DISABLED")
			quiet(t, func() error {
				_, err := e.svc.CreateUser(ctx, identity.NewUser{LoginName: "eve", DisplayName: "Eve", OrgID: o.ID})
				return err
			}, "ORG_DISABLED")
			quiet(t, func() error { _, err := e.svc.CreateGroup(ctx, "g-east", "East group", o.ID); return err }, "ORG_DISABLED")
			quiet(t, func() error { _, err := e.svc.MoveOrg(ctx, west.ID, o.ID); return err }, "PARENT_DISABLED")
		}
		nu, err := e.svc.CreateUser(ctx, identity.NewUser{LoginName: "eve", DisplayName: "Eve", OrgID: west.ID})
		if err != nil {
			t.Fatal(err)
		}
		quiet(t, func() error {
			_, err := e.svc.UpdateUser(ctx, nu.ID, identity.UserUpdate{Mask: []string{"org_id"}, OrgID: east1.ID})
			return err
		}, "ORG_DISABLED")
	})

	t.Run("people below a disabled org cannot log in", func(t *testing.T) {
		m := e.mark(t)
		if got := w.auth(t, "First-Pass-1"); got.Reason != identity.ReasonAccountDisabled || got.User != nil {
			t.Fatalf("login in a disabled subtree: %v %v", got.Reason, got.User)
		}
		rows := e.outbox(t, m)
		if len(rows) != 1 || !strings.Contains(string(rows[0].Payload), "ORG_DISABLED") {
			t.Fatalf("want one audit event with reason ORG_DISABLED, got %v", rows)
		}
		// Enabling East 1 alone does not help while East is disabled.
		if _, err := e.svc.SetOrgStatus(ctx, east1.ID, identity.StatusActive); err != nil {
			t.Fatal(err)
		}
		if got := w.auth(t, "First-Pass-1"); got.Reason != identity.ReasonAccountDisabled {
			t.Fatalf("login with only the parent disabled: %v", got.Reason)
		}
	})

	t.Run("re-enabled org works again", func(t *testing.T) {
		if _, err := e.svc.SetOrgStatus(ctx, east.ID, identity.StatusActive); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.CreateOrg(ctx, "east-2", "East 2", east1.ID); err != nil {
			t.Fatal(err)
		}
		if got := w.auth(t, "First-Pass-1"); got.Reason != identity.ReasonOK {
			t.Fatalf("login after re-enabling: %v", got.Reason)
		}
	})
}

// TestPersonalDataEncryptedAtRest checks the users row and the database
// files hold the ID number and phone only sealed (and masked).
func TestPersonalDataEncryptedAtRest(t *testing.T) {
	e := newEvEnv(t, "")
	setupOn(t, e.svc, e.clk)
	ctx, _ := adminCtx(t, e.svc, "10.0.0.9", "req-enc")
	root := evRoot(t, e.svc)
	u, err := e.svc.CreateUser(ctx, identity.NewUser{LoginName: "zoe", DisplayName: "Zoe", OrgID: root.ID,
		IDType: identity.IDTypeResidentID, IDNumber: evIDNumber, Phone: evPhone})
	if err != nil {
		t.Fatal(err)
	}

	rows, err := e.db.QueryContext(context.Background(), `SELECT * FROM users WHERE id = ?`, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	cols, _ := rows.Columns()
	row := map[string]string{}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, c := range cols {
			if b, ok := vals[i].([]byte); ok {
				row[c] = string(b)
			} else {
				row[c] = fmt.Sprint(vals[i])
			}
		}
	}
	rows.Close()
	if len(row) == 0 {
		t.Fatal("user row not found")
	}
	for c, v := range row {
		if strings.Contains(v, evIDNumber) || strings.Contains(v, evPhone) {
			t.Errorf("users.%s holds personal data in clear: %q", c, v)
		}
	}
	if row["id_number_mask"] != ulog.MaskIDNumber(evIDNumber) || row["phone_mask"] != ulog.MaskPhone(evPhone) {
		t.Errorf("masks: %q %q", row["id_number_mask"], row["phone_mask"])
	}
	// The sealed columns open to the values (encrypted, not dropped), and
	// only with their own associated data.
	for _, p := range []struct{ col, ad, want string }{
		{"id_number_enc", "user.id_number", evIDNumber}, {"phone_enc", "user.phone", evPhone},
	} {
		got, err := e.sealer.Open(row[p.col], []byte(p.ad))
		if err != nil || string(got) != p.want {
			t.Errorf("%s does not open to the value: %q %v", p.col, got, err)
		}
		if _, err := e.sealer.Open(row[p.col], []byte("other")); err == nil {
			t.Errorf("%s opens with the wrong associated data", p.col)
		}
	}
	// Nowhere in the database files (main file and WAL) in clear either.
	files, _ := filepath.Glob(e.dbPath + "*")
	if len(files) == 0 {
		t.Fatal("no database files")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{evIDNumber, evPhone} {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("database file %s contains %q in clear", filepath.Base(f), s)
			}
		}
	}
}

// TestFeatureCode checks the feature code (a keyed hash of ID type, ID
// number, display name and login name): equal inputs give equal codes, any
// one differing input a different code, and it reveals no ID number.
func TestFeatureCode(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "keys.json")
	base := identity.NewUser{LoginName: "zoe", DisplayName: "Zoe", IDType: identity.IDTypePassport, IDNumber: "E12345678"}
	// code creates n on a fresh database sharing keyFile's key ring (login
	// names are unique per database).
	code := func(t *testing.T, keyFile string, n identity.NewUser) string {
		t.Helper()
		e := newEvEnv(t, keyFile)
		root, err := e.svc.CreateOrg(context.Background(), "root", "Root", "")
		if err != nil {
			t.Fatal(err)
		}
		n.OrgID = root.ID
		u, err := e.svc.CreateUser(context.Background(), n)
		if err != nil {
			t.Fatal(err)
		}
		var stored string
		if err := e.db.QueryRowContext(context.Background(), `SELECT feature_code FROM users WHERE id = ?`, u.ID).Scan(&stored); err != nil || stored != u.FeatureCode {
			t.Fatalf("stored feature code %q != %q (%v)", stored, u.FeatureCode, err)
		}
		return u.FeatureCode
	}
	want := code(t, keyFile, base)
	if len(want) != 32 || strings.Trim(want, "0123456789abcdef") != "" {
		t.Fatalf("feature code %q is not 32 hex digits", want)
	}
	if got := code(t, keyFile, base); got != want {
		t.Fatalf("equal inputs: %q != %q", got, want)
	}
	vary := map[string]func(n *identity.NewUser){
		"id type":    func(n *identity.NewUser) { n.IDType = identity.IDTypeOther },
		"id number":  func(n *identity.NewUser) { n.IDNumber = "E12345679" },
		"name":       func(n *identity.NewUser) { n.DisplayName = "Zoë" },
		"login name": func(n *identity.NewUser) { n.LoginName = "zoe2" },
		"no id":      func(n *identity.NewUser) { n.IDType, n.IDNumber = identity.IDTypeNone, "" },
	}
	for name, f := range vary {
		n := base
		f(&n)
		if got := code(t, keyFile, n); got == want {
			t.Errorf("%s differs, feature code does not: %q", name, got)
		}
	}
	// The ID number is compared case-insensitively (a trailing x or X).
	lower := base
	lower.IDNumber = "e12345678"
	if got := code(t, keyFile, lower); got != want {
		t.Errorf("ID number case changed the code: %q != %q", got, want)
	}
	// It is keyed: another key ring gives another code.
	if got := code(t, "", base); got == want {
		t.Errorf("another key ring gave the same code %q", got)
	}

	// Resident ID: the code never holds the number (or its digits run).
	e := newEvEnv(t, keyFile)
	setupOn(t, e.svc, e.clk)
	ctx := context.Background()
	root := evRoot(t, e.svc)
	u, err := e.svc.CreateUser(ctx, identity.NewUser{LoginName: "zoe", DisplayName: "Zoe", OrgID: root.ID,
		IDType: identity.IDTypeResidentID, IDNumber: evIDNumber})
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{evIDNumber, evIDNumber[:8], evIDNumber[len(evIDNumber)-8:]} {
		if strings.Contains(u.FeatureCode, part) {
			t.Errorf("feature code %q contains %q", u.FeatureCode, part)
		}
	}
	// It follows the name: a rename changes it, renaming back restores it,
	// and an unrelated update leaves it.
	rename := func(name string) string {
		t.Helper()
		v, err := e.svc.UpdateUser(ctx, u.ID, identity.UserUpdate{Mask: []string{"display_name"}, DisplayName: name})
		if err != nil {
			t.Fatal(err)
		}
		return v.FeatureCode
	}
	if got := rename("Zoe Q"); got == u.FeatureCode {
		t.Error("rename kept the feature code")
	}
	if got := rename("Zoe"); got != u.FeatureCode {
		t.Errorf("renaming back: %q != %q", got, u.FeatureCode)
	}
	v, err := e.svc.UpdateUser(ctx, u.ID, identity.UserUpdate{Mask: []string{"email"}, Email: "zoe@example.org"})
	if err != nil || v.FeatureCode != u.FeatureCode {
		t.Errorf("email update changed the feature code: %v", err)
	}
}

// goneUserStore is the real store, except that no user is found: the state
// of a login racing the removal of its user.
type goneUserStore struct{ identity.Store }

func (goneUserStore) GetUser(context.Context, string) (*identity.User, error) {
	return nil, fmt.Errorf("user: %w", identity.ErrNotFound)
}
