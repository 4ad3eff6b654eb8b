package provision_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/uias/uias/services/sync/provision"
	"github.com/uias/uias/services/sync/provision/provtest"
)

type panicky struct{ calls *atomic.Int64 }

func (p panicky) Deliver(_ context.Context, it provision.Item) error {
	p.calls.Add(1)
	if it.Delivery.ObjectID == "bad" {
		var s []rune
		_ = s[:-len(it.Delivery.ObjectID)+2] // the kind of bug of review sec30a H2
	}
	return nil
}

func (panicky) Close() error { return nil }

// Review sec30a H2: a transport that panics on one delivery does not stop
// the process (a crash loop on that delivery): the delivery is
// dead-lettered at once saying so, the others are delivered.
func TestTransportPanicDeadLettersTheDelivery(t *testing.T) {
	var calls atomic.Int64
	env := provtest.New(t, provision.Options{MaxAttempts: 5, Dial: map[string]provision.Dialer{
		provision.Webhook: func(*provision.Subscription) (provision.Transport, error) { return panicky{&calls}, nil }}})
	env.Start()
	sub := env.Subscribe(&provision.Subscription{App: "app1", Name: "x", Selection: provision.Selection{Orgs: []string{"o1"}},
		Transport: provision.Webhook, Endpoint: "https://example.org/hook", Secret: secret})
	env.Change("org", "created", "o1", map[string]any{"code": "hq"})
	env.Change("user", "created", "bad", map[string]any{"login_name": "bad", "org_id": "o1"})
	env.Change("user", "created", "good", map[string]any{"login_name": "good", "org_id": "o1"})
	env.Wait("the panic dead-lettered, the others delivered", func() bool {
		return env.Count(sub.ID, provision.Dead) == 1 && env.Count(sub.ID, provision.Delivered) == 2
	})
	found := false
	for _, d := range env.Deliveries(sub.ID) {
		if d.ObjectID != "bad" {
			continue
		}
		found = true
		if d.Attempts != 1 || !strings.Contains(d.LastError, "internal error of the webhook transport") ||
			!strings.Contains(d.LastError, "slice bounds out of range") {
			t.Fatalf("dead letter of the panicking delivery %+v", d)
		}
	}
	if !found {
		t.Fatal("no dead letter of the panicking delivery")
	}
}
