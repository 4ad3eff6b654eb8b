package module

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/config"
)

// startPlain starts a process with one trivial gRPC component, its ops HTTP
// listener, and the given settings.
func startPlain(t *testing.T, edit func(c *config.Config)) (*Process, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel)
	p, err := startOne(t, edit, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	return p, logs
}

// startRefused starts a process as startPlain does and returns why it
// was refused.
func startRefused(t *testing.T, edit func(c *config.Config)) error {
	t.Helper()
	p, err := startOne(t, edit, zap.NewNop())
	if err == nil {
		_ = p.Stop(context.Background())
		t.Fatal("the process started")
	}
	return err
}

// startOne starts a process of one empty module on loopback, its
// configuration changed by edit.
func startOne(t *testing.T, edit func(c *config.Config), log *zap.Logger) (*Process, error) {
	r := &Registry{}
	r.Register(Module{Name: "svc", Init: func(context.Context, *Env) (*Component, error) {
		return &Component{Register: func(grpc.ServiceRegistrar) {}}, nil
	}})
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.GRPCAddr, cfg.HTTPAddr, cfg.AdvertiseAddr = "127.0.0.1:0", "127.0.0.1:0", ""
	edit(&cfg)
	cfg.Complete()
	return Start(context.Background(), r, cfg, Options{Logger: log})
}

// local turns a listen address (possibly 0.0.0.0:port) into one to dial.
func local(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return net.JoinHostPort("127.0.0.1", port)
}

func reflectionErr(t *testing.T, addr string, creds credentials.TransportCredentials) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		return err
	}
	_ = st.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
	_, err = st.Recv()
	return err
}

func get(t *testing.T, c *http.Client, url string) *http.Response {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func securityWarnings(logs *observer.ObservedLogs) []observer.LoggedEntry {
	var out []observer.LoggedEntry
	for _, e := range logs.All() {
		if e.Level == zapcore.WarnLevel && strings.HasPrefix(e.Message, "SECURITY WARNING") {
			out = append(out, e)
		}
	}
	return out
}

// Bound beyond loopback without TLS, a process refuses to start (JR/T
// 0185-2020 9.2.2: TLS; gap2 G5), saying what to set, unless
// tls.allow_plaintext says the network is trusted: then it says so loudly
// (once per listener). Beyond loopback it hides /metrics and gRPC
// reflection unless they are turned on; on loopback (make run) it stays
// quiet and serves both.
func TestPlaintextBeyondLoopback(t *testing.T) {
	t.Run("all interfaces without TLS: refused", func(t *testing.T) {
		for name, edit := range map[string]func(c *config.Config){
			"both":       func(c *config.Config) { c.GRPCAddr, c.HTTPAddr = "0.0.0.0:0", "0.0.0.0:0" },
			"gRPC":       func(c *config.Config) { c.GRPCAddr = ":0" },
			"HTTP (v6)":  func(c *config.Config) { c.HTTPAddr = "[::]:0" },
			"an address": func(c *config.Config) { c.HTTPAddr = "192.0.2.1:0" },
		} {
			err := startRefused(t, edit)
			for _, want := range []string{"listens beyond loopback without TLS", "tls.cert_file", "tls.allow_plaintext",
				"UIAS_TLS_ALLOW_PLAINTEXT"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%s: the refusal %q does not say %q", name, err, want)
				}
			}
		}
	})
	t.Run("all interfaces, plaintext allowed", func(t *testing.T) {
		p, logs := startPlain(t, func(c *config.Config) {
			c.GRPCAddr, c.HTTPAddr = "0.0.0.0:0", "0.0.0.0:0"
			c.TLS.AllowPlaintext = true
		})
		w := securityWarnings(logs)
		if len(w) != 2 {
			t.Fatalf("%d security warnings, want one per listener: %v", len(w), logs.All())
		}
		for _, e := range w {
			if !strings.Contains(e.Message, "WITHOUT TLS") || !strings.Contains(e.Message, "tls.cert_file") {
				t.Errorf("warning does not say what is wrong and what to set: %q", e.Message)
			}
		}
		if code := get(t, http.DefaultClient, "http://"+local(p.HTTPAddr())+"/metrics").StatusCode; code != http.StatusNotFound {
			t.Errorf("/metrics beyond loopback: %d, want 404", code)
		}
		if err := reflectionErr(t, local(p.GRPCAddr()), insecure.NewCredentials()); status.Code(err) != codes.Unimplemented {
			t.Errorf("reflection beyond loopback: %v, want Unimplemented", err)
		}
	})
	t.Run("all interfaces, turned on", func(t *testing.T) {
		p, _ := startPlain(t, func(c *config.Config) {
			c.GRPCAddr, c.HTTPAddr = "0.0.0.0:0", "0.0.0.0:0"
			c.TLS.AllowPlaintext = true
			c.Metrics.Enabled, c.GRPC.Reflection = config.ToggleOn, config.ToggleOn
		})
		if code := get(t, http.DefaultClient, "http://"+local(p.HTTPAddr())+"/metrics").StatusCode; code != http.StatusOK {
			t.Errorf("/metrics enabled: %d", code)
		}
		if err := reflectionErr(t, local(p.GRPCAddr()), insecure.NewCredentials()); err != nil {
			t.Errorf("reflection enabled: %v", err)
		}
	})
	t.Run("loopback", func(t *testing.T) {
		p, logs := startPlain(t, func(*config.Config) {})
		if w := securityWarnings(logs); len(w) != 0 {
			t.Fatalf("warnings on loopback: %v", w)
		}
		if code := get(t, http.DefaultClient, "http://"+p.HTTPAddr()+"/metrics").StatusCode; code != http.StatusOK {
			t.Errorf("/metrics on loopback: %d", code)
		}
		if err := reflectionErr(t, p.GRPCAddr(), insecure.NewCredentials()); err != nil {
			t.Errorf("reflection on loopback: %v", err)
		}
	})
	t.Run("loopback, turned off", func(t *testing.T) {
		p, _ := startPlain(t, func(c *config.Config) { c.Metrics.Enabled, c.GRPC.Reflection = config.ToggleOff, "no" })
		if code := get(t, http.DefaultClient, "http://"+p.HTTPAddr()+"/metrics").StatusCode; code != http.StatusNotFound {
			t.Errorf("/metrics turned off: %d", code)
		}
		if err := reflectionErr(t, p.GRPCAddr(), insecure.NewCredentials()); status.Code(err) != codes.Unimplemented {
			t.Errorf("reflection turned off: %v", err)
		}
	})
	t.Run("all interfaces with TLS", func(t *testing.T) {
		dir := t.TempDir()
		ca := newTestCA(t, dir)
		p, logs := startPlain(t, func(c *config.Config) {
			c.GRPCAddr, c.HTTPAddr = "0.0.0.0:0", "0.0.0.0:0"
			c.TLS.CertFile, c.TLS.KeyFile = ca.issue(t, dir, "server", "uias", 7)
		})
		if w := securityWarnings(logs); len(w) != 0 {
			t.Fatalf("warnings with TLS: %v", w)
		}
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}}
		resp := get(t, c, "https://"+local(p.HTTPAddr())+"/healthz")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Strict-Transport-Security") != "max-age=31536000" {
			t.Errorf("HTTPS /healthz: %d, HSTS %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
		}
		err := reflectionErr(t, local(p.GRPCAddr()), credentials.NewTLS(&tls.Config{RootCAs: ca.pool, ServerName: "localhost"}))
		if status.Code(err) != codes.Unimplemented {
			t.Errorf("reflection beyond loopback with TLS: %v, want Unimplemented", err)
		}
	})
}

func TestConfigRejectsBadToggles(t *testing.T) {
	cfg := config.Default()
	cfg.Metrics.Enabled, cfg.GRPC.Reflection = "sometimes", "maybe"
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "metrics.enabled") || !strings.Contains(err.Error(), "grpc.reflection") {
		t.Fatalf("Validate: %v", err)
	}
}

// Every answer carries the headers that keep browsers from framing it
// (clickjacking), sniffing it into something executable, or caching it;
// HSTS only under TLS (directly or behind a trusted TLS proxy); a handler
// that sets a header itself (a page's own policy) keeps its value.
func TestSecurityHeaders(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/api", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"token":"t"}`))
	})
	mux.HandleFunc("/page", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
		w.Header().Set("Cache-Control", "private, max-age=60")
		_, _ = w.Write([]byte("<html></html>"))
	})
	mux.HandleFunc("/empty", func(w http.ResponseWriter, _ *http.Request) {})
	proxy := netip.MustParsePrefix("127.0.0.1/32")

	plain := httptest.NewServer(SecurityHeaders(mux, nil))
	defer plain.Close()
	for _, path := range []string{"/api", "/empty", "/nothing-here"} {
		h := get(t, plain.Client(), plain.URL+path).Header
		for k, v := range map[string]string{
			"X-Content-Type-Options":  "nosniff",
			"X-Frame-Options":         "DENY",
			"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
			"Cache-Control":           "no-store",
			"Referrer-Policy":         "no-referrer",
		} {
			if h.Get(k) != v {
				t.Errorf("%s %s: %q, want %q", path, k, h.Get(k), v)
			}
		}
		if h.Get("Strict-Transport-Security") != "" {
			t.Errorf("%s: HSTS over plain HTTP", path)
		}
	}
	h := get(t, plain.Client(), plain.URL+"/page").Header
	if h.Get("Content-Security-Policy") != "default-src 'self'; frame-ancestors 'none'" || h.Get("Cache-Control") != "private, max-age=60" {
		t.Errorf("page's own headers replaced: %v", h)
	}

	secure := httptest.NewTLSServer(SecurityHeaders(mux, nil))
	defer secure.Close()
	if v := get(t, secure.Client(), secure.URL+"/api").Header.Get("Strict-Transport-Security"); v != "max-age=31536000" {
		t.Errorf("HSTS under TLS: %q", v)
	}

	// Behind a TLS-terminating proxy: believed only from a trusted proxy.
	for _, tc := range []struct {
		trusted []netip.Prefix
		want    string
	}{{[]netip.Prefix{proxy}, "max-age=31536000"}, {nil, ""}} {
		srv := httptest.NewServer(SecurityHeaders(mux, tc.trusted))
		req, _ := http.NewRequest("GET", srv.URL+"/api", nil)
		req.Header.Set("X-Forwarded-Proto", "https")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		srv.Close()
		if got := resp.Header.Get("Strict-Transport-Security"); got != tc.want {
			t.Errorf("X-Forwarded-Proto https, trusted %v: HSTS %q, want %q", tc.trusted, got, tc.want)
		}
	}
}

// RequestHTTPS tells the handlers what HSTS says: HTTPS on a TLS
// connection, or behind a trusted TLS-terminating proxy (X-Forwarded-Proto
// https), never from an untrusted peer's header or over plain HTTP.
func TestRequestHTTPS(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprint(w, RequestHTTPS(r))
	})
	proxy := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	ask := func(srv *httptest.Server, proto string) (string, string) {
		req, _ := http.NewRequest("GET", srv.URL+"/", nil)
		if proto != "" {
			req.Header.Set("X-Forwarded-Proto", proto)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b), resp.Header.Get("Strict-Transport-Security")
	}
	for _, tc := range []struct {
		name    string
		tls     bool
		trusted []netip.Prefix
		proto   string
		want    string
	}{
		{"TLS", true, nil, "", "true"},
		{"trusted proxy, https", false, proxy, "https", "true"},
		{"trusted proxy, http", false, proxy, "http", "false"},
		{"trusted proxy, no header", false, proxy, "", "false"},
		{"untrusted peer, https", false, nil, "https", "false"},
	} {
		var srv *httptest.Server
		if tc.tls {
			srv = httptest.NewTLSServer(SecurityHeaders(mux, tc.trusted))
		} else {
			srv = httptest.NewServer(SecurityHeaders(mux, tc.trusted))
		}
		got, hsts := ask(srv, tc.proto)
		srv.Close()
		if got != tc.want || (hsts != "") != (tc.want == "true") {
			t.Errorf("%s: RequestHTTPS %s with HSTS %q, want %s (and HSTS the same)", tc.name, got, hsts, tc.want)
		}
	}
	if RequestHTTPS(httptest.NewRequest("GET", "/", nil)) {
		t.Error("a request that did not pass SecurityHeaders, without TLS, is HTTPS")
	}
}

// The secrets of the infrastructure come from files or the environment;
// the environment wins; a missing or empty file is a clear error that does
// not show the secret.
func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	writeFile(t, file, []byte("s3cr3t pass\n"))
	cfg := config.Default()
	cfg.NATS.User, cfg.NATS.PasswordFile = "identity", file
	if pw, err := cfg.NATSPassword(); err != nil || pw != "s3cr3t pass" {
		t.Fatalf("NATS password from file: %q %v", pw, err)
	}
	cfg.NATS.Password = "from-env"
	if pw, _ := cfg.NATSPassword(); pw != "from-env" {
		t.Fatalf("environment should win, got %q", pw)
	}
	cfg.Etcd.PasswordFile = filepath.Join(dir, "missing")
	if _, err := cfg.EtcdPassword(); err == nil || !strings.Contains(err.Error(), "etcd.password_file") {
		t.Fatalf("missing file: %v", err)
	}
	writeFile(t, filepath.Join(dir, "empty"), []byte("\n"))
	cfg.DB.PasswordFile = filepath.Join(dir, "empty")
	if _, err := cfg.DBPassword(); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Fatalf("empty file: %v", err)
	}
}
