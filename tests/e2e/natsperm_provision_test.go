package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/uias/uias/pkg/audit"
	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/services/sync/provision"
	"github.com/uias/uias/services/sync/provision/webhook"
	"github.com/uias/uias/services/sync/sqlstore"
)

// The sync user of the deployed NATS configuration can run provisioning,
// which the sync component runs at every deployment (a centre or not): it
// reads CHANGES through an ordered consumer, and publishes its own audit
// records (here the alert of a dead letter) into AUDIT. It can do nothing
// more with them: no records under another component's name, no changes,
// no purge or edit of AUDIT.
func TestNATSSyncUserRunsProvisioning(t *testing.T) {
	p := startPermTest(t)
	ctx := p.ctx
	change := func(entity, id, data string) {
		t.Helper()
		p.publishAsIdentity(t, events.Event{ID: "ev-" + id, Subject: "uias.changes.identity." + entity + ".created",
			Type: "identity." + entity + ".created", Time: time.Now(),
			Payload: []byte(fmt.Sprintf(`{"entity":%q,"op":"created","id":%q,"data":%s}`, entity, id, data))})
	}

	syncJS, _, viol := p.user(t, p.sync, "sync")
	db := p.sqlite(t, "sync.db", sqlstore.Migrate)
	ring, err := crypto.ParseRing(crypto.NewRingJSON())
	if err != nil {
		t.Fatal(err)
	}
	box, err := ring.PurposeSealer("sync provisioning secrets")
	if err != nil {
		t.Fatal(err)
	}
	st := sqlstore.NewProvision(db, box)
	var mu sync.Mutex
	got := map[string]int{}
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.Header.Get("X-Uias-Delivery")]++
		mu.Unlock()
	}))
	defer healthy.Close()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	defer broken.Close()
	auditor := audit.NewBuilder("sync", nil)
	alerts := make(chan error, 10)
	eng := provision.New(provision.Options{Store: st, JS: syncJS, Dial: map[string]provision.Dialer{provision.Webhook: webhook.New},
		Logger: zaptest.NewLogger(t), MaxAttempts: 1, Poll: 50 * time.Millisecond,
		Alert: func(ctx context.Context, s *provision.Subscription, d provision.Delivery) {
			// as the component does (services/sync/component/provision.go)
			ev := auditor.Event(ctx, audit.Action{API: "provision.dead_letter", Subject: "subscription:" + s.ID,
				Result: audit.ResultFailure, Reason: "DEAD_LETTER", Start: d.CreatedAt})
			_, err := syncJS.PublishMsg(ctx, events.Msg(ev), jetstream.WithMsgID(ev.ID))
			alerts <- err
		}})
	svc := &provision.Service{Store: st, Engine: eng}
	sel := provision.Selection{Orgs: []string{"o1"}}
	for _, s := range []*provision.Subscription{
		{App: "crm", Name: "healthy", Selection: sel, Transport: provision.Webhook, Endpoint: healthy.URL, Secret: "whsec-0123456789abcdef", Enabled: true},
		{App: "erp", Name: "broken", Selection: sel, Transport: provision.Webhook, Endpoint: broken.URL, Secret: "whsec-0123456789abcdef", Enabled: true},
	} {
		if _, err := svc.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	ectx, ecancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); eng.Run(ectx) }()
	change("org", "o1", `{"code":"hq"}`)
	change("user", "u1", `{"login_name":"ann","org_id":"o1"}`)
	eventually(t, "the sync user's provisioning to deliver the org and the person", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 2
	})
	select {
	case err := <-alerts:
		if err != nil {
			t.Fatalf("the sync user publishing its dead-letter record: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("no dead letter")
	}
	ecancel()
	<-done
	aud, err := p.setupJS.Stream(ctx, events.StreamAudit)
	if err != nil {
		t.Fatal(err)
	}
	ictx, icancel := context.WithTimeout(ctx, 10*time.Second)
	info, err := aud.Info(ictx, jetstream.WithSubjectFilter("uias.audit.sync.>"))
	icancel()
	if err != nil || info.State.Subjects["uias.audit.sync.provision.dead_letter"] == 0 {
		t.Fatalf("the dead-letter record is not in AUDIT: %v %v", info.State.Subjects, err)
	}

	attacks := append(streamAttacks(syncJS, events.StreamConfigs()[1]),
		natsAttack{"forge an identity record", "uias.audit.identity.authenticate", func(ctx context.Context) error {
			_, err := syncJS.Publish(ctx, "uias.audit.identity.authenticate", []byte(`{"result":"success"}`))
			return err
		}},
		natsAttack{"forge an identity change", "uias.changes.identity.user.created", func(ctx context.Context) error {
			_, err := syncJS.Publish(ctx, "uias.changes.identity.user.created", []byte(`{"id":"u2"}`))
			return err
		}},
		natsAttack{"publish a change of its own", "uias.changes.sync.subscription.created", func(ctx context.Context) error {
			_, err := syncJS.Publish(ctx, "uias.changes.sync.subscription.created", []byte(`{"id":"s1"}`))
			return err
		}},
	)
	wantRefused(t, ctx, "sync", viol, attacks)
	if info, err := aud.Info(ctx); err != nil || info.Config.MaxAge != events.StreamConfigs()[1].MaxAge {
		t.Fatalf("AUDIT after the attacks: %+v %v", info, err)
	}
}
