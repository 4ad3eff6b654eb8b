package soap_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uias/uias/services/sync/provision"
	"github.com/uias/uias/services/sync/provision/soap"
)

func deleteItem() provision.Item {
	return provision.Item{Delivery: provision.Delivery{Seq: 1, Subscription: "s1", Kind: provision.KindUser, ObjectID: "u1",
		Op: provision.OpDelete}}
}

// Review sec30a M1: a redirect of the SOAP endpoint to another host (307:
// the POST with its body) is not followed: the other host gets neither the
// shared secret nor the envelope, and the delivery fails saying where the
// endpoint redirected to (its query left out).
func TestSOAPRedirectIsNotFollowed(t *testing.T) {
	var mu sync.Mutex
	var got []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, fmt.Sprintf("%s secret=%q body=%d", r.Method, r.Header.Get(soap.DefaultSecretHeader), len(b)))
		mu.Unlock()
	}))
	defer other.Close()
	target := strings.Replace(other.URL, "127.0.0.1", "localhost", 1) + "/collect?token=abc"
	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect,
		http.StatusPermanentRedirect} {
		endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target, code)
		}))
		for _, basic := range []bool{false, true} {
			tr := &soap.Transport{URL: endpoint.URL, Basic: basic, User: "u", Header: soap.DefaultSecretHeader,
				Secret: "soap-shared-secret-0123", Client: provision.HTTPClient(), Now: time.Now}
			err := tr.Deliver(context.Background(), deleteItem())
			if err == nil || provision.IsPermanent(err) || !strings.Contains(err.Error(), fmt.Sprintf("redirected (HTTP %d)", code)) ||
				!strings.Contains(err.Error(), "/collect") || strings.Contains(err.Error(), "token=abc") ||
				!strings.Contains(err.Error(), "redirects are not followed") {
				t.Errorf("HTTP %d, basic %v: %v", code, basic, err)
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

// Review sec30a L1: a 2xx that is not a SOAP envelope holding the
// operation's response (an HTML page, a WSDL, an empty answer, another
// operation's response, a response outside the namespace) is not a
// delivery; a 301 to the same host (a trailing slash) is not followed
// into a GET either.
func TestSOAP2xxWithoutResponseIsNoDelivery(t *testing.T) {
	var mu sync.Mutex
	var methods []string
	answer := ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		methods = append(methods, r.Method)
		if r.URL.Path == "/ws" {
			http.Redirect(w, r, "/ws/", http.StatusMovedPermanently)
			return
		}
		_, _ = io.WriteString(w, answer)
	}))
	defer srv.Close()
	tr := &soap.Transport{URL: srv.URL + "/ws", Header: soap.DefaultSecretHeader, Secret: "soap-shared-secret-0123",
		Client: provision.HTTPClient(), Now: time.Now}
	if err := tr.Deliver(context.Background(), deleteItem()); err == nil || !strings.Contains(err.Error(), "redirected (HTTP 301)") {
		t.Fatalf("a 301 to /ws/: %v", err)
	}
	mu.Lock()
	if len(methods) != 1 || methods[0] != http.MethodPost {
		t.Fatalf("requests %v, want the one POST", methods)
	}
	mu.Unlock()
	env := func(body string) string {
		return `<?xml version="1.0"?><soap:Envelope xmlns:soap="` + soap.EnvNS + `"><soap:Body>` + body + `</soap:Body></soap:Envelope>`
	}
	tr.URL = srv.URL + "/ws/"
	for _, a := range []string{
		"<html>Provision service. Append ?wsdl for the description.</html>",
		"",
		env(""),
		env(`<p:syncUserResponse xmlns:p="` + soap.NS + `"/>`),
		env(`<deleteUserResponse/>`),
		env(`<p:deleteUserResponse xmlns:p="urn:other"/>`),
		`<soap:Envelope xmlns:soap="urn:not-soap"><soap:Body><p:deleteUserResponse xmlns:p="` + soap.NS + `"/></soap:Body></soap:Envelope>`,
	} {
		mu.Lock()
		answer = a
		mu.Unlock()
		err := tr.Deliver(context.Background(), deleteItem())
		if err == nil || provision.IsPermanent(err) || !strings.Contains(err.Error(), "without a SOAP envelope holding deleteUserResponse") {
			t.Errorf("answer %q: %v", a, err)
		}
	}
	mu.Lock()
	answer = env(`<p:deleteUserResponse xmlns:p="` + soap.NS + `"/>`)
	mu.Unlock()
	if err := tr.Deliver(context.Background(), deleteItem()); err != nil {
		t.Fatalf("the operation's response: %v", err)
	}
}

// Review sec30a L4: the table of outcomes. A soap:Client fault is
// permanent only with HTTP 500 or a 4xx other than 401, 403, 408 and 429.
func TestSOAPClassify(t *testing.T) {
	env := func(body string) []byte {
		return []byte(`<soap:Envelope xmlns:soap="` + soap.EnvNS + `"><soap:Body>` + body + `</soap:Body></soap:Envelope>`)
	}
	clientFault := env(`<soap:Fault><faultcode>soap:Client</faultcode><faultstring>unknown org o9</faultstring></soap:Fault>`)
	clientSub := env(`<soap:Fault><faultcode>Client.Auth</faultcode><faultstring>bad</faultstring></soap:Fault>`)
	serverFault := env(`<soap:Fault><faultcode>soap:Server</faultcode><faultstring>busy</faultstring></soap:Fault>`)
	ok := env(`<p:syncOrgResponse xmlns:p="` + soap.NS + `"/>`)
	const (
		delivered = "delivered"
		retried   = "retried"
		permanent = "permanent"
	)
	for _, c := range []struct {
		status int
		body   []byte
		want   string
	}{
		{200, ok, delivered},
		{202, ok, delivered},
		{200, nil, retried},
		{200, clientFault, retried},
		{500, clientFault, permanent},
		{500, clientSub, permanent},
		{400, clientFault, permanent},
		{404, clientFault, permanent},
		{422, clientFault, permanent},
		{401, clientFault, retried},
		{403, clientFault, retried},
		{408, clientFault, retried},
		{429, clientFault, retried},
		{502, clientFault, retried},
		{503, clientFault, retried},
		{500, serverFault, retried},
		{400, serverFault, retried},
		{400, []byte("bad request"), retried},
		{401, []byte("who are you"), retried},
		{429, nil, retried},
		{500, []byte("<html>error</html>"), retried},
		{307, nil, retried},
		{302, ok, retried},
	} {
		err := soap.Classify("syncOrg", c.status, "", c.body)
		got := delivered
		if err != nil {
			got = retried
			if provision.IsPermanent(err) {
				got = permanent
			}
		}
		if got != c.want {
			t.Errorf("HTTP %d %q: %s (%v), want %s", c.status, c.body, got, err, c.want)
		}
	}
}
