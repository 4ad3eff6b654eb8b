// Package filesrest serves the identity component's file routes on the REST
// edge, registered on the edge's mux with the component's other REST
// routes (they are not google.api.http mappings: a file is not JSON):
//
//	POST /v1/import/{kind}           upload a file to ImportService.Import
//	GET  /v1/import/{kind}/template  a template (no credentials needed)
//	GET  /v1/export/{kind}           download ExportService.Export
//
// kind is users, orgs or links. Bodies and downloads are streamed: the
// upload goes to the service in chunks as it arrives (the edge's body
// limit for /v1/import/ is raised to MaxUploadBytes; the service enforces
// identity.import_max_bytes), the download is copied as the service sends
// it. Errors are the edge's JSON error bodies with the service's reasons.
package filesrest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/uias/uias/pkg/adminauth"
	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/restfile"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/importfile"
)

// Routes.
const (
	ImportPath   = "/v1/import/{kind}"
	TemplatePath = "/v1/import/{kind}/template"
	ExportPath   = "/v1/export/{kind}"
	// ImportPrefix is where the edge's body limit is raised.
	ImportPrefix = "/v1/import/"
	// ExportPrefix is where exports are downloaded.
	ExportPrefix = "/v1/export/"
)

// MaxUploadBytes is the edge's body limit for uploads: the largest
// identity.import_max_bytes allowed, plus room for a multipart envelope.
const MaxUploadBytes = identity.MaxImportMaxBytes + 1<<20

// chunk is the size of the pieces an upload is sent in.
const chunk = 256 << 10

// ReasonUnsupportedFileType refuses an upload whose content type is not a
// file format the import reads.
const ReasonUnsupportedFileType = "UNSUPPORTED_FILE_TYPE"

func init() {
	apierr.Register(apierr.Reason{Name: ReasonUnsupportedFileType, Code: apierr.InvalidArgument, Legacy: -5,
		HTTP: http.StatusUnsupportedMediaType,
		Doc:  "REST import: the body is not an import file: send text/csv, application/vnd.openxmlformats-officedocument.spreadsheetml.sheet, application/x-ndjson, application/octet-stream with ?format=, or multipart/form-data with the file in the field \"file\"."})
}

var kinds = map[string]identityv1.ImportKind{
	"users": identityv1.ImportKind_IMPORT_KIND_USERS, "orgs": identityv1.ImportKind_IMPORT_KIND_ORGS,
	"links": identityv1.ImportKind_IMPORT_KIND_LINKS,
}

var formats = map[string]identityv1.ImportFormat{
	"xlsx": identityv1.ImportFormat_IMPORT_FORMAT_XLSX, "csv": identityv1.ImportFormat_IMPORT_FORMAT_CSV,
	"jsonl": identityv1.ImportFormat_IMPORT_FORMAT_JSONL,
}

// contentTypes maps media types to formats (uploads) and back (downloads:
// the first of each).
var contentTypes = map[string]string{
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
	"text/csv": "csv", "application/csv": "csv", "text/comma-separated-values": "csv",
	"application/x-ndjson": "jsonl", "application/jsonl": "jsonl", "application/x-jsonlines": "jsonl",
	"application/jsonlines": "jsonl",
}

var mediaTypes = map[string]string{
	"xlsx":  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	"csv":   "text/csv; charset=utf-8",
	"jsonl": "application/x-ndjson",
}

// Register adds the file routes to mux; conn reaches the identity
// component.
func Register(mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
	h := handlers{mux: mux, imp: identityv1.NewImportServiceClient(conn), exp: identityv1.NewExportServiceClient(conn),
		who: adminauth.New(conn, nil)}
	if err := mux.HandlePath(http.MethodPost, ImportPath, h.upload); err != nil {
		return err
	}
	if err := mux.HandlePath(http.MethodGet, TemplatePath, h.template); err != nil {
		return err
	}
	return mux.HandlePath(http.MethodGet, ExportPath, h.download)
}

type handlers struct {
	mux *runtime.ServeMux
	imp identityv1.ImportServiceClient
	exp identityv1.ExportServiceClient
	who *adminauth.Verifier
}

// admin checks the request's administrator token before anything else (a
// bad token is refused before a large body is read) and returns the
// context of the calls to make for method.
func (h handlers) admin(w http.ResponseWriter, r *http.Request, method, pattern string) (context.Context, bool) {
	ctx, err := runtime.AnnotateContext(r.Context(), h.mux, r, method, runtime.WithHTTPPathPattern(pattern))
	if err == nil {
		// the token the edge put in the call's metadata, checked once by
		// pkg/adminauth (which sends it itself)
		md, _ := metadata.FromOutgoingContext(ctx)
		md = md.Copy()
		tok := ""
		if v := md.Get("authorization"); len(v) > 0 {
			tok, _ = strings.CutPrefix(v[0], "Bearer ")
			if t, ok := strings.CutPrefix(v[0], "bearer "); ok {
				tok = t
			}
		}
		md.Delete("authorization")
		_, err = h.who.Authenticate(metadata.NewOutgoingContext(ctx, md), strings.TrimSpace(tok))
	}
	if err != nil {
		h.fail(w, r, err)
		return nil, false
	}
	return ctx, true
}

func (h handlers) fail(w http.ResponseWriter, r *http.Request, err error) {
	restfile.Fail(h.mux, w, r, err)
}

func badRequest(msg string) error {
	return apierr.New(apierr.InvalidArgument, apierr.ReasonBadRequest, msg)
}

func unsupported(msg string) error {
	return apierr.New(apierr.InvalidArgument, ReasonUnsupportedFileType, msg)
}

// kindOf reads the {kind} parameter.
func kindOf(p map[string]string) (identityv1.ImportKind, error) {
	k, ok := kinds[p["kind"]]
	if !ok {
		return 0, apierr.New(apierr.NotFound, "NOT_FOUND", "no such file route: the kind is users, orgs or links")
	}
	return k, nil
}

// formatParam reads ?format= ("" when absent).
func formatParam(r *http.Request) (string, error) {
	f := strings.ToLower(r.URL.Query().Get("format"))
	if _, ok := formats[f]; f != "" && !ok {
		return "", badRequest("format must be xlsx, csv or jsonl")
	}
	return f, nil
}

// upload streams the request's file into ImportService.Import and answers
// its report (JSON, as the RPC's).
func (h handlers) upload(w http.ResponseWriter, r *http.Request, p map[string]string) {
	ctx, ok := h.admin(w, r, identityv1.ImportService_Import_FullMethodName, ImportPath)
	if !ok {
		return
	}
	kind, err := kindOf(p)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	format, err := formatParam(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	opts := options{importID: q.Get("import_id")}
	if v := q.Get("dry_run"); v != "" {
		if opts.dryRun, err = strconv.ParseBool(v); err != nil {
			h.fail(w, r, badRequest("dry_run must be true or false"))
			return
		}
	}
	restfile.Longer(w)
	body, format, err := fileOf(r, format, &opts)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	rep, err := h.send(ctx, kind, formats[format], opts, body)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	_, m := runtime.MarshalerForRequest(h.mux, r)
	runtime.ForwardResponseMessage(ctx, h.mux, m, w, r, rep)
}

type options struct {
	dryRun   bool
	importID string
}

// fileOf finds the file in the request: the body itself (its format from
// format, else the Content-Type), or the multipart field "file" (its
// format from format, else the part's Content-Type, else its file name's
// extension; fields dry_run and import_id before it count as the query
// parameters).
func fileOf(r *http.Request, format string, opts *options) (io.Reader, string, error) {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil {
		if format != "" {
			return r.Body, format, nil
		}
		return nil, "", unsupported("the request has no usable Content-Type: send the file as text/csv, " +
			"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet or application/x-ndjson, or as multipart/form-data")
	}
	if mt != "multipart/form-data" {
		f, known := contentTypes[mt]
		switch {
		case format != "" && (known || mt == "application/octet-stream"):
			return r.Body, format, nil
		case known:
			return r.Body, f, nil
		case mt == "application/octet-stream":
			return nil, "", unsupported("application/octet-stream needs ?format=xlsx, csv or jsonl")
		}
		return nil, "", unsupported(fmt.Sprintf("%s is not an import file: send text/csv, "+
			"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet, application/x-ndjson or multipart/form-data", truncate(mt, 60)))
	}
	if params["boundary"] == "" {
		return nil, "", badRequest("multipart/form-data without a boundary")
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, "", badRequest("the multipart form has no field \"file\"")
		}
		if err != nil {
			return nil, "", bodyError(err, "the multipart form cannot be read")
		}
		switch part.FormName() {
		case "file":
			if format == "" {
				if pmt, _, err := mime.ParseMediaType(part.Header.Get("Content-Type")); err == nil {
					format = contentTypes[pmt]
				}
			}
			if format == "" {
				format = strings.TrimPrefix(strings.ToLower(filepath.Ext(part.FileName())), ".")
			}
			if _, ok := formats[format]; !ok {
				return nil, "", unsupported("cannot tell the format of the field \"file\" (its Content-Type or a file name " +
					"ending in .xlsx, .csv or .jsonl): add ?format=xlsx, csv or jsonl")
			}
			return part, format, nil
		case "dry_run", "import_id":
			v, err := io.ReadAll(io.LimitReader(part, 256))
			if err != nil {
				return nil, "", bodyError(err, "the multipart form cannot be read")
			}
			if part.FormName() == "import_id" {
				opts.importID = strings.TrimSpace(string(v))
			} else if opts.dryRun, err = strconv.ParseBool(strings.TrimSpace(string(v))); err != nil {
				return nil, "", badRequest("dry_run must be true or false")
			}
		}
	}
}

// bodyError is a failure reading the request body: over the edge's limit
// (413 as the edge answers), or cut off.
func bodyError(err error, msg string) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return apierr.New(apierr.InvalidArgument, identity.ReasonImportTooLarge,
			fmt.Sprintf("the request body is larger than %d bytes", mbe.Limit))
	}
	return badRequest(msg)
}

// send streams body into Import. When the body cannot be read to its end
// the call is cancelled, so the service imports nothing of a cut-off file.
func (h handlers) send(ctx context.Context, kind identityv1.ImportKind, format identityv1.ImportFormat, opts options, body io.Reader) (*identityv1.ImportReport, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := h.imp.Import(ctx)
	if err != nil {
		return nil, err
	}
	if err := st.Send(&identityv1.ImportRequest{Part: &identityv1.ImportRequest_Header{Header: &identityv1.ImportHeader{
		Kind: kind, Format: format, DryRun: opts.dryRun, ImportId: opts.importID}}}); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	buf := make([]byte, chunk)
	for {
		n, rerr := io.ReadFull(body, buf)
		if n > 0 {
			if err := st.Send(&identityv1.ImportRequest{Part: &identityv1.ImportRequest_Chunk{Chunk: buf[:n]}}); err != nil {
				if errors.Is(err, io.EOF) {
					break // the service ended the call: its answer says why
				}
				return nil, err
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			cancel()
			return nil, bodyError(rerr, "the upload was cut off before its end; nothing was imported")
		}
	}
	return st.CloseAndRecv()
}

// template writes a template; it needs no credentials (it holds no data).
func (h handlers) template(w http.ResponseWriter, r *http.Request, p map[string]string) {
	if _, err := kindOf(p); err != nil {
		h.fail(w, r, err)
		return
	}
	format, err := formatParam(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if format == "" {
		format = "xlsx"
	}
	w.Header().Set("Content-Type", mediaTypes[format])
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-template.%s"`, p["kind"], format))
	w.Header().Set("Cache-Control", "no-store")
	if err := importfile.Template(w, importfile.Format(format), importfile.Kind(p["kind"])); err != nil {
		panic(http.ErrAbortHandler) // headers are sent: end the response incomplete
	}
}

// download streams Export. An error before the first piece is a JSON
// error; after it, the response is cut off (the client sees an incomplete
// body, never a complete-looking partial file).
func (h handlers) download(w http.ResponseWriter, r *http.Request, p map[string]string) {
	ctx, ok := h.admin(w, r, identityv1.ExportService_Export_FullMethodName, ExportPath)
	if !ok {
		return
	}
	kind, err := kindOf(p)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	format, err := formatParam(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if format == "" {
		format = "xlsx"
	}
	reveal := false
	if v := r.URL.Query().Get("reveal_personal"); v != "" {
		if reveal, err = strconv.ParseBool(v); err != nil {
			h.fail(w, r, badRequest("reveal_personal must be true or false"))
			return
		}
	}
	restfile.Longer(w)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := h.exp.Export(ctx, &identityv1.ExportRequest{Kind: kind, Format: formats[format], RevealPersonal: reveal})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	restfile.Download(h.mux, w, r, st.Recv, func(*identityv1.ExportChunk) restfile.Header {
		return restfile.Header{ContentType: mediaTypes[format], FileName: p["kind"] + "." + format}
	})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
