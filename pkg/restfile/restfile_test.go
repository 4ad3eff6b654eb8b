package restfile_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/restfile"
)

type piece struct {
	data string
	done bool
}

func (p piece) GetData() []byte { return []byte(p.data) }
func (p piece) GetDone() bool   { return p.done }

// serve answers one download whose pieces and errors come from steps.
func serve(t *testing.T, steps ...any) *http.Response {
	t.Helper()
	mux := runtime.NewServeMux()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := 0
		recv := func() (piece, error) {
			s := steps[i]
			i++
			if err, ok := s.(error); ok {
				return piece{}, err
			}
			return s.(piece), nil
		}
		restfile.Download(mux, w, r, recv, func(first piece) restfile.Header {
			return restfile.Header{ContentType: "text/csv; charset=utf-8", FileName: "people.csv"}
		})
	}))
	t.Cleanup(srv.Close)
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = res.Body.Close() })
	return res
}

func TestWholeFile(t *testing.T) {
	res := serve(t, piece{data: "a,b\n"}, piece{data: "1,2\n", done: true})
	body, err := io.ReadAll(res.Body)
	if err != nil || string(body) != "a,b\n1,2\n" {
		t.Fatalf("body %q, %v", body, err)
	}
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Disposition") != `attachment; filename="people.csv"` ||
		res.Header.Get("Content-Type") != "text/csv; charset=utf-8" || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("status %d, headers %v", res.StatusCode, res.Header)
	}
}

func TestRefusalBeforeTheFirstPieceIsAnError(t *testing.T) {
	res := serve(t, status.Error(codes.PermissionDenied, "you may not export"))
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "you may not export") {
		t.Fatalf("status %d, body %s", res.StatusCode, body)
	}
}

func TestFailureAfterTheFirstPieceCutsTheFile(t *testing.T) {
	res := serve(t, piece{data: "a,b\n"}, status.Error(codes.Unavailable, "store down"))
	body, err := io.ReadAll(res.Body)
	if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a cut download read as whole: %q, %v", body, err)
	}
}
