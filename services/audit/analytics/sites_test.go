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

// TestCallerRefusalBurst: calls refused as one application (a wrong
// secret, a bad signature, a replayed nonce...) raise one alert per window
// when they reach the burst size, naming the application; another
// application's refusals count apart; 0 turns it off.
func TestCallerRefusalBurst(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	refused := func(i int, app, reason string, at time.Duration) *audit.Record {
		return &audit.Record{EventID: "ev-" + strings.Repeat("x", i), API: analytics.APICallerDenied, Subject: "app:" + app,
			AppID: app, Result: "denied", Reason: reason, ClientIP: "192.0.2.9", Time: t0.Add(at)}
	}
	det := analytics.NewDetector(analytics.DetectorOptions{CallerRefusalBurst: 3, LockoutWindow: time.Minute})
	var raised []analytics.Alert
	for i, r := range []*audit.Record{
		refused(1, "crm", "BAD_APP_CREDENTIALS", 0), refused(2, "hr", "BAD_SIGNATURE", time.Second),
		refused(3, "crm", "BAD_SIGNATURE", 2*time.Second), refused(4, "crm", "NONCE_REPLAYED", 3*time.Second), // the burst
		refused(5, "crm", "NONCE_REPLAYED", 4*time.Second), // the same window: no second alert
		refused(6, "crm", "IP_NOT_ALLOWED", 2*time.Minute), // a new window: counts from one
	} {
		as, err := det.Observe(context.Background(), r)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		raised = append(raised, as...)
	}
	if len(raised) != 1 || raised[0].Kind != analytics.AlertCallerRefusals || raised[0].AppID != "crm" || raised[0].Failures != 3 ||
		!strings.Contains(raised[0].Message, "app:crm") || !strings.Contains(raised[0].Message, "NONCE_REPLAYED") {
		t.Fatalf("alerts: %+v", raised)
	}
	off := analytics.NewDetector(analytics.DetectorOptions{LockoutWindow: time.Minute})
	for i := range 10 {
		if as, _ := off.Observe(context.Background(), refused(i, "crm", "BAD_SIGNATURE", 0)); len(as) != 0 {
			t.Fatalf("an alert with the burst off: %+v", as)
		}
	}
}
