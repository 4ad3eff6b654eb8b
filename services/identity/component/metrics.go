package component

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/uias/uias/pkg/crypto"
)

// registerHasherMetrics exposes what the password hasher's admission
// decides with (docs/operators.md, "Login storms"): its duration
// estimate (and the wall and CPU times of the same hashes beside it) and
// the number of checks waiting for a worker, read at each scrape.
func registerHasherMetrics(reg prometheus.Registerer, h *crypto.Hasher) error {
	for _, c := range []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "uias_password_hash_seconds",
			Help: "Estimate of one password hash's duration: median time on a thread of the last 64 hashes at the current parameters."},
			func() float64 { return h.HashTime().Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "uias_password_hash_wall_seconds",
			Help: "Median wall time of the same hashes, start to end (the estimate leaves out their waits for a processor)."},
			func() float64 { return h.HashTimes().Wall.Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "uias_password_hash_cpu_seconds",
			Help: "Median thread CPU time of the same hashes (0 where the thread CPU clock cannot be read)."},
			func() float64 { return h.HashTimes().CPU.Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "uias_password_hash_waiting",
			Help: "Password checks waiting for a hash worker."},
			func() float64 { return float64(h.Waiting()) }),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
