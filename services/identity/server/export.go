package server

import (
	"github.com/uias/uias/pkg/adminauth"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/importfile"
)

// exportChunk is the largest piece of the file per message.
const exportChunk = 256 << 10

// exportServer implements ExportService (administrators only; see
// CallerAuth).
type exportServer struct {
	identityv1.UnimplementedExportServiceServer
	svc   *identity.Service
	guard *Guard
}

// Export implements ExportService: the service's rows go through the file
// writer into messages of at most exportChunk bytes.
func (s exportServer) Export(r *identityv1.ExportRequest, stream identityv1.ExportService_ExportServer) error {
	if err := s.guard.Require(stream.Context(), adminauth.ExportRun); err != nil {
		return err
	}
	kind, format := importKinds[r.GetKind()], importFormats[r.GetFormat()]
	out := &chunker{send: func(b []byte) error { return stream.Send(&identityv1.ExportChunk{Data: b}) }}
	var w *importfile.Writer
	res, err := s.svc.ExportCounted(stream.Context(), identity.ExportOptions{Kind: string(kind), Reveal: r.GetRevealPersonal()},
		func(vals []string) error {
			if w == nil {
				var err error
				if w, err = importfile.NewWriter(out, format, kind, identity.ExportColumns[string(kind)]); err != nil {
					return err
				}
			}
			return w.WriteRow(vals)
		})
	if err != nil {
		return err
	}
	if w == nil { // no rows: the header alone
		if w, err = importfile.NewWriter(out, format, kind, identity.ExportColumns[string(kind)]); err != nil {
			return err
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	return stream.Send(&identityv1.ExportChunk{Data: out.buf, Rows: int64(res.Rows), Done: true,
		MaskedOtherCentres: int64(res.MaskedOtherCentres)})
}

// chunker cuts what is written into pieces of exportChunk bytes; the rest
// stays in buf.
type chunker struct {
	buf  []byte
	send func([]byte) error
}

func (c *chunker) Write(p []byte) (int, error) {
	c.buf = append(c.buf, p...)
	for len(c.buf) >= exportChunk {
		if err := c.send(c.buf[:exportChunk]); err != nil {
			return 0, err
		}
		c.buf = append(c.buf[:0], c.buf[exportChunk:]...)
	}
	return len(p), nil
}
