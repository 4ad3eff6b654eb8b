package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uias/uias/services/sync/provision"
	"github.com/uias/uias/services/sync/provision/webhook"
)

// TestWebhookRedirectIsNotFollowed (as the SOAP transport, ADR 0038): an
// endpoint answering any redirect, to another host, is not followed, even
// by a transport given a client that follows redirects: the other host
// gets neither the signed body nor its headers; the delivery fails, not
// permanently (retried with back-off as other failures), saying where the
// endpoint redirected to without the query.
func TestWebhookRedirectIsNotFollowed(t *testing.T) {
	var mu sync.Mutex
	var got []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, fmt.Sprintf("%s %d bytes", r.Method, len(b)))
		mu.Unlock()
	}))
	defer other.Close()
	target := strings.Replace(other.URL, "127.0.0.1", "localhost", 1) + "/collect?token=abc"
	it := provision.Item{Delivery: provision.Delivery{Seq: 1, Subscription: "s1", Kind: provision.KindUser, ObjectID: "u1",
		Op: provision.OpUpsert}, Object: &provision.Object{Kind: provision.KindUser, ID: "u1", Data: json.RawMessage(`{"login_name":"ann"}`)}}
	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect,
		http.StatusPermanentRedirect} {
		endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target, code)
		}))
		for _, client := range []*http.Client{provision.HTTPClient(), {}} {
			tr := &webhook.Transport{URL: endpoint.URL + "/hook", Secret: []byte("webhook-secret-0123456789"), Client: client, Now: time.Now}
			err := tr.Deliver(context.Background(), it)
			if err == nil || provision.IsPermanent(err) || !strings.Contains(err.Error(), fmt.Sprintf("webhook: the endpoint redirected (HTTP %d)", code)) ||
				!strings.Contains(err.Error(), "/collect") || strings.Contains(err.Error(), "token=abc") ||
				!strings.Contains(err.Error(), "redirects are not followed") {
				t.Errorf("HTTP %d: %v", code, err)
			}
		}
		endpoint.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 0 {
		t.Fatalf("the redirect's other host was sent %v", got)
	}
}
