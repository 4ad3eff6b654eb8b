package component

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/uias/uias/pkg/crypto"
)

// registerHasherMetrics exposes what the password hasher's admission
// decides with (docs/operators.md, "Login storms"): its two duration
// estimates and the number of checks waiting for a worker, read at each
// scrape.
func registerHasherMetrics(reg prometheus.Registerer, h *crypto.Hasher) error {
	for _, c := range []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "uias_password_hash_seconds",
			Help: "Median duration of the last 64 password hashes at the current parameters."},
			func() float64 { return h.HashTime().Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "uias_password_hash_queued_seconds",
			Help: "Median time a hash worker took per job while checks waited (its last 64 such jobs; " +
				"uias_password_hash_seconds until 8 are known): the duration projected waits use."},
			func() float64 { return h.QueueHashTime().Seconds() }),
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
