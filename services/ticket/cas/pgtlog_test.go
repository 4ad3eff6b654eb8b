package cas

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// A pgtUrl callback that fails (a certificate the edge does not trust, an
// answer other than 200) delivers nothing and is logged at warn with the
// host and the cause, never the URL that carries the PGT and its IOU.
func TestPGTCallbackFailureLogged(t *testing.T) {
	untrusted := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer untrusted.Close()
	refusing := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusForbidden) }))
	defer refusing.Close()
	core, logs := observer.New(zap.InfoLevel)
	h := &Handler{o: Options{Log: zap.New(core), Client: &http.Client{}}}
	if h.deliverPGT(context.Background(), untrusted.URL+"/pgt", "PGT-1-secret", "PGTIOU-1-secret") {
		t.Fatal("delivered to a callback whose certificate does not verify")
	}
	h.o.Client = refusing.Client()
	if h.deliverPGT(context.Background(), refusing.URL+"/pgt", "PGT-2-secret", "PGTIOU-2-secret") {
		t.Fatal("delivered to a callback that answered 403")
	}
	got := logs.FilterMessageSnippet("pgtUrl callback").All()
	if len(got) != 2 {
		t.Fatalf("%d log lines, want 2", len(got))
	}
	for _, e := range got {
		line := e.Message + " " + fmt.Sprint(e.ContextMap())
		if e.Level != zap.WarnLevel || strings.Contains(line, "PGT-") || strings.Contains(line, "PGTIOU-") || !strings.Contains(line, "127.0.0.1") {
			t.Errorf("log line %q (level %v)", line, e.Level)
		}
	}
	if !strings.Contains(got[0].ContextMap()["error"].(string), "certificate") || got[1].ContextMap()["status"] != int64(403) {
		t.Errorf("causes: %v / %v", got[0].ContextMap(), got[1].ContextMap())
	}
}
