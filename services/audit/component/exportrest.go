package component

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/restfile"
	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
)

// ExportPath is the REST download of an export: the file itself (not
// chunks in JSON), with the filter, the format and, for a count report,
// by/bucket/utc_offset_minutes/limit as query parameters.
const ExportPath = "/v1/audit/export"

var (
	exportFormats = map[string]auditv1.ExportFormat{"csv": auditv1.ExportFormat_EXPORT_FORMAT_CSV,
		"xlsx": auditv1.ExportFormat_EXPORT_FORMAT_XLSX, "html": auditv1.ExportFormat_EXPORT_FORMAT_HTML,
		"jsonl": auditv1.ExportFormat_EXPORT_FORMAT_JSONL, "pdf": auditv1.ExportFormat_EXPORT_FORMAT_PDF}
	countBys = map[string]auditv1.CountBy{"api": auditv1.CountBy_COUNT_BY_API, "result": auditv1.CountBy_COUNT_BY_RESULT,
		"app": auditv1.CountBy_COUNT_BY_APP, "actor": auditv1.CountBy_COUNT_BY_ACTOR, "subject": auditv1.CountBy_COUNT_BY_SUBJECT,
		"client_ip": auditv1.CountBy_COUNT_BY_CLIENT_IP, "component": auditv1.CountBy_COUNT_BY_COMPONENT,
		"hour": auditv1.CountBy_COUNT_BY_HOUR_OF_DAY, "weekday": auditv1.CountBy_COUNT_BY_WEEKDAY, "org": auditv1.CountBy_COUNT_BY_ORG}
	buckets = map[string]auditv1.TimeBucket{"": auditv1.TimeBucket_TIME_BUCKET_UNSPECIFIED, "none": auditv1.TimeBucket_TIME_BUCKET_UNSPECIFIED,
		"hour": auditv1.TimeBucket_TIME_BUCKET_HOUR, "day": auditv1.TimeBucket_TIME_BUCKET_DAY}
)

func registerExport(mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
	cl := auditv1.NewAuditReportServiceClient(conn)
	return mux.HandlePath(http.MethodGet, ExportPath, func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		var req *auditv1.ExportRecordsRequest
		serveDownload(mux, w, r, auditv1.AuditReportService_ExportRecords_FullMethodName, ExportPath,
			func() (err error) { req, err = exportRequest(r); return err },
			func(ctx context.Context, empty bool) (exportStream, error) {
				if empty {
					return cl.ExportRecords(ctx, &auditv1.ExportRecordsRequest{})
				}
				return cl.ExportRecords(ctx, req)
			})
	})
}

// exportStream is the stream of an export's chunks.
type exportStream = grpc.ServerStreamingClient[auditv1.ExportRecordsChunk]

// serveDownload answers r with the file of an export (restfile.Download):
// parse reads the request from r, open opens the stream of its chunks
// (empty: with an empty request). A bad parameter is answered after the
// caller is checked (a refusal, not a bad parameter, for a call without a
// valid token): the stream of an empty request, which validation refuses
// after the caller authentication, tells which.
func serveDownload(mux *runtime.ServeMux, w http.ResponseWriter, r *http.Request, method, pattern string, parse func() error,
	open func(ctx context.Context, empty bool) (exportStream, error)) {
	restfile.Longer(w) // a long export is not cut by the server's write timeout
	fail := func(err error) { restfile.Fail(mux, w, r, err) }
	ctx, err := runtime.AnnotateContext(r.Context(), mux, r, method, runtime.WithHTTPPathPattern(pattern))
	if err != nil {
		fail(err)
		return
	}
	if err := parse(); err != nil {
		if st, cerr := open(ctx, true); cerr == nil {
			if _, cerr = st.Recv(); cerr != nil {
				if c := status.Code(cerr); c == codes.Unauthenticated || c == codes.PermissionDenied {
					err = cerr
				}
			}
		}
		fail(err)
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := open(ctx, false)
	if err != nil {
		fail(err)
		return
	}
	restfile.Download(mux, w, r, st.Recv, func(c *auditv1.ExportRecordsChunk) restfile.Header {
		return restfile.Header{ContentType: c.GetContentType(), FileName: c.GetFileName()}
	})
}

func badParam(msg string) error {
	return apierr.New(apierr.InvalidArgument, apierr.ReasonBadRequest, msg)
}

// exportParams are the query parameters of a download of records or of a
// count report.
var exportParams = []string{"format", "start_time", "end_time", "actor", "subject", "app_id", "api", "result", "client_ip", "text",
	"org_id", "max_records", "language", "by", "bucket", "utc_offset_minutes", "limit"}

// exportRequest reads the query parameters of a download; one it does not
// know is refused (a misspelt filter is not dropped without a word).
func exportRequest(r *http.Request) (*auditv1.ExportRecordsRequest, error) {
	v := r.URL.Query()
	for k := range v {
		if !slices.Contains(exportParams, k) {
			return nil, badParam(fmt.Sprintf("query parameter %q does not name a field of the request; it takes %s",
				k, strings.Join(exportParams, ", ")))
		}
	}
	format, ok := exportFormats[v.Get("format")]
	if !ok {
		return nil, badParam("format must be csv, xlsx, html, jsonl or pdf")
	}
	f := &auditv1.RecordFilter{Actor: v.Get("actor"), Subject: v.Get("subject"), AppId: v.Get("app_id"), Api: v.Get("api"),
		Result: v.Get("result"), ClientIp: v.Get("client_ip"), Text: v.Get("text"), OrgId: v.Get("org_id")}
	for name, dst := range map[string]**timestamppb.Timestamp{"start_time": &f.StartTime, "end_time": &f.EndTime} {
		if s := v.Get(name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return nil, badParam(name + " must be an RFC 3339 time, e.g. 2026-12-01T00:00:00Z")
			}
			*dst = timestamppb.New(t)
		}
	}
	num := func(name string) (int32, error) {
		s := v.Get(name)
		if s == "" {
			return 0, nil
		}
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return 0, badParam(name + " must be a whole number")
		}
		return int32(n), nil
	}
	req := &auditv1.ExportRecordsRequest{Filter: f, Format: format, Language: v.Get("language")}
	var err error
	if req.MaxRecords, err = num("max_records"); err != nil {
		return nil, err
	}
	if v.Get("by") == "" {
		for _, k := range []string{"bucket", "utc_offset_minutes", "limit"} {
			if v.Has(k) {
				return nil, badParam(k + " is for count reports: give by= too (records are downloaded without it)")
			}
		}
	}
	for k, vals := range v {
		if len(vals) > 1 {
			return nil, badParam(fmt.Sprintf("query parameter %q is given more than once", k))
		}
	}
	if by := v.Get("by"); by != "" {
		cb, ok := countBys[by]
		if !ok {
			return nil, badParam("by must be api, result, app, actor, subject, client_ip, component, hour, weekday or org")
		}
		b, ok := buckets[v.Get("bucket")]
		if !ok {
			return nil, badParam("bucket must be none, hour or day")
		}
		c := &auditv1.CountRecordsRequest{Filter: f, By: cb, Bucket: b}
		if c.UtcOffsetMinutes, err = num("utc_offset_minutes"); err != nil {
			return nil, err
		}
		if c.Limit, err = num("limit"); err != nil {
			return nil, err
		}
		req.Counts = c
	}
	return req, nil
}
