package e2e

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/uias/uias/gateway"
	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	auditcomponent "github.com/uias/uias/services/audit/component"
	identitycomponent "github.com/uias/uias/services/identity/component"
	"github.com/uias/uias/services/identity/filesrest"
)

// fileWho answers WhoAmI for any token: a system administrator.
type fileWho struct {
	identityv1.UnimplementedAdminSessionServiceServer
}

func (fileWho) WhoAmI(context.Context, *identityv1.WhoAmIRequest) (*identityv1.WhoAmIResponse, error) {
	return &identityv1.WhoAmIResponse{User: &identityv1.UserSummary{Id: "adm"}, SystemAdmin: true, LegacyAdminRule: true}, nil
}

// slowExport streams a file whose production takes `took` (a large export).
type slowExport struct {
	identityv1.UnimplementedExportServiceServer
	took time.Duration
}

func (s slowExport) Export(_ *identityv1.ExportRequest, st grpc.ServerStreamingServer[identityv1.ExportChunk]) error {
	if err := st.Send(&identityv1.ExportChunk{Data: []byte("id,login\n")}); err != nil {
		return err
	}
	select {
	case <-time.After(s.took):
	case <-st.Context().Done():
		return st.Context().Err()
	}
	return st.Send(&identityv1.ExportChunk{Data: []byte("u1,alice\n"), Done: true})
}

// slowBackend serves what register registers over loopback gRPC and
// returns a connection to it (both closed when the test ends).
func slowBackend(t *testing.T, register func(*grpc.Server)) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	register(gs)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// TestFileRouteNotCutByRESTDeadline: GET /v1/export/{kind} runs as long as
// its file takes (restfile.FileTime), not the edge's deadline for API
// calls (RequestTimeout: 300 ms here), through identity's registration of
// its file routes (review sec21 H1).
func TestFileRouteNotCutByRESTDeadline(t *testing.T) {
	conn := slowBackend(t, func(gs *grpc.Server) {
		identityv1.RegisterAdminSessionServiceServer(gs, fileWho{})
		identityv1.RegisterExportServiceServer(gs, slowExport{took: 1 * time.Second})
	})
	h, err := gateway.New(context.Background(), gateway.Options{RequestTimeout: 300 * time.Millisecond,
		Backends: []gateway.Backend{{Name: "identity", Conn: conn, FileRoutes: identitycomponent.Module().FileRoutes,
			REST: func(_ context.Context, mux *runtime.ServeMux, c grpc.ClientConnInterface) error {
				return filesrest.Register(mux, c)
			}}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/export/users?format=csv", nil)
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, rerr := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || rerr != nil || !strings.Contains(string(body), "alice") {
		t.Fatalf("an export that takes 1 s was cut by the 300 ms REST deadline: status %d, body %q, read error %v", resp.StatusCode, body, rerr)
	}
}

// slowVerify answers a verification of the whole log after `took` (a
// large log).
type slowVerify struct {
	auditv1.UnimplementedAuditLogServiceServer
	took time.Duration
}

func (s slowVerify) VerifyLog(ctx context.Context, _ *auditv1.VerifyLogRequest) (*auditv1.VerifyLogResponse, error) {
	select {
	case <-time.After(s.took):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &auditv1.VerifyLogResponse{Ok: true, Records: 10_000_000, BadSeq: -1}, nil
}

// TestLogPassNotCutByRESTDeadline: POST /v1/audit/verify runs as long as
// the log takes, past the edge's deadline for API calls (300 ms here) and
// past its HTTP server's write timeout (600 ms here), through audit's
// registration of its long routes (review sec21: a 10 M record log took
// longer than the edge's 25 s and was answered 504).
func TestLogPassNotCutByRESTDeadline(t *testing.T) {
	conn := slowBackend(t, func(gs *grpc.Server) { auditv1.RegisterAuditLogServiceServer(gs, slowVerify{took: 1 * time.Second}) })
	m := auditcomponent.Module()
	h, err := gateway.New(context.Background(), gateway.Options{RequestTimeout: 300 * time.Millisecond,
		Backends: []gateway.Backend{{Name: "audit", Conn: conn, FileRoutes: m.FileRoutes, REST: m.REST}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.WriteTimeout = 600 * time.Millisecond
	srv.Start()
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+auditcomponent.VerifyPath, strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("a verification that takes 1 s was cut by the server's 600 ms write timeout: %v", err)
	}
	defer resp.Body.Close()
	body, rerr := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || rerr != nil || !strings.Contains(string(body), "10000000") {
		t.Fatalf("a verification that takes 1 s was cut by the 300 ms REST deadline: status %d, body %q, read error %v", resp.StatusCode, body, rerr)
	}
}

// TestLogPassKeepsReadTimeout: a long route's call that never sends its
// body is still cut by the server's read timeout (500 ms here): only the
// answer may take long, so no one holds a connection for hours without
// authenticating (review sec22 M1).
func TestLogPassKeepsReadTimeout(t *testing.T) {
	conn := slowBackend(t, func(gs *grpc.Server) { auditv1.RegisterAuditLogServiceServer(gs, slowVerify{took: time.Millisecond}) })
	m := auditcomponent.Module()
	h, err := gateway.New(context.Background(), gateway.Options{Backends: []gateway.Backend{{Name: "audit", Conn: conn,
		FileRoutes: m.FileRoutes, REST: m.REST}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ReadTimeout = 500 * time.Millisecond
	srv.Start()
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// a body announced and never sent
	if _, err := io.WriteString(c, "POST "+auditcomponent.VerifyPath+" HTTP/1.1\r\nHost: uias\r\nContent-Type: application/json\r\n"+
		"Content-Length: 100\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("a long route's call without its body still holds the connection after 20 s: the read timeout was lifted")
		}
	}
}
