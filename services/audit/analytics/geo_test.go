package analytics_test

import (
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/services/audit/analytics"
	"github.com/uias/uias/services/audit/analytics/geotest"
)

// writeTestDB writes the small city database of package geotest:
// Beijing 198.51.100.0/24, Paris 203.0.113.0/24, Tianjin 2001:db8:1::/48,
// and 192.0.2.128/25 with a country but no coordinates.
func writeTestDB(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "city.mmdb")
	if err := geotest.WriteCityDB(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// The MaxMind reader places IPv4, IPv4-mapped and IPv6 addresses from a
// database the test writes; unknown addresses and records without
// coordinates are not found; a missing or broken file is an error naming
// it.
func TestMMDB(t *testing.T) {
	db, err := analytics.OpenMMDB(writeTestDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for ip, want := range map[string]string{
		"198.51.100.7":        "Beijing/CN",
		"::ffff:198.51.100.9": "Beijing/CN",
		"203.0.113.200":       "Paris/FR",
		"2001:db8:1::5":       "Tianjin/CN",
		"192.0.2.1":           "",
		"192.0.2.200":         "",
		"2001:db8:2::1":       "",
	} {
		loc, found, err := db.Locate(netip.MustParseAddr(ip))
		got := ""
		if found {
			got = loc.City + "/" + loc.Country
		}
		if err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", ip, got, err, want)
		}
	}
	beijing, _, _ := db.Locate(netip.MustParseAddr("198.51.100.1"))
	paris, _, _ := db.Locate(netip.MustParseAddr("203.0.113.1"))
	if d := analytics.DistanceKM(beijing, paris); d < 8150 || d > 8300 {
		t.Errorf("Beijing to Paris: %.0f km", d)
	}
	if d := analytics.DistanceKM(paris, paris); d != 0 {
		t.Errorf("Paris to Paris: %f", d)
	}
	at := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	from := analytics.Place{Time: at, Location: beijing}
	r := analytics.DefaultTravelRules
	if tr, bad := r.Impossible("user:u1", "o1", from, analytics.Place{Time: at.Add(time.Hour), Location: paris}); !bad || tr.SpeedKMH < 8000 {
		t.Errorf("Beijing to Paris in an hour: %+v %v", tr, bad)
	}
	if _, bad := r.Impossible("user:u1", "o1", from, analytics.Place{Time: at.Add(12 * time.Hour), Location: paris}); bad {
		t.Error("Beijing to Paris in 12 hours is plausible")
	}
	if tr, bad := r.Impossible("user:u1", "o1", from, analytics.Place{Time: at, Location: paris}); !bad || !math.IsInf(tr.SpeedKMH, 1) {
		t.Errorf("Beijing and Paris at once: %+v %v", tr, bad)
	}
	if _, bad := r.Impossible("user:u1", "o1", from, analytics.Place{Time: at, Location: beijing}); bad {
		t.Error("the same place at once is no travel")
	}

	missing := filepath.Join(t.TempDir(), "missing.mmdb")
	if _, err := analytics.OpenMMDB(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing database: %v", err)
	}
	garbage := filepath.Join(t.TempDir(), "garbage.mmdb")
	if err := os.WriteFile(garbage, []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := analytics.OpenMMDB(garbage); err == nil {
		t.Error("a file that is no database opened")
	}
}
