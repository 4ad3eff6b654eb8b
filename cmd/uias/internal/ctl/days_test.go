package ctl

import (
	"testing"
	"time"

	"github.com/uias/uias/services/identity"
)

// The days flag takes what the server takes for a secret lifetime: up to
// identity.MaxSecretLifetime (3650d), as days or as a duration.
func TestDaysUpToTheServerMaximum(t *testing.T) {
	if time.Duration(maxDays)*24*time.Hour != identity.MaxSecretLifetime {
		t.Fatalf("maxDays %d is not the server's maximum %v", maxDays, identity.MaxSecretLifetime)
	}
	for in, want := range map[string]time.Duration{"0": 0, "30d": 30 * 24 * time.Hour, "3650d": identity.MaxSecretLifetime,
		"87600h": identity.MaxSecretLifetime, "720h": 720 * time.Hour} {
		var d days
		if err := d.Set(in); err != nil || d.d != want {
			t.Errorf("%s: %v %v", in, d.d, err)
		}
	}
	for _, in := range []string{"3651d", "36500d", "87601h", "-1d", "-1h", "x"} {
		var d days
		if err := d.Set(in); err == nil {
			t.Errorf("%s accepted as %v", in, d.d)
		}
	}
}
