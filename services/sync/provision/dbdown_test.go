package provision_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/sync/provision"
	"github.com/uias/uias/services/sync/provision/provtest"
)

// cutProxy forwards TCP connections to target until cut: then it closes
// every connection and refuses new ones, as a database server that went
// away would, until healed.
type cutProxy struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]bool
}

func startProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{l: l, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { _ = l.Close(); p.cut() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *cutProxy) serve(c net.Conn) {
	p.mu.Lock()
	down := p.down
	p.mu.Unlock()
	if down {
		_ = c.Close()
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[up] = true, true
	p.mu.Unlock()
	go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
	_, _ = io.Copy(c, up)
	_ = c.Close()
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

func (p *cutProxy) heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// Item 7 of the last note: sync's own database goes away while changes
// come in and deliveries are made. Nothing is delivered while it is down
// (the projection cannot record what it read), the engine keeps running
// and counts the failures (uias_sync_provision_store_errors_total), and
// once the database is back every person is delivered, nothing lost.
func TestDatabaseDownDeliveriesWaitAndResume(t *testing.T) {
	dsn := os.Getenv(storetest.EnvPGDSN)
	if dsn == "" {
		t.Skip(storetest.EnvPGDSN + " not set: the database outage is played with PostgreSQL behind a proxy")
	}
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		t.Skipf("%s is not a postgres:// URL", storetest.EnvPGDSN)
	}
	proxy := startProxy(t, u.Host)
	u.Host = proxy.l.Addr().String()
	db := storetest.OpenPG(t, u.String())
	reg := prometheus.NewRegistry()
	var mu sync.Mutex
	got := map[string]int{} // object id -> deliveries
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var d struct {
			ObjectID string `json:"object_id"`
		}
		_ = json.Unmarshal(b, &d)
		mu.Lock()
		got[d.ObjectID]++
		mu.Unlock()
	}))
	defer hook.Close()
	delivered := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}
	env := provtest.NewOn(t, db, provision.Options{Dial: dial(), Metrics: reg})
	env.Start()
	sub := env.Subscribe(&provision.Subscription{App: "crm", Name: "crm", Selection: provision.Selection{Orgs: []string{"o1"}},
		Transport: provision.Webhook, Endpoint: hook.URL, Secret: secret})
	users(env, 5)
	env.Wait("the first six deliveries", func() bool { return delivered() == 6 })

	proxy.cut()
	for i := 5; i < 25; i++ {
		env.Change("user", "created", fmt.Sprintf("u%03d", i), map[string]any{"login_name": fmt.Sprintf("p%03d", i), "org_id": "o1"})
	}
	storeErrors := func() float64 { return counterSum(t, reg, "uias_sync_provision_store_errors_total") }
	env.Wait("the failures counted", func() bool { return storeErrors() >= 3 })
	if n := delivered(); n != 6 {
		t.Fatalf("%d objects delivered while the database was down", n)
	}
	proxy.heal()
	env.Wait("every person delivered after the database came back", func() bool { return delivered() == 26 })
	env.Wait("every delivery recorded", func() bool { return env.Count(sub.ID, provision.Delivered) == 26 })
	if n := len(env.Deliveries(sub.ID)); n != 26 {
		t.Fatalf("%d delivery records, want 26 (one per object)%s", n, env.Summary(sub.ID))
	}
}

// counterSum adds up the counters named name in reg.
func counterSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}
