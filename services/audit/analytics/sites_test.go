package analytics_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/analytics"
)

// TestSites: the organisation's own networks place its private addresses
// (audit.analytics.sites), the most specific network first, before the
// geolocation database; bad sites are refused naming what is wrong.
func TestSites(t *testing.T) {
	for _, bad := range map[string]string{
		"too few fields":   "10.0.0.0/8 22.5 114.1",
		"not a network":    "10.0.0/8 22.5 114.1 Shenzhen",
		"latitude":         "10.0.0.0/8 95 114.1 Shenzhen",
		"longitude":        "10.0.0.0/8 22.5 east Shenzhen",
		"longitude range":  "10.0.0.0/8 22.5 181 Shenzhen",
		"an empty address": " 22.5 114.1 Shenzhen",
	} {
		if _, err := analytics.ParseSite(bad); err == nil {
			t.Errorf("site %q accepted", bad)
		}
	}
	var sites []analytics.Site
	for _, s := range []string{"10.0.0.0/8 39.90 116.40 Beijing HQ", "10.20.0.0/16 22.54 114.06 Shenzhen MSA", "192.0.2.44 31.23 121.47 Shanghai desk"} {
		site, err := analytics.ParseSite(s)
		if err != nil {
			t.Fatal(err)
		}
		sites = append(sites, site)
	}
	if _, err := analytics.NewSites(append(sites, sites[1])); err == nil || !strings.Contains(err.Error(), "10.20.0.0/16") {
		t.Fatalf("a network given twice: %v", err)
	}
	s, err := analytics.NewSites(sites)
	if err != nil {
		t.Fatal(err)
	}
	for ip, want := range map[string]string{"10.20.3.4": "Shenzhen MSA", "10.21.0.1": "Beijing HQ", "::ffff:10.20.0.9": "Shenzhen MSA",
		"192.0.2.44": "Shanghai desk", "192.0.2.45": "", "172.16.0.1": ""} {
		loc, found, err := s.Locate(netip.MustParseAddr(ip))
		if err != nil || found != (want != "") || loc.City != want {
			t.Errorf("%s: %+v %v %v, want %q", ip, loc, found, err, want)
		}
	}
	db, err := analytics.OpenMMDB(writeTestDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	geo := analytics.Geos{s, db}
	// a login at Shenzhen's site half an hour after one at Beijing's is
	// impossible travel; the database still places public addresses
	det := analytics.NewDetector(analytics.DetectorOptions{Geo: geo,
		Previous: func(_ context.Context, subject string, before time.Time) (analytics.LastSeen, bool, error) {
			return analytics.LastSeen{Subject: subject, Time: before.Add(-30 * time.Minute), ClientIP: "10.1.2.3"}, true, nil
		}})
	as, err := det.Observe(context.Background(), &audit.Record{EventID: "ev-1", API: "sso.login", Subject: "user:u1", Result: "success",
		ClientIP: "10.20.7.7", Time: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 || as[0].Kind != analytics.AlertImpossibleTravel || as[0].Travel.From.City != "Beijing HQ" ||
		as[0].Travel.To.City != "Shenzhen MSA" || as[0].Travel.DistanceKM < 1900 {
		t.Fatalf("travel between sites: %+v", as)
	}
	if loc, found, err := geo.Locate(netip.MustParseAddr("203.0.113.5")); err != nil || !found || loc.City != "Paris" {
		t.Fatalf("a public address through the database: %+v %v %v", loc, found, err)
	}
}
