package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/sync/provision"
)

// RunProvision runs the conformance suite of provision.Store; open returns
// a new, empty, migrated store and a function that reads a column of
// prov_subscriptions raw (to check that secrets are sealed).
func RunProvision(t *testing.T, open func(t *testing.T) (provision.Store, func(id string) string)) {
	ctx := context.Background()
	now := time.UnixMilli(1_700_000_000_000).UTC()
	newSub := func(id, app string) *provision.Subscription {
		return &provision.Subscription{ID: id, App: app, Name: "n " + id, Selection: provision.Selection{Orgs: []string{"o1"}, Linked: true},
			Transport: provision.Webhook, Endpoint: "https://example.test/hook", Settings: map[string]string{"k": "v"},
			Secret: "webhook-secret-0123456789", Strategy: provision.Immediate, BatchEvery: time.Hour, Enabled: true,
			CreatedAt: now, UpdatedAt: now}
	}

	t.Run("RolesOfAnApplication", func(t *testing.T) {
		s, _ := open(t)
		sub := newSub("s1", "crm")
		sub.DeliverRoles = true
		if err := s.CreateSubscription(ctx, sub); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetSubscription(ctx, "s1"); err != nil || !got.DeliverRoles {
			t.Fatalf("deliver_roles read back %+v %v", got, err)
		}
		sub.DeliverRoles, sub.UpdatedAt = false, now.Add(time.Second)
		if err := s.UpdateSubscription(ctx, sub); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetSubscription(ctx, "s1"); err != nil || got.DeliverRoles {
			t.Fatalf("deliver_roles cleared, read back %+v %v", got, err)
		}
		sub.DeliverRoles = true
		err := s.InTx(ctx, func(tx provision.Tx) error {
			for _, o := range []provision.Object{
				{Kind: provision.KindOrg, ID: "o1", Data: []byte(`{"code":"hq"}`)},
				{Kind: provision.KindOrg, ID: "o2", Data: []byte(`{"code":"x","parent_id":"o1"}`)},
				{Kind: provision.KindUser, ID: "u1", Data: []byte(`{"login_name":"ann","org_id":"o2"}`)},
				{Kind: provision.KindUser, ID: "u2", Data: []byte(`{"login_name":"bob","org_id":"o1"}`)},
				{Kind: provision.KindUser, ID: "u3", Data: []byte(`{"login_name":"cy","org_id":"elsewhere"}`)},
				{Kind: provision.KindGroup, ID: "g1", Data: []byte(`{"code":"desk","org_id":"o1"}`)},
				{Kind: provision.KindRole, ID: "r1", Data: []byte(`{"app":"crm","code":"clerk","name":"Clerk","permissions":["orders:read"]}`)},
				{Kind: provision.KindRole, ID: "r2", Data: []byte(`{"app":"crm","code":"admin","name":"Admin"}`)},
				{Kind: provision.KindRole, ID: "r3", Data: []byte(`{"app":"erp","code":"buyer"}`)},
				{Kind: provision.KindRole, ID: "r4", Data: []byte(`{"app":"crm","code":"gone"}`), Deleted: true},
			} {
				if err := tx.PutObject(o); err != nil {
					return err
				}
			}
			if err := tx.SetMember("g1", "u3", true); err != nil {
				return err
			}
			for _, g := range [][4]string{{"gr1", "r1", "org", "o1"}, {"gr2", "r2", "user", "u1"}, {"gr3", "r3", "user", "u1"},
				{"gr4", "r1", "group", "g1"}, {"gr5", "r4", "user", "u1"}} {
				if err := tx.PutGrant(g[0], g[1], g[2], g[3], provision.Window{}); err != nil {
					return err
				}
			}
			if got, err := tx.GrantsOfRole("r1", time.Time{}); err != nil || !slices.Equal(got, []string{"group:g1", "org:o1"}) {
				t.Errorf("grants of r1 %v %v", got, err)
			}
			if got, err := tx.GrantsOfRole("nope", now); err != nil || len(got) != 0 {
				t.Errorf("grants of an unknown role %v %v", got, err)
			}
			// u1: r1 through o1 above o2, r2 directly; not erp's r3 nor the deleted r4
			rs, err := provision.UserRoles(tx, "u1", "crm", now)
			if err != nil || len(rs) != 2 || rs[0].Code != "admin" || rs[1].Code != "clerk" || rs[1].Name != "Clerk" || rs[1].ID != "r1" {
				t.Errorf("u1's roles %+v %v", rs, err)
			}
			if rs, err := provision.UserRoles(tx, "u2", "erp", now); err != nil || rs == nil || len(rs) != 0 {
				t.Errorf("u2's erp roles %+v %v", rs, err)
			}
			// r1's holders in the selection (o1's subtree): u1, u2; u3 (through g1) is outside it
			hs, err := provision.RoleHolders(tx, sub, "r1", now)
			if err != nil || len(hs) != 2 || hs[0] != (provision.Member{ID: "u1", Login: "ann"}) || hs[1].ID != "u2" {
				t.Errorf("r1's holders %+v %v", hs, err)
			}
			// a grant's validity window (review sec27b M2): bob holds admin
			// from +1h until +2h only
			base := now.Truncate(time.Millisecond)
			from, until := base.Add(time.Hour), base.Add(2*time.Hour)
			if err := tx.PutGrant("gr6", "r2", "user", "u2", provision.Window{From: from, Until: until}); err != nil {
				return err
			}
			for _, c := range []struct {
				at   time.Time
				want string
			}{{base, "clerk"}, {from.Add(-time.Millisecond), "clerk"}, {from, "admin,clerk"}, {until.Add(-time.Millisecond), "admin,clerk"},
				{until, "clerk"}, {time.Time{}, "admin,clerk"}} {
				rs, err := provision.UserRoles(tx, "u2", "crm", c.at)
				var codes []string
				for _, r := range rs {
					codes = append(codes, r.Code)
				}
				if err != nil || strings.Join(codes, ",") != c.want {
					t.Errorf("bob's roles at %v: %v %v, want %s", c.at, codes, err, c.want)
				}
			}
			if got, err := tx.GrantsOfRole("r2", base); err != nil || !slices.Equal(got, []string{"user:u1"}) {
				t.Errorf("grants of r2 now %v %v", got, err)
			}
			if got, err := tx.GrantsOfRole("r2", from); err != nil || !slices.Equal(got, []string{"user:u1", "user:u2"}) {
				t.Errorf("grants of r2 in the window %v %v", got, err)
			}
			if got, err := tx.Grants("user", "u2", until); err != nil || len(got) != 0 {
				t.Errorf("bob's grants after the window %v %v", got, err)
			}
			for _, c := range []struct {
				after, upTo time.Time
				want        []provision.GrantWindow
			}{
				{base, from.Add(-time.Millisecond), nil},
				{base, from, []provision.GrantWindow{{ID: "gr6", Role: "r2", Kind: "user", Subject: "u2", At: from.UTC()}}},
				{from, until, []provision.GrantWindow{{ID: "gr6", Role: "r2", Kind: "user", Subject: "u2", At: until.UTC()}}},
				{time.Time{}, until.Add(time.Hour), []provision.GrantWindow{{ID: "gr6", Role: "r2", Kind: "user", Subject: "u2", At: from.UTC()},
					{ID: "gr6", Role: "r2", Kind: "user", Subject: "u2", At: until.UTC()}}},
			} {
				got, err := tx.GrantsCrossing(c.after, c.upTo)
				if err != nil || !slices.EqualFunc(got, c.want, func(a, b provision.GrantWindow) bool {
					return a.ID == b.ID && a.Role == b.Role && a.Kind == b.Kind && a.Subject == b.Subject && a.At.Equal(b.At)
				}) {
					t.Errorf("grants crossing (%v, %v]: %+v %v, want %+v", c.after, c.upTo, got, err, c.want)
				}
			}
			if at, err := tx.SweptUntil(); err != nil || !at.IsZero() {
				t.Errorf("never swept: %v %v", at, err)
			}
			if err := tx.SetSweptUntil(from); err != nil {
				return err
			}
			if at, err := tx.SweptUntil(); err != nil || !at.Equal(from) {
				t.Errorf("swept until %v %v, want %v", at, err, from)
			}
			if _, _, err := tx.DeleteGrant("gr6"); err != nil {
				return err
			}
			n, err := provision.EnqueueSelection(tx, sub, provision.Filter{}, "b1", now)
			if err != nil || n != 7 { // o1, o2, u1, u2, g1, then the roles r1, r2 (not erp's, not the deleted one)
				t.Errorf("batch enqueued %d %v", n, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		ds, err := s.Due(ctx, "s1", 100)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, d := range ds {
			got = append(got, d.ObjectID)
		}
		if !slices.Equal(got, []string{"o1", "o2", "u1", "u2", "g1", "r1", "r2"}) {
			t.Fatalf("batch %v", got)
		}
	})

	t.Run("SubscriptionsRoundTripWithSealedSecret", func(t *testing.T) {
		s, raw := open(t)
		if err := s.CreateSubscription(ctx, newSub("s1", "app1")); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateSubscription(ctx, newSub("s1", "app1")); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("duplicate id: %v", err)
		}
		if err := s.CreateSubscription(ctx, newSub("s2", "app2")); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetSubscription(ctx, "s1")
		if err != nil {
			t.Fatal(err)
		}
		if got.Secret != "webhook-secret-0123456789" || got.Settings["k"] != "v" || !slices.Equal(got.Selection.Orgs, []string{"o1"}) ||
			!got.Selection.Linked || got.BatchEvery != time.Hour || !got.Enabled || !got.CreatedAt.Equal(now) || got.BatchAt != "" {
			t.Fatalf("read back %+v", got)
		}
		// A time of day and its zone, set and cleared.
		got.BatchAt, got.BatchTimeZone, got.BatchEvery = "02:30", "Asia/Shanghai", 48*time.Hour
		if err := s.UpdateSubscription(ctx, got); err != nil {
			t.Fatal(err)
		}
		if again, err := s.GetSubscription(ctx, "s1"); err != nil || again.BatchAt != "02:30" || again.BatchTimeZone != "Asia/Shanghai" ||
			again.BatchEvery != 48*time.Hour {
			t.Fatalf("batch_at read back %+v %v", again, err)
		}
		got.BatchAt, got.BatchTimeZone, got.BatchEvery = "", "", time.Hour
		if err := s.UpdateSubscription(ctx, got); err != nil {
			t.Fatal(err)
		}
		if sealed := raw("s1"); sealed == "" || sealed == got.Secret {
			t.Fatalf("secret stored as %q", sealed)
		}
		list, err := s.ListSubscriptions(ctx, "app2")
		if err != nil || len(list) != 1 || list[0].ID != "s2" {
			t.Fatalf("list app2: %v %v", list, err)
		}
		all, _ := s.ListSubscriptions(ctx, "")
		if len(all) != 2 {
			t.Fatalf("list all: %d", len(all))
		}
		upd := newSub("s1", "app1")
		upd.Secret, upd.Enabled, upd.UpdatedAt = "", false, now.Add(time.Second)
		if err := s.UpdateSubscription(ctx, upd); err != nil {
			t.Fatal(err)
		}
		got, _ = s.GetSubscription(ctx, "s1")
		if got.Secret != "webhook-secret-0123456789" || got.Enabled {
			t.Fatalf("update kept secret? %+v", got)
		}
		if err := s.UpdateSubscription(ctx, newSub("nope", "x")); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("update missing: %v", err)
		}
		if err := s.DeleteSubscription(ctx, "s2"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetSubscription(ctx, "s2"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("get deleted: %v", err)
		}
	})

	// An application's subscriptions go with their pending deliveries;
	// another application's stay.
	t.Run("DeleteAppSubscriptions", func(t *testing.T) {
		s, _ := open(t)
		for _, sub := range []*provision.Subscription{newSub("d1", "app-old"), newSub("d2", "app-old"), newSub("d3", "app-new")} {
			if err := s.CreateSubscription(ctx, sub); err != nil {
				t.Fatal(err)
			}
		}
		err := s.InTx(ctx, func(tx provision.Tx) error {
			for _, sub := range []string{"d1", "d3"} {
				if _, err := tx.Enqueue(provision.Delivery{Subscription: sub, App: "x", EventID: "e1", Kind: provision.KindUser,
					ObjectID: "u1", Op: "upsert", Status: provision.Pending, CreatedAt: now, NextAt: now}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var gone []string
		if err := s.InTx(ctx, func(tx provision.Tx) (err error) { gone, err = tx.DeleteAppSubscriptions("app-old"); return err }); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(gone, []string{"d1", "d2"}) {
			t.Fatalf("deleted %v, want d1 d2", gone)
		}
		if left, _ := s.ListSubscriptions(ctx, "app-old"); len(left) != 0 {
			t.Fatalf("left: %v", left)
		}
		if d, _ := s.NextDue(ctx, "d1"); d != nil {
			t.Fatalf("a queued delivery of a deleted subscription: %+v", d)
		}
		if d, _ := s.NextDue(ctx, "d3"); d == nil {
			t.Fatal("another application's queue went")
		}
		if err := s.InTx(ctx, func(tx provision.Tx) (err error) { gone, err = tx.DeleteAppSubscriptions("app-old"); return err }); err != nil || len(gone) != 0 {
			t.Fatalf("again: %v %v", gone, err)
		}
	})

	// A projected change updates the projection whether or not a
	// subscription delivers changes as they come (a subscription created
	// later sends the selection from it); within a transaction an object
	// read after a write is the written one (the transaction keeps what it
	// read and wrote), and the caller's copy is its own.
	t.Run("ProjectWithAndWithoutSubscriptions", func(t *testing.T) {
		s, _ := open(t)
		ch := func(seq uint64, subject, payload string) provision.Change {
			return provision.Change{EventID: "e" + subject + payload, Subject: subject, Payload: []byte(payload), Seq: seq}
		}
		project := func(subs []*provision.Subscription, cs ...provision.Change) int {
			t.Helper()
			n := 0
			err := s.InTx(ctx, func(tx provision.Tx) error {
				for _, c := range cs {
					k, err := provision.Project(tx, subs, c, now)
					if err != nil {
						return err
					}
					n += k
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		n := project(nil,
			ch(1, "uias.changes.identity.org.created", `{"id":"o1","data":{"code":"hq"}}`),
			ch(2, "uias.changes.identity.user.created", `{"id":"u1","data":{"login_name":"ann","org_id":"o1"}}`),
			ch(3, "uias.changes.identity.user.updated", `{"id":"u1","data":{"display_name":"Ann"}}`),
			ch(4, "uias.changes.identity.link.created", `{"id":"l1","data":{"user_id":"u1","app_id":"app1"}}`),
			ch(5, "uias.changes.authz.grant.put", `{"id":"gr1","data":{"role":"r1","subject":{"kind":"user","id":"u1"}}}`),
			ch(6, "uias.changes.identity.group.member_added", `{"id":"g1","data":{"user_id":"u1"}}`),
		)
		if n != 0 {
			t.Fatalf("%d deliveries enqueued without a subscription", n)
		}
		err := s.InTx(ctx, func(tx provision.Tx) error {
			u, err := tx.Object(provision.KindUser, "u1")
			if err != nil || u == nil || u.Field("display_name") != "Ann" || u.Field("login_name") != "ann" {
				t.Errorf("projected person %+v %v", u, err)
			}
			u.Data = json.RawMessage(`{"login_name":"mallory"}`) // the caller's copy
			if again, _ := tx.Object(provision.KindUser, "u1"); again.Field("login_name") != "ann" {
				t.Errorf("a caller's copy changed the transaction's: %s", again.Data)
			}
			if err := tx.PutObject(provision.Object{Kind: provision.KindUser, ID: "u1",
				Data: json.RawMessage(`{"login_name":"ann","org_id":"o1","display_name":"Ann B"}`)}); err != nil {
				return err
			}
			if u, _ := tx.Object(provision.KindUser, "u1"); u.Field("display_name") != "Ann B" {
				t.Errorf("read after write in a transaction: %s", u.Data)
			}
			if none, err := tx.Object(provision.KindUser, "u9"); none != nil || err != nil {
				t.Errorf("unknown person %+v %v", none, err)
			}
			if as, _ := tx.AppsLinked("u1"); !slices.Equal(as, []string{"app1"}) {
				t.Errorf("apps %v", as)
			}
			if rs, _ := tx.Grants("user", "u1", time.Time{}); !slices.Equal(rs, []string{"r1"}) {
				t.Errorf("grants %v", rs)
			}
			if gs, _ := tx.GroupsOf("u1"); !slices.Equal(gs, []string{"g1"}) {
				t.Errorf("groups %v", gs)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		sub := newSub("s1", "app1")
		sub.Selection = provision.Selection{Orgs: []string{"o1"}}
		if err := s.CreateSubscription(ctx, sub); err != nil {
			t.Fatal(err)
		}
		off := *sub
		off.ID, off.Enabled = "s2", false
		n = project([]*provision.Subscription{sub, &off},
			ch(7, "uias.changes.identity.user.updated", `{"id":"u1","data":{"display_name":"Ann C"}}`))
		if n != 1 {
			t.Fatalf("%d deliveries enqueued for one selected person and one live subscription, want 1", n)
		}
		if u, _, err := s.Object(ctx, provision.KindUser, "u1"); err != nil || u.Field("display_name") != "Ann C" {
			t.Fatalf("projected person after the commit %+v %v", u, err)
		}
		// Identity's own credentials of a person (fingerprints, certificate
		// bindings) are no field a business system keeps: nothing delivered,
		// nothing projected.
		n = project([]*provision.Subscription{sub},
			ch(8, "uias.changes.identity.user.certificate_bound", `{"id":"u1","data":{"sha256":"ab01"}}`),
			ch(9, "uias.changes.identity.user.certificate_unbound", `{"id":"u1","data":{"sha256":"ab01"}}`),
			ch(10, "uias.changes.identity.user.finger_enrolled", `{"id":"u1","data":{"position":2}}`))
		if n != 0 {
			t.Fatalf("%d deliveries enqueued for credential changes, want none", n)
		}
		if u, _, err := s.Object(ctx, provision.KindUser, "u1"); err != nil || u.Field("sha256") != "" || u.Field("position") != "" {
			t.Fatalf("a credential change projected into the person: %+v %v", u, err)
		}
	})

	// Of several processes that find a scheduled batch due (they read the
	// same last batch time), one starts it.
	t.Run("ScheduledBatchStartsOnce", func(t *testing.T) {
		s, _ := open(t)
		if err := s.CreateSubscription(ctx, newSub("s1", "app1")); err != nil {
			t.Fatal(err)
		}
		sub, err := s.GetSubscription(ctx, "s1")
		if err != nil {
			t.Fatal(err)
		}
		start := func(last, at time.Time) (bool, error) {
			var ok bool
			err := s.InTx(ctx, func(tx provision.Tx) error {
				var err error
				ok, err = tx.StartScheduled("s1", last, at)
				return err
			})
			return ok, err
		}
		due := now.Add(time.Hour)
		var wg sync.WaitGroup
		var started atomic.Int32
		for range 4 {
			wg.Go(func() {
				ok, err := start(sub.LastBatchAt, due)
				if err != nil {
					t.Error(err)
				}
				if ok {
					started.Add(1)
				}
			})
		}
		wg.Wait()
		if started.Load() != 1 {
			t.Fatalf("%d of 4 processes started the batch due at once, want 1", started.Load())
		}
		got, err := s.GetSubscription(ctx, "s1")
		if err != nil || !got.LastBatchAt.Equal(due) {
			t.Fatalf("last batch %v %v, want %v", got.LastBatchAt, err, due)
		}
		if ok, err := start(sub.LastBatchAt, due.Add(time.Hour)); ok || err != nil {
			t.Fatalf("a batch started again from a stale time: %v %v", ok, err)
		}
		if ok, err := start(due, due.Add(time.Hour)); !ok || err != nil {
			t.Fatalf("the next batch did not start: %v %v", ok, err)
		}
	})

	t.Run("ProjectionAndQueue", func(t *testing.T) {
		s, _ := open(t)
		err := s.InTx(ctx, func(tx provision.Tx) error {
			for _, o := range []provision.Object{
				{Kind: provision.KindOrg, ID: "o1", Data: json.RawMessage(`{"name":"hq"}`)},
				{Kind: provision.KindOrg, ID: "o2", Data: json.RawMessage(`{"parent_id":"o1"}`)},
				{Kind: provision.KindUser, ID: "u1", Data: json.RawMessage(`{"login_name":"ann","org_id":"o2"}`)},
				{Kind: provision.KindUser, ID: "u2", Data: json.RawMessage(`{"login_name":"bob"}`), Deleted: true},
			} {
				if err := tx.PutObject(o); err != nil {
					return err
				}
			}
			if err := tx.SetMember("g1", "u1", true); err != nil {
				return err
			}
			if err := tx.PutLink("l1", "u1", "app1"); err != nil {
				return err
			}
			if err := tx.PutGrant("gr1", "r1", "user", "u1", provision.Window{}); err != nil {
				return err
			}
			return tx.SetCursor(42)
		})
		if err != nil {
			t.Fatal(err)
		}
		if c, err := s.Cursor(ctx); err != nil || c != 42 {
			t.Fatalf("cursor %d %v", c, err)
		}
		sub := newSub("s1", "app1")
		sub.Selection = provision.Selection{Orgs: []string{"o1"}}
		err = s.InTx(ctx, func(tx provision.Tx) error {
			path, err := provision.OrgPath(tx, "o2")
			if err != nil || !slices.Equal(path, []string{"o2", "o1"}) {
				t.Errorf("org path %v %v", path, err)
			}
			if gs, _ := tx.GroupsOf("u1"); !slices.Equal(gs, []string{"g1"}) {
				t.Errorf("groups %v", gs)
			}
			if as, _ := tx.AppsLinked("u1"); !slices.Equal(as, []string{"app1"}) {
				t.Errorf("apps %v", as)
			}
			if rs, _ := tx.Grants("user", "u1", time.Time{}); !slices.Equal(rs, []string{"r1"}) {
				t.Errorf("grants %v", rs)
			}
			if role, k, id, _ := tx.Grant("gr1"); role != "r1" || k != "user" || id != "u1" {
				t.Errorf("grant %s %s %s", role, k, id)
			}
			if u, _ := tx.DeleteLink("l1"); u != "u1" {
				t.Errorf("deleted link's user %q", u)
			}
			if us, _ := tx.Objects(provision.KindUser, "", 10); len(us) != 1 || us[0].ID != "u1" {
				t.Errorf("live users %v", us)
			}
			n, err := provision.EnqueueSelection(tx, sub, provision.Filter{}, "b1", now)
			if err != nil || n != 3 { // o1, o2, u1
				t.Errorf("batch enqueued %d %v", n, err)
			}
			again, err := provision.EnqueueSelection(tx, sub, provision.Filter{}, "b1", now)
			if err != nil || again != 0 {
				t.Errorf("same batch again enqueued %d %v", again, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		o, _, err := s.Object(ctx, provision.KindUser, "u1")
		if err != nil || o.Field("login_name") != "ann" {
			t.Fatalf("object %+v %v", o, err)
		}
		if _, m, _ := s.Object(ctx, provision.KindGroup, "g1"); m != nil {
			t.Fatalf("members of an unknown group %v", m)
		}
		byID, err := s.ObjectsByID(ctx, provision.KindUser, []string{"u1", "u2", "nope"})
		if err != nil || len(byID) != 2 || byID["u1"].Field("login_name") != "ann" || byID["u1"].Deleted || !byID["u2"].Deleted ||
			byID["u1"].Kind != provision.KindUser {
			t.Fatalf("objects by id %+v %v", byID, err)
		}
		if err := s.CreateSubscription(ctx, sub); err != nil {
			t.Fatal(err)
		}
		// the queue in order; a failure keeps the delivery pending, then dead
		d, err := s.NextDue(ctx, "s1")
		if err != nil || d == nil || d.Kind != provision.KindOrg || d.ObjectID != "o1" || d.Status != provision.Pending {
			t.Fatalf("next %+v %v", d, err)
		}
		if err := s.Failed(ctx, d.Seq, 1, "HTTP 500", now.Add(time.Second), false); err != nil {
			t.Fatal(err)
		}
		d2, _ := s.NextDue(ctx, "s1")
		if d2.Seq != d.Seq || d2.Attempts != 1 || d2.LastError != "HTTP 500" || !d2.NextAt.Equal(now.Add(time.Second)) {
			t.Fatalf("after failure %+v", d2)
		}
		if err := s.Failed(ctx, d.Seq, 2, "HTTP 500 again", now, true); err != nil {
			t.Fatal(err)
		}
		q, err := s.Queues(ctx)
		if err != nil || q["s1"].Pending != 2 || q["s1"].Dead != 1 || q["s1"].LastError != "HTTP 500 again" || !q["s1"].Oldest.Equal(now) {
			t.Fatalf("queues %+v %v", q, err)
		}
		d3, _ := s.NextDue(ctx, "s1")
		if err := s.Delivered(ctx, d3.Seq, 1, now.Add(time.Second), 250*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		dead, _, err := s.ListDeliveries(ctx, provision.DeliveryFilter{Status: provision.Dead}, 10, "")
		if err != nil || len(dead) != 1 || dead[0].Seq != d.Seq {
			t.Fatalf("dead %+v %v", dead, err)
		}
		all, next, err := s.ListDeliveries(ctx, provision.DeliveryFilter{Subscription: "s1"}, 2, "")
		if err != nil || len(all) != 2 || next == "" || all[0].Seq < all[1].Seq {
			t.Fatalf("page 1 %+v %q %v", all, next, err)
		}
		rest, next2, err := s.ListDeliveries(ctx, provision.DeliveryFilter{Subscription: "s1"}, 2, next)
		if err != nil || len(rest) != 1 || next2 != "" {
			t.Fatalf("page 2 %+v %q %v", rest, next2, err)
		}
		rows, err := s.Report(ctx, "", now.Add(-time.Hour), now.Add(time.Hour))
		if err != nil || len(rows) != 1 {
			t.Fatalf("report %+v %v", rows, err)
		}
		if r := rows[0]; r.App != "app1" || r.Day != now.Format(time.DateOnly) || r.Delivered != 1 || r.Dead != 1 || r.Pending != 1 ||
			r.Failed != 2 || r.AvgLatencyMS != 250 {
			t.Fatalf("report row %+v", r)
		}
		// the automatic retry takes only dead letters due by its time
		if n, err := s.Retry(ctx, provision.DeliveryFilter{Subscription: "s1", DueBy: now.Add(-time.Second)}, now, 0); err != nil || n != 0 {
			t.Fatalf("retry of dead letters not due yet: %d %v", n, err)
		}
		n, err := s.Retry(ctx, provision.DeliveryFilter{App: "app1", DueBy: now}, now, 0)
		if err != nil || n != 1 {
			t.Fatalf("retry %d %v", n, err)
		}
		d4, _ := s.NextDue(ctx, "s1")
		if d4.Seq != d.Seq || d4.Attempts != 0 {
			t.Fatalf("retried delivery %+v", d4)
		}
		if err := s.DeleteSubscription(ctx, "s1"); err != nil {
			t.Fatal(err)
		}
		if d, _ := s.NextDue(ctx, "s1"); d != nil {
			t.Fatalf("queue kept after unsubscribe: %+v", d)
		}
		if rows, _ := s.Report(ctx, "app1", now.Add(-time.Hour), now.Add(time.Hour)); len(rows) != 1 || rows[0].Delivered != 1 {
			t.Fatalf("report after unsubscribe %+v", rows)
		}
	})

	t.Run("InitialBatchSubtreeAndLock", func(t *testing.T) {
		s, _ := open(t)
		if err := s.CreateSubscription(ctx, newSub("s1", "app1")); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.GetSubscription(ctx, "s1"); got.InitialBatch != "" {
			t.Fatalf("a new subscription's initial batch: %q", got.InitialBatch)
		}
		var subs []*provision.Subscription
		err := s.InTx(ctx, func(tx provision.Tx) error {
			if err := tx.Lock(); err != nil {
				return err
			}
			var err error
			if subs, err = tx.Subscriptions(); err != nil {
				return err
			}
			for _, o := range []provision.Object{
				{Kind: provision.KindOrg, ID: "o1", Data: json.RawMessage(`{"code":"hq"}`)},
				{Kind: provision.KindOrg, ID: "o2", Data: json.RawMessage(`{"code":"east","parent_id":"o1"}`)},
				{Kind: provision.KindUser, ID: "u1", Data: json.RawMessage(`{"login_name":"ann","org_id":"o1"}`)},
				{Kind: provision.KindUser, ID: "u2", Data: json.RawMessage(`{"login_name":"bob","org_id":"o1"}`), Deleted: true},
				{Kind: provision.KindGroup, ID: "g1", Data: json.RawMessage(`{"code":"crew","org_id":"o1"}`)},
			} {
				if err := tx.PutObject(o); err != nil {
					return err
				}
			}
			kids, err := tx.Children("o1")
			if err != nil {
				return err
			}
			var got []string
			for _, k := range kids {
				got = append(got, k.Kind+":"+k.ID)
			}
			if want := []string{"identity.group:g1", "identity.org:o2", "identity.user:u1"}; !slices.Equal(got, want) {
				t.Errorf("children of o1: %v, want %v", got, want)
			}
			ok, err := tx.StartInitial("s1", "b1", now)
			if err != nil || !ok {
				t.Errorf("first initial batch: %v %v", ok, err)
			}
			if ok, err := tx.StartInitial("s1", "b2", now); err != nil || ok {
				t.Errorf("second initial batch: %v %v", ok, err)
			}
			_, err = tx.Enqueue(provision.Delivery{Subscription: "s1", App: "app1", EventID: "batch:b1", Kind: provision.KindUser,
				ObjectID: "u1", Op: provision.OpUpsert, BatchID: "b1", CreatedAt: now})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(subs) != 1 || subs[0].ID != "s1" || subs[0].Secret != "" {
			t.Fatalf("subscriptions in the transaction: %+v", subs)
		}
		got, _ := s.GetSubscription(ctx, "s1")
		if got.InitialBatch != "b1" || !got.LastBatchAt.Equal(now) {
			t.Fatalf("after the initial batch: %q %v", got.InitialBatch, got.LastBatchAt)
		}
		q, err := s.Queues(ctx)
		if err != nil || q["s1"].InitialPending != 1 || q["s1"].Pending != 1 {
			t.Fatalf("queues %+v %v", q, err)
		}
	})

	t.Run("DueAndRecordInOneTransaction", func(t *testing.T) {
		s, _ := open(t)
		if err := s.CreateSubscription(ctx, newSub("s1", "app1")); err != nil {
			t.Fatal(err)
		}
		err := s.InTx(ctx, func(tx provision.Tx) error {
			for _, id := range []string{"u1", "u2", "u3", "u4"} {
				if _, err := tx.Enqueue(provision.Delivery{Subscription: "s1", App: "app1", EventID: "e1", Kind: provision.KindUser,
					ObjectID: id, Op: provision.OpUpsert, CreatedAt: now}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		ds, err := s.Due(ctx, "s1", 3)
		if err != nil || len(ds) != 3 || ds[0].ObjectID != "u1" || ds[2].ObjectID != "u3" || ds[0].Seq >= ds[1].Seq {
			t.Fatalf("due %+v %v", ds, err)
		}
		if err := s.Record(ctx, []provision.Outcome{
			{Seq: ds[0].Seq, Attempts: 1, OK: true, At: now.Add(time.Second), Latency: 100 * time.Millisecond},
			{Seq: ds[1].Seq, Attempts: 2, OK: true, At: now.Add(time.Second), Latency: 300 * time.Millisecond},
			{Seq: ds[2].Seq, Attempts: 1, LastError: "HTTP 503", Next: now.Add(time.Minute)},
		}); err != nil {
			t.Fatal(err)
		}
		rest, err := s.Due(ctx, "s1", 10)
		if err != nil || len(rest) != 2 || rest[0].Seq != ds[2].Seq || rest[0].Attempts != 1 || rest[0].LastError != "HTTP 503" ||
			!rest[0].NextAt.Equal(now.Add(time.Minute)) || rest[1].ObjectID != "u4" {
			t.Fatalf("due after the record %+v %v", rest, err)
		}
		// an outcome of a delivery no longer pending changes nothing
		if err := s.Record(ctx, []provision.Outcome{{Seq: ds[0].Seq, Attempts: 9, LastError: "late", Next: now, Dead: true},
			{Seq: rest[0].Seq, Attempts: 2, LastError: "HTTP 503", Next: now, Dead: true}}); err != nil {
			t.Fatal(err)
		}
		rows, err := s.Report(ctx, "app1", now.Add(-time.Hour), now.Add(time.Hour))
		if err != nil || len(rows) != 1 || rows[0].Delivered != 2 || rows[0].Dead != 1 || rows[0].Pending != 1 || rows[0].Failed != 2 ||
			rows[0].AvgLatencyMS != 200 {
			t.Fatalf("report %+v %v", rows, err)
		}
		if err := s.Record(ctx, nil); err != nil {
			t.Fatal(err)
		}
		// a subscription updated inside a transaction (an edited
		// selection and its deliveries in one): an empty secret keeps it
		upd := newSub("s1", "app1")
		upd.Secret, upd.Selection, upd.UpdatedAt = "", provision.Selection{Groups: []string{"g1"}}, now.Add(time.Minute)
		if err := s.InTx(ctx, func(tx provision.Tx) error { return tx.UpdateSubscription(upd) }); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetSubscription(ctx, "s1")
		if err != nil || got.Secret != "webhook-secret-0123456789" || !slices.Equal(got.Selection.Groups, []string{"g1"}) ||
			len(got.Selection.Orgs) != 0 || !got.UpdatedAt.Equal(now.Add(time.Minute)) {
			t.Fatalf("updated in a transaction: %+v %v", got, err)
		}
		if err := s.InTx(ctx, func(tx provision.Tx) error { return tx.UpdateSubscription(newSub("nope", "x")) }); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("update missing in a transaction: %v", err)
		}
	})

	t.Run("LeaseOfAQueue", func(t *testing.T) {
		s, _ := open(t)
		if err := s.CreateSubscription(ctx, newSub("s1", "app1")); err != nil {
			t.Fatal(err)
		}
		lease := func(owner string, at time.Time) bool {
			t.Helper()
			ok, err := s.Lease(ctx, "s1", owner, at, at.Add(30*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		if !lease("a", now) {
			t.Fatal("a first lease refused")
		}
		if lease("b", now.Add(10*time.Second)) {
			t.Fatal("b took a's lease before it expired")
		}
		if !lease("a", now.Add(20*time.Second)) {
			t.Fatal("a could not renew its lease")
		}
		if lease("b", now.Add(40*time.Second)) {
			t.Fatal("b took a's renewed lease before it expired")
		}
		if !lease("b", now.Add(51*time.Second)) {
			t.Fatal("b could not take an expired lease")
		}
		if lease("a", now.Add(52*time.Second)) {
			t.Fatal("a took b's lease back")
		}
		if err := s.Release(ctx, "s1", "a"); err != nil { // not a's: nothing changes
			t.Fatal(err)
		}
		if lease("a", now.Add(53*time.Second)) {
			t.Fatal("a released b's lease")
		}
		if err := s.Release(ctx, "s1", "b"); err != nil {
			t.Fatal(err)
		}
		if !lease("a", now.Add(54*time.Second)) {
			t.Fatal("a could not take a released lease")
		}
		if err := s.DeleteSubscription(ctx, "s1"); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateSubscription(ctx, newSub("s1", "app1")); err != nil {
			t.Fatal(err)
		}
		if !lease("b", now.Add(55*time.Second)) {
			t.Fatal("the lease outlived its subscription")
		}
	})
}
