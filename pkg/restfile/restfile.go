// Package restfile serves files on the REST edge that a component streams
// over gRPC in pieces (an export, a report): the routes that are not
// google.api.http mappings because a file is not JSON. Errors before the
// first piece are the edge's JSON error bodies; after it the response is
// cut off, so a client never takes a partial file for a whole one.
package restfile

import (
	"fmt"
	"net/http"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
)

// Piece is one piece of a streamed file, as the generated stream messages
// give it.
type Piece interface {
	GetData() []byte
	GetDone() bool
}

// Header names the file a download carries.
type Header struct {
	ContentType string
	FileName    string
}

// FileTime bounds writing a download (and reading an upload): the edge's
// server allows 30 s for other requests.
const FileTime = 2 * time.Hour

// Fail answers err as the edge answers a failed call (status, JSON body
// with the reason).
func Fail(mux *runtime.ServeMux, w http.ResponseWriter, r *http.Request, err error) {
	_, m := runtime.MarshalerForRequest(mux, r)
	runtime.HTTPError(r.Context(), mux, m, w, r, err)
}

// LongerAnswer lets a request's answer be written past the edge server's
// write timeout (its reading keeps the read timeout).
func LongerAnswer(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(FileTime))
}

// Longer lets a file request run past the edge server's timeouts, reading
// included: call it once the request is authenticated.
func Longer(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(FileTime))
	_ = rc.SetWriteDeadline(time.Now().Add(FileTime))
}

// Download copies the pieces recv returns to w until one says it is the
// last. The first piece is read before anything is written, so a refusal
// (no permission, a bad filter) is answered as an error; head names the
// file from that first piece. The caller cancels the call's context when
// Download returns: a client that goes away ends the export.
func Download[P Piece](mux *runtime.ServeMux, w http.ResponseWriter, r *http.Request, recv func() (P, error), head func(first P) Header) {
	p, err := recv()
	if err != nil {
		Fail(mux, w, r, err)
		return
	}
	h := head(p)
	w.Header().Set("Content-Type", h.ContentType)
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", h.FileName))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	for {
		if _, err := w.Write(p.GetData()); err != nil {
			return // the client went away
		}
		_ = rc.Flush()
		if p.GetDone() {
			return
		}
		if p, err = recv(); err != nil {
			panic(http.ErrAbortHandler) // cut the download: a partial file must not look whole
		}
	}
}
