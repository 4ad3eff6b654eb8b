package analytics_test

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/events/eventstest"
	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/analytics"
)

// webhookReceiver is a business system's alert endpoint on loopback: it
// checks each alert's signature and timestamp, answers 500 to the first
// failFirst requests, and keeps the alerts it took.
type webhookReceiver struct {
	secret    []byte
	failFirst int32
	calls     atomic.Int32
	mu        sync.Mutex
	got       []analytics.Alert
	ids       []string
	bad       []string
}

func (w *webhookReceiver) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if w.calls.Add(1) <= w.failFirst {
		http.Error(rw, "busy", http.StatusInternalServerError)
		return
	}
	ts, err := strconv.ParseInt(r.Header.Get(crypto.WebhookTimestampHeader), 10, 64)
	want := crypto.WebhookSignature(w.secret, ts, body)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil || time.Since(time.Unix(ts, 0)).Abs() > 5*time.Minute ||
		!hmac.Equal([]byte(want), []byte(r.Header.Get(crypto.WebhookSignatureHeader))) {
		w.bad = append(w.bad, string(body))
		http.Error(rw, "bad signature", http.StatusUnauthorized)
		return
	}
	var a analytics.Alert
	if err := json.Unmarshal(body, &a); err != nil {
		w.bad = append(w.bad, string(body))
		http.Error(rw, "bad body", http.StatusBadRequest)
		return
	}
	w.got = append(w.got, a)
	w.ids = append(w.ids, r.Header.Get(crypto.WebhookDeliveryHeader))
}

func (w *webhookReceiver) alerts() ([]analytics.Alert, []string, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]analytics.Alert(nil), w.got...), append([]string(nil), w.ids...), append([]string(nil), w.bad...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// Alerts in real time: impossible travel (placed with a MaxMind database
// the test writes), a login from outside the allowed networks and a burst
// of lockouts go out on a real NATS server and to a signed webhook over
// loopback that fails at first (retried); a webhook that stays down is
// logged with the alert's id and counted, never silently dropped.
func TestAlerts(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nc, _ := eventstest.Connect(t, eventstest.NATS(t))
	sub, err := nc.SubscribeSync(analytics.AlertSubjectPrefix + ">")
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("alert-signing-secret-0123456789")
	recv := &webhookReceiver{secret: secret, failFirst: 2}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	geo, err := analytics.OpenMMDB(writeTestDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer geo.Close()

	reg := prometheus.NewRegistry()
	core, logs := observer.New(zap.InfoLevel)
	n := analytics.NewNotifier(nc.Publish, analytics.WebhookOptions{URL: srv.URL, Secret: secret, Attempts: 5,
		Backoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}, zap.New(core), reg)
	go n.Run(ctx)
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	var asked []string
	det := analytics.NewDetector(analytics.DetectorOptions{Geo: geo,
		Allowed:      []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.0/24")},
		LockoutBurst: 2, LockoutWindow: time.Minute,
		Previous: func(_ context.Context, subject string, before time.Time) (analytics.LastSeen, bool, error) {
			asked = append(asked, subject)
			if subject != "user:u1" {
				return analytics.LastSeen{}, false, nil
			}
			return analytics.LastSeen{Subject: subject, Time: before.Add(-time.Hour), ClientIP: "198.51.100.7"}, true, nil
		}})
	rec := func(i int, api, subject, result, ip string, at time.Duration) audit.Record {
		return audit.Record{EventID: "ev-" + strconv.Itoa(i), API: api, Subject: subject, Org: "o1", Result: result, ClientIP: ip,
			Time: t0.Add(at)}
	}
	recs := []audit.Record{
		rec(1, "sso.login", "user:u1", "success", "203.0.113.5", 0),                        // Paris an hour after Beijing (store)
		rec(2, "authenticate", "user:u2", "failure", "192.0.2.1", time.Second),             // outside the allowed networks
		rec(3, "account.lockout", "user:u3", "locked", "", 10*time.Second),                 // lockouts: the second within
		rec(4, "account.lockout", "user:u4", "locked", "", 20*time.Second),                 // a minute is a burst,
		rec(5, "account.lockout", "user:u5", "locked", "", 30*time.Second),                 // one alert per window
		rec(6, "sso.login", "user:u1", "success", "203.0.113.9", 2*time.Hour),              // stays in Paris
		rec(7, "admin.login", "user:u6", "success", "198.51.100.8", 3*time.Hour),           // first login known: nothing
		rec(8, "uias.identity.v1.AuthService/Authenticate", "", "failure", "192.0.2.1", 0), // an access record: nothing
	}
	var raised []analytics.Alert
	for i := range recs {
		as, err := det.Observe(ctx, &recs[i])
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if err := n.Send(a); err != nil {
				t.Fatal(err)
			}
		}
		raised = append(raised, as...)
	}
	if len(raised) != 3 || raised[0].Kind != analytics.AlertImpossibleTravel || raised[1].Kind != analytics.AlertUnauthorisedAddress ||
		raised[2].Kind != analytics.AlertLockoutBurst {
		t.Fatalf("alerts raised: %+v", raised)
	}
	tr := raised[0]
	if tr.ID != "ev-1:impossible_travel" || tr.UserID != "u1" || tr.Travel == nil || tr.Travel.From.City != "Beijing" ||
		tr.Travel.To.City != "Paris" || tr.Travel.DistanceKM < 8000 || tr.Travel.SpeedKMH < 8000 || !strings.Contains(tr.Message, "Paris") {
		t.Errorf("impossible travel alert: %+v %+v", tr, tr.Travel)
	}
	if raised[1].ClientIP != "192.0.2.1" || raised[1].UserID != "u2" || raised[2].Lockouts != 2 {
		t.Errorf("address and burst alerts: %+v", raised[1:])
	}
	if strings.Join(asked, ",") != "user:u1,user:u6" {
		t.Errorf("the store was asked about %v, want u1 once (then remembered) and u6", asked)
	}

	// NATS: each alert on its kind's subject, at once
	for _, want := range raised {
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var got analytics.Alert
		if err := json.Unmarshal(m.Data, &got); err != nil || got.ID != want.ID || m.Subject != analytics.AlertSubjectPrefix+want.Kind {
			t.Errorf("NATS alert %s %s: %v, want %s", m.Subject, m.Data, err, want.ID)
		}
	}
	// the webhook: two refusals, retried, then all three, signed
	waitFor(t, "three alerts at the webhook", func() bool { got, _, _ := recv.alerts(); return len(got) == 3 })
	got, ids, bad := recv.alerts()
	if len(bad) != 0 || got[0].ID != raised[0].ID || ids[0] != raised[0].ID || got[0].Travel == nil {
		t.Errorf("webhook: %+v %v bad %v", got, ids, bad)
	}
	// the webhook's sent counter moves once its answer is read, just after
	// the receiver has the alert
	waitFor(t, "sent/published metrics", func() bool {
		return counter(t, reg, "uias_audit_alerts_webhook_sent_total") == 3 && counter(t, reg, "uias_audit_alerts_published_total") == 3
	})
	if logs.FilterMessageSnippet("retrying").Len() != 2 {
		t.Errorf("retries logged: %d", logs.FilterMessageSnippet("retrying").Len())
	}

	// a webhook that stays down: tried every time, then logged and counted
	down := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		http.Error(rw, "down", http.StatusServiceUnavailable)
	}))
	defer down.Close()
	reg2 := prometheus.NewRegistry()
	core2, logs2 := observer.New(zap.InfoLevel)
	n2 := analytics.NewNotifier(nil, analytics.WebhookOptions{URL: down.URL, Secret: secret, Attempts: 3,
		Backoff: time.Millisecond, MaxBackoff: time.Millisecond}, zap.New(core2), reg2)
	go n2.Run(ctx)
	if err := n2.Send(raised[1]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the undelivered alert logged", func() bool { return logs2.FilterMessageSnippet("NOT delivered").Len() == 1 })
	e := logs2.FilterMessageSnippet("NOT delivered").All()[0]
	if e.Level != zap.ErrorLevel || e.ContextMap()["alert"] != raised[1].ID || !strings.Contains(e.ContextMap()["error"].(string), "503") ||
		counter(t, reg2, "uias_audit_alerts_webhook_failed_total") != 1 {
		t.Errorf("undelivered alert: %+v %v", e, e.ContextMap())
	}

	// NATS gone: Send says so (the caller tries the event again)
	nc.Close()
	if err := n.Send(raised[2]); err == nil {
		t.Error("an alert sent on a closed NATS connection reported success")
	}
}

// TestAdminLoginFailureAlert (trial5 D20): failed administrator logins of
// one account within the window raise one alert per window and account;
// other accounts and other logins count apart; a removal of records has an
// alert of its own.
func TestAdminLoginFailureAlert(t *testing.T) {
	ctx := context.Background()
	det := analytics.NewDetector(analytics.DetectorOptions{AdminFailureBurst: 3, LockoutWindow: time.Minute})
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	var raised []analytics.Alert
	for i, r := range []struct {
		api, subject, result string
		at                   time.Duration
	}{
		{"admin.login", "user:adm", "failure", 0},
		{"admin.login", "login:ghost", "failure", time.Second},
		{"authenticate", "user:adm", "failure", 2 * time.Second},
		{"admin.login", "user:adm", "failure", 3 * time.Second},
		{"admin.login", "user:adm", "failure", 4 * time.Second}, // the third within a minute: an alert
		{"admin.login", "user:adm", "failure", 5 * time.Second}, // the same window: none
		{"admin.login", "user:adm", "success", 6 * time.Second},
		{"admin.login", "user:adm", "failure", 2 * time.Minute}, // alone in a new window: none
	} {
		rec := audit.Record{EventID: "ev-" + strconv.Itoa(i), API: r.api, Subject: r.subject, Result: r.result, Time: t0.Add(r.at)}
		as, err := det.Observe(ctx, &rec)
		if err != nil {
			t.Fatal(err)
		}
		raised = append(raised, as...)
	}
	if len(raised) != 1 || raised[0].Kind != analytics.AlertAdminLoginFailures || raised[0].Failures != 3 || raised[0].Subject != "user:adm" ||
		raised[0].ID != "ev-4:admin_login_failures" {
		t.Fatalf("alerts: %+v", raised)
	}
	// records arriving a little out of time order count all the same
	det = analytics.NewDetector(analytics.DetectorOptions{AdminFailureBurst: 3, LockoutWindow: time.Minute})
	var late []analytics.Alert
	for i, at := range []time.Duration{2 * time.Second, 0, time.Second} {
		rec := audit.Record{EventID: "late-" + strconv.Itoa(i), API: "admin.login", Subject: "user:adm", Result: "failure", Time: t0.Add(at)}
		as, err := det.Observe(ctx, &rec)
		if err != nil {
			t.Fatal(err)
		}
		late = append(late, as...)
	}
	if len(late) != 1 || late[0].Failures != 3 {
		t.Fatalf("failures out of order: %+v", late)
	}
	// made-up account names by the hundred thousand (each a failed admin
	// login) and people whose failures are long past do not wipe the
	// count of the account attacked (review sec9 L3)
	det = analytics.NewDetector(analytics.DetectorOptions{AdminFailureBurst: 3, LockoutWindow: time.Minute})
	observe := func(id, subject string, at time.Time) []analytics.Alert {
		rec := audit.Record{EventID: id, API: "admin.login", Subject: subject, Result: "failure", Time: at}
		as, err := det.Observe(ctx, &rec)
		if err != nil {
			t.Fatal(err)
		}
		return as
	}
	for i := range 100_001 {
		observe("old", "user:old-"+strconv.Itoa(i), t0.Add(-time.Hour))
	}
	observe("a1", "user:adm", t0)
	observe("a2", "user:adm", t0.Add(time.Second))
	for i := range 100_001 {
		observe("spray", "login:ghost-"+strconv.Itoa(i), t0.Add(2*time.Second))
	}
	observe("b1", "user:other", t0.Add(3*time.Second)) // beyond the bound: the old ones go
	if as := observe("a3", "user:adm", t0.Add(4*time.Second)); len(as) != 1 || as[0].Failures != 3 {
		t.Fatalf("the third failure after a spray: %+v", as)
	}
	// real login names sprayed within the window (each a person's single
	// failure) do not wipe the count either (review sec10 M1)
	observe("c1", "user:adm2", t0.Add(5*time.Second))
	observe("c2", "user:adm2", t0.Add(6*time.Second))
	for i := range 100_001 {
		observe("spray2", "user:sprayed-"+strconv.Itoa(i), t0.Add(7*time.Second))
	}
	if as := observe("c3", "user:adm2", t0.Add(8*time.Second)); len(as) != 1 || as[0].Failures != 3 {
		t.Fatalf("the third failure after a spray of real names: %+v", as)
	}
	a := analytics.RemovalAlert("audit-removal-0-40", "user:aud", 0, 40, t0)
	if a.Kind != analytics.AlertAuditRemoval || a.Actor != "user:aud" || !strings.Contains(a.Message, "records 0 to 39 (40)") {
		t.Fatalf("removal alert: %+v", a)
	}
}
