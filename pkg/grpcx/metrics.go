package grpcx

import (
	"errors"
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
