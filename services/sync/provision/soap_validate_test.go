package provision_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/uias/uias/services/sync/provision"
)

// TestSOAPSettings: soap takes an http(s) endpoint (plain http only to
// this machine), a shared secret header (16 characters at least) or HTTP
// Basic with a user name; the rest is refused naming the field.
func TestSOAPSettings(t *testing.T) {
	sub := func(endpoint, secret string, kv ...string) *provision.Subscription {
		s := subTo(provision.SOAP, endpoint)
		s.Secret, s.Settings = secret, map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			s.Settings[kv[i]] = kv[i+1]
		}
		return s
	}
	for _, ok := range []*provision.Subscription{
		sub("https://erp.example.com/ws", "shared-secret-0123456"),
		sub("https://erp.example.com/ws", "shared-secret-0123456", "secret_header", "X-Erp-Key"),
		sub("https://erp.example.com/ws", "pw", "auth", "basic", "username", "uias"),
		sub("http://127.0.0.1:8080/ws", "shared-secret-0123456"),
		sub("https://erp.example.com/ws", "shared-secret-0123456", "secret_header", "Authorization"),
	} {
		if err := ok.Validate(); err != nil {
			t.Errorf("%s %v: %v", ok.Endpoint, ok.Settings, err)
		}
		if err := ok.CheckInClear(); err != nil {
			t.Errorf("%s: %v", ok.Endpoint, err)
		}
	}
	for _, c := range []struct {
		sub         *provision.Subscription
		field, text string
	}{
		{sub("ftp://erp.example.com/ws", "shared-secret-0123456"), "endpoint", "http(s) URL for soap"},
		{sub("https://erp.example.com/ws", "short"), "secret", "X-Uias-Secret header"},
		{sub("https://erp.example.com/ws", "shared-secret-0123456", "secret_header", "Bad Header:"), "settings.secret_header", "HTTP header name"},
		{sub("https://erp.example.com/ws", "pw", "auth", "basic"), "settings.username", "is required for auth basic"},
		{sub("https://erp.example.com/ws", "", "auth", "basic", "username", "uias"), "secret", "HTTP Basic password"},
		{sub("https://erp.example.com/ws", "pw", "auth", "wsse"), "settings.auth", "must be header"},
		{sub("https://erp.example.com/ws", "pw", "auth", "basic", "username", "a:b"), "settings.username", "without a colon"},
		// review sec30a I3: names Go drops or writes itself, hop-by-hop
		// names, and those the request sets
		{sub("https://erp.example.com/ws", "shared-secret-0123456", "secret_header", "host"), "settings.secret_header", "cannot be Host: Go's HTTP client writes"},
		{sub("https://erp.example.com/ws", "shared-secret-0123456", "secret_header", "Content-Length"), "settings.secret_header", "drops a value"},
		{sub("https://erp.example.com/ws", "shared-secret-0123456", "secret_header", "Transfer-Encoding"), "settings.secret_header", "drops a value"},
		{sub("https://erp.example.com/ws", "shared-secret-0123456", "secret_header", "Connection"), "settings.secret_header", "hop-by-hop"},
		{sub("https://erp.example.com/ws", "shared-secret-0123456", "secret_header", "Proxy-Authorization"), "settings.secret_header", "hop-by-hop"},
		{sub("https://erp.example.com/ws", "shared-secret-0123456", "secret_header", "Content-Type"), "settings.secret_header", "the request sets"},
		{sub("https://erp.example.com/ws", "shared-secret-0123456", "secret_header", "SOAPAction"), "settings.secret_header", "cannot be Soapaction"},
		{sub("https://erp.example.com/ws", "shared-secret-0123456", "secret_header", "x-uias-delivery"), "settings.secret_header", "the request sets"},
		{sub("https://erp.example.com/ws", "pw", "auth", "basic", "username", "uias", "secret_header", "Authorization"), "settings.secret_header", "auth basic sends HTTP Basic"},
	} {
		err := c.sub.Validate()
		var ve *provision.ValidationError
		if !errors.As(err, &ve) || ve.Field != c.field || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%s %v: %v, want %s refused (%q)", c.sub.Endpoint, c.sub.Settings, err, c.field, c.text)
		}
	}
	if err := sub("http://erp.example.com/ws", "shared-secret-0123456").CheckInClear(); err == nil ||
		!strings.Contains(err.Error(), "soap credentials") {
		t.Errorf("plain http to another machine: %v", err)
	}
}
