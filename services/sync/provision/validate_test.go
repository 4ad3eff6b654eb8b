package provision_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uias/uias/services/sync/provision"
	"github.com/uias/uias/services/sync/provision/provtest"
)

func subTo(transport, endpoint string) *provision.Subscription {
	return &provision.Subscription{App: "app1", Name: "x", Selection: provision.Selection{Orgs: []string{"o1"}},
		Strategy: provision.Immediate, Transport: transport, Endpoint: endpoint, Secret: "whsec-0123456789abcdef",
		Settings: map[string]string{"base_dn": "dc=example,dc=org"}}
}

// TestEndpointsInClearOnlyToThisMachine: a subscription's endpoint carries
// people's data and the business system's credentials, so plain http and
// ldap:// are refused unless to this machine (JR/T 0185-2020 9.2.2; gap2
// G6); https and ldaps:// go anywhere.
func TestEndpointsInClearOnlyToThisMachine(t *testing.T) {
	for _, ok := range []*provision.Subscription{
		subTo(provision.Webhook, "https://crm.example.com/hook"), subTo(provision.SCIM, "https://hr.example.com/scim/v2"),
		subTo(provision.LDAP, "ldaps://dir.example.com:636"), subTo(provision.Webhook, "http://127.0.0.1:8080/hook"),
		subTo(provision.SCIM, "http://localhost:9000/scim/v2"), subTo(provision.LDAP, "ldap://127.0.0.1:3890"),
		subTo(provision.Webhook, "http://[::1]:8080/hook"),
	} {
		if err := ok.Validate(); err != nil {
			t.Errorf("%s %s: %v", ok.Transport, ok.Endpoint, err)
		}
		if err := ok.CheckInClear(); err != nil || ok.InClear() {
			t.Errorf("%s %s: in clear: %v", ok.Transport, ok.Endpoint, err)
		}
	}
	for _, bad := range []*provision.Subscription{
		subTo(provision.Webhook, "http://crm.example.com/hook"), subTo(provision.SCIM, "http://10.1.2.3/scim/v2"),
		subTo(provision.LDAP, "ldap://dir.example.com:389"), subTo(provision.Webhook, "http://127.0.0.1.example.com/hook"),
	} {
		err := bad.CheckInClear()
		var ve *provision.ValidationError
		if !errors.As(err, &ve) || ve.Field != "endpoint" || !strings.Contains(err.Error(), "in clear") || !bad.InClear() {
			t.Errorf("%s %s: %v, want the endpoint refused as in clear", bad.Transport, bad.Endpoint, err)
		}
	}
}

// TestSubscriptionInClearStoredBefore: one stored before the rule (plain
// http to another machine) can still be edited, paused included, but not
// given another endpoint in clear; a new one in clear is refused
// (review sec22 M5).
func TestSubscriptionInClearStoredBefore(t *testing.T) {
	env := provtest.New(t, provision.Options{})
	ctx := context.Background()
	svc := &provision.Service{Store: env.Store}
	if _, err := svc.Create(ctx, subTo(provision.Webhook, "http://crm.example.com/hook")); err == nil {
		t.Fatal("a new subscription in clear was created")
	}
	old := subTo(provision.Webhook, "http://crm.example.com/hook")
	old.ID, old.Enabled, old.CreatedAt, old.UpdatedAt = "s-old", true, time.Now().Add(-time.Hour), time.Now().Add(-time.Hour)
	if err := env.Store.CreateSubscription(ctx, old); err != nil {
		t.Fatal(err)
	}
	pause := *old
	pause.Enabled, pause.Secret = false, ""
	if _, err := svc.Update(ctx, &pause); err != nil {
		t.Fatalf("pausing a subscription stored in clear: %v", err)
	}
	moved := pause
	moved.Endpoint = "http://crm2.example.com/hook"
	if _, err := svc.Update(ctx, &moved); err == nil || !strings.Contains(err.Error(), "in clear") {
		t.Fatalf("another endpoint in clear: %v", err)
	}
	moved.Endpoint = "https://crm2.example.com/hook"
	if _, err := svc.Update(ctx, &moved); err != nil {
		t.Fatalf("moving to https: %v", err)
	}
}

// TestHTTPClientFollowsNoRedirect: the http transports' client follows no
// redirect, within https or from https to plain http (the key or token and
// the people's data would go along): the redirect is the answer
// (provision.Redirected makes it a failed delivery).
func TestHTTPClientFollowsNoRedirect(t *testing.T) {
	var reached atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))
	defer plain.Close()
	var secure *httptest.Server
	secure = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/down":
			http.Redirect(w, r, plain.URL+"/hook", http.StatusTemporaryRedirect)
		case "/moved":
			http.Redirect(w, r, secure.URL+"/hook?k=v", http.StatusTemporaryRedirect)
		default:
			reached.Add(1)
		}
	}))
	defer secure.Close()
	c := provision.HTTPClient()
	c.Transport = secure.Client().Transport
	for _, path := range []string{"/moved", "/down"} {
		resp, err := c.Post(secure.URL+path, "application/json", strings.NewReader("{}"))
		if err != nil || resp.StatusCode != http.StatusTemporaryRedirect {
			t.Fatalf("%s: %v %v", path, resp, err)
		}
		resp.Body.Close()
		err = provision.Redirected("webhook", resp.StatusCode, resp.Header.Get("Location"))
		if provision.IsPermanent(err) || !strings.Contains(err.Error(), "/hook: redirects are not followed") || strings.Contains(err.Error(), "k=v") {
			t.Fatalf("%s: %v", path, err)
		}
	}
	if reached.Load() != 0 {
		t.Fatalf("a redirect was followed %d times", reached.Load())
	}
	for loc, want := range map[string]string{"": "no Location", "://bad": "an unreadable Location", "/rel?q=1": "/rel"} {
		if got := provision.RedirectTarget(loc); got != want {
			t.Errorf("RedirectTarget(%q) = %q, want %q", loc, got, want)
		}
	}
	if provision.IsRedirect(http.StatusOK) || provision.IsRedirect(http.StatusBadRequest) || !provision.IsRedirect(http.StatusFound) {
		t.Error("IsRedirect")
	}
}
