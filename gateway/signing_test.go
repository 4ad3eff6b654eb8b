package gateway

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/uias/uias/pkg/grpcx"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// A signed REST request: its values are forwarded, and the HTTP request as
// received (method, target with its query, the body's SHA-256) goes with
// the origin (here signed with an internal key, as between processes); an
// unsigned one carries no such account; a signed body over the cap and a
// target that is not printable ASCII are refused at the edge.
func TestSignedRequestForwarded(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	identityv1.RegisterAuthServiceServer(gs, echoAuth{})
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	key := []byte("0123456789abcdef-internal")
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(grpcx.UnaryClientOrigin(key)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	e := newEnv(t, func(o *Options) {
		o.Backends = []Backend{{Name: "identity", Conn: conn, REST: identityREST}}
		o.MaxBodyBytes = 4 << 20
	})
	body := `{"app_user_id":"alice","password":"x"}`
	hdr := map[string]string{"X-Uias-App-Id": "app-1", "X-Uias-App-Secret": "s3cret",
		"X-Uias-Timestamp": "1800000000", "X-Uias-Nonce": "nonce-0123456789ab", "X-Uias-Signature": "c2ln"}
	r := e.do(t, http.MethodPost, "/v1/authenticate?trace=a%20b", strings.NewReader(body), hdr)
	if r.code != http.StatusOK {
		t.Fatalf("signed: %d %s", r.code, r.body)
	}
	md := echoed(t, r)
	sum := sha256.Sum256([]byte(body))
	want := map[string]string{"x-uias-timestamp": "1800000000", "x-uias-nonce": "nonce-0123456789ab", "x-uias-signature": "c2ln",
		grpcx.MetadataHTTPRequest: "POST /v1/authenticate?trace=a%20b " + hex.EncodeToString(sum[:])}
	for k, v := range want {
		if got := md.Get(k); len(got) != 1 || got[0] != v {
			t.Errorf("metadata %s = %q, want [%q]", k, got, v)
		}
	}
	if len(md.Get(grpcx.MetadataOriginSig)) != 1 {
		t.Errorf("the origin is not signed: %v", md)
	}
	// Unsigned: no account of the HTTP request.
	delete(hdr, "X-Uias-Signature")
	if md := echoed(t, e.do(t, http.MethodPost, "/v1/authenticate", strings.NewReader(body), hdr)); len(md.Get(grpcx.MetadataHTTPRequest)) != 0 {
		t.Errorf("unsigned request carries %v", md.Get(grpcx.MetadataHTTPRequest))
	}
	hdr["X-Uias-Signature"] = "c2ln"
	big := `{"app_user_id":"` + strings.Repeat("a", maxSignedBody) + `"}`
	if r := e.do(t, http.MethodPost, "/v1/authenticate", io.MultiReader(strings.NewReader(big)), hdr); r.code != http.StatusRequestEntityTooLarge {
		t.Errorf("signed body over the cap: %d %s", r.code, r.body)
	}
	if r := rawSigned(t, e.url, "/v1/authenticate?q=\xe4", body); r.code != http.StatusBadRequest || !strings.Contains(string(r.body), "ASCII") {
		t.Errorf("non-ASCII target: %d %s", r.code, r.body)
	}
	// The edge and the service must see one signature or none: a header
	// given twice, or with a byte grpc-gateway would drop, is refused.
	for name, extra := range map[string]string{
		"two signatures":      "X-Uias-Signature: c2ln\r\nX-Uias-Signature: b3RoZXI=\r\n",
		"non-ASCII signature": "X-Uias-Signature: c2ln\x80\r\n",
		"a tab in the nonce":  "X-Uias-Signature: c2ln\r\nX-Uias-Nonce: nonce\t0123456789ab\r\n",
		"two timestamps":      "X-Uias-Timestamp: 1\r\nX-Uias-Timestamp: 2\r\n",
	} {
		if r := rawHeaders(t, e.url, "/v1/authenticate", extra, body); r.code != http.StatusBadRequest ||
			!strings.Contains(string(r.body), "must be given once, in printable ASCII") {
			t.Errorf("%s: %d %s", name, r.code, r.body)
		}
	}
}

// rawHeaders sends a POST of body to target with the header lines extra
// (each ending in CRLF) as they are on the wire.
func rawHeaders(t *testing.T, base, target, extra, body string) result {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: uias\r\nContent-Type: application/json\r\n%s"+
		"Content-Length: %d\r\nConnection: close\r\n\r\n%s", target, extra, len(body), body)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{code: resp.StatusCode, header: resp.Header, body: b}
}

// echoed is the metadata echoAuth answered with.
func echoed(t *testing.T, r result) metadata.MD {
	t.Helper()
	if r.code != http.StatusOK {
		t.Fatalf("status %d, body %s", r.code, r.body)
	}
	var resp struct {
		Message string `json:"message"`
	}
	var md metadata.MD
	if err := json.Unmarshal(r.body, &resp); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(resp.Message), &md); err != nil {
		t.Fatal(err)
	}
	return md
}

// rawSigned sends a signed POST with target as it is on the wire.
func rawSigned(t *testing.T, base, target, body string) result {
	t.Helper()
	return rawHeaders(t, base, target, "X-Uias-Signature: c2ln\r\n", body)
}
