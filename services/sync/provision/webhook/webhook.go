// Package webhook is the signed-webhook transport of provisioning: each
// delivery is one JSON POST signed with HMAC-SHA256 over the timestamp and
// the body (docs/integrators.md shows how a receiver checks it).
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/services/sync/provision"
)

// Headers of a delivery: those of every signed UIAS webhook (pkg/crypto
// signs and verifies them, for audit's alerts too).
const (
	HeaderTimestamp = crypto.WebhookTimestampHeader // Unix seconds
	HeaderSignature = crypto.WebhookSignatureHeader // "v1=" + hex HMAC-SHA256(secret, timestamp + "." + body)
	HeaderDelivery  = crypto.WebhookDeliveryHeader  // the delivery id: the same on every retry
)

// Body is the JSON a business system receives.
type Body struct {
	// Delivery is "<subscription>:<seq>": receivers drop a delivery id
	// they have already processed (a retry after a lost answer).
	Delivery     string          `json:"delivery"`
	Subscription string          `json:"subscription"`
	App          string          `json:"app"`
	EventID      string          `json:"event_id"`
	BatchID      string          `json:"batch_id,omitempty"`
	Kind         string          `json:"kind"`
	ObjectID     string          `json:"object_id"`
	Op           string          `json:"op"`
	Object       json.RawMessage `json:"object,omitempty"`
	// Members: a group's user ids, or a role's holders in the selection
	// (every delivery of a group or a role but its removal, [] when it has
	// none); absent for other kinds.
	Members *[]string `json:"members,omitempty"`
	// Roles: for a person delivered to a subscription with deliver_roles
	// (but their removal), the roles of the application they hold ([]
	// when none), and [] on the edit that turns deliver_roles off (the
	// roles withdrawn); absent otherwise.
	Roles *[]provision.RoleRef `json:"roles,omitempty"`
	Time  time.Time            `json:"time"`
}

// Transport posts deliveries to one URL.
type Transport struct {
	URL    string
	Secret []byte
	Client *http.Client
	Now    func() time.Time
}

// New returns the transport of s.
func New(s *provision.Subscription) (provision.Transport, error) {
	return &Transport{URL: s.Endpoint, Secret: []byte(s.Secret), Client: provision.HTTPClient(), Now: time.Now}, nil
}

// Deliver implements provision.Transport.
func (t *Transport) Deliver(ctx context.Context, it provision.Item) error {
	d := it.Delivery
	b := Body{Delivery: fmt.Sprintf("%s:%d", d.Subscription, d.Seq), Subscription: d.Subscription, App: d.App, EventID: d.EventID,
		BatchID: d.BatchID, Kind: d.Kind, ObjectID: d.ObjectID, Op: d.Op, Time: t.Now().UTC()}
	if (d.Kind == provision.KindGroup || d.Kind == provision.KindRole) && d.Op != provision.OpDelete {
		members := make([]string, 0, len(it.Members))
		for _, m := range it.Members {
			members = append(members, m.ID)
		}
		b.Members = &members
	}
	if d.Kind == provision.KindUser && d.Op != provision.OpDelete && it.Roles != nil {
		roles := it.Roles
		b.Roles = &roles
	}
	if d.Op != provision.OpDelete && it.Object != nil {
		b.Object = it.Object.Data
	}
	body, err := json.Marshal(b)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook: bad endpoint: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	crypto.SignWebhook(req.Header, t.Secret, t.Now(), body)
	req.Header.Set(HeaderDelivery, b.Delivery)
	// No redirect is followed, whatever client the transport was given
	// (provision.HTTPClient): the signed body would go to the host the
	// answer names.
	resp, err := provision.NoRedirects(t.Client).Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	if provision.IsRedirect(resp.StatusCode) {
		return provision.Redirected("webhook", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook: the business system answered HTTP %d: %q", resp.StatusCode, snippet)
	}
	return nil
}

// Close implements provision.Transport.
func (t *Transport) Close() error { t.Client.CloseIdleConnections(); return nil }
