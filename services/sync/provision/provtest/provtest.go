// Package provtest runs provisioning in tests with real parts: an
// in-process NATS with JetStream and the CHANGES stream, a SQLite store and
// the engine, fed with CHANGES events shaped as identity writes them.
package provtest

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/ids"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/sync/provision"
	"github.com/uias/uias/services/sync/sqlstore"
)

// Env is one provisioning set-up.
type Env struct {
	T     testing.TB
	DB    *store.DB
	Store *sqlstore.Provision
	JS    jetstream.JetStream
	// Options of the engines Start runs (Store and JS filled in).
	Options provision.Options

	mu     sync.Mutex
	engine *provision.Engine
	cancel context.CancelFunc
	done   chan struct{}
}

// New starts NATS and opens the store on a new SQLite database. Fast
// retries (20ms doubling to 200ms, 5 attempts) and a 2s delivery timeout
// unless o says otherwise.
func New(t testing.TB, o provision.Options) *Env {
	t.Helper()
	return NewOn(t, storetest.OpenSQLite(t), o)
}

// NewOn is New on the database db (PostgreSQL, for instance).
func NewOn(t testing.TB, db *store.DB, o provision.Options) *Env {
	t.Helper()
	ns, err := events.StartInProcessNATS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := events.EnsureStreams(ctx, js); err != nil {
		t.Fatal(err)
	}
	if err := sqlstore.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	ring, err := crypto.ParseRing(crypto.NewRingJSON())
	if err != nil {
		t.Fatal(err)
	}
	box, err := ring.PurposeSealer("sync provisioning secrets")
	if err != nil {
		t.Fatal(err)
	}
	if o.RetryFirst == 0 {
		o.RetryFirst = 20 * time.Millisecond
	}
	if o.RetryMax == 0 {
		o.RetryMax = 200 * time.Millisecond
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 5
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Second
	}
	if o.Poll == 0 {
		o.Poll = 50 * time.Millisecond
	}
	e := &Env{T: t, DB: db, Store: sqlstore.NewProvision(db, box), JS: js}
	o.Store, o.JS = e.Store, js
	e.Options = o
	t.Cleanup(e.Stop)
	return e
}

// Start runs an engine (a new one each time: a restarted process).
func (e *Env) Start() *provision.Engine {
	e.mu.Lock()
	defer e.mu.Unlock()
	eng := provision.New(e.Options)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); eng.Run(ctx) }()
	e.engine, e.cancel, e.done = eng, cancel, done
	return eng
}

// StartAnother runs one more engine on the same database and stream (a
// second sync process) until stop is called or the test ends.
func (e *Env) StartAnother() (stop func()) {
	eng := provision.New(e.Options)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); eng.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	e.T.Cleanup(stop)
	return stop
}

// Engine is the running engine.
func (e *Env) Engine() *provision.Engine {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.engine
}

// Stop stops the running engine (a killed process: deliveries in flight
// are abandoned) and waits for it.
func (e *Env) Stop() {
	e.mu.Lock()
	cancel, done := e.cancel, e.done
	e.cancel, e.done = nil, nil
	e.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// Change publishes a CHANGES event as identity writes it:
// uias.changes.identity.<entity>.<op> with {"id", "data"}.
func (e *Env) Change(entity, op, id string, data any) string {
	e.T.Helper()
	payload, err := json.Marshal(map[string]any{"entity": entity, "op": op, "id": id, "actor": "test", "time": time.Now().UTC(), "data": data})
	if err != nil {
		e.T.Fatal(err)
	}
	return e.publish("uias.changes.identity."+entity+"."+op, payload)
}

// ResentReplica publishes the local event identity writes at a centre
// that applies an object another centre resent (ResendOrg).
func (e *Env) ResentReplica(entity, id string, data any) string {
	e.T.Helper()
	payload, err := json.Marshal(map[string]any{"entity": entity, "op": "created", "id": id, "time": time.Now().UTC(),
		"data": data, "origin": "l2a", "origin_event_id": "ev-resend", "resent": true})
	if err != nil {
		e.T.Fatal(err)
	}
	return e.publish("uias.changes.identity."+entity+".replica.created", payload)
}

// CentreDisable publishes the level-1 centre's disable (or enable) of
// person id homed at a level-2 centre (ADR 0048) as identity writes it:
// lock.disabled at level 1 (atHome false), lock.replica.disabled naming
// origin l1 at the home.
func (e *Env) CentreDisable(id string, disabled, atHome bool) string {
	e.T.Helper()
	op, st := "enabled", 1
	if disabled {
		op, st = "disabled", 2
	}
	m := map[string]any{"entity": "lock", "op": op, "id": id, "actor": "user:adm", "time": time.Now().UTC(),
		"data": map[string]any{"status": st, "centre": "l1"}}
	subject := "uias.changes.identity.lock." + op
	if atHome {
		m["actor"], m["origin"], m["origin_event_id"] = "system", "l1", "ev-l1"
		subject = "uias.changes.identity.lock.replica." + op
	}
	payload, err := json.Marshal(m)
	if err != nil {
		e.T.Fatal(err)
	}
	return e.publish(subject, payload)
}

// Grant publishes an authz grant change (put or delete) as authz writes it.
func (e *Env) Grant(op, id, role, subjectKind, subjectID string) string {
	e.T.Helper()
	g, _ := json.Marshal(map[string]any{"id": id, "role": role, "subject": map[string]string{"kind": subjectKind, "id": subjectID}})
	payload, _ := json.Marshal(map[string]any{"rev": 1, "obj": "grant", "op": op, "id": id, "data": g})
	return e.publish("uias.changes.authz.grant."+op, payload)
}

// GrantDuring publishes an authz grant put, in force from from until
// until (zero: unbounded), as authz writes it (valid_from, valid_until).
func (e *Env) GrantDuring(id, role, subjectKind, subjectID string, from, until time.Time) string {
	e.T.Helper()
	g := map[string]any{"id": id, "role": role, "subject": map[string]string{"kind": subjectKind, "id": subjectID}}
	if !from.IsZero() {
		g["valid_from"] = from
	}
	if !until.IsZero() {
		g["valid_until"] = until
	}
	data, _ := json.Marshal(g)
	payload, _ := json.Marshal(map[string]any{"rev": 1, "obj": "grant", "op": "put", "id": id, "data": data})
	return e.publish("uias.changes.authz.grant.put", payload)
}

// Role publishes an authz role change as authz writes it: op "put" with
// the role (app, code, name, permissions as "resource:operation"), or
// "delete" (the rest ignored).
func (e *Env) Role(op, id, app, code, name string, perms ...string) string {
	e.T.Helper()
	ps := []map[string]string{}
	for _, p := range perms {
		res, oper, _ := strings.Cut(p, ":")
		ps = append(ps, map[string]string{"app": app, "resource": res, "operation": oper})
	}
	var data []byte
	if op != "delete" {
		data, _ = json.Marshal(map[string]any{"id": id, "app": app, "code": code, "name": name, "permissions": ps})
	}
	payload, _ := json.Marshal(map[string]any{"rev": 1, "obj": "role", "op": op, "id": id, "data": data})
	return e.publish("uias.changes.authz.role."+op, payload)
}

// DirectGrant publishes authz's CHANGES event of a direct grant of a
// permission (app:resource:operation, no role) to a subject.
func (e *Env) DirectGrant(op, id, perm, subjectKind, subjectID string) string {
	e.T.Helper()
	parts := strings.SplitN(perm, ":", 3)
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	g, _ := json.Marshal(map[string]any{"id": id, "role": "", "permission": map[string]string{"app": parts[0], "resource": parts[1],
		"operation": parts[2]}, "subject": map[string]string{"kind": subjectKind, "id": subjectID}})
	payload, _ := json.Marshal(map[string]any{"rev": 1, "obj": "grant", "op": op, "id": id, "data": g})
	return e.publish("uias.changes.authz.grant."+op, payload)
}

func (e *Env) publish(subject string, payload []byte) string {
	ev := events.Event{ID: ids.New(), Subject: subject, Type: subject, Time: time.Now().UTC(), Payload: payload}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := e.JS.PublishMsg(ctx, events.Msg(ev), jetstream.WithMsgID(ev.ID)); err != nil {
		e.T.Fatal(err)
	}
	return ev.ID
}

// Subscribe creates a subscription (enabled, immediate unless set).
func (e *Env) Subscribe(s *provision.Subscription) *provision.Subscription {
	e.T.Helper()
	svc := &provision.Service{Store: e.Store, Engine: e.Engine()}
	if !s.Enabled {
		s.Enabled = true
	}
	out, err := svc.Create(context.Background(), s)
	if err != nil {
		e.T.Fatal(err)
	}
	return out
}

// Deliveries lists every delivery of sub (all pages), oldest first.
func (e *Env) Deliveries(sub string) []provision.Delivery {
	e.T.Helper()
	var out []provision.Delivery
	token := ""
	for {
		ds, next, err := e.Store.ListDeliveries(context.Background(), provision.DeliveryFilter{Subscription: sub}, 500, token)
		if err != nil {
			e.T.Fatal(err)
		}
		out = append(out, ds...)
		if next == "" {
			break
		}
		token = next
	}
	slices.SortFunc(out, func(a, b provision.Delivery) int { return cmp.Compare(a.Seq, b.Seq) })
	return out
}

// Wait polls cond until it holds (60s at most: generous on a loaded
// machine; no timing is asserted).
func (e *Env) Wait(what string, cond func() bool) {
	e.T.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.T.Fatalf("waited 60s for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Count returns how many of sub's deliveries have status.
func (e *Env) Count(sub, status string) int {
	n := 0
	for _, d := range e.Deliveries(sub) {
		if d.Status == status {
			n++
		}
	}
	return n
}

// Summary describes sub's deliveries for failure messages.
func (e *Env) Summary(sub string) string {
	s := ""
	for _, d := range e.Deliveries(sub) {
		s += fmt.Sprintf("\n  %d %s %s %s %s attempts=%d err=%q", d.Seq, d.Kind, d.ObjectID, d.Op, d.Status, d.Attempts, d.LastError)
	}
	return s
}
