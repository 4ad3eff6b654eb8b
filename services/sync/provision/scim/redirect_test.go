package scim_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/uias/uias/services/sync/provision"
	"github.com/uias/uias/services/sync/provision/provtest"
)

// TestSCIMRedirectIsNotFollowed (as the SOAP transport, ADR 0038): a SCIM
// endpoint answering a redirect (each 3xx, to another host) is not
// followed: the other host gets no request (no bearer token, no record);
// the delivery fails with an error naming the target without its query and
// is retried as other failures (not a dead letter), and is delivered once
// the endpoint answers again.
func TestSCIMRedirectIsNotFollowed(t *testing.T) {
	var reached atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))
	defer other.Close()
	users, groups := newHandler(), newHandler()
	var redirect atomic.Int32
	srv := startSCIM(t, users, groups, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if code := int(redirect.Load()); code != 0 {
				http.Redirect(w, r, other.URL+"/collect?token=abc", code)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	redirect.Store(http.StatusTemporaryRedirect)
	env := provtest.New(t, provision.Options{Dial: dial(), MaxAttempts: 1000})
	env.Start()
	sub := subscribe(env, srv.URL, provision.Immediate)
	env.Change("org", "created", "o1", map[string]any{"code": "hq"})
	env.Change("user", "created", "u1", map[string]any{"login_name": "ann", "org_id": "o1"})
	user := func() provision.Delivery {
		for _, d := range env.Deliveries(sub.ID) {
			if d.Kind == provision.KindUser {
				return d
			}
		}
		return provision.Delivery{}
	}
	for _, code := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusMovedPermanently,
		http.StatusFound, http.StatusSeeOther} {
		redirect.Store(int32(code))
		want := fmt.Sprintf("the endpoint redirected (HTTP %d) to %s/collect: redirects are not followed", code, other.URL)
		env.Wait(fmt.Sprint(code)+" recorded", func() bool { return strings.Contains(user().LastError, want) })
		if d := user(); d.Status == provision.Dead || strings.Contains(d.LastError, "token=abc") {
			t.Fatalf("HTTP %d: %+v", code, d)
		}
	}
	redirect.Store(0)
	env.Wait("the delivery", func() bool { return env.Count(sub.ID, provision.Delivered) == 2 })
	if _, ok := users.ByExternal("u1"); !ok || reached.Load() != 0 {
		t.Fatalf("provisioned %v; the redirect's host reached %d times", ok, reached.Load())
	}
}
