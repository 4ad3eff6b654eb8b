package e2e

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/services/audit/analytics"
	auditcomponent "github.com/uias/uias/services/audit/component"
)

// The siem user of the deployed NATS configuration (a SIEM, or a witness
// of the log) receives what the audit user publishes on the alert subjects
// and the checkpoint subject, and nothing else: subscribing to records,
// changes, other alerts or replies is refused, and so is every publish
// (a forged alert, a record, a JetStream request).
func TestNATSSIEMUserOfDeployConfig(t *testing.T) {
	p := startPermTest(t)
	siem, viol := p.connect(t, p.siem, "siem")
	alerts, err := siem.SubscribeSync(analytics.AlertSubjectPrefix + ">")
	if err != nil {
		t.Fatal(err)
	}
	checkpoints, err := siem.SubscribeSync(auditcomponent.CheckpointSubject)
	if err != nil {
		t.Fatal(err)
	}
	if err := siem.Flush(); err != nil {
		t.Fatal(err)
	}

	auditConn, auditViol := p.connect(t, p.audit, "audit")
	sent := map[string]string{
		analytics.AlertSubjectPrefix + "impossible_travel": `{"id":"ev-1:impossible_travel","kind":"impossible_travel"}`,
		auditcomponent.CheckpointSubject:                   "uias.audit\n1\nroot\n",
	}
	for subject, body := range sent {
		if err := auditConn.Publish(subject, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := auditConn.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []*nats.Subscription{alerts, checkpoints} {
		m, err := sub.NextMsg(30 * time.Second)
		if err != nil {
			t.Fatalf("the siem user's subscription to %s: %v", sub.Subject, err)
		}
		if want, ok := sent[m.Subject]; !ok || string(m.Data) != want {
			t.Errorf("the siem user got %s %q", m.Subject, m.Data)
		}
	}
	for subject := range sent {
		if auditViol.has(subject) {
			t.Errorf("the server refused the audit user %s", subject)
		}
	}

	// what the siem user may not read
	for _, subject := range []string{"uias.audit.>", "uias.changes.>", "uias.alerts.>", "_INBOX.>", "$JS.API.>"} {
		sub, err := siem.SubscribeSync(subject)
		if err != nil {
			t.Fatal(err)
		}
		if err := siem.Flush(); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the server to refuse the siem user's subscription to "+subject, func() bool { return viol.has(subject) })
		_ = sub.Unsubscribe()
	}
	// nor publish: a forged alert or checkpoint, a record, a JetStream request
	for _, subject := range []string{analytics.AlertSubjectPrefix + "lockout_burst", auditcomponent.CheckpointSubject,
		"uias.audit.identity.authenticate", "$JS.API.STREAM.PURGE.AUDIT", "$JS.API.CONSUMER.CREATE.AUDIT"} {
		if err := siem.Publish(subject, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		if err := siem.Flush(); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the server to refuse the siem user's publish to "+subject, func() bool { return viol.has(subject) })
	}
	if m, err := alerts.NextMsg(100 * time.Millisecond); err == nil {
		t.Errorf("a forged alert reached the subscriber: %s %q", m.Subject, m.Data)
	}
	s, err := p.setupJS.Stream(p.ctx, events.StreamAudit)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 0 {
		t.Fatalf("AUDIT holds %d messages after the siem user's publishes, want 0", n)
	}
}
