package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/ids"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/sync/provision"
	"github.com/uias/uias/services/sync/provision/scim"
	"github.com/uias/uias/services/sync/provision/scimsim"
	"github.com/uias/uias/services/sync/provision/webhook"
	"github.com/uias/uias/services/sync/sqlstore"
)

// The provisioning phase (issue 12 items 4–6): people per second that the
// sync component's provisioning delivers to a business system over
// loopback, a signed webhook receiver and a SCIM 2.0 server (scimsim's,
// built with elimity-com/scim), as the initial batch of a new
// subscription: the whole engine (the projection of CHANGES in SQLite, the
// queue, one worker, the transport). The floor sends the very same HTTP
// requests (recorded at the business system while ours ran) directly, one
// after the other on one keep-alive connection, to a fresh business
// system. The people are projected before the clock starts.

const provToken = "bench-scim-token-0123456789"

type provRound struct {
	people                    int
	webhookOurs, webhookFloor float64 // people per second
	scimOurs, scimFloor       float64
}

// recorded is one HTTP request as the business system received it.
type recorded struct {
	method, uri string
	header      http.Header
	body        []byte
}

// httpRecorder serves next and keeps a copy of every request.
type httpRecorder struct {
	next http.Handler
	mu   sync.Mutex
	reqs []recorded
}

func (rc *httpRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, recorded{method: r.Method, uri: r.URL.RequestURI(), header: r.Header.Clone(), body: b})
	rc.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(b))
	rc.next.ServeHTTP(w, r)
}

// serve serves h on a loopback port until stop is called.
func serveLoopback(h http.Handler) (url string, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return "http://" + l.Addr().String(), func() { _ = srv.Close() }, nil
}

// replay sends reqs to base one after the other and returns how long it
// took.
func replay(ctx context.Context, base string, reqs []recorded) (time.Duration, error) {
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer c.CloseIdleConnections()
	start := time.Now()
	for _, r := range reqs {
		req, err := http.NewRequestWithContext(ctx, r.method, base+r.uri, bytes.NewReader(r.body))
		if err != nil {
			return 0, err
		}
		req.Header = r.header.Clone()
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode >= 300 {
			return 0, fmt.Errorf("replayed %s %s answered %d", r.method, r.uri, resp.StatusCode)
		}
	}
	return time.Since(start), nil
}

func measureProvision(ctx context.Context, o *options, log io.Writer) (*provRound, error) {
	people := 2000
	if o.duration < time.Second {
		people = 100 // a smoke run
	}
	dir, err := os.MkdirTemp("", "uias-bench-provision-*")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	ns, err := events.StartInProcessNATS(filepath.Join(dir, "nats"))
	if err != nil {
		return nil, err
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	if err := events.EnsureStreams(ctx, js); err != nil {
		return nil, err
	}
	db, err := store.Open(ctx, "sqlite", filepath.Join(dir, "sync.db"))
	if err != nil {
		return nil, err
	}
	defer func() { _ = db.Close() }()
	if err := sqlstore.Migrate(ctx, db); err != nil {
		return nil, err
	}
	ring, err := crypto.ParseRing(crypto.NewRingJSON())
	if err != nil {
		return nil, err
	}
	box, err := ring.PurposeSealer("sync provisioning secrets")
	if err != nil {
		return nil, err
	}
	st := sqlstore.NewProvision(db, box)
	eng := provision.New(provision.Options{Store: st, JS: js, Poll: 20 * time.Millisecond,
		Dial: map[string]provision.Dialer{provision.Webhook: webhook.New, provision.SCIM: scim.New}})
	ectx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); eng.Run(ectx) }()
	defer func() { stop(); <-done }()

	publish := func(entity, id string, data map[string]any) error {
		payload, _ := json.Marshal(map[string]any{"entity": entity, "op": "created", "id": id, "data": data})
		ev := events.Event{ID: ids.New(), Subject: "uias.changes.identity." + entity + ".created", Type: "identity." + entity + ".created",
			Time: time.Now().UTC(), Payload: payload}
		_, err := js.PublishMsg(ctx, events.Msg(ev), jetstream.WithMsgID(ev.ID))
		return err
	}
	if err := publish("org", "o1", map[string]any{"code": "fleet", "name": "Fleet"}); err != nil {
		return nil, err
	}
	for i := range people {
		if err := publish("user", fmt.Sprintf("u%06d", i), map[string]any{"login_name": fmt.Sprintf("sailor%06d", i),
			"display_name": fmt.Sprintf("Sailor %d", i), "org_id": "o1", "status": 1, "email": fmt.Sprintf("s%d@fleet.example", i)}); err != nil {
			return nil, err
		}
	}
	wait := func(what string, cond func() (bool, error)) error {
		deadline := time.Now().Add(10 * time.Minute)
		for {
			ok, err := cond()
			if err != nil || ok {
				return err
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("provision phase: waited for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if err := wait("the projection", func() (bool, error) {
		c, err := st.Cursor(ctx)
		return c == uint64(people+1), err
	}); err != nil {
		return nil, err
	}
	svc := &provision.Service{Store: st, Engine: eng}
	pr := &provRound{people: people}

	// measure subscribes a new subscription to the business system next
	// (recorded) and times its initial batch until done says so; then it
	// replays the recorded requests to a fresh business system.
	measure := func(transport, secret string, next http.Handler, done func() bool, fresh func() http.Handler) (float64, float64, error) {
		rc := &httpRecorder{next: next}
		url, stopSrv, err := serveLoopback(rc)
		if err != nil {
			return 0, 0, err
		}
		defer stopSrv()
		endpoint := url
		if transport == provision.SCIM {
			endpoint += "/scim/v2"
		}
		start := time.Now()
		sub, err := svc.Create(ctx, &provision.Subscription{App: "bench-" + transport, Name: transport, Enabled: true,
			Selection: provision.Selection{Orgs: []string{"o1"}}, Transport: transport, Endpoint: endpoint, Secret: secret})
		if err != nil {
			return 0, 0, err
		}
		if err := wait(transport+" deliveries", func() (bool, error) { return done(), nil }); err != nil {
			return 0, 0, err
		}
		ours := time.Since(start)
		// the subscription is removed so that it does not take CPU from the floor
		if err := svc.Delete(ctx, sub.ID); err != nil {
			return 0, 0, err
		}
		rc.mu.Lock()
		reqs := rc.reqs
		rc.mu.Unlock()
		furl, fstop, err := serveLoopback(fresh())
		if err != nil {
			return 0, 0, err
		}
		defer fstop()
		floor, err := replay(ctx, furl, reqs)
		if err != nil {
			return 0, 0, err
		}
		fmt.Fprintf(log, "  provisioning to %s: %d people in %s (%d requests), the same requests sent directly in %s\n",
			transport, people, ours.Round(time.Millisecond), len(reqs), floor.Round(time.Millisecond))
		return float64(people) / ours.Seconds(), float64(people) / floor.Seconds(), nil
	}

	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	var hookMu sync.Mutex
	hookCount := 0
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hookMu.Lock()
		hookCount++
		hookMu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	if pr.webhookOurs, pr.webhookFloor, err = measure(provision.Webhook, "whsec-bench-0123456789", counted, func() bool {
		hookMu.Lock()
		defer hookMu.Unlock()
		return hookCount >= people+1 // the org and the people
	}, func() http.Handler { return ok }); err != nil {
		return nil, err
	}

	users := scimsim.NewResources()
	sh, err := scimsim.Handler(users, scimsim.NewResources(), provToken)
	if err != nil {
		return nil, err
	}
	if pr.scimOurs, pr.scimFloor, err = measure(provision.SCIM, provToken, sh, func() bool {
		n, _, _, _, _ := users.Stats()
		return n >= people
	}, func() http.Handler {
		h, _ := scimsim.Handler(scimsim.NewResources(), scimsim.NewResources(), provToken)
		return h
	}); err != nil {
		return nil, err
	}
	return pr, nil
}

// provisionRows are the report rows of the provisioning phase.
func provisionRows(rounds []*round) []*row {
	explain := "People per second delivered as the initial batch of a new subscription (the whole selection: " +
		"one org and %s people projected from CHANGES into SQLite beforehand), through the engine's queue, one " +
		"worker and the %s, to a business system on a loopback port. Floor: the very same HTTP requests, recorded " +
		"at the business system, sent directly one after the other on one keep-alive connection to a fresh one. " +
		"The ratio is what provisioning costs beyond the requests themselves (each object's read, the queue's reads, " +
		"and its records: one transaction per batch of deliveries). No goal."
	hook := &row{name: "Provisioning to a signed webhook", u: perSec,
		oursLabel: "people/s delivered", floorLabel: "the same requests sent directly"}
	scimRow := &row{name: "Provisioning to a SCIM 2.0 server", u: perSec,
		oursLabel: "people/s delivered", floorLabel: "the same requests sent directly"}
	n := 0
	for _, r := range rounds {
		if r.prov == nil {
			continue
		}
		n = r.prov.people
		hook.add(r.prov.webhookOurs, r.prov.webhookFloor)
		scimRow.add(r.prov.scimOurs, r.prov.scimFloor)
	}
	hook.explain = fmt.Sprintf(explain, fmt.Sprint(n), "webhook transport (JSON, HMAC-SHA256 signature, one POST per person)")
	scimRow.explain = fmt.Sprintf(explain, fmt.Sprint(n), "SCIM transport (a lookup by userName, then a POST per person; "+
		"the server is scimsim's, built with elimity-com/scim, which scans its resources on each lookup)")
	var out []*row
	for _, rw := range []*row{hook, scimRow} {
		if len(rw.ours) > 0 {
			out = append(out, rw)
		}
	}
	return out
}
