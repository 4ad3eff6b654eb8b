package analytics_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/uias/uias/services/audit/analytics"
)

// TestAlertWebhookRedirectIsNotFollowed: an alert webhook that answers a
// redirect (any 3xx, to another host) is not followed, even with a client
// that follows redirects: the other host gets nothing (neither the signed
// alert nor its headers); every attempt fails saying where the webhook
// redirected to (no query), then the alert is logged and counted as not
// delivered.
func TestAlertWebhookRedirectIsNotFollowed(t *testing.T) {
	var reached atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))
	defer other.Close()
	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect,
		http.StatusPermanentRedirect} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			var tries atomic.Int32
			hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				tries.Add(1)
				http.Redirect(w, r, other.URL+"/collect?token=abc", code)
			}))
			defer hook.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			reg := prometheus.NewRegistry()
			core, logs := observer.New(zap.InfoLevel)
			n := analytics.NewNotifier(nil, analytics.WebhookOptions{URL: hook.URL, Secret: []byte("alert-secret-0123456789"), Attempts: 2,
				Backoff: time.Millisecond, MaxBackoff: time.Millisecond, Client: &http.Client{}}, zap.New(core), reg)
			go n.Run(ctx)
			if err := n.Send(analytics.Alert{ID: "al1", Kind: "lockout_burst"}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the undelivered alert logged", func() bool { return logs.FilterMessageSnippet("NOT delivered").Len() == 1 })
			msg, _ := logs.FilterMessageSnippet("NOT delivered").All()[0].ContextMap()["error"].(string)
			if !strings.Contains(msg, fmt.Sprintf("redirected (HTTP %d)", code)) || !strings.Contains(msg, "/collect") ||
				strings.Contains(msg, "token=abc") || !strings.Contains(msg, "not followed") {
				t.Errorf("error: %q", msg)
			}
			if tries.Load() != 2 || counter(t, reg, "uias_audit_alerts_webhook_failed_total") != 1 {
				t.Errorf("attempts %d, failed %v", tries.Load(), counter(t, reg, "uias_audit_alerts_webhook_failed_total"))
			}
		})
	}
	if reached.Load() != 0 {
		t.Fatalf("the redirect's host was reached %d times", reached.Load())
	}
}
