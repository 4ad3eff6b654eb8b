package e2e

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/uias/uias/pkg/events"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	"github.com/uias/uias/services/ticket/kvstore"
)

// TestServiceTicketBucketLostMidLogin: a person signs in and is sent back
// to the application with a ticket; before the application validates it,
// the memory bucket of service tickets (UIAS_TICKET_ST) is lost (deleted,
// as a restart of a NATS server that is not clustered loses it). The
// application gets a clear INVALID_TICKET (not INTERNAL_ERROR), and sending
// the browser to the login page again gives a new ticket from the live
// session, without a password, which validates. The same holds when the
// bucket was lost and is already there again (another login recreated it)
// when the application validates.
func TestServiceTicketBucketLostMidLogin(t *testing.T) {
	dir := t.TempDir()
	ns, err := events.StartEmbeddedNATS(filepath.Join(dir, "nats-ext"), "127.0.0.1", -1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	cfg := testConfig(filepath.Join(dir, "uias"))
	cfg.NATS.URL, cfg.NATS.Embedded = ns.ClientURL(), false
	e := start(t, cfg)
	e.login()
	f := e.seed("lost", "lena", nil, nil)
	casBase := e.http + "/cas/"
	// The application holds the ticket it is sent (it validates when the
	// test says so).
	held := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "held")
	}))
	t.Cleanup(held.Close)
	service := held.URL + "/app/"
	if _, err := ticketv1.NewServiceRegistryServiceClient(e.conn).CreateService(e.adm(), &ticketv1.CreateServiceRequest{
		Service: &ticketv1.ServiceDefinition{AppId: f.appID, Name: "Held app", Url: service}}); err != nil {
		t.Fatalf("register: %v", err)
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	loseBucket := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := js.DeleteKeyValue(ctx, kvstore.BucketServiceTickets); err != nil {
			t.Fatalf("delete the bucket: %v", err)
		}
	}
	validate := func(st string) string {
		t.Helper()
		c := &http.Client{Timeout: 90 * time.Second}
		resp, err := c.Get(casBase + "p3/serviceValidate?service=" + url.QueryEscape(service) + "&ticket=" + url.QueryEscape(st))
		if err != nil {
			t.Fatalf("p3/serviceValidate: %v", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("p3/serviceValidate: HTTP %d: %s", resp.StatusCode, body)
		}
		return string(body)
	}
	br := newBrowser(t)
	br.c.Timeout = 90 * time.Second
	ticketAt := func(at *url.URL) string {
		t.Helper()
		st := at.Query().Get("ticket")
		if !strings.HasPrefix(at.String(), service) || !strings.HasPrefix(st, "ST-") {
			t.Fatalf("not back at the application with a ticket: %s", at)
		}
		return st
	}
	// Sign in: the browser lands at the application with a ticket.
	_, body, _ := br.get(casBase + "login?service=" + url.QueryEscape(service))
	_, _, at := br.loginForm(casBase, body, "lena", f.password)
	st := ticketAt(at)

	// Lost before the application validates: INVALID_TICKET.
	loseBucket()
	if body := validate(st); !strings.Contains(body, `code="INVALID_TICKET"`) {
		t.Fatalf("ticket of a lost bucket: %s", body)
	} else {
		noInternals(t, "the CAS answer", body)
	}
	// The application sends the browser to log in again: a new ticket from
	// the live session, no password asked.
	_, body, at = br.get(casBase + "login?service=" + url.QueryEscape(service))
	if strings.Contains(body, `name="password"`) {
		t.Fatalf("a password was asked again: %s", body)
	}
	st = ticketAt(at)
	if body := validate(st); !strings.Contains(body, "<cas:user>lena</cas:user>") {
		t.Fatalf("new ticket after the loss: %s", body)
	}

	// Lost and already there again when the application validates: a
	// login in another browser recreated the bucket meanwhile.
	_, _, at = br.get(casBase + "login?service=" + url.QueryEscape(service))
	st = ticketAt(at)
	loseBucket()
	other := newBrowser(t)
	_, body, _ = other.get(casBase + "login?service=" + url.QueryEscape(service))
	_, _, at = other.loginForm(casBase, body, "lena", f.password)
	otherST := ticketAt(at)
	if body := validate(st); !strings.Contains(body, `code="INVALID_TICKET"`) {
		t.Fatalf("ticket of a lost bucket, recreated since: %s", body)
	}
	if body := validate(otherST); !strings.Contains(body, "<cas:user>lena</cas:user>") {
		t.Fatalf("ticket issued into the recreated bucket: %s", body)
	}
	_, _, at = br.get(casBase + "login?service=" + url.QueryEscape(service))
	if body := validate(ticketAt(at)); !strings.Contains(body, "<cas:user>lena</cas:user>") {
		t.Fatalf("new ticket after the second loss: %s", body)
	}
}
