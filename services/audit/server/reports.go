package server

import (
	"bytes"
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/uias/uias/pkg/apierr"
	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
	"github.com/uias/uias/services/audit"
)

// ReportStore is what the report server reads.
type ReportStore interface {
	audit.QueryStore
	audit.CountStore
}

// ReportServer implements AuditReportService.
type ReportServer struct {
	auditv1.UnimplementedAuditReportServiceServer
	store    ReportStore
	exp      audit.Exporter
	subtrees Subtrees
	log      ExportLog
}

// WithExportLog records every export in the audit log (audit.export).
func (s *ReportServer) WithExportLog(l ExportLog) *ReportServer {
	s.log = l
	return s
}

// WithOrgs lets the counts and exports filter by org subtree (org_id).
func (s *ReportServer) WithOrgs(t Subtrees) *ReportServer {
	s.subtrees = t
	return s
}

// NewReports returns the report server over st, writing exports with exp.
func NewReports(st ReportStore, exp audit.Exporter) *ReportServer {
	return &ReportServer{store: st, exp: exp}
}

// Register adds the service to g.
func (s *ReportServer) Register(g grpc.ServiceRegistrar) {
	auditv1.RegisterAuditReportServiceServer(g, s)
}

// FilterQuery is the query of a RecordFilter.
func FilterQuery(f *auditv1.RecordFilter) audit.Query {
	q := audit.Query{Actor: f.GetActor(), Subject: f.GetSubject(), AppID: f.GetAppId(), API: f.GetApi(), Result: f.GetResult(),
		ClientIP: f.GetClientIp(), Text: f.GetText(), Origin: f.GetOrigin()}
	if f.GetStartTime() != nil {
		q.From = f.GetStartTime().AsTime()
	}
	if f.GetEndTime() != nil {
		q.To = f.GetEndTime().AsTime()
	}
	return q
}

func countQuery(r *auditv1.CountRecordsRequest) audit.CountQuery {
	return audit.CountQuery{Filter: FilterQuery(r.GetFilter()), By: audit.CountBy(r.GetBy()), Bucket: audit.Bucket(r.GetBucket()),
		UTCOffset: time.Duration(r.GetUtcOffsetMinutes()) * time.Minute, Limit: int(r.GetLimit())}
}

// CountRecords implements AuditReportService.
func (s *ReportServer) CountRecords(ctx context.Context, r *auditv1.CountRecordsRequest) (*auditv1.CountRecordsResponse, error) {
	sc, err := orgScope(ctx, s.subtrees, r.GetFilter().GetOrgId())
	if err != nil {
		return nil, err
	}
	counts, truncated, err := audit.Counts(ctx, s.store, sc, countQuery(r))
	if err != nil {
		return nil, err
	}
	out := &auditv1.CountRecordsResponse{Truncated: truncated, Counts: make([]*auditv1.RecordCount, len(counts))}
	for i, c := range counts {
		out.Counts[i] = &auditv1.RecordCount{Key: c.Key, Count: c.Count}
		if !c.BucketStart.IsZero() {
			out.Counts[i].BucketStart = timestamppb.New(c.BucketStart)
		}
	}
	return out, nil
}

// exportChunk is the size of the chunks of an export.
const exportChunk = 256 << 10

// chunkWriter sends what is written in chunks of exportChunk.
type chunkWriter struct {
	st    grpc.ServerStreamingServer[auditv1.ExportRecordsChunk]
	buf   bytes.Buffer
	first *auditv1.ExportRecordsChunk // headers of the first chunk, until sent
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	for w.buf.Len() >= exportChunk {
		if err := w.send(w.buf.Next(exportChunk), false); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (w *chunkWriter) send(data []byte, done bool) error {
	c := &auditv1.ExportRecordsChunk{Data: bytes.Clone(data), Done: done}
	if w.first != nil {
		c.ContentType, c.FileName = w.first.ContentType, w.first.FileName
		w.first = nil
	}
	return w.st.Send(c)
}

// ExportRecords implements AuditReportService.
func (s *ReportServer) ExportRecords(r *auditv1.ExportRecordsRequest, st grpc.ServerStreamingServer[auditv1.ExportRecordsChunk]) error {
	ctx := st.Context()
	org := r.GetFilter().GetOrgId()
	if r.GetCounts() != nil {
		if org != "" && org != r.GetCounts().GetFilter().GetOrgId() {
			return apierr.New(apierr.InvalidArgument, apierr.ReasonBadRequest,
				"a count report takes its filters from counts.filter: give org_id there (filter.org_id differs)")
		}
		org = r.GetCounts().GetFilter().GetOrgId()
	}
	sc, err := orgScope(ctx, s.subtrees, org)
	if err != nil {
		return err
	}
	f := audit.Format(r.GetFormat())
	name := "audit-records"
	if r.GetCounts() != nil {
		name = "audit-counts"
	}
	file := name + "-" + time.Now().UTC().Format("20060102-150405") + "." + f.Ext()
	w := &chunkWriter{st: st, first: &auditv1.ExportRecordsChunk{ContentType: f.ContentType(), FileName: file}}
	note := audit.Export{Report: "records", Format: f, File: file, OrgID: org}
	if r.GetCounts() != nil {
		q := countQuery(r.GetCounts())
		counts, _, err := audit.Counts(ctx, s.store, sc, q)
		if err != nil {
			return err
		}
		if err := s.exp.Counts(q, counts, f, w); err != nil {
			return err
		}
		note.Report, note.Filter, note.By, note.Rows = "counts", q.Filter, q.By, len(counts)
	} else {
		q := FilterQuery(r.GetFilter())
		exp := s.exp
		exp.Lang, _ = audit.ParseLang(r.GetLanguage()) // validated
		n, err := exp.Records(ctx, s.store, sc, q, int(r.GetMaxRecords()), f, w)
		note.Filter, note.Rows = q, n
		if err != nil {
			if n > 0 {
				// what left is recorded, the client gone or not
				note.Broken = true
				_ = recordExport(context.WithoutCancel(ctx), s.log, note)
			}
			return err
		}
	}
	if err := recordExport(ctx, s.log, note); err != nil {
		return err
	}
	return w.send(w.buf.Bytes(), true)
}
