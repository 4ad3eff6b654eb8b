package grpcx

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
)

// serverMetrics are the per-call server metrics:
//
//	grpc_server_handled_total{grpc_method, grpc_code}   counter
//	grpc_server_handling_seconds{grpc_method}           histogram
//
// grpc_method is the full method name ("/pkg.Service/Method").
type serverMetrics struct {
	handled *prometheus.CounterVec
	seconds *prometheus.HistogramVec
	// byMethod holds, per method the server serves (*methodMetrics), the
	// histogram and the OK counter, so that a call does not hash its
	// labels twice (observeServed).
	byMethod sync.Map
}

type methodMetrics struct {
	seconds prometheus.Observer
	ok      prometheus.Counter
}

func newServerMetrics(reg *prometheus.Registry) *serverMetrics {
	m := &serverMetrics{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_handled_total",
			Help: "Total number of RPCs completed on the server, regardless of success or failure.",
		}, []string{"grpc_method", "grpc_code"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "grpc_server_handling_seconds",
			Help:    "Histogram of response latency (seconds) of RPCs handled by the server.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"grpc_method"}),
	}
	if reg != nil {
		m.handled = registerOrExisting(reg, m.handled)
		m.seconds = registerOrExisting(reg, m.seconds)
	}
	return m
}

// registerOrExisting registers c on reg; if an identical collector is already
// registered (a second server on the same registry) that one is reused.
func registerOrExisting[C prometheus.Collector](reg *prometheus.Registry, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		// A conflicting, different collector with the same name: keep
		// counting on the unregistered one rather than failing the server.
	}
	return c
}

func (m *serverMetrics) observe(method string, code codes.Code, d time.Duration) {
	m.handled.WithLabelValues(method, code.String()).Inc()
	m.seconds.WithLabelValues(method).Observe(d.Seconds())
}

// observeServed is observe for a call of a method this server serves (a
// registered method: their number is bounded, unlike the names a caller
// may send, which observe takes).
func (m *serverMetrics) observeServed(method string, code codes.Code, d time.Duration) {
	v, ok := m.byMethod.Load(method)
	if !ok {
		v, _ = m.byMethod.LoadOrStore(method, &methodMetrics{
			seconds: m.seconds.WithLabelValues(method), ok: m.handled.WithLabelValues(method, codes.OK.String())})
	}
	mm := v.(*methodMetrics)
	if code == codes.OK {
		mm.ok.Inc()
	} else {
		m.handled.WithLabelValues(method, code.String()).Inc()
	}
	mm.seconds.Observe(d.Seconds())
}
