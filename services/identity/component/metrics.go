package component

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/uias/uias/pkg/crypto"
)

// registerHasherMetrics exposes what the password hasher's admission
// decides with (docs/operators.md, "Login storms"): its duration
// estimate and the number of checks waiting for a worker, read at each
// scrape.
func registerHasherMetrics(reg prometheus.Registerer, h *crypto.Hasher) error {
	for _, c := range []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "uias_password_hash_seconds",
			Help: "Median duration of the last 64 password hashes at the current parameters."},
			func() float64 { return h.HashTime().Seconds() }),
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
