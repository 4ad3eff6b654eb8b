package console

import (
	"errors"
	"html/template"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
)

// auditPage is the audit log query: its filters and one page of records.
type auditPage struct {
	From, To, Actor, API, Result, Text string
	Records                            []*auditv1.Record
	Next                               template.URL
	// Export is the filters' query for the download links.
	Export template.URL
}

// formTime is the form's time fields' layout (datetime-local, UTC).
const formTime = "2006-01-02T15:04"

func (h *Handler) audit(w http.ResponseWriter, r *http.Request, s *session) {
	d := h.data(r, s, "audit")
	// the audit page reads the reminder afresh (a backup just made ends it)
	d.BackupReport = backupReport(&d, h.checkBackup(w, r, s.token))
	q := r.URL.Query()
	p := &auditPage{From: q.Get("from"), To: q.Get("to"), Actor: strings.TrimSpace(q.Get("actor")), API: strings.TrimSpace(q.Get("api")),
		Result: q.Get("result"), Text: strings.TrimSpace(q.Get("text"))}
	d.Page = p
	if h.o.AuditQuery == nil {
		d.Error = d.T("noAudit")
		h.render(w, r, http.StatusServiceUnavailable, "audit", d)
		return
	}
	req := &auditv1.QueryRecordsRequest{Actor: h.auditActor(r, s, p.Actor), Api: p.API, Result: p.Result, Text: p.Text, PageSize: pageSize,
		PageToken: q.Get("page"), Language: d.Lang}
	var err error
	if req.StartTime, req.EndTime, err = p.times(); err != nil {
		d.Error = d.T("badTime")
		h.render(w, r, http.StatusBadRequest, "audit", d)
		return
	}
	ctx, cancel := h.ctx(r, s)
	defer cancel()
	res, err := h.o.AuditQuery.QueryRecords(ctx, req)
	if err != nil {
		h.failed(w, r, err, "audit", &d)
		return
	}
	p.Records = res.GetRecords()
	if t := res.GetNextPageToken(); t != "" {
		nq := url.Values{}
		for _, k := range []string{"from", "to", "actor", "api", "result", "text"} {
			if v := q.Get(k); v != "" {
				nq.Set(k, v)
			}
		}
		nq.Set("page", t)
		p.Next = template.URL(nq.Encode()) // #nosec G203 -- url.Values.Encode escapes every value
	}
	p.Export = template.URL(p.query().Encode()) // #nosec G203 -- url.Values.Encode escapes every value
	h.render(w, r, http.StatusOK, "audit", d)
}

// times are the page's time filters (nil: unset).
func (p *auditPage) times() (from, to *timestamppb.Timestamp, err error) {
	parse := func(v string) (*timestamppb.Timestamp, error) {
		if v == "" {
			return nil, nil
		}
		t, err := time.Parse(formTime, v)
		if err != nil {
			return nil, err
		}
		return timestamppb.New(t), nil
	}
	if from, err = parse(p.From); err != nil {
		return nil, nil, err
	}
	to, err = parse(p.To)
	return from, to, err
}

// query is the page's filters as a query string.
func (p *auditPage) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"from": p.From, "to": p.To, "actor": p.Actor, "api": p.API, "result": p.Result, "text": p.Text} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// exportFormats are the files the audit page offers.
var exportFormats = map[string]auditv1.ExportFormat{
	"csv": auditv1.ExportFormat_EXPORT_FORMAT_CSV, "xlsx": auditv1.ExportFormat_EXPORT_FORMAT_XLSX, "pdf": auditv1.ExportFormat_EXPORT_FORMAT_PDF,
}

// auditExport downloads the records the audit page's filters select, as
// audit exports them (ExportRecords, in the page's language, with the
// administrator's token: audit decides what they may read), streamed to
// the browser as an attachment. A refusal before the first chunk is shown
// on the audit page; one after it cuts the download (the file is then
// incomplete, and the browser says so).
func (h *Handler) auditExport(w http.ResponseWriter, r *http.Request, s *session) {
	d := h.data(r, s, "audit")
	q := r.URL.Query()
	p := &auditPage{From: q.Get("from"), To: q.Get("to"), Actor: strings.TrimSpace(q.Get("actor")), API: strings.TrimSpace(q.Get("api")),
		Result: q.Get("result"), Text: strings.TrimSpace(q.Get("text"))}
	d.Page = p
	format, ok := exportFormats[q.Get("format")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if h.o.AuditReport == nil {
		d.Error = d.T("noAudit")
		h.render(w, r, http.StatusServiceUnavailable, "audit", d)
		return
	}
	f := &auditv1.RecordFilter{Actor: h.auditActor(r, s, p.Actor), Api: p.API, Result: p.Result, Text: p.Text}
	var err error
	if f.StartTime, f.EndTime, err = p.times(); err != nil {
		d.Error = d.T("badTime")
		h.render(w, r, http.StatusBadRequest, "audit", d)
		return
	}
	ctx, cancel := h.exportCtx(r, s)
	defer cancel()
	stream, err := h.o.AuditReport.ExportRecords(ctx, &auditv1.ExportRecordsRequest{Filter: f, Format: format, Language: d.Lang})
	var first *auditv1.ExportRecordsChunk
	if err == nil {
		first, err = stream.Recv()
	}
	if err != nil {
		h.failed(w, r, err, "audit", &d)
		return
	}
	name := first.GetFileName()
	if name == "" {
		name = "audit-records." + q.Get("format")
	}
	w.Header().Set("Content-Type", first.GetContentType())
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	w.WriteHeader(http.StatusOK)
	for c := first; ; {
		if _, err := w.Write(c.GetData()); err != nil || c.GetDone() {
			return
		}
		if c, err = stream.Recv(); err != nil {
			if !errors.Is(err, io.EOF) {
				h.o.Log.Warn("console: an audit export was cut", zap.Error(err))
			}
			return
		}
	}
}

// auditActor is the actor filter for what the administrator typed: a
// person's login name (or ID) is their "user:<id>", as the records name
// them (an administrator looking for what they or a colleague did types
// the login name, as in Keycloak's admin events); anything with a colon
// ("user:<id>", "app:<App_ID>") and names nobody has ("audit") are
// passed as typed.
func (h *Handler) auditActor(r *http.Request, s *session, actor string) string {
	if actor == "" || strings.Contains(actor, ":") {
		return actor
	}
	if id, err := h.personID(r, s, actor); err == nil && id != "" {
		return "user:" + id
	}
	return actor
}
