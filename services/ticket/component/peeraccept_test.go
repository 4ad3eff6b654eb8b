package component

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/events/eventstest"
	"github.com/uias/uias/pkg/grpcx"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	"github.com/uias/uias/services/ticket"
	"github.com/uias/uias/services/ticket/cas"
	"github.com/uias/uias/services/ticket/kvstore"
	"github.com/uias/uias/services/ticket/server"
)

// auditLog keeps the audit records a ticket service published.
type auditLog struct {
	mu  sync.Mutex
	evs []events.AuditRecord
}

func (a *auditLog) Publish(ev events.Event) {
	var rec events.AuditRecord
	_ = json.Unmarshal(ev.Payload, &rec)
	rec.API = strings.TrimPrefix(ev.Type, "audit.")
	a.mu.Lock()
	a.evs = append(a.evs, rec)
	a.mu.Unlock()
}

func (a *auditLog) find(api, result, reason string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range a.evs {
		if e.API == api && e.Result == result && e.Reason == reason {
			return true
		}
	}
	return false
}

// peerCentre is a ticket service of centre name over JetStream, served
// through the server's interceptor chain (grpcx.Direct: validation, error
// funnel) as in `uias serve`.
func peerCentre(t *testing.T, name string, peers ticket.PeerSettings) (*ticket.Service, ticketv1.TicketServiceClient, *auditLog) {
	t.Helper()
	_, js := eventstest.Connect(t, eventstest.NATS(t))
	ring, err := crypto.ParseRing(crypto.NewRingJSON())
	if err != nil {
		t.Fatal(err)
	}
	mac, err := ring.Signer()
	if err != nil {
		t.Fatal(err)
	}
	log := &auditLog{}
	svc, err := ticket.New(ticket.Deps{Store: kvstore.New(js, kvstore.Options{Timeout: time.Second}), MAC: mac, Audit: log,
		Config: ticket.Config{Centre: name}, Registry: ticket.NewRegistry(noServices{}, 0, nil)})
	if err != nil {
		t.Fatal(err)
	}
	svc.SetPeers(peers)
	d := grpcx.NewDirect(grpcx.ServerOptions{}, nil)
	server.New(svc, nil, nil).Register(d)
	t.Cleanup(d.Stop)
	return svc, ticketv1.NewTicketServiceClient(d), log
}

// TestPeerAcceptWithoutCookieReachesTheDomain (rr29 A1): /cas/peer/accept
// in a browser without the nonce cookie asks the real ticket component,
// through the server chain's validation, with no nonce: the refusal is
// audited (peer.assertion.redeem denied PEER_ASSERTION_INVALID) and the
// assertion is used up, so that the browser it was meant for cannot take
// it either (PEER_ASSERTION_REPLAYED). A malformed nonce never reaches the
// domain (INVALID_ARGUMENT), at either end.
func TestPeerAcceptWithoutCookieReachesTheDomain(t *testing.T) {
	_, l2aKey, _ := ed25519.GenerateKey(rand.Reader)
	_, l1Key, _ := ed25519.GenerateKey(rand.Reader)
	l2a, l2aClient, _ := peerCentre(t, "l2a", ticket.PeerSettings{Key: l2aKey, Peers: map[string]ticket.Peer{
		"l1": {Name: "l1", URL: "https://l1.example", Keys: []ed25519.PublicKey{l1Key.Public().(ed25519.PublicKey)}}}})
	_, l1Client, l1Audit := peerCentre(t, "l1", ticket.PeerSettings{Key: l1Key, Peers: map[string]ticket.Peer{
		"l2a": {Name: "l2a", URL: "https://l2a.example", Keys: []ed25519.PublicKey{l2aKey.Public().(ed25519.PublicKey)}}}})
	ctx := context.Background()
	tgt, _, err := l2a.CreateSession(ctx, ticket.NewSession{UserID: "u1", Login: "alice", AuthLevel: 1,
		AuthMethod: int(ticketv1.AuthMethod_AUTH_METHOD_PASSWORD)})
	if err != nil {
		t.Fatal(err)
	}
	const nonce = "0123456789abcdef0123456789abcdef"
	// The peer signs only for a nonce's hash, through its chain.
	if _, err := l2aClient.IssuePeerAssertion(ctx, &ticketv1.IssuePeerAssertionRequest{Tgt: tgt, Audience: "l1", Nonce: nonce}); apierr.CodeOf(err) != apierr.InvalidArgument {
		t.Fatalf("assertion for the cookie's value instead of its hash: %v", err)
	}
	res, err := l2aClient.IssuePeerAssertion(ctx, &ticketv1.IssuePeerAssertionRequest{Tgt: tgt, Audience: "l1",
		Nonce: ticket.PeerNonceHash(nonce)})
	if err != nil {
		t.Fatal(err)
	}

	h := cas.New(cas.Options{Tickets: l1Client, Centre: "l1", Peers: []cas.PeerPage{{Name: "l2a", URL: "http://127.0.0.1:1"}}})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/cas/peer/accept?"+url.Values{"peer": {"l2a"},
		"assertion": {res.GetAssertion()}}.Encode(), nil))
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("accept without the nonce cookie: %d\n%s", rec.Code, rec.Body)
	}
	if !l1Audit.find("peer.assertion.redeem", "denied", ticket.ReasonPeerInvalid) {
		t.Fatalf("the refusal was not audited by the ticket component: %+v", l1Audit.evs)
	}
	// Used up: the browser it was meant for is refused too.
	_, err = l1Client.RedeemPeerAssertion(ctx, &ticketv1.RedeemPeerAssertionRequest{Assertion: res.GetAssertion(), Nonce: nonce})
	if ae, ok := apierr.FromStatus(err); !ok || ae.Reason != ticket.ReasonPeerReplayed {
		t.Fatalf("redeem after the refusal: %v, want %s", err, ticket.ReasonPeerReplayed)
	}
	// A nonce of another form is the request's fault, never the domain's.
	_, err = l1Client.RedeemPeerAssertion(ctx, &ticketv1.RedeemPeerAssertionRequest{Assertion: res.GetAssertion(), Nonce: "none"})
	if apierr.CodeOf(err) != apierr.InvalidArgument {
		t.Fatalf("redeem with nonce \"none\": %v", err)
	}
}
