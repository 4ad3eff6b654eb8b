package storetest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/analytics"
)

// AnalyticsNow is the clock of the analytics conformance test: a Tuesday.
var AnalyticsNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// LoginRecords are the login records of the analytics test, in log order:
// failed and successful logins of several people over several APIs, an
// SSO session, a logout, an access record (not a login) and an unknown
// account, in two orgs.
func LoginRecords() []audit.Record {
	type l struct {
		api, subject, result, app, ip, org string
		ago                                time.Duration
	}
	day := 24 * time.Hour
	ls := []l{
		{"authenticate", "user:u1", "failure", "oa", "10.0.0.1", "o1", 3 * time.Hour},
		{"authenticate", "user:u1", "failure", "oa", "10.0.0.1", "o1", 2 * time.Hour},
		{"sso.login", "user:u1", "failure", "", "10.0.0.2", "o1", 90 * time.Minute},
		{"authenticate", "user:u1", "success", "oa", "10.0.0.1", "o1", time.Hour},
		{"admin.login", "user:u2", "denied", "crm", "10.0.0.3", "o2", 50 * time.Minute},
		{"authenticate.finger_bypass", "user:u2", "success", "crm", "10.0.0.3", "o2", 40 * day},
		{"session.create", "user:u3", "success", "", "10.0.0.4", "o1", 10 * time.Minute},
		{"authenticate", "account:ghost", "failure", "oa", "10.0.0.9", "", 30 * time.Minute},
		{"uias.identity.v1.AuthService/Authenticate", "", "failure", "oa", "10.0.0.1", "", 2 * time.Hour},
		{"session.end", "user:u1", "success", "", "10.0.0.1", "o1", 5 * time.Minute},
		{"admin.login", "user:u4", "success", "", "10.0.0.5", "o2", 100 * day},
		{"sso.login", "user:u5", "success", "", "10.0.0.6", "o2", 20 * time.Minute},
	}
	out := make([]audit.Record, len(ls))
	for i, x := range ls {
		out[i] = audit.Record{EventID: fmt.Sprintf("login-%d", i), Type: "audit." + x.api, Component: "identity",
			Time: AnalyticsNow.Add(-x.ago), Serial: fmt.Sprintf("req-%d", i), AppID: x.app, API: x.api, Actor: "app:" + x.app,
			Subject: x.subject, Org: x.org, Result: x.result, Reason: "OK", ClientIP: x.ip}
	}
	return out
}

func wantReason(t *testing.T, what string, err error, code apierr.Code, reason string) {
	t.Helper()
	var ae *apierr.Error
	if !errors.As(err, &ae) || ae.Code != code || ae.Reason != reason {
		t.Errorf("%s: %v, want %v %s", what, err, code, reason)
	}
}

func testAnalytics(t *testing.T, s Subject) {
	ctx := context.Background()
	st, ok := s.Store.(analytics.Store)
	if !ok {
		t.Fatal("the store does not implement analytics.Store")
	}
	l, _ := newLog(t, s, 1000)
	appendAll(t, l, LoginRecords())
	a := analytics.New(st, analytics.Options{Now: func() time.Time { return AnalyticsNow }})
	all := audit.Scope{All: true}
	keys := func(cs []analytics.Count) string {
		out := ""
		for _, c := range cs {
			out += fmt.Sprintf("%s=%d ", c.Key, c.Count)
		}
		return out
	}

	// failed logins by person, application and address, most first
	for g, want := range map[analytics.Group]string{
		analytics.BySubject:  "user:u1=3 account:ghost=1 user:u2=1 ",
		analytics.ByApp:      "oa=3 =1 crm=1 ",
		analytics.ByClientIP: "10.0.0.1=2 10.0.0.2=1 10.0.0.3=1 10.0.0.9=1 ",
	} {
		cs, truncated, err := a.FailedLogins(ctx, all, analytics.Range{}, g, 0)
		if err != nil || truncated || keys(cs) != want {
			t.Errorf("failed logins by %d: %q %v %v, want %q", g, keys(cs), truncated, err, want)
		}
	}
	cs, truncated, err := a.FailedLogins(ctx, all, analytics.Range{}, analytics.BySubject, 1)
	if err != nil || !truncated || keys(cs) != "user:u1=3 " || !cs[0].Last.Equal(AnalyticsNow.Add(-90*time.Minute)) {
		t.Errorf("failed logins, limit 1: %+v %v %v", cs, truncated, err)
	}
	cs, _, err = a.FailedLogins(ctx, all, analytics.Range{From: AnalyticsNow.Add(-100 * time.Minute)}, analytics.BySubject, 0)
	if err != nil || keys(cs) != "account:ghost=1 user:u1=1 user:u2=1 " {
		t.Errorf("failed logins since 100 minutes: %q %v", keys(cs), err)
	}
	cs, _, err = a.FailedLogins(ctx, audit.Scope{Orgs: []string{"o2"}}, analytics.Range{}, analytics.BySubject, 0)
	if err != nil || keys(cs) != "user:u2=1 " {
		t.Errorf("failed logins in org o2: %q %v", keys(cs), err)
	}

	// peaks: every hour (weekday) listed, in order, in the caller's zone
	china := 8 * time.Hour
	hours, err := a.LoginPeaks(ctx, all, analytics.Range{}, analytics.ByHourOfDay, china)
	if err != nil || len(hours) != 24 || hours[0].Key != "00" || hours[19].Count != 2 || hours[20].Count != 2 || hours[11].Count != 0 {
		t.Errorf("login peaks by hour: %q %v", keys(hours), err)
	}
	days, err := a.LoginPeaks(ctx, all, analytics.Range{}, analytics.ByWeekday, china)
	want := make([]int64, 7)
	for _, r := range LoginRecords() {
		if r.Result == "success" && r.API != "session.create" && r.API != "session.end" {
			want[r.Time.In(time.FixedZone("CST", 8*3600)).Weekday()]++
		}
	}
	if err != nil || len(days) != 7 {
		t.Fatalf("login peaks by weekday: %q %v", keys(days), err)
	}
	for i := range days {
		if days[i].Key != fmt.Sprint(i) || days[i].Count != want[i] {
			t.Errorf("weekday %d: %+v, want %d", i, days[i], want[i])
		}
	}
	if analytics.Label(analytics.ByWeekday, "1") != "Monday" || analytics.Label(analytics.ByHourOfDay, "08") != "08:00" {
		t.Error("labels")
	}

	// a person's history: logins only, newest first, paged
	var hist []audit.Record
	tok := ""
	for {
		page, next, err := a.LoginHistory(ctx, all, "u1", analytics.Range{}, 3, tok)
		if err != nil {
			t.Fatal(err)
		}
		hist = append(hist, page...)
		if next == "" {
			break
		}
		tok = next
	}
	if len(hist) != 4 || hist[0].Result != "success" || hist[1].API != "sso.login" || !hist[3].Time.Equal(AnalyticsNow.Add(-3*time.Hour)) {
		t.Errorf("history of u1: %+v", hist)
	}
	hist, _, err = a.LoginHistory(ctx, all, "u1", analytics.Range{From: AnalyticsNow.Add(-150 * time.Minute), To: AnalyticsNow.Add(-time.Hour)}, 0, "")
	if err != nil || len(hist) != 2 {
		t.Errorf("history of u1 in a range: %d %v", len(hist), err)
	}
	hist, _, err = a.LoginHistory(ctx, audit.Scope{Orgs: []string{"o2"}}, "u1", analytics.Range{}, 0, "")
	if err != nil || len(hist) != 0 {
		t.Errorf("history of u1 seen from org o2: %d %v", len(hist), err)
	}

	// one person's days: whole days, whatever the hour the period starts
	// or ends (u1 logged in at 11:00; a period from 11:30 still finds
	// that day present: review sec9 L6), the days before absent
	pa, err := a.PersonAbsence(ctx, all, "u1", analytics.Range{From: AnalyticsNow.Add(-30*time.Minute - 48*time.Hour),
		To: AnalyticsNow}, 0, false)
	if err != nil || pa.Truncated || len(pa.Days) != 3 || pa.PresentDays != 1 || pa.AbsentDays != 2 || !pa.Days[2].Present ||
		pa.Days[2].Date != "2026-12-01" || pa.Days[2].Logins != 1 {
		t.Errorf("absence of u1 over three days: %+v %v", pa, err)
	}
	pa, err = a.PersonAbsence(ctx, all, "u1", analytics.Range{From: AnalyticsNow.Add(-30 * time.Minute), To: AnalyticsNow}, 0, false)
	if err != nil || len(pa.Days) != 1 || pa.PresentDays != 1 || !pa.Days[0].Present {
		t.Errorf("absence of u1 from 11:30, after their login at 11:00: %+v %v", pa, err)
	}
	pa, err = a.PersonAbsence(ctx, all, "u1", analytics.Range{From: AnalyticsNow.Add(-48 * time.Hour), To: AnalyticsNow.Add(-90 * time.Minute)},
		0, false)
	if err != nil || len(pa.Days) != 3 || pa.PresentDays != 1 || !pa.Days[2].Present {
		t.Errorf("absence of u1 until 10:30, before their login at 11:00: %+v %v", pa, err)
	}
	_, err = a.PersonAbsence(ctx, all, "u1", analytics.Range{From: AnalyticsNow.Add(-time.Hour), To: AnalyticsNow.Add(-2 * time.Hour)}, 0, false)
	wantReason(t, "absence over a reversed range", err, apierr.InvalidArgument, apierr.ReasonBadRequest)

	// absence: last successful login more than 30 days ago, longest first
	abs, truncated, err := a.Absences(ctx, all, 30, 0)
	if err != nil || truncated || len(abs) != 2 || abs[0].Subject != "user:u4" || abs[0].Days != 100 || abs[1].Subject != "user:u2" ||
		abs[1].Days != 40 || abs[1].Org != "o2" || abs[1].ClientIP != "10.0.0.3" {
		t.Errorf("absences: %+v %v %v", abs, truncated, err)
	}
	abs, truncated, err = a.Absences(ctx, all, 30, 1)
	if err != nil || !truncated || len(abs) != 1 {
		t.Errorf("absences, limit 1: %+v %v %v", abs, truncated, err)
	}
	if abs, _, err = a.Absences(ctx, all, 200, 0); err != nil || len(abs) != 0 {
		t.Errorf("absent 200 days: %+v %v", abs, err)
	}

	// absence over the identity component's people (pages of two): u9
	// never logged in (account of 50 days), then u4 and u2; u8's account
	// is too new, u1 and u5 logged in lately
	day := 24 * time.Hour
	people := fakePeople{people: []analytics.Person{{ID: "u1", Org: "o1"}, {ID: "u2", Org: "o2", Login: "two"}, {ID: "u4", Org: "o2"},
		{ID: "u9", Org: "o1", Created: AnalyticsNow.Add(-50 * day)}, {ID: "u8", Org: "o1", Created: AnalyticsNow.Add(-time.Hour)},
		{ID: "u5", Org: "o2"}}}
	ap := analytics.New(st, analytics.Options{Now: func() time.Time { return AnalyticsNow }, People: people})
	rep, err := ap.AbsenceReport(ctx, all, 30, 0)
	if err != nil || rep.Source != analytics.SourceIdentity || rep.Truncated || len(rep.People) != 3 ||
		rep.People[0].Subject != "user:u9" || !rep.People[0].Never || rep.People[0].Days != 50 || rep.People[0].Org != "o1" ||
		rep.People[1].Subject != "user:u4" || rep.People[1].Days != 100 || rep.People[1].Never ||
		rep.People[2].Subject != "user:u2" || rep.People[2].Login != "two" || rep.People[2].ClientIP != "10.0.0.3" {
		t.Errorf("absence report: %+v %v", rep, err)
	}
	if rep, err = ap.AbsenceReport(ctx, all, 30, 2); err != nil || !rep.Truncated || len(rep.People) != 2 || rep.People[1].Subject != "user:u4" {
		t.Errorf("absence report, limit 2: %+v %v", rep, err)
	}
	ap = analytics.New(st, analytics.Options{Now: func() time.Time { return AnalyticsNow },
		People: fakePeople{err: fmt.Errorf("%w: down", analytics.ErrNoPeople)}})
	if rep, err = ap.AbsenceReport(ctx, all, 30, 0); err != nil || rep.Source != analytics.SourceLogins || len(rep.People) != 2 {
		t.Errorf("absence report without identity: %+v %v", rep, err)
	}
	_, err = ap.AbsenceReport(ctx, all, 0, 0)
	wantReason(t, "absence report of 0 days", err, apierr.InvalidArgument, apierr.ReasonBadRequest)

	// online: logged in within the window, not logged out since
	on, truncated, err := a.OnlineFromLogins(ctx, all, time.Hour, 0)
	if err != nil || truncated || len(on) != 2 || on[0].Subject != "user:u3" || on[1].Subject != "user:u5" || on[1].Org != "o2" {
		t.Errorf("online: %+v %v %v", on, truncated, err)
	}
	on, _, err = a.OnlineFromLogins(ctx, audit.Scope{Orgs: []string{"o2"}}, time.Hour, 0)
	if err != nil || len(on) != 1 || on[0].Subject != "user:u5" {
		t.Errorf("online in org o2: %+v %v", on, err)
	}

	// refusals: bad questions, no scope
	bad := func(what string, err error) {
		t.Helper()
		wantReason(t, what, err, apierr.InvalidArgument, apierr.ReasonBadRequest)
	}
	_, _, err = a.FailedLogins(ctx, all, analytics.Range{}, analytics.ByHourOfDay, 0)
	bad("failed logins by hour", err)
	_, _, err = a.FailedLogins(ctx, all, analytics.Range{From: AnalyticsNow, To: AnalyticsNow}, analytics.BySubject, 0)
	bad("empty range", err)
	_, _, err = a.FailedLogins(ctx, all, analytics.Range{}, analytics.BySubject, analytics.MaxLimit+1)
	bad("limit", err)
	_, err = a.LoginPeaks(ctx, all, analytics.Range{}, analytics.BySubject, 0)
	bad("peaks by person", err)
	_, err = a.LoginPeaks(ctx, all, analytics.Range{}, analytics.ByHourOfDay, 15*time.Hour)
	bad("offset", err)
	_, _, err = a.LoginHistory(ctx, all, "", analytics.Range{}, 0, "")
	bad("history without a person", err)
	_, _, err = a.LoginHistory(ctx, all, "u1", analytics.Range{}, analytics.MaxPageSize+1, "")
	bad("page size", err)
	_, _, err = a.LoginHistory(ctx, all, "u1", analytics.Range{}, 0, "%%%")
	wantReason(t, "bad page token", err, apierr.InvalidArgument, "INVALID_PAGE_TOKEN")
	_, _, err = a.Absences(ctx, all, 0, 0)
	bad("absent 0 days", err)
	_, _, err = a.OnlineFromLogins(ctx, all, 0, 0)
	bad("online window 0", err)
	_, _, err = a.FailedLogins(ctx, audit.Scope{}, analytics.Range{}, analytics.BySubject, 0)
	wantReason(t, "no scope", err, apierr.PermissionDenied, audit.ReasonAuditForbidden)

	testAccessReports(t, st, l)
}

// testAccessReports: last access to important applications (logins and
// tickets, whose application is in the record's detail) and the stored
// attempts from outside the allow-list, over LoginRecords and three
// ticket records.
func testAccessReports(t *testing.T, st analytics.Store, l *audit.Log) {
	ctx := context.Background()
	all := audit.Scope{All: true}
	tk := func(i int, api, user, app string, ago time.Duration) audit.Record {
		return audit.Record{EventID: fmt.Sprintf("ticket-%d", i), Type: "audit." + api, Component: "ticket", Time: AnalyticsNow.Add(-ago),
			API: api, Actor: "anonymous", Subject: "user:" + user, Org: "o1", Result: "success", Reason: "OK", ClientIP: "10.0.0.4",
			Detail: map[string]string{"app_id": app, "service": "https://" + app + ".example.com/"}}
	}
	appendAll(t, l, []audit.Record{tk(0, "ticket.issue", "u1", "hr", 72*time.Hour), tk(1, "ticket.issue", "u3", "hr", 30*time.Minute),
		tk(2, "ticket.validate", "u3", "hr", 20*time.Minute)})
	a := analytics.New(st, analytics.Options{Now: func() time.Time { return AnalyticsNow }, ImportantApps: []string{"hr", "crm"},
		Allowed: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/30")}})
	rows := func(acc []analytics.Access) string {
		out := ""
		for _, x := range acc {
			out += fmt.Sprintf("%s/%s/%s/%d ", x.AppID, x.Subject, x.API, x.Count)
		}
		return out
	}
	acc, truncated, err := a.LastAccess(ctx, all, analytics.Range{}, nil, "", 0)
	if want := "crm/user:u2/authenticate.finger_bypass/1 hr/user:u3/ticket.validate/2 hr/user:u1/ticket.issue/1 "; err != nil ||
		truncated || rows(acc) != want || !acc[1].Time.Equal(AnalyticsNow.Add(-20*time.Minute)) || acc[1].Org != "o1" {
		t.Errorf("last access to important applications: %s %v %v", rows(acc), truncated, err)
	}
	acc, _, err = a.LastAccess(ctx, all, analytics.Range{}, []string{"oa"}, "", 0)
	if want := "oa/user:u1/authenticate/1 "; err != nil || rows(acc) != want {
		t.Errorf("last access to oa: %s %v", rows(acc), err)
	}
	acc, _, err = a.LastAccess(ctx, all, analytics.Range{From: AnalyticsNow.Add(-time.Hour)}, nil, "u3", 0)
	if want := "hr/user:u3/ticket.validate/2 "; err != nil || rows(acc) != want {
		t.Errorf("last access of u3: %s %v", rows(acc), err)
	}
	acc, truncated, err = a.LastAccess(ctx, all, analytics.Range{}, nil, "", 1)
	if err != nil || !truncated || len(acc) != 1 {
		t.Errorf("last access, limit 1: %s %v %v", rows(acc), truncated, err)
	}
	plain := analytics.New(st, analytics.Options{Now: func() time.Time { return AnalyticsNow }})
	_, _, err = plain.LastAccess(ctx, all, analytics.Range{}, nil, "", 0)
	wantReason(t, "last access without important applications", err, apierr.FailedPrecondition, analytics.ReasonNoImportantApps)

	// outside 10.0.0.0/30: u5 (sso.login), the unknown account, u4
	// (admin.login), newest first; any result
	subjects := func(recs []audit.Record) string {
		out := ""
		for _, r := range recs {
			out += r.Subject + "/" + r.Result + " "
		}
		return out
	}
	out, truncated, err := a.OutsideAllowList(ctx, all, analytics.Range{}, 0)
	if want := "user:u5/success account:ghost/failure user:u4/success "; err != nil || truncated || subjects(out) != want {
		t.Errorf("outside the allow-list: %s %v %v", subjects(out), truncated, err)
	}
	out, truncated, err = a.OutsideAllowList(ctx, all, analytics.Range{}, 2)
	if err != nil || !truncated || len(out) != 2 {
		t.Errorf("outside the allow-list, limit 2: %s %v %v", subjects(out), truncated, err)
	}
	out, _, err = a.OutsideAllowList(ctx, all, analytics.Range{From: AnalyticsNow.Add(-24 * time.Hour)}, 0)
	if err != nil || len(out) != 2 {
		t.Errorf("outside the allow-list in the last day: %s %v", subjects(out), err)
	}
	_, _, err = plain.OutsideAllowList(ctx, all, analytics.Range{}, 0)
	wantReason(t, "outside without an allow-list", err, apierr.FailedPrecondition, analytics.ReasonNoAllowList)
}

// mapGeo locates the test's addresses (the MaxMind reader itself is
// tested in package analytics on a database the test writes).
type mapGeo map[string]analytics.Location

func (g mapGeo) Locate(ip netip.Addr) (analytics.Location, bool, error) {
	l, ok := g[ip.String()]
	return l, ok, nil
}

// TravelGeo places the travel test's addresses: 10.1.* in Beijing,
// 10.2.* in Paris, 10.3.0.1 in Tianjin (about 110 km from Beijing).
var TravelGeo = mapGeo{
	"10.1.0.1": {Lat: 39.9042, Lon: 116.4074, Country: "CN", City: "Beijing"},
	"10.1.0.2": {Lat: 39.9042, Lon: 116.4074, Country: "CN", City: "Beijing"},
	"10.2.0.1": {Lat: 48.8566, Lon: 2.3522, Country: "FR", City: "Paris"},
	"10.2.0.2": {Lat: 48.8566, Lon: 2.3522, Country: "FR", City: "Paris"},
	"10.3.0.1": {Lat: 39.3434, Lon: 117.3616, Country: "CN", City: "Tianjin"},
}

func testAnalyticsTravel(t *testing.T, s Subject) {
	ctx := context.Background()
	st := s.Store.(analytics.Store)
	l, _ := newLog(t, s, 1000)
	type x struct {
		subject, result, ip string
		ago                 time.Duration
	}
	xs := []x{
		{"user:u7", "success", "10.1.0.1", 3 * time.Hour},
		{"user:u7", "failure", "10.2.0.9", 150 * time.Minute}, // failed: not a login
		{"user:u7", "success", "10.2.0.1", 2 * time.Hour},     // Beijing to Paris in an hour
		{"user:u7", "success", "10.2.0.2", time.Hour},         // stays in Paris
		{"user:u7", "success", "192.0.2.1", 50 * time.Minute}, // unknown to the database: skipped
		{"user:u8", "success", "10.1.0.2", 30 * time.Hour},
		{"user:u8", "success", "10.2.0.1", 10 * time.Hour},   // 20 hours: plausible
		{"user:u9", "success", "10.1.0.1", 20 * time.Minute}, // Beijing to Tianjin (about 100 km) in 5 minutes
		{"user:u9", "success", "10.3.0.1", 15 * time.Minute},
		{"user:u9", "success", "", 5 * time.Minute},
	}
	recs := make([]audit.Record, len(xs))
	for i, r := range xs {
		recs[i] = audit.Record{EventID: fmt.Sprintf("travel-%d", i), Type: "audit.sso.login", Component: "identity",
			Time: AnalyticsNow.Add(-r.ago), API: "sso.login", Subject: r.subject, Org: "o1", Result: r.result, ClientIP: r.ip}
	}
	appendAll(t, l, recs)
	if _, _, err := analytics.New(st, analytics.Options{}).ImpossibleTravel(ctx, audit.Scope{All: true}, analytics.Range{}, 0); !errors.Is(err, analytics.ErrNoGeo) {
		t.Fatalf("travel without a database: %v", err)
	}
	a := analytics.New(st, analytics.Options{Now: func() time.Time { return AnalyticsNow }, Geo: TravelGeo})
	trs, truncated, err := a.ImpossibleTravel(ctx, audit.Scope{All: true}, analytics.Range{}, 0)
	if err != nil || truncated || len(trs) != 2 {
		t.Fatalf("travels: %+v %v %v", trs, truncated, err)
	}
	tr := trs[0]
	if tr.Subject != "user:u7" || tr.From.City != "Beijing" || tr.To.City != "Paris" || tr.DistanceKM < 8000 || tr.DistanceKM > 8500 ||
		tr.SpeedKMH < 8000 || !tr.To.Time.Equal(AnalyticsNow.Add(-2*time.Hour)) || tr.To.ClientIP != "10.2.0.1" {
		t.Errorf("Beijing to Paris: %+v", tr)
	}
	if trs[1].Subject != "user:u9" || trs[1].To.City != "Tianjin" {
		t.Errorf("Beijing to Tianjin: %+v", trs[1])
	}
	// the default rules ignore a short hop; a stricter minimum distance as well
	strict := analytics.New(st, analytics.Options{Now: func() time.Time { return AnalyticsNow }, Geo: TravelGeo,
		Travel: analytics.TravelRules{MaxSpeedKMH: 900, MinDistanceKM: 200}})
	if trs, _, err = strict.ImpossibleTravel(ctx, audit.Scope{All: true}, analytics.Range{}, 0); err != nil || len(trs) != 1 {
		t.Errorf("travels over 200 km: %+v %v", trs, err)
	}
	if trs, truncated, err = a.ImpossibleTravel(ctx, audit.Scope{All: true}, analytics.Range{}, 1); err != nil || !truncated || len(trs) != 1 {
		t.Errorf("travels, limit 1: %+v %v %v", trs, truncated, err)
	}
	// a range that holds only the Paris logins
	if trs, _, err = a.ImpossibleTravel(ctx, audit.Scope{All: true}, analytics.Range{From: AnalyticsNow.Add(-110 * time.Minute)}, 0); err != nil || len(trs) != 1 {
		t.Errorf("travels in the last 110 minutes: %+v %v", trs, err)
	}
	if trs, _, err = a.ImpossibleTravel(ctx, audit.Scope{Orgs: []string{"o2"}}, analytics.Range{}, 0); err != nil || len(trs) != 0 {
		t.Errorf("travels in org o2: %+v %v", trs, err)
	}
	more, err := st.Timelines(ctx, analytics.Filter{APIs: analytics.LoginAPIs}, 3, func(analytics.LastSeen) error { return nil })
	if err != nil || !more {
		t.Errorf("timelines capped at 3: %v %v", more, err)
	}
}

// fakePeople plays the identity component's people, in pages of two.
type fakePeople struct {
	people []analytics.Person
	err    error
}

func (f fakePeople) People(_ context.Context, _ []string, fn func([]analytics.Person) error) error {
	if f.err != nil {
		return f.err
	}
	for i := 0; i < len(f.people); i += 2 {
		if err := fn(f.people[i:min(i+2, len(f.people))]); err != nil {
			return err
		}
	}
	return nil
}
