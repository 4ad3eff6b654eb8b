package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// jsonMarshaler is runtime.JSONPb with request-body decode errors reworded so
// a client sees that its JSON was at fault.
type jsonMarshaler struct {
	*runtime.JSONPb
}

// NewDecoder wraps the JSONPb decoder.
func (m *jsonMarshaler) NewDecoder(r io.Reader) runtime.Decoder {
	d := m.JSONPb.NewDecoder(r)
	return runtime.DecoderFunc(func(v any) error {
		err := d.Decode(v)
		if err == nil || errors.Is(err, io.EOF) {
			return err
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return fmt.Errorf("invalid JSON request body: %w", err)
	})
}

// errorHandler turns gRPC errors into HTTP responses. It uses grpc-gateway's
// standard status mapping and body, and in addition answers 413 when the
// request body was too large, adds Retry-After to 429 responses and hides
// client-side transport details of an unreachable identity service.
func (g *gateway) errorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if st := stateFrom(r.Context()); st != nil && st.bodyTooLarge {
		err = &runtime.HTTPStatusError{HTTPStatus: http.StatusRequestEntityTooLarge, Err: tooLargeStatus(g.opts.MaxBodyBytes).Err()}
	}
	var custom *runtime.HTTPStatusError
	inner := err
	if errors.As(err, &custom) {
		inner = custom.Err
	}
	s := status.Convert(inner)
	switch s.Code() {
	case codes.ResourceExhausted:
		w.Header().Set("Retry-After", "1")
	case codes.Unavailable:
		if isTransportError(s.Message()) {
			g.log.Warn("identity service unreachable", zap.String("error", s.Message()))
			err = status.Error(codes.Unavailable, "identity service unavailable")
		}
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
}

// isTransportError reports whether msg is a gRPC client transport failure
// (which names internal addresses) rather than a message from the service.
func isTransportError(msg string) bool {
	for _, s := range []string{"connection error", "transport:", "dial tcp", "name resolver", "produced zero addresses", "last resolver error"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
