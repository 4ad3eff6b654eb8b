package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// The WSDL's service address has the scheme the client used: https behind
// a trusted proxy that terminates TLS (X-Forwarded-Proto), http without
// it (module.RequestHTTPS, tested with untrusted peers in pkg/module). A
// GET without ?wsdl says where the
// WSDL is (400), not that GET is not allowed.
func TestSOAPWSDLAddress(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.TrustedProxies = []string{"127.0.0.0/8"}
	e := start(t, cfg)
	wsdl := func(proto string) string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, e.http+"/legacy/soap/authenticate?wsdl", nil)
		if proto != "" {
			req.Header.Set("X-Forwarded-Proto", proto)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	host := strings.TrimPrefix(e.http, "http://")
	if w := wsdl("https"); !strings.Contains(w, `location="https://`+host+`/legacy/soap/authenticate"`) {
		t.Fatalf("WSDL behind a TLS proxy: %s", w)
	}
	if w := wsdl(""); !strings.Contains(w, `location="http://`+host+`/legacy/soap/authenticate"`) {
		t.Fatalf("WSDL over plain HTTP: %s", w)
	}
	resp, err := http.Get(e.http + "/legacy/soap/authenticate")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("GET without ?wsdl: %d", resp.StatusCode)
	}
}
