package component

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/uias/uias/pkg/crypto"
)

// The hasher's estimates and queue are scraped as gauges, in seconds.
func TestHasherMetrics(t *testing.T) {
	h := crypto.NewHasher(crypto.HasherConfig{Params: crypto.Argon2Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
		Workers: 1, Testing: &crypto.HasherTesting{HashTime: 40 * time.Millisecond}})
	reg := prometheus.NewRegistry()
	if err := registerHasherMetrics(reg, h); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		got[mf.GetName()] = mf.GetMetric()[0].GetGauge().GetValue()
	}
	// Testing.HashTime times no hash: no wall or CPU time yet.
	want := map[string]float64{"uias_password_hash_seconds": 0.04,
		"uias_password_hash_wall_seconds": 0, "uias_password_hash_cpu_seconds": 0,
		"uias_password_hash_waiting": 0}
	for name, v := range want {
		if g, ok := got[name]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", name, g, ok, v)
		}
	}
	if err := registerHasherMetrics(reg, h); err == nil {
		t.Error("registering twice in one registry: no error")
	}
}
