package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/services/audit/analytics"
	auditcomponent "github.com/uias/uias/services/audit/component"
)

// The audit component's alert consumer runs with the audit user of the
// deployed NATS configuration: it creates its durable consumer
// "audit-alerts" on AUDIT, fetches the identity component's login, raises
// the alert of an address outside the allowed networks, publishes it on
// uias.alerts.audit.<kind> (no permission violation), posts it to the
// webhook and acknowledges the event (nothing left pending).
func TestNATSAuditUserRunsAlerts(t *testing.T) {
	p := startPermNATS(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	setupConn, _ := p.connect(t, p.setup, "setup")
	setupJS, _ := jetstream.New(setupConn)
	if err := events.EnsureStreams(ctx, setupJS); err != nil {
		t.Fatalf("setup: %v", err)
	}
	got := make(chan []byte, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- b
	}))
	defer hook.Close()

	auditConn, viol := p.connect(t, p.audit, "audit")
	auditJS, _ := jetstream.New(auditConn)
	log := zaptest.NewLogger(t)
	n := analytics.NewNotifier(auditConn.Publish, analytics.WebhookOptions{URL: hook.URL, Secret: []byte("alert-webhook-secret-0123456789"),
		Attempts: 3}, log, nil)
	det := analytics.NewDetector(analytics.DetectorOptions{Allowed: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		CallerRefusalBurst: 1, LockoutWindow: time.Minute})
	// the consumer as an earlier version made it (login records only): it
	// is given the refused callers' subjects at start
	if _, err := auditJS.CreateConsumer(ctx, events.StreamAudit, jetstream.ConsumerConfig{Durable: auditcomponent.AlertsDurable,
		DeliverPolicy: jetstream.DeliverNewPolicy, AckPolicy: jetstream.AckExplicitPolicy,
		FilterSubjects: []string{"uias.audit.identity.admin.login", "uias.audit.identity.sso.login"}}); err != nil {
		t.Fatal(err)
	}
	actx, acancel := context.WithCancel(ctx)
	done := make(chan struct{}, 2)
	go func() { n.Run(actx); done <- struct{}{} }()
	go func() {
		auditcomponent.RunAlerts(actx, auditJS, det, n, log, time.Now().Add(-time.Minute))
		done <- struct{}{}
	}()

	idConn, _ := p.connect(t, p.identity, "identity")
	idJS, _ := jetstream.New(idConn)
	ev := events.Event{ID: "login-outside-1", Subject: "uias.audit.identity.admin.login", Type: "audit.admin.login", Time: time.Now(),
		Payload: []byte(`{"api":"admin.login","result":"success","subject":"user:u1","client_ip":"192.0.2.9"}`)}
	if _, err := idJS.PublishMsg(ctx, events.Msg(ev), jetstream.WithMsgID(ev.ID)); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		var alert struct {
			Kind     string `json:"kind"`
			UserID   string `json:"user_id"`
			ClientIP string `json:"client_ip"`
		}
		if err := json.Unmarshal(b, &alert); err != nil || alert.Kind != "unauthorised_address" || alert.UserID != "u1" ||
			alert.ClientIP != "192.0.2.9" {
			t.Fatalf("alert %s: %v", b, err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no alert from the consumer running as the audit user")
	}
	// a call refused as an application, published by another component
	tkConn, _ := p.connect(t, p.ticket, "ticket")
	tkJS, _ := jetstream.New(tkConn)
	ev = events.Event{ID: "refused-1", Subject: "uias.audit.ticket.caller.denied", Type: "audit.caller.denied", Time: time.Now(),
		Payload: []byte(`{"api":"caller.denied","result":"denied","reason":"BAD_APP_CREDENTIALS","subject":"app:crm","app_id":"crm","client_ip":"192.0.2.9"}`)}
	if _, err := tkJS.PublishMsg(ctx, events.Msg(ev), jetstream.WithMsgID(ev.ID)); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		var alert struct {
			Kind  string `json:"kind"`
			AppID string `json:"app_id"`
		}
		if err := json.Unmarshal(b, &alert); err != nil || alert.Kind != "caller_refusals" || alert.AppID != "crm" {
			t.Fatalf("alert %s: %v", b, err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no alert of refused callers from the consumer running as the audit user")
	}
	eventually(t, "the login event acknowledged", func() bool {
		cons, err := auditJS.Consumer(ctx, events.StreamAudit, auditcomponent.AlertsDurable)
		if err != nil {
			return false
		}
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0 && info.Delivered.Consumer >= 2
	})
	acancel()
	<-done
	<-done
	if err := auditConn.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, subject := range []string{"uias.alerts.audit.unauthorised_address", "$JS.API.CONSUMER.CREATE.AUDIT.audit-alerts",
		"$JS.API.CONSUMER.MSG.NEXT.AUDIT.audit-alerts", "$JS.API.CONSUMER.INFO.AUDIT.audit-alerts"} {
		if viol.has(subject) {
			t.Errorf("the server refused the audit user %s", subject)
		}
	}
}
