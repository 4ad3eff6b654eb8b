package module

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/grpcx"
)

// Label values of app_id that are not an App_ID.
const (
	// AppUnauthenticated: caller authentication refused the call before
	// an application was established (unknown App_ID, wrong secret,
	// missing credentials, an address not allowed...).
	AppUnauthenticated = "unauthenticated"
	// AppOther: an authenticated application beyond metrics.max_apps
	// distinct ones.
	AppOther = "other"
	// AppNone: a call no application made (an administrator, a person at
	// the login pages, a component on its own account).
	AppNone = "none"
)

// appMetrics are the per-application call metrics (JR/T 0185-2020 10.1.1:
// each interface's time, volume and success rate, per calling application):
//
//	uias_app_calls_total{app_id,method,code}      counter
//	uias_app_call_duration_seconds{app_id,method} histogram
//
// recorded for every API call the process serves (the access records'
// place: every component, gRPC, REST and the legacy transports). method
// is a method of a service of the process (a fixed set); app_id is the
// App_ID of an authenticated application, at most max distinct ones
// (later ones count as AppOther), else AppUnauthenticated or AppNone.
// The label children are kept per application and method: a call hashes
// no labels and allocates nothing once its series exist.
type appMetrics struct {
	calls   *prometheus.CounterVec
	seconds *prometheus.HistogramVec
	max     int

	mu   sync.Mutex                            // serialises additions to apps
	apps atomic.Pointer[map[string]*appSeries] // copied on addition
	n    int                                   // App_IDs in apps (not the fixed labels)
}

// appSeries are the series of one app_id value.
type appSeries struct {
	id      string
	mu      sync.Mutex
	methods atomic.Pointer[map[string]*appMethodSeries] // copied on addition
}

// appMethodSeries are the series of one app_id and method: the histogram
// and a counter per code (made at the code's first call).
type appMethodSeries struct {
	seconds prometheus.Observer
	byCode  [codes.Unauthenticated + 1]atomic.Pointer[counterRef]
}

type counterRef struct{ c prometheus.Counter }

func newAppMetrics(reg prometheus.Registerer, maxApps int) *appMetrics {
	if maxApps <= 0 {
		maxApps = config.DefaultMetricsMaxApps
	}
	m := &appMetrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "uias_app_calls_total",
			Help: "API calls served, by calling application (App_ID; 'unauthenticated': refused by caller authentication; 'other': beyond metrics.max_apps applications; 'none': no application), method and gRPC code.",
		}, []string{"app_id", "method", "code"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "uias_app_call_duration_seconds",
			Help:    "Time to answer API calls (seconds), by calling application and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 4, 5, 10},
		}, []string{"app_id", "method"}),
		max: maxApps,
	}
	if reg != nil {
		reg.MustRegister(m.calls, m.seconds)
	}
	empty := map[string]*appSeries{}
	m.apps.Store(&empty)
	return m
}

// appLabel is the app_id value of a call in ctx (as caller auth left it):
// the application caller auth established, else the one the handler named
// (a CAS validation of a ticket issued for it: a registered application,
// never what a caller sent).
func appLabel(ctx context.Context, c *grpcx.Call) (id string, isApp bool) {
	if app := caller.From(ctx).App; app != nil && app.ID != "" {
		return app.ID, true
	}
	if c.App != "" && !c.Refused { // named by the handler (grpcx.NameApp)
		return c.App, true
	}
	if c.Refused {
		return AppUnauthenticated, false
	}
	return AppNone, false
}

// observe counts call c, of a method of a service of the process, in ctx.
func (m *appMetrics) observe(ctx context.Context, c *grpcx.Call) {
	id, isApp := appLabel(ctx, c)
	as := m.series(id, isApp)
	s := as.method(m, c.Method)
	code := c.Code
	if code >= codes.Code(len(s.byCode)) {
		code = codes.Unknown
	}
	ref := s.byCode[code].Load()
	if ref == nil {
		ref = &counterRef{m.calls.WithLabelValues(as.id, c.Method, code.String())}
		s.byCode[code].Store(ref) // a racing call stores the same child
	}
	ref.c.Inc()
	s.seconds.Observe(c.Duration.Seconds())
}

// series are the series of app_id id (for an application, isApp: AppOther
// once max are labelled).
func (m *appMetrics) series(id string, isApp bool) *appSeries {
	if s, ok := (*m.apps.Load())[id]; ok {
		return s
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	apps := *m.apps.Load()
	if s, ok := apps[id]; ok {
		return s
	}
	next := make(map[string]*appSeries, len(apps)+2)
	for k, v := range apps {
		next[k] = v
	}
	label := id
	if isApp {
		if m.n >= m.max {
			label = AppOther
		} else {
			m.n++
		}
	}
	s, ok := next[label]
	if !ok {
		s = &appSeries{id: label}
		empty := map[string]*appMethodSeries{}
		s.methods.Store(&empty)
		next[label] = s
	}
	// An App_ID beyond the cap is kept too (pointing at AppOther's
	// series): its later calls find it without the lock. Their number is
	// that of the applications that authenticate, not of what callers send.
	next[id] = s
	m.apps.Store(&next)
	return s
}

// method are the series of s for method.
func (s *appSeries) method(m *appMetrics, method string) *appMethodSeries {
	if ms, ok := (*s.methods.Load())[method]; ok {
		return ms
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	methods := *s.methods.Load()
	if ms, ok := methods[method]; ok {
		return ms
	}
	ms := &appMethodSeries{seconds: m.seconds.WithLabelValues(s.id, method)}
	next := make(map[string]*appMethodSeries, len(methods)+1)
	for k, v := range methods {
		next[k] = v
	}
	next[method] = ms
	s.methods.Store(&next)
	return ms
}
